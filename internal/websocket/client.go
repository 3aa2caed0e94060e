package websocket

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strings"

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
	return &Codec{cfg: p.cfg, client: cs}
}

// HandshakeRequest is the opening handshake a client sends first (Accepted
// writes it).
func (c *Codec) HandshakeRequest() []byte {
	cfg := c.client.cfg
	var b bytes.Buffer
	fmt.Fprintf(&b, "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n", sanitizeHeader(cfg.Path), sanitizeHeader(cfg.Host))
	fmt.Fprintf(&b, "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n", c.client.key[:])
	if cfg.Origin != "" {
		fmt.Fprintf(&b, "Origin: %s\r\n", sanitizeHeader(cfg.Origin))
	}
	if len(cfg.Protocols) > 0 {
		fmt.Fprintf(&b, "Sec-WebSocket-Protocol: %s\r\n", sanitizeHeader(strings.Join(cfg.Protocols, ", ")))
	}
	if c.cfg.Compression {
		b.WriteString("Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; client_no_context_takeover\r\n")
	}
	for k, vs := range cfg.Header {
		for _, v := range vs {
			fmt.Fprintf(&b, "%s: %s\r\n", sanitizeHeader(k), sanitizeHeader(v))
		}
	}
	b.WriteString("\r\n")
	return b.Bytes()
}

// acceptKey is Sec-WebSocket-Accept for key (RFC 6455 section 4.2.2).
func acceptKey(key string) string {
	h := sha1.Sum([]byte(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	return base64.StdEncoding.EncodeToString(h[:])
}

var errBadResponse = errors.New("websocket: bad handshake response")

func badResponse(status int, format string, args ...any) *protocol.HandshakeError {
	return &protocol.HandshakeError{Status: status, Err: fmt.Errorf("%w: "+format, append([]any{errBadResponse}, args...)...)}
}

// clientHandshake checks the server's response.
func (c *Codec) clientHandshake(packet []byte) (protocol.Message, error) {
	// A reader the size of the head (the codec framed it whole), not
	// bufio's 4 KiB: every client's handshake leaves less garbage among
	// the connections that stay.
	resp, err := http.ReadResponse(bufio.NewReaderSize(bytes.NewReader(packet), max(len(packet), 16)), nil)
	if err != nil {
		return protocol.Message{}, &protocol.HandshakeError{Status: http.StatusBadGateway, Err: fmt.Errorf("%w: %v", errBadResponse, err)}
	}
	resp.Body.Close()
	h := resp.Header
	switch {
	case resp.StatusCode != http.StatusSwitchingProtocols:
		return protocol.Message{}, badResponse(resp.StatusCode, "status %s", resp.Status)
	case !strings.EqualFold(h.Get("Upgrade"), "websocket"):
		return protocol.Message{}, badResponse(resp.StatusCode, "Upgrade: %q", h.Get("Upgrade"))
	case !headerHasToken(h.Values("Connection"), "upgrade"):
		return protocol.Message{}, badResponse(resp.StatusCode, "Connection: %q", h.Get("Connection"))
	case h.Get("Sec-WebSocket-Accept") != acceptKey(string(c.client.key[:])):
		return protocol.Message{}, badResponse(resp.StatusCode, "Sec-WebSocket-Accept does not match the key")
	}
	out := &protocol.WebSocketResponse{Status: resp.StatusCode, Header: h, Subprotocol: h.Get("Sec-WebSocket-Protocol")}
	if p := out.Subprotocol; p != "" && !contains(c.client.cfg.Protocols, p) {
		return protocol.Message{}, badResponse(resp.StatusCode, "server chose subprotocol %q that was not offered", p)
	}
	for _, ext := range headerList(h.Values("Sec-WebSocket-Extensions")) {
		name, params, _ := strings.Cut(ext, ";")
		if strings.TrimSpace(name) != "permessage-deflate" || !c.cfg.Compression || out.Compressed {
			return protocol.Message{}, badResponse(resp.StatusCode, "unexpected extension %q", ext)
		}
		// We offered both no-context-takeover parameters: the server must
		// keep server_no_context_takeover, or our stateless inflater could
		// not follow it.
		if !strings.Contains(params, "server_no_context_takeover") {
			return protocol.Message{}, badResponse(resp.StatusCode, "permessage-deflate without server_no_context_takeover")
		}
		out.Compressed = true
	}
	c.upgraded = true
	c.deflate.Store(out.Compressed)
	return protocol.Message{Type: protocol.HandshakeMessage, Value: out}, nil
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
