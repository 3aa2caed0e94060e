package websocket

import (
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/textproto"
	"strings"
	"unicode/utf8"

	"github.com/workerman-go/workerman/protocol"
)

// ClientConfig is what a ws:// client asks for in its handshake.
type ClientConfig struct {
	Host string // Host header
	Path string // request target, "/" by default
	// Header holds extra request headers (cookies, authorization).
	Header http.Header
	// Origin is sent as the Origin header when set.
	Origin string
	// Protocols are offered as Sec-WebSocket-Protocol, in preference order.
	Protocols []string
}

// Client returns the client side of WebSocket (Workerman's Ws protocol):
// it sends the opening handshake, checks the server's answer (status 101,
// Sec-WebSocket-Accept, extensions, subprotocol), masks every frame it
// sends with a fresh random key and refuses masked server frames.
func Client(cfg Config, cc ClientConfig) *Protocol {
	if cc.Path == "" {
		cc.Path = "/"
	}
	return &Protocol{cfg: cfg.withDefaults(), ccfg: &cc}
}

func (p *Protocol) newClient() *Codec {
	var nonce [16]byte
	rand.Read(nonce[:])
	cs := &clientSide{cfg: p.ccfg}
	base64.StdEncoding.Encode(cs.key[:], nonce[:])
	return &Codec{cfg: p.cfg, dial: cs, client: true}
}

// HandshakeRequest is the opening handshake a client sends first (Accepted
// writes it). It is built in one allocation of its exact size: every
// client of a load test leaves it behind.
func (c *Codec) HandshakeRequest() []byte {
	cfg := c.dial.cfg
	path, host, origin := cleanHeader(cfg.Path), cleanHeader(cfg.Host), cleanHeader(cfg.Origin)
	var protocols string
	if len(cfg.Protocols) > 0 {
		protocols = cleanHeader(strings.Join(cfg.Protocols, ", "))
	}
	const (
		upgrade   = "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: "
		version   = "\r\nSec-WebSocket-Version: 13\r\n"
		extension = "Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; client_no_context_takeover\r\n"
	)
	size := len("GET  HTTP/1.1\r\nHost: ") + len(path) + len(host) + len(upgrade) + len(c.dial.key) + len(version) + len("\r\n")
	if origin != "" {
		size += len("Origin: \r\n") + len(origin)
	}
	if protocols != "" {
		size += len("Sec-WebSocket-Protocol: \r\n") + len(protocols)
	}
	if c.cfg.Compression {
		size += len(extension)
	}
	for k, vs := range cfg.Header {
		k = cleanHeader(k)
		for _, v := range vs {
			size += len(k) + len(": \r\n") + len(cleanHeader(v))
		}
	}
	b := make([]byte, 0, size)
	b = append(b, "GET "...)
	b = append(b, path...)
	b = append(b, " HTTP/1.1\r\nHost: "...)
	b = append(b, host...)
	b = append(b, upgrade...)
	b = append(b, c.dial.key[:]...)
	b = append(b, version...)
	field := func(name, value string) {
		b = append(b, name...)
		b = append(b, ": "...)
		b = append(b, value...)
		b = append(b, "\r\n"...)
	}
	if origin != "" {
		field("Origin", origin)
	}
	if protocols != "" {
		field("Sec-WebSocket-Protocol", protocols)
	}
	if c.cfg.Compression {
		b = append(b, extension...)
	}
	for k, vs := range cfg.Header {
		k = cleanHeader(k)
		for _, v := range vs {
			field(k, cleanHeader(v))
		}
	}
	return append(b, "\r\n"...)
}

// cleanHeader is sanitizeHeader (CR and LF as spaces, invalid UTF-8 as
// U+FFFD), without a new string for what needs no change: nearly
// everything.
func cleanHeader(s string) string {
	if strings.ContainsAny(s, "\r\n") || !utf8.ValidString(s) {
		return sanitizeHeader(s)
	}
	return s
}

const acceptGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

// accepts reports whether accept is the Sec-WebSocket-Accept of the
// client's key (RFC 6455 section 4.2.2), computed without allocating.
func (cs *clientSide) accepts(accept string) bool {
	var in [len(clientSide{}.key) + len(acceptGUID)]byte
	copy(in[copy(in[:], cs.key[:]):], acceptGUID)
	h := sha1.Sum(in[:])
	var want [28]byte // base64 of a 20-byte digest
	base64.StdEncoding.Encode(want[:], h[:])
	return accept == string(want[:])
}

var errBadResponse = errors.New("websocket: bad handshake response")

func badResponse(status int, format string, args ...any) *protocol.HandshakeError {
	return &protocol.HandshakeError{Status: status, Err: fmt.Errorf("%w: "+format, append([]any{errBadResponse}, args...)...)}
}

// clientHandshake checks the server's response. The client side (the key,
// the configuration) is dropped here, whatever the verdict: an idle
// client's codec keeps nothing of its handshake.
func (c *Codec) clientHandshake(packet []byte) (protocol.Message, error) {
	cs := c.dial
	if cs == nil {
		// A packet after a refused answer, before the connection closed.
		return protocol.Message{}, &protocol.HandshakeError{Status: http.StatusBadGateway, Err: fmt.Errorf("%w: the handshake was already refused", errBadResponse)}
	}
	c.dial = nil
	status, statusLine, h, err := parseResponseHead(packet)
	if err != nil {
		return protocol.Message{}, &protocol.HandshakeError{Status: http.StatusBadGateway, Err: fmt.Errorf("%w: %v", errBadResponse, err)}
	}
	switch {
	case status != http.StatusSwitchingProtocols:
		return protocol.Message{}, badResponse(status, "status %s", statusLine)
	case !strings.EqualFold(first(h[hUpgrade]), "websocket"):
		return protocol.Message{}, badResponse(status, "Upgrade: %q", first(h[hUpgrade]))
	case !headerHasToken(h[hConnection], "upgrade"):
		return protocol.Message{}, badResponse(status, "Connection: %q", first(h[hConnection]))
	case !cs.accepts(first(h[hAccept])):
		return protocol.Message{}, badResponse(status, "Sec-WebSocket-Accept does not match the key")
	}
	out := &protocol.WebSocketResponse{Status: status, Header: h, Subprotocol: first(h[hProtocol])}
	if p := out.Subprotocol; p != "" && !contains(cs.cfg.Protocols, p) {
		return protocol.Message{}, badResponse(status, "server chose subprotocol %q that was not offered", p)
	}
	for _, ext := range headerList(h[hExtensions]) {
		name, params, _ := strings.Cut(ext, ";")
		if strings.TrimSpace(name) != "permessage-deflate" || !c.cfg.Compression || out.Compressed {
			return protocol.Message{}, badResponse(status, "unexpected extension %q", ext)
		}
		// We offered both no-context-takeover parameters: the server must
		// keep server_no_context_takeover, or our stateless inflater could
		// not follow it.
		if !strings.Contains(params, "server_no_context_takeover") {
			return protocol.Message{}, badResponse(status, "permessage-deflate without server_no_context_takeover")
		}
		out.Compressed = true
	}
	c.upgraded = true
	c.deflate.Store(out.Compressed)
	return protocol.Message{Type: protocol.HandshakeMessage, Value: out}, nil
}

