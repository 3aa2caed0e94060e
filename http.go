package workerman

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

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

func httpCodec(c *Connection) *protocol.HTTPCodec {
	hc, _ := c.codec.(*protocol.HTTPCodec)
	return hc
}

// httpHooks serves http:// connections, and those of them upgraded to
// WebSocket (WebSocketOptions.Path) through ws.
type httpHooks struct {
	ws        *wsHooks
	onRequest func(*Connection, *Request)
}

func newHTTPEndpoint(ep *endpoint, w *Worker) {
	h := &httpHooks{onRequest: w.OnRequest}
	cfg := protocol.HTTPConfig{}
	if w.WebSocket.Path != "" {
		newWebSocketEndpoint(ep, w) // builds the WebSocket hooks and config
		h.ws = ep.hooks.(*wsHooks)
		cfg.WebSocketPath = w.WebSocket.Path
		cfg.WebSocket = &h.ws.cfg
	}
	ep.proto = protocol.HTTP(cfg)
	ep.hooks = h
}

// upgraded returns the WebSocket hooks when c was upgraded.
func (h *httpHooks) upgraded(c *Connection) *wsHooks {
	if h.ws != nil && httpCodec(c).WebSocket() != nil {
		return h.ws
	}
	return nil
}

func (h *httpHooks) accepted(*Connection) {}

func (h *httpHooks) onMessage(c *Connection, m protocol.Message) {
	if ws := h.upgraded(c); ws != nil {
		ws.onMessage(c, m)
		return
	}
	if req, ok := m.Value.(*Request); ok && h.onRequest != nil {
		c.call("OnRequest", func() { h.onRequest(c, req) })
		return
	}
	plainHooks{}.onMessage(c, m)
}

func (h *httpHooks) onControl(c *Connection, m protocol.Message) {
	if ws := h.upgraded(c); ws != nil {
		ws.onControl(c, m)
	}
}

func (h *httpHooks) onEOF(c *Connection) { c.Close() }

func (h *httpHooks) onClosed(c *Connection, err error) {
	if x := c.ext.Load(); x != nil && x.stream != nil {
		x.stream.f.Close()
	}
}

func (h *httpHooks) send(c *Connection, m protocol.Message, raw, drop bool) error {
	if ws := h.upgraded(c); ws != nil {
		return ws.send(c, m, raw, drop)
	}
	if raw {
		return c.writeLimited(m, raw, drop)
	}
	if x := c.ext.Load(); x != nil && x.stream != nil {
		// A file is still being sent: what follows waits for it, with the
		// state of the request it answers.
		m.Data = bytes.Clone(m.Data)
		x.stream.after = append(x.stream.after, deferred{m: m, st: httpCodec(c).State()})
		return nil
	}
	if r, ok := m.Value.(*Response); ok && r.File != "" {
		return c.startFile(r)
	}
	if err := c.writeLimited(m, false, drop); err != nil {
		return err
	}
	if ends(m) && !httpCodec(c).KeepAlive() {
		c.closeLocked(nil)
	}
	return nil
}

// ends reports whether m completes a response (and so may end the
// connection): a plain response or bytes, or the last chunk.
func ends(m protocol.Message) bool {
	switch v := m.Value.(type) {
	case *Response:
		return v.Header.Get("Transfer-Encoding") != "chunked" && !strings.HasPrefix(v.Header.Get("Content-Type"), "text/event-stream")
	case protocol.Chunk:
		return len(v) == 0
	case protocol.ServerSentEvent:
		return false
	}
	return true
}

func (h *httpHooks) closing(c *Connection, closeFrame []byte) {
	if ws := h.upgraded(c); ws != nil {
		ws.closing(c, closeFrame)
	}
}

func (h *httpHooks) period() time.Duration {
	if h.ws != nil {
		return h.ws.period()
	}
	return 0
}

func (h *httpHooks) due(c *Connection, now int64) bool {
	if ws := h.upgraded(c); ws != nil {
		return ws.due(c, now)
	}
	return false
}

func (h *httpHooks) tick(c *Connection, now int64) {
	if ws := h.upgraded(c); ws != nil {
		ws.tick(c, now)
	}
}

func (h *httpHooks) timeout(c *Connection, err error) {
	if ws := h.upgraded(c); ws != nil {
		ws.timeout(c, err)
		return
	}
	c.Close()
}

// ---- files ----

// fileStream sends a file as the client reads it, Workerman-style: a piece
// at a time while the send buffer has room, the rest on each drain.
type fileStream struct {
	f         *os.File
	remaining int64
	keepAlive bool
	after     []deferred // sent meanwhile, in order
}

type deferred struct {
	m  protocol.Message
	st protocol.HTTPState
}

const fileChunk = 64 << 10

