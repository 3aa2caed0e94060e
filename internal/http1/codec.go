// Package http1 is the http:// protocol (Workerman's Http): HTTP/1.0 and
// 1.1 requests with keep-alive, pipelining and chunked bodies; responses,
// Server-Sent Events, chunked streaming and files with Range; and the
// upgrade of one path to WebSocket on the same port. Its state is its own;
// the connection reaches it only through proto.Session.
package http1

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/workerman-go/workerman/internal/proto"
	"github.com/workerman-go/workerman/internal/websocket"
	"github.com/workerman-go/workerman/protocol"
)

// Config configures the http:// protocol. The zero value works.
type Config struct {
	// MaxHeaderSize bounds the request line and headers; a larger head is
	// answered with 431. Default 16 KiB.
	MaxHeaderSize int
	// HeaderTimeout bounds the wait for a request's head: from the accept
	// for the first request, from its first byte for the next ones on a
	// kept-alive connection (the idle timeout covers the wait between
	// them). A late head is answered with 408. 0 disables it.
	HeaderTimeout time.Duration
	// WebSocketPath, when set, turns upgrade requests for that path into
	// WebSocket connections on the same port, with WebSocket's protocol.
	WebSocketPath string
	WebSocket     *websocket.Protocol
	// OnRequest receives each request (callback goroutine, through
	// Conn.Call); without it a request's body goes to OnMessage.
	OnRequest func(c proto.Conn, r *protocol.Request)
}

// Protocol creates the codecs of one endpoint's connections.
type Protocol struct{ cfg *Config }

// New returns the http:// protocol.
func New(cfg Config) *Protocol {
	if cfg.MaxHeaderSize <= 0 {
		cfg.MaxHeaderSize = 16 << 10
	}
	return &Protocol{cfg: &cfg}
}

// NewCodec returns the codec (and session) of a new connection.
func (p *Protocol) NewCodec() protocol.Codec { return &Codec{cfg: p.cfg} }

// Period is the shortest deadline the sessions need checked: the head
// timeout, or the WebSocket sessions' period when upgrades are served.
func (p *Protocol) Period() time.Duration {
	d := p.cfg.HeaderTimeout
	if ws := p.cfg.WebSocket; ws != nil {
		if wd := ws.Period(); wd > 0 && (d <= 0 || wd < d) {
			d = wd
		}
	}
	return d
}

func init() {
	protocol.Register("http", New(Config{}))
}

func badRequest(status int, format string, args ...any) *protocol.HTTPError {
	return &protocol.HTTPError{Status: status, Reason: fmt.Sprintf(format, args...)}
}

var httpMethods = map[string]bool{"GET": true, "POST": true, "OPTIONS": true, "HEAD": true, "DELETE": true, "PUT": true, "PATCH": true}

// Codec is the codec and session of one http:// connection.
type Codec struct {
	cfg *Config

	// The WebSocket session an upgrade switches to. framedWS is set on the
	// loop when the upgrade request is framed: from then on the loop frames
	// WebSocket. ws is set when that request is decoded, in order on the
	// callbacks' goroutine, so that requests pipelined before it are
	// decoded and answered as HTTP; everything but framing follows ws.
	framedWS atomic.Pointer[websocket.Codec]
	ws       atomic.Pointer[websocket.Codec]

	// When the wait for the head of the next request began (unix ns); 0
	// while no head is awaited. Written by the loop, read by the ticker.
	headSince atomic.Int64

	// Loop-owned: the request being framed.
	frame struct {
		headLen int // 0 until the head is complete
		bodyLen int // Content-Length, or -1 for chunked
		chunked chunkScanner
	}

	// How to answer the request being handled: set by Decode (callback
	// goroutine), read by senders under the send lock.
	st atomic.Pointer[answer]

	// A file response being sent (see file.go).
	stream atomic.Pointer[fileStream]
}

// answer is how to answer one request: keep-alive, HEAD, Range.
type answer struct {
	keepAlive, head bool
	rangeHdr        string
}

// state is the answer of the request being handled.
func (c *Codec) state() answer {
	if a := c.st.Load(); a != nil {
		return *a
	}
	return answer{}
}

// WebSocket returns the WebSocket session this connection switched to, if
// it was upgraded.
func (c *Codec) WebSocket() proto.WebSocket {
	if ws := c.ws.Load(); ws != nil {
		return ws
	}
	return nil
}

