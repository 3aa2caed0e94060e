package workerman

import (
	"errors"
	"net/http"
	"time"

	"github.com/workerman-go/workerman/protocol"
)

// WebSocketRequest is the opening handshake given to OnWebSocketConnect and
// OnWebSocketConnected.
type WebSocketRequest = protocol.WebSocketRequest

// RejectWebSocket returns the error OnWebSocketConnect returns to refuse a
// handshake with an HTTP status (401, 403, ...) instead of the 101.
func RejectWebSocket(status int, reason string) error {
	return protocol.Reject(status, reason)
}

// CloseError carries the close code of a failed WebSocket connection
// (1002, 1007, 1009, ...), as reported through OnError.
type CloseError = protocol.CloseError

// HandshakeError is a refused or malformed opening handshake.
type HandshakeError = protocol.HandshakeError

var (
	// ErrHandshakeTimeout: the opening handshake did not complete within
	// WebSocketOptions.HandshakeTimeout.
	ErrHandshakeTimeout = errors.New("workerman: websocket handshake timed out")
	// ErrHeartbeatTimeout: the peer stayed silent for PingNotResponseLimit
	// ping intervals.
	ErrHeartbeatTimeout = errors.New("workerman: websocket peer did not answer heartbeats")
)

// WebSocketOptions configures a websocket:// worker. The zero value works.
type WebSocketOptions struct {
	// NoCompression turns permessage-deflate off. By default it is
	// negotiated when the client offers it (browsers do), without context
	// takeover, so idle connections keep no compressor.
	NoCompression bool
	// CompressionThreshold: shorter messages go uncompressed. Default 128.
	CompressionThreshold int
	// MaxHandshakeSize bounds the opening handshake; default 16 KiB.
	MaxHandshakeSize int
	// HandshakeTimeout closes connections that have not completed the
	// handshake in time (slow or silent peers). Default 10 s.
	HandshakeTimeout time.Duration
	// BinaryType makes Send send binary messages instead of text
	// (Workerman's websocketType); per connection with SetWebSocketType, per
	// message with SendMessage.
	BinaryType bool

	// PingInterval sends a heartbeat every interval (GatewayWorker's
	// pingInterval): a ping frame, or PingData as a message when set.
	PingInterval time.Duration
	// PingNotResponseLimit closes a connection that sent nothing (not even a
	// pong) for this many intervals (GatewayWorker's pingNotResponseLimit).
	// 0 never closes.
	PingNotResponseLimit int
	// PingData, when set, is sent as an application message instead of a
	// ping frame, for clients that answer heartbeats themselves.
	PingData []byte

	// Path, on an http:// worker, accepts WebSocket upgrades for this path
	// on the same port ("/ws"): one address for a page and its socket.
	// Their messages go to OnMessage, requests to OnRequest.
	Path string

	// KeepRequest keeps the handshake for Connection.WebSocketRequest for
	// the connection's whole life. By default it is dropped once
	// OnWebSocketConnected returned, so that idle connections stay small:
	// keep what you need from it with SetValue.
	KeepRequest bool
}

// wsHooks is the WebSocket life of a connection: handshake completion,
// control frames, the closing handshake, heartbeats and timeouts.
type wsHooks struct {
	cfg         protocol.WebSocketConfig
	opt         WebSocketOptions
	handshakeTO time.Duration
	onConnected func(*Connection, any) // server: *WebSocketRequest; client: *WebSocketResponse
	onPing      func(*Connection, []byte)
	onPong      func(*Connection, []byte)
	onClose     func(*Connection, int, string)
}