// startFile answers with a file (caller holds sendMu).
func (c *Connection) startFile(r *Response) error {
	hc := httpCodec(c)
	f, err := os.Open(r.File)
	var st os.FileInfo
	if err == nil {
		st, err = f.Stat()
		if err == nil && st.IsDir() {
			err = os.ErrNotExist
		}
	}
	if err != nil {
		if f != nil {
			f.Close()
		}
		status := http.StatusNotFound
		if !errors.Is(err, os.ErrNotExist) {
			status = http.StatusForbidden
		}
		return c.sendCompleteLocked(protocol.NewResponse(status, []byte(http.StatusText(status))))
	}
	size := st.Size()
	resp := &Response{Status: http.StatusOK, Header: r.Header.Clone()}
	if resp.Header == nil {
		resp.Header = http.Header{}
	}
	if resp.Header.Get("Content-Type") == "" {
		ct := mime.TypeByExtension(filepath.Ext(r.File))
		if ct == "" {
			ct = "application/octet-stream"
		}
		resp.Header.Set("Content-Type", ct)
	}
	resp.Header.Set("Accept-Ranges", "bytes")
	resp.Header.Set("Last-Modified", st.ModTime().UTC().Format(http.TimeFormat))
	start, length := int64(0), size
	if rg := hc.RangeHeader(); rg != "" {
		s, l, ok := parseRange(rg, size)
		if !ok {
			f.Close()
			bad := protocol.NewResponse(http.StatusRequestedRangeNotSatisfiable, nil)
			bad.Header.Set("Content-Range", fmt.Sprintf("bytes */%d", size))
			return c.sendCompleteLocked(bad)
		}
		start, length = s, l
		resp.Status = http.StatusPartialContent
		resp.Header.Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", s, s+l-1, size))
	}
	head := hc.AppendResponseHead(nil, resp, length)
	if err := c.writeLimited(protocol.Message{Data: head}, true, false); err != nil {
		f.Close()
		return err
	}
	if hc.IsHead() || length == 0 {
		f.Close()
		if !hc.KeepAlive() {
			c.closeLocked(nil)
		}
		return nil
	}
	if _, err := f.Seek(start, io.SeekStart); err != nil {
		f.Close()
		c.closeLocked(nil)
		return err
	}
	st2 := &fileStream{f: f, remaining: length, keepAlive: hc.KeepAlive()}
	c.updateExt(func(x *connExt) { x.stream = st2 })
	c.pumpLocked()
	return nil
}

func (c *Connection) sendCompleteLocked(r *Response) error {
	if err := c.writeLimited(protocol.Message{Value: r}, false, false); err != nil {
		return err
	}
	if !httpCodec(c).KeepAlive() {
		c.closeLocked(nil)
	}
	return nil
}

// pumpLocked sends file data while the send buffer has room; OnDrain calls
// it again (caller holds sendMu, on the callback goroutine).
func (c *Connection) pumpLocked() {
	x := c.ext.Load()
	if x == nil || x.stream == nil {
		return
	}
	s := x.stream
	limit := c.MaxSendBufferSize()
	buf := make([]byte, fileChunk)
	for s.remaining > 0 && c.tc.Queued() < limit && !c.closing.Load() {
		n, err := s.f.Read(buf[:min(int64(len(buf)), s.remaining)])
		if n > 0 {
			if werr := c.writeLimited(protocol.Message{Data: buf[:n]}, true, false); werr != nil {
				s.remaining = 0
				break
			}
			s.remaining -= int64(n)
		}
		if err != nil {
			// The file shrank under us: the promised length cannot be
			// met, so the connection cannot be reused.
			s.remaining = 0
			s.keepAlive = false
			break
		}
	}
	if s.remaining > 0 && !c.closing.Load() {
		return // continues on drain
	}
	s.f.Close()
	c.updateExt(func(x *connExt) { x.stream = nil })
	if !s.keepAlive {
		c.closeLocked(nil)
		return
	}
	// Answer what was sent meanwhile, in order; another file may start.
	hc := httpCodec(c)
	now := hc.State()
	defer hc.SetState(now)
	for i, d := range s.after {
		if x := c.ext.Load(); x != nil && x.stream != nil {
			x.stream.after = append(x.stream.after, s.after[i:]...)
			return
		}
		hc.SetState(d.st)
		c.ep.hooks.send(c, d.m, false, false)
	}
}

// parseRange reads a single "bytes=a-b" range (RFC 9110 section 14.1.2).
func parseRange(h string, size int64) (start, length int64, ok bool) {
	spec, found := strings.CutPrefix(strings.TrimSpace(h), "bytes=")
	if !found || strings.Contains(spec, ",") {
		return 0, 0, false
	}
	a, b, found := strings.Cut(spec, "-")
	if !found {
		return 0, 0, false
	}
	a, b = strings.TrimSpace(a), strings.TrimSpace(b)
	switch {
	case a == "":
		n, err := strconv.ParseInt(b, 10, 64)
		if err != nil || n <= 0 {
			return 0, 0, false
		}
		n = min(n, size)
		return size - n, n, size > 0
	default:
		s, err := strconv.ParseInt(a, 10, 64)
		if err != nil || s < 0 || s >= size {
			return 0, 0, false
		}
		e := size - 1
		if b != "" {
			if e, err = strconv.ParseInt(b, 10, 64); err != nil || e < s {
				return 0, 0, false
			}
			e = min(e, size-1)
		}
		return s, e - s + 1, true
	}
}
