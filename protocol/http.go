package protocol

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// HTTPConfig configures the http:// codec.
type HTTPConfig struct {
	// MaxHeaderSize bounds the request line and headers; a larger head is
	// answered with 431. Default 16 KiB.
	MaxHeaderSize int
	// WebSocketPath, when set, turns upgrade requests for that path into
	// WebSocket connections on the same port, with WebSocket's codec.
	WebSocketPath string
	WebSocket     *WebSocketConfig
}

// HTTP returns the http:// protocol (Workerman's Http): HTTP/1.0 and 1.1,
// keep-alive and pipelining, chunked request bodies.
func HTTP(cfg HTTPConfig) Protocol {
	if cfg.MaxHeaderSize <= 0 {
		cfg.MaxHeaderSize = 16 << 10
	}
	var ws Protocol
	if cfg.WebSocket != nil {
		ws = WebSocket(*cfg.WebSocket)
	}
	p := &cfg
	return ProtocolFunc(func() Codec { return &HTTPCodec{cfg: p, wsProto: ws} })
}

func init() {
	Register("http", HTTP(HTTPConfig{}))
}

// HTTPError is a request refused by the codec (400, 413, 431, 505); it is
// what OnError receives, and its status is sent before the connection
// closes.
type HTTPError struct {
	Status int
	Reason string
}

// Error describes the refused request.
func (e *HTTPError) Error() string {
	return fmt.Sprintf("http: %d %s: %s", e.Status, http.StatusText(e.Status), e.Reason)
}

// Is lets errors.Is(err, ErrPackageTooLarge) hold for 413 and 431, and
// ErrBadPacket for the others.
func (e *HTTPError) Is(target error) bool {
	tooLarge := e.Status == http.StatusRequestEntityTooLarge || e.Status == http.StatusRequestHeaderFieldsTooLarge
	return target == ErrPackageTooLarge && tooLarge || target == ErrBadPacket && !tooLarge
}

func badRequest(status int, format string, args ...any) *HTTPError {
	return &HTTPError{Status: status, Reason: fmt.Sprintf(format, args...)}
}

var httpMethods = map[string]bool{"GET": true, "POST": true, "OPTIONS": true, "HEAD": true, "DELETE": true, "PUT": true, "PATCH": true}

// HTTPCodec is the codec of one http:// connection.
type HTTPCodec struct {
	cfg     *HTTPConfig
	wsProto Protocol

	ws atomic.Pointer[WebSocketCodec] // set once, on the loop, by an upgrade

	// Loop-owned: the request being framed.
	frame struct {
		headLen int // 0 until the head is complete
		bodyLen int // Content-Length, or -1 for chunked
		chunked chunkScanner
	}

	// Shared with senders: how to answer the request being handled.
	keepAlive atomic.Bool
	head      atomic.Bool // HEAD request: no body in the response
	rangeHdr  atomic.Pointer[string]
}

// WebSocket returns the WebSocket codec this connection switched to, if
// it was upgraded.
func (c *HTTPCodec) WebSocket() *WebSocketCodec { return c.ws.Load() }

