package protocol

import (
	"bytes"
	"fmt"
	"net/http"
	"net/textproto"
	"net/url"
	"strings"
)

// WebSocketRequest is the opening handshake of a WebSocket connection, as
// given to OnWebSocketConnect (before the 101 response: inspect it, add
// response headers, pick a subprotocol, or reject) and OnWebSocketConnected.
// It is parsed lazily from the request bytes and safe to keep.
type WebSocketRequest struct {
	raw    []byte
	method string
	uri    string
	header http.Header
	parsed bool

	respHeader  http.Header
	subprotocol string
}

// NewWebSocketRequest returns the handshake whose request bytes (request
// line and headers) are raw, parsed when first read. The library builds one
// for every handshake; tests and custom codecs may build their own.
func NewWebSocketRequest(raw []byte) *WebSocketRequest {
	return &WebSocketRequest{raw: bytes.Clone(raw)}
}

// parse makes a string of each part it keeps, never one string of the whole
// request cut into pieces: what an application keeps from the handshake (a
// user ID from the query, a cookie) then holds only its own bytes, not the
// whole request (a few hundred bytes a connection, more with cookies).
func (r *WebSocketRequest) parse() {
	if r.parsed {
		return
	}
	r.parsed = true
	r.header = http.Header{}
	line, rest, _ := bytes.Cut(r.raw, []byte("\n"))
	if f := bytes.Fields(bytes.TrimRight(line, "\r")); len(f) >= 2 {
		r.method, r.uri = string(f[0]), string(f[1])
	}
	for len(rest) > 0 {
		line, rest, _ = bytes.Cut(rest, []byte("\n"))
		line = bytes.TrimRight(line, "\r")
		if len(line) == 0 {
			break
		}
		k, v, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			continue
		}
		r.header.Add(textproto.CanonicalMIMEHeaderKey(string(bytes.TrimSpace(k))), string(bytes.TrimSpace(v)))
	}
}

// Method is the request method (always GET for an accepted handshake).
func (r *WebSocketRequest) Method() string { r.parse(); return r.method }

// URI is the request target as sent, e.g. "/chat?room=1".
func (r *WebSocketRequest) URI() string { r.parse(); return r.uri }

// Path is the path of the request target.
func (r *WebSocketRequest) Path() string {
	u, err := url.ParseRequestURI(r.URI())
	if err != nil {
		return r.URI()
	}
	return u.Path
}

// Query is the parsed query string of the request target.
func (r *WebSocketRequest) Query() url.Values {
	u, err := url.ParseRequestURI(r.URI())
	if err != nil {
		return url.Values{}
	}
	return u.Query()
}

// Header returns the request headers. Do not modify it.
func (r *WebSocketRequest) Header() http.Header { r.parse(); return r.header }

// Host is the Host header.
func (r *WebSocketRequest) Host() string { return r.Header().Get("Host") }

// Origin is the Origin header (browsers send it).
func (r *WebSocketRequest) Origin() string { return r.Header().Get("Origin") }

// Cookies parses the Cookie header.
func (r *WebSocketRequest) Cookies() []*http.Cookie {
	return (&http.Request{Header: r.Header()}).Cookies()
}

// Cookie returns the value of the named cookie.
func (r *WebSocketRequest) Cookie(name string) (string, bool) {
	for _, c := range r.Cookies() {
		if c.Name == name {
			return c.Value, true
		}
	}
	return "", false
}

// Protocols lists the subprotocols the client offered
// (Sec-WebSocket-Protocol), in its order of preference.
func (r *WebSocketRequest) Protocols() []string {
	var out []string
	for _, v := range r.Header().Values("Sec-Websocket-Protocol") {
		for _, p := range strings.Split(v, ",") {
			if p = strings.TrimSpace(p); p != "" {
				out = append(out, p)
			}
		}
	}
	return out
}

// AcceptProtocol selects one of the offered subprotocols for the response.
func (r *WebSocketRequest) AcceptProtocol(p string) { r.subprotocol = p }

// Subprotocol is the subprotocol accepted with AcceptProtocol, if any.
func (r *WebSocketRequest) Subprotocol() string { return r.subprotocol }

// SetResponseHeader adds a header to the 101 response (Set-Cookie, say).
func (r *WebSocketRequest) SetResponseHeader(key, value string) {
	if r.respHeader == nil {
		r.respHeader = http.Header{}
	}
	r.respHeader.Add(key, value)
}

// ResponseHeader holds the headers added with SetResponseHeader (nil when
// none were).
func (r *WebSocketRequest) ResponseHeader() http.Header { return r.respHeader }

// HandshakeError rejects an opening handshake with an HTTP status. Return
// one (see Reject) from OnWebSocketConnect; it is also what OnError receives
// for a malformed handshake.
type HandshakeError struct {
	Status int
	Reason string
	Header http.Header
	// Err is the cause, when the handshake was malformed.
	Err error
}

// Reject returns a HandshakeError that answers the handshake with status
// and reason instead of the 101.
func Reject(status int, reason string) *HandshakeError {
	return &HandshakeError{Status: status, Reason: reason}
}

// Error describes the rejection with its status.
func (e *HandshakeError) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("websocket: handshake rejected with %d: %v", e.Status, e.Err)
	}
	return fmt.Sprintf("websocket: handshake rejected with %d: %s", e.Status, e.Reason)
}

// Unwrap returns the cause of a malformed handshake.
func (e *HandshakeError) Unwrap() error { return e.Err }

// Is makes errors.Is(err, ErrBadPacket) hold for malformed handshakes.
func (e *HandshakeError) Is(target error) bool {
	return target == ErrBadPacket && e.Status >= 400 && e.Status != http.StatusForbidden && e.Status != http.StatusUnauthorized
}