// Input frames one request: head, then a Content-Length or chunked body.
func (c *Codec) Input(conn protocol.Conn, buf []byte) (int, error) {
	if ws := c.framedWS.Load(); ws != nil {
		return ws.Input(conn, buf)
	}
	f := &c.frame
	if f.headLen == 0 {
		end := bytes.Index(buf, []byte("\r\n\r\n"))
		if end < 0 && len(buf) > 0 && c.cfg.HeaderTimeout > 0 && c.headSince.Load() == 0 {
			c.headSince.Store(time.Now().UnixNano())
		}
		if end >= 0 && c.cfg.HeaderTimeout > 0 {
			c.headSince.Store(0)
		}
		if end < 0 {
			if len(buf) >= c.cfg.MaxHeaderSize {
				return 0, badRequest(http.StatusRequestHeaderFieldsTooLarge, "request head over %d bytes", c.cfg.MaxHeaderSize)
			}
			if err := checkRequestStart(buf); err != nil {
				return 0, err
			}
			return 0, nil
		}
		if end+4 > c.cfg.MaxHeaderSize {
			return 0, badRequest(http.StatusRequestHeaderFieldsTooLarge, "request head over %d bytes", c.cfg.MaxHeaderSize)
		}
		head := buf[:end+4]
		info, err := scanHead(head)
		if err != nil {
			return 0, err
		}
		if info.upgrade && c.cfg.WebSocket != nil && info.path == c.cfg.WebSocketPath {
			ws := c.cfg.WebSocket.NewCodec().(*websocket.Codec)
			ws.Start(time.Now().UnixNano())
			c.framedWS.Store(ws)
			return ws.Input(conn, buf)
		}
		if info.length > int64(conn.MaxPackageSize()) {
			return 0, badRequest(http.StatusRequestEntityTooLarge, "body of %d bytes exceeds %d", info.length, conn.MaxPackageSize())
		}
		f.headLen = end + 4
		f.bodyLen = int(info.length)
		f.chunked = chunkScanner{}
	}
	total := f.headLen + f.bodyLen
	if f.bodyLen < 0 {
		n, err := f.chunked.scan(buf[f.headLen:])
		if err != nil {
			return 0, err
		}
		if f.headLen+f.chunked.pos > conn.MaxPackageSize() {
			return 0, badRequest(http.StatusRequestEntityTooLarge, "chunked body exceeds %d bytes", conn.MaxPackageSize())
		}
		if n == 0 {
			return 0, nil // the last chunk has not arrived yet
		}
		total = f.headLen + n
	}
	if total <= len(buf) {
		f.headLen = 0 // consumed: the next request starts after it
	}
	return total, nil
}

// upgrades reports whether packet, a framed request, is an upgrade to the
// WebSocket path.
func (c *Codec) upgrades(packet []byte) bool {
	end := bytes.Index(packet, []byte("\r\n\r\n"))
	if end < 0 {
		return false
	}
	info, err := scanHead(packet[:end+4])
	return err == nil && info.upgrade && info.path == c.cfg.WebSocketPath
}

// checkRequestStart refuses what cannot become a request line.
func checkRequestStart(buf []byte) error {
	for i, b := range buf {
		if b == ' ' && i > 0 {
			return nil
		}
		if b < 'A' || b > 'Z' || i >= 8 {
			return badRequest(http.StatusBadRequest, "not an HTTP request")
		}
	}
	return nil
}

type headInfo struct {
	length  int64 // -1: chunked
	upgrade bool
	path    string
}

// scanHead checks the request line and reads what framing needs.
func scanHead(head []byte) (headInfo, error) {
	info := headInfo{}
	line, rest, _ := bytes.Cut(head, []byte("\r\n"))
	parts := strings.Split(string(line), " ")
	if len(parts) != 3 || parts[1] == "" {
		return info, badRequest(http.StatusBadRequest, "malformed request line %q", truncate(line))
	}
	if !httpMethods[parts[0]] {
		return info, badRequest(http.StatusBadRequest, "method %q", truncate([]byte(parts[0])))
	}
	switch parts[2] {
	case "HTTP/1.1", "HTTP/1.0":
	default:
		if strings.HasPrefix(parts[2], "HTTP/") {
			return info, badRequest(http.StatusHTTPVersionNotSupported, "version %q", truncate([]byte(parts[2])))
		}
		return info, badRequest(http.StatusBadRequest, "malformed request line %q", truncate(line))
	}
	if u, err := url.ParseRequestURI(parts[1]); err == nil {
		info.path = u.Path
	} else if parts[1] != "*" {
		return info, badRequest(http.StatusBadRequest, "request target %q", truncate([]byte(parts[1])))
	}
	var haveLength, chunked bool
	for _, l := range bytes.Split(rest, []byte("\r\n")) {
		if len(l) == 0 {
			continue
		}
		k, v, ok := bytes.Cut(l, []byte(":"))
		if !ok || len(k) == 0 || bytes.ContainsAny(k, " \t") {
			return info, badRequest(http.StatusBadRequest, "malformed header line %q", truncate(l))
		}
		v = bytes.TrimSpace(v)
		switch {
		case bytes.EqualFold(k, []byte("Content-Length")):
			n, err := strconv.ParseInt(string(v), 10, 64)
			if err != nil || n < 0 || haveLength && n != info.length {
				return info, badRequest(http.StatusBadRequest, "Content-Length %q", truncate(v))
			}
			haveLength, info.length = true, n
		case bytes.EqualFold(k, []byte("Transfer-Encoding")):
			if !bytes.EqualFold(v, []byte("chunked")) {
				return info, badRequest(http.StatusNotImplemented, "Transfer-Encoding %q", truncate(v))
			}
			chunked = true
		case bytes.EqualFold(k, []byte("Upgrade")):
			info.upgrade = bytes.EqualFold(v, []byte("websocket"))
		}
	}
	if chunked && haveLength {
		// Both framings at once is how requests are smuggled.
		return info, badRequest(http.StatusBadRequest, "both Content-Length and Transfer-Encoding")
	}
	if chunked {
		info.length = -1
	}
	return info, nil
}