// Input frames one request: head, then a Content-Length or chunked body.
func (c *HTTPCodec) Input(conn Conn, buf []byte) (int, error) {
	if ws := c.ws.Load(); ws != nil {
		return ws.Input(conn, buf)
	}
	f := &c.frame
	if f.headLen == 0 {
		end := bytes.Index(buf, []byte("\r\n\r\n"))
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
		if info.upgrade && c.wsProto != nil && info.path == c.cfg.WebSocketPath {
			ws := c.wsProto.NewCodec().(*WebSocketCodec)
			ws.Started.Store(time.Now().UnixNano())
			c.ws.Store(ws)
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

// Request is an HTTP request, as given to OnRequest: the standard
// *http.Request (with its body already read) and Workerman's accessors.
type Request struct {
	*http.Request
	body []byte
}

// Get returns the query parameter key (Workerman's $request->get()), or def.
func (r *Request) Get(key string, def ...string) string {
	if v := r.URL.Query(); v.Has(key) {
		return v.Get(key)
	}
	return first(def)
}

// Post returns the form field key of a urlencoded or multipart body
// (Workerman's $request->post()), or def.
func (r *Request) Post(key string, def ...string) string {
	r.parseForm()
	if r.PostForm != nil && r.PostForm.Has(key) {
		return r.PostForm.Get(key)
	}
	if r.MultipartForm != nil {
		if vs := r.MultipartForm.Value[key]; len(vs) > 0 {
			return vs[0]
		}
	}
	return first(def)
}

func (r *Request) parseForm() {
	if r.PostForm != nil || r.MultipartForm != nil {
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(r.body))
	if strings.HasPrefix(r.Header.Get("Content-Type"), "multipart/form-data") {
		r.ParseMultipartForm(32 << 20)
	} else {
		r.ParseForm()
	}
}

// RawBody is the request body (chunked bodies already joined).
func (r *Request) RawBody() []byte { return r.body }

// JSON decodes the body into v.
func (r *Request) JSON(v any) error { return json.Unmarshal(r.body, v) }

// HeaderValue returns a request header (Workerman's $request->header()).
func (r *Request) HeaderValue(name string) string { return r.Header.Get(name) }

// CookieValue returns a cookie's value, or "".
func (r *Request) CookieValue(name string) string {
	if c, err := r.Request.Cookie(name); err == nil {
		return c.Value
	}
	return ""
}

// Path is the request path.
func (r *Request) Path() string { return r.URL.Path }

func first(def []string) string {
	if len(def) > 0 {
		return def[0]
	}
	return ""
}

// Decode parses one framed request.
func (c *HTTPCodec) Decode(conn Conn, packet []byte) (Message, error) {
	if ws := c.ws.Load(); ws != nil {
		return ws.Decode(conn, packet)
	}
	req, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(packet)))
	if err != nil {
		return Message{}, badRequest(http.StatusBadRequest, "%v", err)
	}
	body, err := io.ReadAll(req.Body)
	if err != nil {
		return Message{}, badRequest(http.StatusBadRequest, "body: %v", err)
	}
	req.Body = io.NopCloser(bytes.NewReader(body))
	c.keepAlive.Store(!req.Close)
	c.head.Store(req.Method == http.MethodHead)
	rg := req.Header.Get("Range")
	c.rangeHdr.Store(&rg)
	return Message{Type: DataMessage, Data: body, Value: &Request{Request: req, body: body}}, nil
}

// HTTPState is how to answer one request: keep-alive, HEAD, Range.
type HTTPState struct {
	KeepAlive, Head bool
	Range           string
}

// State returns the state of the request being handled.
func (c *HTTPCodec) State() HTTPState {
	return HTTPState{KeepAlive: c.keepAlive.Load(), Head: c.head.Load(), Range: c.RangeHeader()}
}

// SetState makes st the state responses are encoded with (an answer to an
// earlier pipelined request). Call it from the callback goroutine.
func (c *HTTPCodec) SetState(st HTTPState) {
	c.keepAlive.Store(st.KeepAlive)
	c.head.Store(st.Head)
	c.rangeHdr.Store(&st.Range)
}

// KeepAlive reports whether the connection stays open after the response
// to the request being handled.
func (c *HTTPCodec) KeepAlive() bool { return c.keepAlive.Load() }

// RangeHeader is the Range header of the request being handled.
func (c *HTTPCodec) RangeHeader() string {
	if p := c.rangeHdr.Load(); p != nil {
		return *p
	}
	return ""
}

// IsHead reports whether the request being handled is a HEAD request.
func (c *HTTPCodec) IsHead() bool { return c.head.Load() }

// Response is an HTTP response (Workerman's Response). With File set, the
// file is sent instead of Body, honouring a Range request (206) and streamed
// as the client reads it.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
	File   string
}

// NewFileResponse returns a response that sends the file at path.
func NewFileResponse(path string) *Response {
	return &Response{Status: http.StatusOK, Header: http.Header{}, File: path}
}

// NewResponse returns a response with a status and a body.
func NewResponse(status int, body []byte) *Response {
	return &Response{Status: status, Header: http.Header{}, Body: body}
}