func newWebSocketEndpoint(ep *endpoint, w *Worker) {
	opt := w.WebSocket
	h := &wsHooks{
		opt:         opt,
		handshakeTO: opt.HandshakeTimeout,
		onPing:      w.OnWebSocketPing,
		onPong:      w.OnWebSocketPong,
		onClose:     w.OnWebSocketClose,
	}
	if f := w.OnWebSocketConnected; f != nil {
		h.onConnected = func(c *Connection, v any) {
			r, _ := v.(*WebSocketRequest)
			f(c, r)
		}
	}
	if h.handshakeTO <= 0 {
		h.handshakeTO = 10 * time.Second
	}
	onConnect := w.OnWebSocketConnect
	h.cfg = protocol.WebSocketConfig{
		MaxHandshakeSize:     opt.MaxHandshakeSize,
		Compression:          !opt.NoCompression,
		CompressionThreshold: opt.CompressionThreshold,
		OnRequest: func(pc protocol.Conn, r *protocol.WebSocketRequest) error {
			if onConnect == nil {
				return nil
			}
			c := pc.(*Connection)
			err := errPanicked
			c.call("OnWebSocketConnect", func() { err = onConnect(c, r) })
			if err == errPanicked {
				return protocol.Reject(http.StatusInternalServerError, "")
			}
			return err
		},
	}
	ep.proto = protocol.WebSocket(h.cfg)
	ep.hooks = h
}

var errPanicked = errors.New("panicked")

func wsCodec(c *Connection) *protocol.WebSocketCodec {
	switch cc := c.codec.(type) {
	case *protocol.WebSocketCodec:
		return cc
	case *protocol.HTTPCodec:
		return cc.WebSocket() // nil unless upgraded
	}
	return nil
}

func (h *wsHooks) accepted(c *Connection) {
	wc := wsCodec(c)
	if h.opt.BinaryType {
		wc.SetDefaultType(protocol.BinaryMessage)
	}
	wc.Started.Store(time.Now().UnixNano())
}

func (h *wsHooks) onMessage(c *Connection, m protocol.Message) {
	plainHooks{}.onMessage(c, m)
}

func (h *wsHooks) onControl(c *Connection, m protocol.Message) {
	switch m.Type {
	case protocol.HandshakeMessage:
		h.established(c, m)
	case protocol.PingMessage:
		if h.onPing != nil {
			c.call("OnWebSocketPing", func() { h.onPing(c, m.Data) })
			return
		}
		c.SendMessage(protocol.PongMessage, m.Data)
	case protocol.PongMessage:
		if h.onPong != nil {
			c.call("OnWebSocketPong", func() { h.onPong(c, m.Data) })
		}
	case protocol.CloseMessage:
		code, reason := protocol.ParseClosePayload(m.Data)
		if h.onClose != nil {
			c.call("OnWebSocketClose", func() { h.onClose(c, code, reason) })
		}
		// Answer the closing handshake, echoing the code (RFC 6455 5.5.1).
		c.closeWebSocket(m.Data)
	}
}

// established sends the 101, then whatever was sent before it, and runs
// OnWebSocketConnected.
func (h *wsHooks) established(c *Connection, m protocol.Message) {
	c.sendMu.Lock()
	if c.closing.Load() {
		c.sendMu.Unlock()
		return
	}
	pending := wsCodec(c).MarkEstablished()
	err := c.writeLimited(protocol.Message{Data: append(m.Data, pending...)}, true, false)
	c.sendMu.Unlock()
	if err != nil {
		return
	}
	if h.onConnected != nil {
		c.call("OnWebSocketConnected", func() { h.onConnected(c, m.Value) })
	}
	if !h.opt.KeepRequest {
		wsCodec(c).ForgetRequest()
	}
}

func (h *wsHooks) onEOF(c *Connection) { c.Close() }

func (h *wsHooks) onClosed(*Connection, error) {}

// send holds messages sent before the handshake completed, as Workerman
// does, and refuses data after a close frame went out.
func (h *wsHooks) send(c *Connection, m protocol.Message, raw, drop bool) error {
	wc := wsCodec(c)
	if raw || wc.Established() {
		return c.writeLimited(m, raw, drop)
	}
	frame, err := c.encode(nil, m)
	if err != nil {
		return err
	}
	wc.Hold(frame)
	return nil
}

