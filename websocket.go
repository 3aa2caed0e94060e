package workerman

import (
	"time"

	"github.com/workerman-go/workerman/internal/proto"
	"github.com/workerman-go/workerman/internal/websocket"
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
	ErrHandshakeTimeout = protocol.ErrHandshakeTimeout
	// ErrHeartbeatTimeout: the peer stayed silent for PingNotResponseLimit
	// ping intervals.
	ErrHeartbeatTimeout = protocol.ErrHeartbeatTimeout
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

// webSocketConfig is the WebSocket protocol's configuration for a server
// worker or a client: the options, and the user's callbacks bound to the
// connection (or AsyncConnection) they are given.
func webSocketConfig(opt WebSocketOptions, cb wsCallbacks) websocket.Config {
	cfg := websocket.Config{
		MaxHandshakeSize:     opt.MaxHandshakeSize,
		Compression:          !opt.NoCompression,
		CompressionThreshold: opt.CompressionThreshold,
		HandshakeTimeout:     opt.HandshakeTimeout,
		BinaryType:           opt.BinaryType,
		PingInterval:         opt.PingInterval,
		PingNotResponseLimit: opt.PingNotResponseLimit,
		PingData:             opt.PingData,
		KeepRequest:          opt.KeepRequest,
	}
	if f := cb.request; f != nil {
		cfg.OnRequest = func(c proto.Conn, r *WebSocketRequest) error { return f(connOf(c), r) }
	}
	if f := cb.connected; f != nil {
		cfg.OnConnected = func(c proto.Conn, v any) { f(connOf(c), v) }
	}
	if f := cb.ping; f != nil {
		cfg.OnPing = func(c proto.Conn, d []byte) { f(connOf(c), d) }
	}
	if f := cb.pong; f != nil {
		cfg.OnPong = func(c proto.Conn, d []byte) { f(connOf(c), d) }
	}
	if f := cb.close; f != nil {
		cfg.OnClose = func(c proto.Conn, code int, reason string) { f(connOf(c), code, reason) }
	}
	return cfg
}

// wsCallbacks are the WebSocket callbacks of a Worker or an
// AsyncConnection, on the connection.
type wsCallbacks struct {
	request   func(*Connection, *WebSocketRequest) error
	connected func(*Connection, any) // *WebSocketRequest or *WebSocketResponse
	ping      func(*Connection, []byte)
	pong      func(*Connection, []byte)
	close     func(*Connection, int, string)
}

// serverWebSocket is a websocket:// worker's protocol (also of the upgrade
// path of an http:// worker).
func serverWebSocket(w *Worker) *websocket.Protocol {
	cb := wsCallbacks{request: w.OnWebSocketConnect, ping: w.OnWebSocketPing, pong: w.OnWebSocketPong, close: w.OnWebSocketClose}
	if f := w.OnWebSocketConnected; f != nil {
		cb.connected = func(c *Connection, v any) {
			r, _ := v.(*WebSocketRequest)
			f(c, r)
		}
	}
	return websocket.Server(webSocketConfig(w.WebSocket, cb))
}

// CloseWebSocket closes a WebSocket connection with a close code (1000 for a
// normal closure, 4000–4999 for your application's own) and a reason of at
// most 123 bytes. Close sends 1000 (1001 while the worker stops). On other
// protocols it is Close.
func (c *Connection) CloseWebSocket(code int, reason string) error {
	if c.webSocket() == nil {
		return c.Close()
	}
	c.sendMu.Lock()
	defer c.sendMu.Unlock()
	c.closeLocked(protocol.ClosePayload(code, reason))
	return nil
}

// SetWebSocketType sets the type Send uses on this WebSocket connection:
// protocol.TextMessage (default) or protocol.BinaryMessage (Workerman's
// $connection->websocketType).
func (c *Connection) SetWebSocketType(t protocol.MessageType) {
	if ws := c.webSocket(); ws != nil {
		c.sendMu.Lock()
		ws.SetDefaultType(t)
		if c.wsType != 0 {
			c.wsType = frameType(t)
		}
		c.sendMu.Unlock()
	}
}

// WebSocketRequest is the opening handshake of a WebSocket connection: nil
// before it completed, for other protocols, and after OnWebSocketConnected
// unless WebSocketOptions.KeepRequest is set.
func (c *Connection) WebSocketRequest() *WebSocketRequest {
	if ws := c.webSocket(); ws != nil && ws.Established() {
		return ws.Request()
	}
	return nil
}