func truncate(b []byte) string {
	if len(b) > 64 {
		return string(b[:64]) + "..."
	}
	return string(b)
}

// chunkScanner finds the end of a chunked body as bytes arrive, without
// rescanning what it saw (RFC 9112 section 7.1).
type chunkScanner struct {
	pos     int  // bytes of the body scanned so far
	left    int  // data bytes of the current chunk still to skip, + CRLF
	inData  bool // inside chunk data
	last    bool // the zero-size chunk was seen: trailers follow
	lineLen int
}

// scan returns the body's full length once its end is in b, else 0.
func (s *chunkScanner) scan(b []byte) (int, error) {
	for s.pos < len(b) {
		if s.inData {
			n := min(s.left, len(b)-s.pos)
			s.pos += n
			s.left -= n
			if s.left > 0 {
				return 0, nil
			}
			if !bytes.HasSuffix(b[:s.pos], []byte("\r\n")) {
				return 0, badRequest(http.StatusBadRequest, "chunk data not followed by CRLF")
			}
			s.inData = false
			continue
		}
		i := bytes.Index(b[s.pos:], []byte("\r\n"))
		if i < 0 {
			if len(b)-s.pos > 4096 {
				return 0, badRequest(http.StatusBadRequest, "chunk header line too long")
			}
			return 0, nil
		}
		line := b[s.pos : s.pos+i]
		s.pos += i + 2
		if s.last {
			if len(line) == 0 {
				return s.pos, nil // the blank line after the trailers
			}
			continue // a trailer field
		}
		size, _, _ := bytes.Cut(line, []byte(";"))
		n, err := strconv.ParseInt(string(bytes.TrimSpace(size)), 16, 64)
		if err != nil || n < 0 || n > 1<<40 {
			return 0, badRequest(http.StatusBadRequest, "chunk size %q", truncate(line))
		}
		if n == 0 {
			s.last = true
			continue
		}
		s.inData, s.left = true, int(n)+2
	}
	return 0, nil
}

// Decode parses one framed request.
func (c *Codec) Decode(conn protocol.Conn, packet []byte) (protocol.Message, error) {
	if ws := c.ws.Load(); ws != nil {
		return ws.Decode(conn, packet)
	}
	if ws := c.framedWS.Load(); ws != nil && c.upgrades(packet) {
		// The first request that upgrades is where the loop switched.
		c.ws.Store(ws)
		return ws.Decode(conn, packet)
	}
	req, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(packet)))
	if err != nil {
		return protocol.Message{}, badRequest(http.StatusBadRequest, "%v", err)
	}
	body, err := io.ReadAll(req.Body)
	if err != nil {
		return protocol.Message{}, badRequest(http.StatusBadRequest, "body: %v", err)
	}
	c.st.Store(&answer{keepAlive: !req.Close, head: req.Method == http.MethodHead, rangeHdr: req.Header.Get("Range")})
	return protocol.Message{Type: protocol.DataMessage, Data: body, Value: protocol.NewRequest(req, body)}, nil
}

// Encode serializes a *Response, a ServerSentEvent, a Chunk, or plain bytes
// (sent as a 200 text/html response, as Workerman does).
func (c *Codec) Encode(conn protocol.Conn, dst []byte, m protocol.Message) ([]byte, error) {
	if ws := c.ws.Load(); ws != nil {
		return ws.Encode(conn, dst, m)
	}
	st := c.state()
	switch v := m.Value.(type) {
	case *protocol.Response:
		return appendResponse(dst, st, v, bodyLength(st, v), v.Body), nil
	case protocol.ServerSentEvent:
		return appendEvent(dst, v), nil
	case protocol.Chunk:
		dst = strconv.AppendInt(dst, int64(len(v)), 16)
		dst = append(dst, "\r\n"...)
		dst = append(dst, v...)
		return append(dst, "\r\n"...), nil
	case nil:
		r := protocol.Response{Status: http.StatusOK, Header: http.Header{"Content-Type": {"text/html;charset=utf-8"}}}
		return appendResponse(dst, st, &r, int64(len(m.Data)), m.Data), nil
	}
	return nil, fmt.Errorf("http: cannot send a %T", m.Value)
}

