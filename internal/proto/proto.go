// Package proto is the boundary between a connection and a protocol that
// has a life of its own beyond framing: WebSocket (the handshake, control
// frames, the closing handshake, heartbeats) and HTTP (keep-alive,
// pipelining, file responses, the upgrade to WebSocket).
//
// The protocol's per-connection codec implements Session; the root
// package's connection implements Conn. Everything else about a protocol
// (its state, its framing) stays unexported in its own package, and the
// send path goes one way: the user's call, Session.Send (which encodes),
// Conn.Write (the engine's write with the buffer rules).
package proto

import (
	"time"

	"github.com/workerman-go/workerman/internal/bufpool"
	"github.com/workerman-go/workerman/protocol"
)

// Conn is the connection a Session drives. The send lock (LockSend) orders
// encoders and writers; the methods marked "locked" need it held.
type Conn interface {
	protocol.Conn
	// MaxSendBufferSize and Queued: the send buffer's limit and fill.
	MaxSendBufferSize() int
	Queued() int

	LockSend()
	UnlockSend()
	// Closing reports that the close sequence began (locked or not).
	Closing() bool
	// Write writes bytes as they are with Workerman's buffer rules; with
	// drop false a full buffer queues anyway. Locked.
	Write(b []byte, drop bool) error
	// Close runs the connection's close sequence once: Session.Closing with
	// closeFrame, then the socket closes when what is queued is written.
	// Locked.
	Close(closeFrame []byte)
	// Send sends m through the connection's send path (it takes the lock).
	Send(m protocol.Message) error

	// Deliver hands an application message to OnMessage (callback
	// goroutine).
	Deliver(m protocol.Message)
	// Call runs user code (a callback) with the connection's panic rules.
	Call(name string, fn func())
	// Report hands err to OnError, in order with the other callbacks.
	Report(err error)
	// Later runs fn on the connection's callback goroutine, in order.
	Later(fn func())

	// WebSocketEstablished records that a WebSocket handshake completed,
	// with the type Send uses, so that a prepared message to many
	// connections goes to this one without asking its session. Locked.
	WebSocketEstablished(defaultType protocol.MessageType)

	// Stopping reports that the connection's worker is stopping.
	Stopping() bool
	// IdleFor is how long nothing was received, as of now (unix ns).
	IdleFor(now int64) time.Duration
}

// Session is the connection-side life of a protocol; its codec implements
// it. The callback goroutine is the one that runs the connection's
// callbacks, one job at a time.
type Session interface {
	protocol.Codec
	// Accepted runs once when the connection is created, before any input.
	Accepted(c Conn)
	// Handle takes every decoded message (callback goroutine): data goes
	// on to Conn.Deliver (or, for an HTTP request, to OnRequest); the rest
	// (a handshake, a control frame) is the protocol's own business.
	Handle(c Conn, m protocol.Message)
	// Send encodes m and writes it (Conn.Write). Locked.
	Send(c Conn, m protocol.Message, drop bool) error
	// Closing runs in the close sequence, before the socket closes: the
	// protocol's goodbye, closeFrame or its default. Locked.
	Closing(c Conn, closeFrame []byte)
	// Fail answers bad input (an HTTP status, a close frame) and closes
	// the connection: callback goroutine.
	Fail(c Conn, err error)
	// EOF: the peer sent all it will send (callback goroutine).
	EOF(c Conn)
	// Drained: the send buffer emptied. It runs on the event loop (or the
	// connection's writer): it must not block; Conn.Later moves work to
	// the callback goroutine.
	Drained(c Conn)
	// Closed: the socket is closed; release what the session holds
	// (callback goroutine, before OnClose).
	Closed(c Conn)
	// Due reports, cheaply, whether Tick has work now (ticker goroutine).
	Due(c Conn, now int64) bool
	// Tick checks the protocol's deadlines (ticker goroutine).
	Tick(c Conn, now int64)
	// Timeout ends a connection that was idle for too long (ticker
	// goroutine).
	Timeout(c Conn)
}

// Periodic is implemented by protocols whose sessions have deadlines:
// Period is the shortest, which the connection's ticker must check.
type Periodic interface {
	Period() time.Duration
}

// WebSocket is what the connection asks of a WebSocket session (also of an
// HTTP session upgraded to WebSocket).
type WebSocket interface {
	// Established reports whether the handshake completed.
	Established() bool
	// Request is the server's handshake while it is kept.
	Request() *protocol.WebSocketRequest
	// SetDefaultType sets the type of data messages: TextMessage or
	// BinaryMessage. Locked.
	SetDefaultType(t protocol.MessageType)
	// DefaultType is the type of data messages. Locked.
	DefaultType() protocol.MessageType
}

// Upgradable is implemented by sessions that may carry a WebSocket:
// WebSocket returns it, or nil.
type Upgradable interface {
	WebSocket() WebSocket
}

// WriteEncoded encodes m with codec (which sees its connection as cc)
// into a pooled buffer and writes it to c (Conn.Write; the caller holds
// the send lock). A message the codec refuses (text that is not UTF-8, a
// control frame over 125 bytes) is sent to nobody: the error is returned
// and reported through OnError.
func WriteEncoded(c Conn, codec protocol.Codec, cc protocol.Conn, m protocol.Message, drop bool) error {
	scratch := bufpool.Get(len(m.Data) + 16)
	defer bufpool.Put(scratch) // the engine copied what it queued
	out, err := codec.Encode(cc, (*scratch)[:0], m)
	if err != nil {
		c.Report(err)
		return err
	}
	if len(out) == 0 {
		return nil
	}
	return c.Write(out, drop)
}
