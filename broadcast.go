package workerman

import (
	"github.com/workerman-go/workerman/internal/websocket"
	"github.com/workerman-go/workerman/protocol"
)

// Broadcast sends data to every connection of the worker except those in
// exclude (GatewayWorker's sendToAll), and returns how many took it. It is
// safe from any goroutine and never blocks; each connection keeps
// Workerman's buffer semantics (a full one drops the message and reports
// ErrSendBufferFull through its OnError).
//
// On websocket:// workers the frame is built once and written to every
// connection that completed its handshake: sending to 10,000 clients costs
// 10,000 writes, not 10,000 encodings. Other codecs encode per connection.
// On a text websocket:// worker, data that is not valid UTF-8 is sent to
// nobody (0): broadcast it on a BinaryType worker.
func (w *Worker) Broadcast(data []byte, exclude ...*Connection) int {
	r := w.reactor()
	if r == nil {
		return 0
	}
	var frame []byte
	if _, ok := w.ep.proto.(*websocket.Protocol); ok {
		typ := protocol.TextMessage
		if w.WebSocket.BinaryType {
			typ = protocol.BinaryMessage
		}
		var err error
		if frame, err = websocket.ServerFrame(nil, protocol.Message{Type: typ, Data: data}); err != nil {
			return 0 // text that is not UTF-8: no frame to send anyone
		}
	}
	// Send from a snapshot: the loops must not wait on the instance lock
	// (they take it to add and remove connections) for a whole broadcast.
	n := 0
	for _, c := range r.connections() {
		if excluded(c, exclude) {
			continue
		}
		var err error
		if ws := c.webSocket(); frame != nil && ws != nil && ws.Established() {
			err = c.sendPrepared(frame)
		} else {
			err = c.Send(data)
		}
		if err == nil {
			n++
		}
	}
	return n
}

func excluded(c *Connection, list []*Connection) bool {
	for _, x := range list {
		if x == c {
			return true
		}
	}
	return false
}

// sendPrepared writes an already framed message, with the checks of Send.
func (c *Connection) sendPrepared(frame []byte) error {
	c.sendMu.Lock()
	defer c.sendMu.Unlock()
	if c.closing.Load() {
		return ErrClosed
	}
	return c.write(frame, true)
}