// closing sends the close frame before the socket closes: closeFrame when
// given, else 1000, or 1001 when the worker is stopping. It runs in the
// close sequence (Connection.closeLocked), which every path that ends a
// connection goes through once: so exactly one close frame goes out (RFC
// 6455 section 5.5.1), and only after the handshake. The caller holds
// sendMu.
func (h *wsHooks) closing(c *Connection, closeFrame []byte) {
	if !wsCodec(c).Established() {
		return
	}
	if closeFrame == nil {
		code := protocol.CloseNormal
		if c.ep.r.isClosing() {
			code = protocol.CloseGoingAway
		}
		closeFrame = protocol.ClosePayload(code, "")
	}
	c.writeLimited(protocol.Message{Type: protocol.CloseMessage, Data: closeFrame}, false, false)
}

func (h *wsHooks) period() time.Duration {
	d := h.handshakeTO
	if p := h.opt.PingInterval; p > 0 && p < d {
		d = p
	}
	return d
}

func (h *wsHooks) due(c *Connection, now int64) bool {
	wc := wsCodec(c)
	if !wc.Established() {
		return now-wc.Started.Load() >= int64(h.handshakeTO)
	}
	iv := int64(h.opt.PingInterval)
	return iv > 0 && now-max(wc.Pinged.Load(), wc.Started.Load()) >= iv
}

func (h *wsHooks) tick(c *Connection, now int64) {
	wc := wsCodec(c)
	if !wc.Established() {
		c.post(jobError, ErrHandshakeTimeout)
		if !wc.IsClient() {
			c.SendRaw([]byte("HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"))
		}
		c.Close()
		return
	}
	iv := int64(h.opt.PingInterval)
	if lim := h.opt.PingNotResponseLimit; lim > 0 && c.idleFor(now) >= time.Duration(int64(lim)*iv) {
		c.post(jobError, ErrHeartbeatTimeout)
		c.CloseWebSocket(protocol.CloseGoingAway, "heartbeat timeout")
		return
	}
	wc.Pinged.Store(now)
	if h.opt.PingData != nil {
		c.Send(h.opt.PingData)
	} else {
		c.SendMessage(protocol.PingMessage, nil)
	}
}

func (h *wsHooks) timeout(c *Connection, err error) {
	c.CloseWebSocket(protocol.CloseGoingAway, "idle timeout")
}

// closeWebSocket sends a close frame with payload (if the handshake is done
// and none was sent), then closes the connection.
func (c *Connection) closeWebSocket(payload []byte) error {
	c.sendMu.Lock()
	defer c.sendMu.Unlock()
	c.closeLocked(payload)
	return nil
}

// CloseWebSocket closes a WebSocket connection with a close code (1000 for a
// normal closure, 4000–4999 for your application's own) and a reason of at
// most 123 bytes. Close sends 1000 (1001 while the worker stops). On other
// protocols it is Close.
func (c *Connection) CloseWebSocket(code int, reason string) error {
	if wsCodec(c) == nil {
		return c.Close()
	}
	return c.closeWebSocket(protocol.ClosePayload(code, reason))
}

// SetWebSocketType sets the type Send uses on this WebSocket connection:
// protocol.TextMessage (default) or protocol.BinaryMessage (Workerman's
// $connection->websocketType).
func (c *Connection) SetWebSocketType(t protocol.MessageType) {
	if wc := wsCodec(c); wc != nil {
		c.sendMu.Lock()
		wc.SetDefaultType(t)
		c.sendMu.Unlock()
	}
}

// WebSocketRequest is the opening handshake of a WebSocket connection: nil
// before it completed, for other protocols, and after OnWebSocketConnected
// unless WebSocketOptions.KeepRequest is set.
func (c *Connection) WebSocketRequest() *WebSocketRequest {
	if wc := wsCodec(c); wc != nil && wc.Established() {
		return wc.Request()
	}
	return nil
}
