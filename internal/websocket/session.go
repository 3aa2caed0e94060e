package websocket

import (
	"fmt"
	"time"

	"github.com/workerman-go/workerman/internal/proto"
	"github.com/workerman-go/workerman/protocol"
)

// The session: the WebSocket life of a connection, driven by the
// connection through proto.Session.

var _ proto.Session = (*Codec)(nil)

// Accepted starts the handshake's clock; a client sends its handshake.
func (c *Codec) Accepted(conn proto.Conn) {
	c.Start(time.Now().UnixNano())
	if c.isClient() {
		conn.LockSend()
		conn.Write(c.HandshakeRequest(), false)
		conn.UnlockSend()
	}
}

// Handle delivers data messages and answers the others: the handshake
// (the 101, then what was sent before it), pings (with a pong unless
// OnPing is set), pongs, and the peer's close frame (answered with the
// same code, RFC 6455 section 5.5.1).
func (c *Codec) Handle(conn proto.Conn, m protocol.Message) {
	cfg := c.cfg
	switch m.Type {
	case protocol.TextMessage, protocol.BinaryMessage:
		conn.Deliver(m)
	case protocol.HandshakeMessage:
		c.complete(conn, m)
	case protocol.PingMessage:
		if cfg.OnPing != nil {
			conn.Call("OnWebSocketPing", func() { cfg.OnPing(conn, m.Data) })
			return
		}
		conn.Send(protocol.Message{Type: protocol.PongMessage, Data: m.Data})
	case protocol.PongMessage:
		if cfg.OnPong != nil {
			conn.Call("OnWebSocketPong", func() { cfg.OnPong(conn, m.Data) })
		}
	case protocol.CloseMessage:
		if cfg.OnClose != nil {
			code, reason := protocol.ParseClosePayload(m.Data)
			conn.Call("OnWebSocketClose", func() { cfg.OnClose(conn, code, reason) })
		}
		closeWith(conn, m.Data)
	}
}

// complete completes the handshake: the 101 (on a server), then what
// was sent before it, then OnConnected.
func (c *Codec) complete(conn proto.Conn, m protocol.Message) {
	conn.LockSend()
	if conn.Closing() {
		conn.UnlockSend()
		return
	}
	pending := c.markEstablished()
	conn.WebSocketEstablished(c.defaultType)
	err := conn.Write(append(m.Data, pending...), false)
	conn.UnlockSend()
	if err != nil {
		return
	}
	if f := c.cfg.OnConnected; f != nil {
		conn.Call("OnWebSocketConnected", func() { f(conn, m.Value) })
	}
	if !c.cfg.KeepRequest {
		c.request.Store(nil) // so that an idle connection does not keep its bytes
	}
}

// Send frames m. Before the handshake completed the frame is held, as
// Workerman does, and written right after the 101.
func (c *Codec) Send(conn proto.Conn, m protocol.Message, drop bool) error {
	if m.Type == protocol.CloseMessage {
		// The one close sequence, so that one close frame goes out and
		// nothing after it.
		if len(m.Data) > 125 {
			err := fmt.Errorf("websocket: control frame payload of %d bytes (max 125)", len(m.Data))
			conn.Report(err)
			return err
		}
		conn.Close(m.Data)
		return nil
	}
	if !c.established.Load() {
		frame, err := c.Encode(conn, nil, m)
		if err != nil {
			conn.Report(err)
			return err
		}
		if drop && c.heldBytes()+len(frame) > conn.MaxSendBufferSize() {
			conn.Report(protocol.ErrSendBufferFull)
			return protocol.ErrSendBufferFull
		}
		c.hold(frame)
		return nil
	}
	return proto.WriteEncoded(conn, c, conn, m, drop)
}

// Closing sends the close frame: closeFrame when given, else 1000, or 1001
// when the worker is stopping. The connection's close sequence runs once,
// so exactly one close frame goes out (RFC 6455 section 5.5.1), and only
// after the handshake.
func (c *Codec) Closing(conn proto.Conn, closeFrame []byte) {
	if !c.established.Load() {
		return
	}
	if closeFrame == nil {
		code := protocol.CloseNormal
		if conn.Stopping() {
			code = protocol.CloseGoingAway
		}
		closeFrame = protocol.ClosePayload(code, "")
	}
	proto.WriteEncoded(conn, c, conn, protocol.Message{Type: protocol.CloseMessage, Data: closeFrame}, false)
}

// Fail answers bad input: a close frame with the code that fits the error
// after the handshake, an HTTP error during a server's handshake.
func (c *Codec) Fail(conn proto.Conn, err error) {
	if c.established.Load() {
		closeWith(conn, protocol.ClosePayload(protocol.CloseCode(err), ""))
		return
	}
	conn.LockSend()
	defer conn.UnlockSend()
	if conn.Closing() {
		return
	}
	if resp := c.errorResponse(err); len(resp) > 0 {
		conn.Write(resp, false)
	}
	conn.Close(nil)
}

// EOF closes: a peer that stopped sending cannot complete a closing
// handshake.
func (c *Codec) EOF(conn proto.Conn) { closeWith(conn, nil) }

// Drained has nothing to do.
func (c *Codec) Drained(proto.Conn) {}

// Closed releases the buffers.
func (c *Codec) Closed(proto.Conn) { c.release() }

// Due reports whether a deadline passed: the handshake's, or the next
// heartbeat's.
func (c *Codec) Due(_ proto.Conn, now int64) bool {
	if !c.established.Load() {
		return now-c.started.Load() >= int64(c.cfg.HandshakeTimeout)
	}
	iv := int64(c.cfg.PingInterval)
	return iv > 0 && now-max(c.pinged.Load(), c.started.Load()) >= iv
}

// Tick ends a handshake that took too long (408 on a server), closes a
// peer silent for PingNotResponseLimit intervals (1001) and sends the
// heartbeat.
func (c *Codec) Tick(conn proto.Conn, now int64) {
	if !c.established.Load() {
		conn.LockSend()
		if c.established.Load() {
			conn.UnlockSend() // completed meanwhile (under this lock)
			return
		}
		conn.Report(protocol.ErrHandshakeTimeout)
		if !c.isClient() && !conn.Closing() {
			conn.Write([]byte("HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"), false)
		}
		conn.Close(nil)
		conn.UnlockSend()
		return
	}
	iv := c.cfg.PingInterval
	if lim := c.cfg.PingNotResponseLimit; lim > 0 && conn.IdleFor(now) >= time.Duration(lim)*iv {
		conn.Report(protocol.ErrHeartbeatTimeout)
		closeWith(conn, protocol.ClosePayload(protocol.CloseGoingAway, "heartbeat timeout"))
		return
	}
	c.pinged.Store(now)
	if c.cfg.PingData != nil {
		conn.Send(protocol.Message{Data: c.cfg.PingData})
	} else {
		conn.Send(protocol.Message{Type: protocol.PingMessage})
	}
}

// Timeout closes an idle connection with 1001.
func (c *Codec) Timeout(conn proto.Conn) {
	closeWith(conn, protocol.ClosePayload(protocol.CloseGoingAway, "idle timeout"))
}

// closeWith runs the connection's close sequence with a close frame.
func closeWith(conn proto.Conn, closeFrame []byte) {
	conn.LockSend()
	conn.Close(closeFrame)
	conn.UnlockSend()
}
