package workerman

import (
	"time"

	"github.com/workerman-go/workerman/internal/http1"
	"github.com/workerman-go/workerman/internal/proto"
	"github.com/workerman-go/workerman/protocol"
)

// HTTP types, from package protocol.
type (
	// Request is an HTTP request: the standard *http.Request with its body
	// read, plus Workerman's Get, Post, RawBody, JSON, CookieValue.
	Request = protocol.Request
	// Response is an HTTP response; set File to send a file (with Range
	// support).
	Response = protocol.Response
	// ServerSentEvent is one event of a text/event-stream response.
	ServerSentEvent = protocol.ServerSentEvent
	// HTTPError is a request the http:// codec refused (400, 413, 431).
	HTTPError = protocol.HTTPError
)

// NewResponse returns a response with a status and a body.
func NewResponse(status int, body []byte) *Response { return protocol.NewResponse(status, body) }

// NewFileResponse returns a response that sends a file, honouring Range
// requests (206) and streaming it as the client reads.
func NewFileResponse(path string) *Response { return protocol.NewFileResponse(path) }

// SendResponse sends an HTTP response on an http:// connection. Unless the
// request asked to keep the connection alive, the connection is closed once
// the response is written. A response with "Content-Type: text/event-stream"
// or "Transfer-Encoding: chunked" keeps the connection open for SendEvent or
// SendChunk.
func (c *Connection) SendResponse(r *Response) error {
	return c.send(protocol.Message{Value: r}, false)
}

// SendEvent sends one Server-Sent Event after a text/event-stream response.
func (c *Connection) SendEvent(e ServerSentEvent) error {
	return c.send(protocol.Message{Value: e}, false)
}

// SendChunk sends one chunk after a chunked response; an empty chunk ends
// the response.
func (c *Connection) SendChunk(data []byte) error {
	return c.send(protocol.Message{Value: protocol.Chunk(data)}, false)
}

// defaultReadHeaderTimeout is Worker.ReadHeaderTimeout's default.
const defaultReadHeaderTimeout = 10 * time.Second

// serverHTTP is an http:// worker's protocol, with WebSocket upgrades on
// WebSocketOptions.Path when it is set.
func serverHTTP(w *Worker) *http1.Protocol {
	cfg := http1.Config{HeaderTimeout: w.ReadHeaderTimeout}
	if cfg.HeaderTimeout == 0 {
		cfg.HeaderTimeout = defaultReadHeaderTimeout
	}
	if f := w.OnRequest; f != nil {
		cfg.OnRequest = func(c proto.Conn, r *Request) { f(connOf(c), r) }
	}
	if w.WebSocket.Path != "" {
		cfg.WebSocketPath = w.WebSocket.Path
		cfg.WebSocket = serverWebSocket(w)
		if hs := w.WebSocket.HandshakeTimeout; hs > 0 && cfg.HeaderTimeout > 0 && hs < cfg.HeaderTimeout {
			cfg.HeaderTimeout = hs
		}
	}
	if cfg.HeaderTimeout < 0 {
		cfg.HeaderTimeout = 0
	}
	return http1.New(cfg)
}
