package workerman

import (
	"unicode/utf8"

	"github.com/workerman-go/workerman/internal/bufpool"
	"github.com/workerman-go/workerman/internal/websocket"
	"github.com/workerman-go/workerman/protocol"
)

// SendMessages sends msgs, each a message of type typ, in order, with one
// write where it can: on an established WebSocket their frames are built
// into one buffer and written (or queued) together, so that a burst of
// small messages for one client (a replay of missed pushes) costs one
// system call instead of one each. It is safe from any goroutine, never
// blocks and does not keep msgs.
//
// The batch has Send's semantics as one message: nil when it was written
// or queued; ErrSendBufferFull when the send buffer cannot take it all
// (none of it is sent, OnError is called, and a connection set to
// CloseWhenBufferFull closes); ErrClosed once the connection is closing;
// ErrInvalidUTF8 when a text message is not valid UTF-8 (none is sent,
// OnError is called). typ is protocol.TextMessage, protocol.BinaryMessage
// or protocol.DataMessage (the connection's WebSocket type). The frames
// are not compressed (permessage-deflate allows that). On other codecs,
// and on a WebSocket before its handshake completed, the messages are
// sent one by one as SendMessage sends them, stopping at the first error.
func (c *Connection) SendMessages(typ protocol.MessageType, msgs [][]byte) error {
	if len(msgs) == 0 {
		return nil
	}
	c.sendMu.Lock()
	t := c.wsType
	if t == 0 || (typ != protocol.TextMessage && typ != protocol.BinaryMessage && typ != protocol.DataMessage) {
		c.sendMu.Unlock()
		for _, m := range msgs {
			if err := c.SendMessage(typ, m); err != nil {
				return err
			}
		}
		return nil
	}
	defer c.sendMu.Unlock()
	if typ == protocol.DataMessage {
		typ = t
	}
	size := 0
	for _, m := range msgs {
		if typ == protocol.TextMessage && !utf8.Valid(m) {
			c.side().Report(ErrInvalidUTF8)
			return ErrInvalidUTF8
		}
		size += len(m) + 10 // a server frame's header is at most 10 bytes
	}
	if c.closing.Load() {
		return ErrClosed
	}
	buf := bufpool.Get(size)
	defer bufpool.Put(buf) // the engine copies what it queues
	out := (*buf)[:0]
	for _, m := range msgs {
		var err error
		if out, err = websocket.ServerFrame(out, protocol.Message{Type: typ, Data: m}); err != nil {
			return err
		}
	}
	*buf = out
	if err := c.writeBytes(out, true, false); err != nil {
		return err
	}
	c.sent.Add(uint64(len(msgs) - 1)) // writeBytes counted one
	return nil
}