// WithHeader sets a header and returns r.
func (r *Response) WithHeader(key, value string) *Response {
	if r.Header == nil {
		r.Header = http.Header{}
	}
	r.Header.Set(key, value)
	return r
}

// SetCookie adds a Set-Cookie header and returns r.
func (r *Response) SetCookie(c *http.Cookie) *Response {
	if r.Header == nil {
		r.Header = http.Header{}
	}
	r.Header.Add("Set-Cookie", c.String())
	return r
}

// streaming reports whether the response announces a body of unknown
// length: Server-Sent Events or chunked transfer.
func (r *Response) streaming() bool {
	return r.Header.Get("Transfer-Encoding") == "chunked" || strings.HasPrefix(r.Header.Get("Content-Type"), "text/event-stream")
}

// ServerSentEvent is one event of a text/event-stream response (Workerman's
// ServerSentEvents).
type ServerSentEvent struct {
	Event string
	Data  string
	ID    string
	Retry time.Duration
}

// Chunk is one chunk of a chunked response; an empty Chunk ends it.
type Chunk []byte

// Encode serializes a *Response, a ServerSentEvent, a Chunk, or plain bytes
// (sent as a 200 text/html response, as Workerman does).
func (c *HTTPCodec) Encode(conn Conn, dst []byte, m Message) ([]byte, error) {
	if ws := c.ws.Load(); ws != nil {
		return ws.Encode(conn, dst, m)
	}
	switch v := m.Value.(type) {
	case *Response:
		return c.appendResponse(dst, v, int64(len(v.Body)), v.Body), nil
	case ServerSentEvent:
		return appendEvent(dst, v), nil
	case Chunk:
		dst = strconv.AppendInt(dst, int64(len(v)), 16)
		dst = append(dst, "\r\n"...)
		dst = append(dst, v...)
		return append(dst, "\r\n"...), nil
	case nil:
		r := Response{Status: http.StatusOK, Header: http.Header{"Content-Type": {"text/html;charset=utf-8"}}}
		return c.appendResponse(dst, &r, int64(len(m.Data)), m.Data), nil
	}
	return nil, fmt.Errorf("http: cannot send a %T", m.Value)
}

// AppendResponseHead writes the status line and headers of r for a body of
// length bytes (-1: none announced).
func (c *HTTPCodec) AppendResponseHead(dst []byte, r *Response, length int64) []byte {
	status := r.Status
	if status == 0 {
		status = http.StatusOK
	}
	dst = fmt.Appendf(dst, "HTTP/1.1 %d %s\r\n", status, http.StatusText(status))
	h := r.Header
	if h.Get("Content-Type") == "" && !r.streaming() {
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
	if length >= 0 && !r.streaming() {
		dst = fmt.Appendf(dst, "Content-Length: %d\r\n", length)
	}
	if c.keepAlive.Load() {
		dst = append(dst, "Connection: keep-alive\r\n"...)
	} else {
		dst = append(dst, "Connection: close\r\n"...)
	}
	return append(dst, "\r\n"...)
}

func (c *HTTPCodec) appendResponse(dst []byte, r *Response, length int64, body []byte) []byte {
	dst = c.AppendResponseHead(dst, r, length)
	if c.head.Load() {
		return dst
	}
	return append(dst, body...)
}

func appendEvent(dst []byte, e ServerSentEvent) []byte {
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

// ErrorResponse answers a refused request with its status.
func (c *HTTPCodec) ErrorResponse(err error) []byte {
	if ws := c.ws.Load(); ws != nil {
		return ws.ErrorResponse(err)
	}
	status := http.StatusBadRequest
	var he *HTTPError
	switch {
	case errors.As(err, &he):
		status = he.Status
	case errors.Is(err, ErrPackageTooLarge):
		status = http.StatusRequestEntityTooLarge
	}
	return httpResponse(status, "", "")
}

// OnClose releases the connection's buffers.
func (c *HTTPCodec) OnClose(conn Conn) {
	if ws := c.ws.Load(); ws != nil {
		ws.OnClose(conn)
	}
}
