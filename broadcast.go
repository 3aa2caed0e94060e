package workerman

import (
	"errors"
	"runtime"
	"sync"
	"sync/atomic"
	"unicode/utf8"

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
	typ := protocol.DataMessage
	if _, ok := w.ep.proto.(*websocket.Protocol); ok {
		typ = protocol.TextMessage
		if w.WebSocket.BinaryType {
			typ = protocol.BinaryMessage
		}
	}
	m, err := prepare(typ, data)
	if err != nil {
		return 0 // text that is not UTF-8: no frame to send anyone
	}
	// Send from a snapshot: the loops must not wait on the instance lock
	// (they take it to add and remove connections) for a whole broadcast.
	return Multicast(r.connections(), m, exclude...)
}

// PreparedMessage is a message encoded once and sent to many connections
// (gorilla/websocket's PreparedMessage): on WebSocket its frame is built
// once, so sending it to 10,000 connections costs 10,000 writes and no
// encoding or allocation per connection. Connections of other codecs, and
// WebSocket connections whose handshake is not complete, encode it as
// SendMessage would. A connection that cannot write the frame at once (a
// slow reader) queues a reference to it, not a copy: slow readers of one
// broadcast hold its frame once between them. A PreparedMessage is
// immutable and safe to share between goroutines.
type PreparedMessage struct {
	typ  protocol.MessageType
	data []byte

	once  [2]sync.Once
	frame [2][]byte // WebSocket server frames: text, binary
}

// NewPreparedMessage prepares data as a message of type typ:
// protocol.TextMessage (data must be valid UTF-8: ErrInvalidUTF8
// otherwise), protocol.BinaryMessage, or protocol.DataMessage (WebSocket
// connections send it in their own type, see SetWebSocketType). It copies
// data: the caller may reuse it.
func NewPreparedMessage(typ protocol.MessageType, data []byte) (*PreparedMessage, error) {
	return prepare(typ, append([]byte(nil), data...))
}

// prepare is NewPreparedMessage without the copy, for callers that do not
// keep the message past their own call.
func prepare(typ protocol.MessageType, data []byte) (*PreparedMessage, error) {
	switch typ {
	case protocol.TextMessage:
		if !utf8.Valid(data) {
			return nil, ErrInvalidUTF8
		}
	case protocol.BinaryMessage, protocol.DataMessage:
	default:
		return nil, errors.New("workerman: a prepared message is text, binary or data")
	}
	return &PreparedMessage{typ: typ, data: data}, nil
}

// Type is the message's type, as given to NewPreparedMessage.
func (m *PreparedMessage) Type() protocol.MessageType { return m.typ }

// Data is the message's payload. It must not be modified.
func (m *PreparedMessage) Data() []byte { return m.data }

// wsFrame is the message's WebSocket server frame in type typ (text or
// binary), built on first use; nil for text that is not valid UTF-8.
func (m *PreparedMessage) wsFrame(typ protocol.MessageType) []byte {
	i := 0
	if typ == protocol.BinaryMessage {
		i = 1
	}
	m.once[i].Do(func() {
		if typ == protocol.TextMessage && m.typ == protocol.DataMessage && !utf8.Valid(m.data) {
			return
		}
		f, err := websocket.ServerFrame(nil, protocol.Message{Type: typ, Data: m.data})
		if err == nil {
			m.frame[i] = f
		}
	})
	return m.frame[i]
}

// SendPrepared sends a prepared message, with the semantics of Send: it
// never blocks, a full send buffer drops it (ErrSendBufferFull, reported
// through OnError), and it returns ErrClosed once the connection is
// closing. A DataMessage goes out in the connection's WebSocket type; one
// that is not valid UTF-8 on a text connection is refused with
// ErrInvalidUTF8, as Send refuses it.
func (c *Connection) SendPrepared(m *PreparedMessage) error {
	// An established WebSocket's type is kept on the connection: a push
	// to 10,000 of them touches no session (two objects fewer in the
	// cache per connection).
	c.sendMu.Lock()
	if t := c.wsType; t != 0 {
		typ := m.typ
		if typ == protocol.DataMessage {
			typ = t
		}
		if f := m.wsFrame(typ); f != nil {
			err := ErrClosed
			if !c.closing.Load() {
				err = c.writeBytes(f, true, true) // a slow reader queues a reference, not a copy
			}
			c.sendMu.Unlock()
			return err
		}
	}
	c.sendMu.Unlock()
	return c.SendMessage(m.typ, m.data)
}

// Multicast sends m to every connection in conns except those in exclude,
// and returns how many took it (GatewayWorker's sendToGroup on the
// connections a program keeps in its own groups). The connections may
// belong to any workers. It is safe from any goroutine and never blocks;
// each connection keeps Send's buffer semantics. It returns once every
// connection's copy was written to the kernel or queued, so the messages of
// two Multicast calls made one after the other reach each connection in
// that order.
//
// A long list (more than multicastSerialMax connections) is written by up
// to GOMAXPROCS goroutines, each taking multicastChunk connections at a
// time: on loopback or a fast network each write runs much of the TCP
// path in the writer's thread, and one goroutine would leave the other
// cores idle while the last receivers wait. A short list is written by
// the caller alone, without allocating.
func Multicast(conns []*Connection, m *PreparedMessage, exclude ...*Connection) int {
	workers := min(runtime.GOMAXPROCS(0), (len(conns)+multicastChunk-1)/multicastChunk)
	if len(conns) <= multicastSerialMax || workers < 2 {
		return multicastRange(conns, m, exclude)
	}
	// The copy keeps exclude itself from escaping: a short call's
	// variadic list stays on the caller's stack.
	f := &fanOut{conns: conns, m: m, exclude: append([]*Connection(nil), exclude...)}
	f.wg.Add(workers - 1)
	for range workers - 1 {
		go func() {
			defer f.wg.Done()
			f.work()
		}()
	}
	f.work()
	f.wg.Wait()
	return int(f.taken.Load())
}

const (
	// multicastSerialMax is the longest list Multicast writes from the
	// calling goroutine alone.
	multicastSerialMax = 256
	// multicastChunk is how many connections a writer of a long list takes
	// at a time: small enough that a writer the scheduler delays holds up
	// little, large enough that the shared counter is not contended.
	multicastChunk = 64
)

// fanOut is one Multicast to a long list, shared by its writers.
type fanOut struct {
	conns   []*Connection
	m       *PreparedMessage
	exclude []*Connection
	next    atomic.Int64 // index of the next chunk's first connection
	taken   atomic.Int64
	wg      sync.WaitGroup
}

// work writes chunks until none is left.
func (f *fanOut) work() {
	n := 0
	for {
		i := int(f.next.Add(multicastChunk)) - multicastChunk
		if i >= len(f.conns) {
			break
		}
		n += multicastRange(f.conns[i:min(i+multicastChunk, len(f.conns))], f.m, f.exclude)
	}
	f.taken.Add(int64(n))
}

// multicastRange sends m to conns in order, and returns how many took it.
func multicastRange(conns []*Connection, m *PreparedMessage, exclude []*Connection) int {
	n := 0
	for _, c := range conns {
		if excluded(c, exclude) {
			continue
		}
		if c.SendPrepared(m) == nil {
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