// parseResponseHead parses a response head that ends with its empty line
// (Input framed it): "HTTP/1.x NNN reason", then header fields, as net/http
// would, but into one string and one map of the exact size (every client
// of a load test leaves them behind). Field names are canonicalized;
// values are trimmed. Obsolete line folding, control characters (in the
// status line too) and names that are not tokens are refused.
func parseResponseHead(packet []byte) (status int, statusLine string, h http.Header, err error) {
	head := string(packet)
	line, rest, _ := strings.Cut(head, "\r\n")
	for j := range len(line) {
		// RFC 9112 4: the reason is tabs, spaces and visible characters;
		// a bare LF would end the line for net/http.
		if b := line[j]; b < ' ' && b != '\t' || b == 0x7f {
			return 0, "", nil, fmt.Errorf("invalid status line %q", line)
		}
	}
	proto, code, _ := strings.Cut(line, " ")
	if len(proto) != len("HTTP/1.1") || !strings.HasPrefix(proto, "HTTP/1.") || proto[7] < '0' || proto[7] > '9' {
		return 0, "", nil, fmt.Errorf("malformed HTTP version %q", proto)
	}
	statusLine = code
	if code, _, _ = strings.Cut(code, " "); len(code) != 3 {
		return 0, "", nil, fmt.Errorf("malformed HTTP status code %q", code)
	}
	for i := range len(code) {
		if code[i] < '0' || code[i] > '9' {
			return 0, "", nil, fmt.Errorf("malformed HTTP status code %q", code)
		}
		status = status*10 + int(code[i]-'0')
	}
	if status < 100 {
		return 0, "", nil, fmt.Errorf("malformed HTTP status code %q", code)
	}
	rest = strings.TrimSuffix(rest, "\r\n") // the empty line
	n := strings.Count(rest, "\r\n")
	h = make(http.Header, n)
	values := make([]string, n) // one backing array for the first value of every name
	for i := 0; rest != ""; i++ {
		line, rest, _ = strings.Cut(rest, "\r\n")
		name, value, ok := strings.Cut(line, ":")
		if !ok || !validFieldName(name) {
			return 0, "", nil, fmt.Errorf("malformed header line %q", line)
		}
		value = strings.Trim(value, " \t")
		for j := range len(value) {
			if b := value[j]; b < ' ' && b != '\t' || b == 0x7f {
				return 0, "", nil, fmt.Errorf("invalid header value for %q", name)
			}
		}
		key := canonicalName(name)
		if vs, ok := h[key]; ok {
			h[key] = append(vs, value)
			continue
		}
		values[i] = value
		h[key] = values[i : i+1 : i+1]
	}
	return status, statusLine, h, nil
}

// The canonical names (http.CanonicalHeaderKey) of the fields a client
// reads, used as they are: no lookup makes a string.
const (
	hUpgrade    = "Upgrade"
	hConnection = "Connection"
	hAccept     = "Sec-Websocket-Accept"
	hProtocol   = "Sec-Websocket-Protocol"
	hExtensions = "Sec-Websocket-Extensions"
)

// canonicalName is textproto.CanonicalMIMEHeaderKey, without a new
// string for the names every 101 carries.
func canonicalName(name string) string {
	for _, k := range [...]string{hUpgrade, hConnection, hAccept, hProtocol, hExtensions} {
		if strings.EqualFold(name, k) {
			return k
		}
	}
	return textproto.CanonicalMIMEHeaderKey(name)
}

// first is a field's first value, "" if it has none (http.Header.Get).
func first(values []string) string {
	if len(values) == 0 {
		return ""
	}
	return values[0]
}

// validFieldName reports whether s is a token (RFC 9110 section 5.6.2).
func validFieldName(s string) bool {
	if s == "" {
		return false
	}
	for i := range len(s) {
		if c := s[i]; !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return true
}

func headerList(values []string) []string {
	var out []string
	for _, v := range values {
		for _, p := range strings.Split(v, ",") {
			if p = strings.TrimSpace(p); p != "" {
				out = append(out, p)
			}
		}
	}
	return out
}

func headerHasToken(values []string, token string) bool {
	for _, p := range headerList(values) {
		if strings.EqualFold(p, token) {
			return true
		}
	}
	return false
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func init() {
	protocol.Register("ws", Client(Config{Compression: true}, ClientConfig{}))
}
