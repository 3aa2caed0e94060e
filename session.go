package workerman

import (
	"time"

	"github.com/workerman-go/workerman/internal/proto"
	"github.com/workerman-go/workerman/protocol"
)

// The protocols with a life of their own (WebSocket, HTTP) live in
// internal/websocket and internal/http1: their codec is a proto.Session,
// which drives the connection through protoSide, the connection as
// proto.Conn. Plain codecs (tcp, text, frame, your own) have no session:
// the connection does what they need itself.

// protoSide is a Connection as a protocol session sees it. It is a
// separate, unexported type so that these methods are not part of
// Connection's API.
type protoSide Connection

var _ proto.Conn = (*protoSide)(nil)

// side is c as the protocol session's connection.
func (c *Connection) side() *protoSide { return (*protoSide)(c) }

// session is c's protocol session, or nil for a plain codec.
func (c *Connection) session() proto.Session {
	s, _ := c.codec.(proto.Session)
	return s
}

// webSocket is the WebSocket session of c (also of an HTTP connection
// upgraded to WebSocket), or nil.
func (c *Connection) webSocket() proto.WebSocket {
	if u, ok := c.codec.(proto.Upgradable); ok {
		return u.WebSocket()
	}
	return nil
}

// connOf is the Connection behind a session's connection, for the user's
// callbacks.
func connOf(pc proto.Conn) *Connection { return (*Connection)(pc.(*protoSide)) }

func (p *protoSide) c() *Connection { return (*Connection)(p) }

func (p *protoSide) MaxPackageSize() int    { return p.c().MaxPackageSize() }
func (p *protoSide) MaxSendBufferSize() int { return p.c().MaxSendBufferSize() }
func (p *protoSide) Queued() int            { return p.tc.Queued() }
func (p *protoSide) LockSend()              { p.sendMu.Lock() }
func (p *protoSide) UnlockSend()            { p.sendMu.Unlock() }
func (p *protoSide) Closing() bool          { return p.closing.Load() }

func (p *protoSide) Write(b []byte, drop bool) error { return p.c().write(b, drop) }
func (p *protoSide) Close(closeFrame []byte)         { p.c().closeLocked(closeFrame) }
func (p *protoSide) Send(m protocol.Message) error   { return p.c().send(m, false) }
func (p *protoSide) Deliver(m protocol.Message)      { p.c().deliver(m) }
func (p *protoSide) Call(name string, fn func())     { p.c().call(name, fn) }
func (p *protoSide) Report(err error)                { p.c().post(jobError, err) }

func (p *protoSide) Later(fn func()) {
	j := newJob(jobCallback)
	j.fn = func(*Connection) { fn() }
	p.c().enqueue(j)
}

func (p *protoSide) Stopping() bool { return p.ep.r.isClosing() }

func (p *protoSide) WebSocketEstablished(t protocol.MessageType) { p.wsType = frameType(t) }

// frameType is the frame type a WebSocket's Send type (text unless binary;
// the codec's zero value means text) sends data in.
func frameType(t protocol.MessageType) protocol.MessageType {
	if t == protocol.BinaryMessage {
		return t
	}
	return protocol.TextMessage
}
func (p *protoSide) IdleFor(now int64) time.Duration { return p.c().idleFor(now) }
