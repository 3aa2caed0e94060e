package protocol

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// The http:// protocol itself lives in the library's internal packages;
// this file holds what its users touch: requests, responses, events and
// the errors the codec reports.

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

// Request is an HTTP request, as given to OnRequest: the standard
// *http.Request (with its body already read) and Workerman's accessors.
type Request struct {
	*http.Request
	body []byte
}

// NewRequest wraps r, whose body was read into body. The library builds one
// for every request; tests may build their own.
func NewRequest(r *http.Request, body []byte) *Request {
	r.Body = io.NopCloser(bytes.NewReader(body))
	return &Request{Request: r, body: body}
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

// Streaming reports whether the response announces a body of unknown
// length, sent after it: Server-Sent Events or chunked transfer.
func (r *Response) Streaming() bool {
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