// appendResponseHead writes the status line and headers of r for a body
// of length bytes (-1: none announced).
func appendResponseHead(dst []byte, st answer, r *protocol.Response, length int64) []byte {
	status := r.Status
	if status == 0 {
		status = http.StatusOK
	}
	dst = fmt.Appendf(dst, "HTTP/1.1 %d %s\r\n", status, http.StatusText(status))
	h := r.Header
	streaming := r.Streaming()
	// 1xx, 204 and 304 have no body (RFC 9110 6.4.1): no default
	// Content-Type and no Content-Length. A 304's headers update the
	// cached response's, so a Content-Type there would replace the
	// cached one (a script's, with nosniff, would then be refused).
	bodiless := noBody(status)
	if h.Get("Content-Type") == "" && !streaming && !bodiless {
		dst = append(dst, "Content-Type: text/html;charset=utf-8\r\n"...)
	}
	for k, vs := range h {
		if strings.EqualFold(k, "Content-Length") || strings.EqualFold(k, "Connection") {
			continue
		}
		for _, v := range vs {
			dst = fmt.Appendf(dst, "%s: %s\r\n", sanitizeHeader(k), sanitizeHeader(v))
		}
	}
	if h.Get("Date") == "" {
		dst = fmt.Appendf(dst, "Date: %s\r\n", time.Now().UTC().Format(http.TimeFormat))
	}
	if length >= 0 && !streaming && !bodiless {
		dst = fmt.Appendf(dst, "Content-Length: %d\r\n", length)
	}
	if st.keepAlive {
		dst = append(dst, "Connection: keep-alive\r\n"...)
	} else {
		dst = append(dst, "Connection: close\r\n"...)
	}
	return append(dst, "\r\n"...)
}

// bodyLength is the Content-Length announced for r: the length of its
// body, except for a HEAD request answered without one, where the
// handler's own Content-Length (what a GET would carry, RFC 9110 9.3.2;
// http.ServeContent sets it for HEAD) is kept when it is a valid length.
// A HEAD response has no body either way, so it cannot break the framing.
func bodyLength(st answer, r *protocol.Response) int64 {
	if st.head && len(r.Body) == 0 {
		if n, err := strconv.ParseInt(strings.TrimSpace(r.Header.Get("Content-Length")), 10, 64); err == nil && n >= 0 {
			return n
		}
	}
	return int64(len(r.Body))
}

func appendResponse(dst []byte, st answer, r *protocol.Response, length int64, body []byte) []byte {
	dst = appendResponseHead(dst, st, r, length)
	if st.head || noBody(r.Status) {
		return dst
	}
	return append(dst, body...)
}

// noBody reports whether a response with status has no body: 1xx, 204
// No Content and 304 Not Modified (status 0 is 200).
func noBody(status int) bool {
	return (status >= 100 && status < 200) || status == http.StatusNoContent || status == http.StatusNotModified
}

func appendEvent(dst []byte, e protocol.ServerSentEvent) []byte {
	if e.ID != "" {
		dst = fmt.Appendf(dst, "id: %s\n", sanitizeHeader(e.ID))
	}
	if e.Event != "" {
		dst = fmt.Appendf(dst, "event: %s\n", sanitizeHeader(e.Event))
	}
	if e.Retry > 0 {
		dst = fmt.Appendf(dst, "retry: %d\n", e.Retry.Milliseconds())
	}
	for _, line := range strings.Split(e.Data, "\n") {
		dst = fmt.Appendf(dst, "data: %s\n", strings.TrimSuffix(line, "\r"))
	}
	return append(dst, '\n')
}

// errorResponse answers a refused request with its status.
func errorResponse(err error) []byte {
	status := http.StatusBadRequest
	var he *protocol.HTTPError
	switch {
	case errors.As(err, &he):
		status = he.Status
	case errors.Is(err, protocol.ErrPackageTooLarge):
		status = http.StatusRequestEntityTooLarge
	}
	return fmt.Appendf(nil, "HTTP/1.1 %d %s\r\nConnection: close\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: %d\r\n\r\n%s",
		status, http.StatusText(status), len(http.StatusText(status)), http.StatusText(status))
}

// sanitizeHeader keeps a header from splitting the response.
func sanitizeHeader(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '\r' || r == '\n' {
			return ' '
		}
		return r
	}, s)
}
