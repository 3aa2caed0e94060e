package websocket

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/workerman-go/workerman/internal/codectest"
)

// The opening handshake is what it was when fmt built it, in one
// allocation of its exact size; CR and LF in a value cannot split it, and
// invalid UTF-8 is sent as U+FFFD, as before.
func TestClientHandshakeRequest(t *testing.T) {
	tests := []struct {
		name        string
		cc          ClientConfig
		compression bool
	}{
		{"plain", ClientConfig{Host: "example.com", Path: "/chat"}, false},
		{"compression", ClientConfig{Host: "example.com:8080", Path: "/"}, true},
		{"origin and protocols", ClientConfig{Host: "h", Path: "/p?q=1", Origin: "https://o.example", Protocols: []string{"chat", "superchat"}}, true},
		{"header", ClientConfig{Host: "h", Path: "/", Header: http.Header{"Authorization": {"Bearer x"}}}, false},
		{"header values", ClientConfig{Host: "h", Path: "/", Header: http.Header{"Cookie": {"a=1", "b=2"}}}, false},
		{"invalid UTF-8", ClientConfig{Host: "\x89:", Path: "/\xff", Origin: "o\xc3", Protocols: []string{"p\xe2\x82"},
			Header: http.Header{"X-Value": {"v\xfe"}}}, false},
		{"injection", ClientConfig{Host: "h\r\nX-Host: 1", Path: "/\r\nX-Path: 1", Origin: "o\nX-Origin: 1", Protocols: []string{"p\r\nX-Protocol: 1"},
			Header: http.Header{"X-Name\r\nX-Key: 1": {"v\r\nX-Value: 1"}}}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			codec := Client(Config{Compression: tc.compression}, tc.cc).NewCodec().(*Codec)
			got := codec.HandshakeRequest()
			if want := fmtHandshakeRequest(codec); !bytes.Equal(got, want) {
				t.Fatalf("request\n%q\nwant\n%q", got, want)
			}
			if len(got) != cap(got) {
				t.Errorf("%d bytes in a buffer of %d", len(got), cap(got))
			}
			if tc.name == "invalid UTF-8" {
				if !utf8.Valid(got) {
					t.Fatalf("%q is not UTF-8", got)
				}
				return
			}
			if tc.name == "injection" {
				// One line per field (9) and the empty line: nothing was split off.
				if lines := strings.Count(string(got), "\r\n"); lines != 10 || strings.ContainsAny(strings.ReplaceAll(string(got), "\r\n", ""), "\r\n") {
					t.Fatalf("%q: %d lines", got, lines)
				}
				return
			}
			req, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(got)))
			if err != nil {
				t.Fatalf("%q does not parse: %v", got, err)
			}
			if req.Host != tc.cc.Host || req.RequestURI != tc.cc.Path || req.Header.Get("Sec-WebSocket-Key") != string(codec.dial.key[:]) || req.Header.Get("Sec-WebSocket-Version") != "13" {
				t.Errorf("%q: host, target, key or version", got)
			}
		})
	}
}

// fmtHandshakeRequest is how the request was built before it was built
// in one allocation.
func fmtHandshakeRequest(c *Codec) []byte {
	cfg := c.dial.cfg
	var b bytes.Buffer
	fmt.Fprintf(&b, "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n", sanitizeHeader(cfg.Path), sanitizeHeader(cfg.Host))
	fmt.Fprintf(&b, "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n", c.dial.key[:])
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

// The server's answer is read as net/http reads it, stricter where a
// WebSocket server has no reason to be loose.
func TestClientParseResponseHead(t *testing.T) {
	tests := []struct {
		name   string
		head   string
		status int
		header http.Header // nil: refused
	}{
		{"101", "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nsec-websocket-accept:  x \r\nSec-WebSocket-Extensions: a\r\nx-other-NAME: y\r\n\r\n", 101,
			http.Header{"Upgrade": {"websocket"}, "Sec-Websocket-Accept": {"x"}, "Sec-Websocket-Extensions": {"a"}, "X-Other-Name": {"y"}}},
		{"no reason", "HTTP/1.1 101\r\n\r\n", 101, http.Header{}},
		{"HTTP/1.0", "HTTP/1.0 403 Forbidden\r\n\r\n", 403, http.Header{}},
		{"repeated", "HTTP/1.1 101 OK\r\nConnection: keep-alive\r\nConnection: Upgrade\r\nX: \r\n\r\n", 101,
			http.Header{"Connection": {"keep-alive", "Upgrade"}, "X": {""}}},
		{"HTTP/2.0", "HTTP/2.0 101 OK\r\n\r\n", 0, nil},
		{"no status", "HTTP/1.1\r\n\r\n", 0, nil},
		{"LF in the reason", "HTTP/1.1 101 \n\r\nUpgrade: websocket\r\n\r\n", 0, nil},
		{"short status", "HTTP/1.1 10 OK\r\n\r\n", 0, nil},
		{"status 099", "HTTP/1.1 099 OK\r\n\r\n", 0, nil},
		{"space before colon", "HTTP/1.1 101 OK\r\nUpgrade : websocket\r\n\r\n", 0, nil},
		{"no colon", "HTTP/1.1 101 OK\r\nUpgrade\r\n\r\n", 0, nil},
		{"folded", "HTTP/1.1 101 OK\r\nUpgrade: web\r\n socket\r\n\r\n", 0, nil},
		{"control byte", "HTTP/1.1 101 OK\r\nUpgrade: web\x00socket\r\n\r\n", 0, nil},
		{"bare LF", "HTTP/1.1 101 OK\r\nUpgrade: websocket\nX: y\r\n\r\n", 0, nil},
	}
	for _, k := range []string{hUpgrade, hConnection, hAccept, hProtocol, hExtensions} {
		if c := http.CanonicalHeaderKey(k); c != k {
			t.Errorf("%q is not canonical: %q", k, c)
		}
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status, _, h, err := parseResponseHead([]byte(tc.head))
			switch {
			case tc.header == nil && err == nil:
				t.Fatalf("accepted: %d %v", status, h)
			case tc.header != nil && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.header != nil && (status != tc.status || !reflect.DeepEqual(h, tc.header)):
				t.Fatalf("read %d %v, want %d %v", status, h, tc.status, tc.header)
			}
		})
	}
}

// A client's codec keeps nothing of its handshake once the answer was
// read, accepted or not; a packet decoded after a refusal is refused too.
func TestClientDropsHandshakeState(t *testing.T) {
	for _, head := range []string{response101(""), "HTTP/1.1 403 Forbidden\r\n\r\n"} {
		codec := newFuzzClient(false)
		_, err := codec.Decode(codectest.Conn{Max: 1 << 16}, []byte(head))
		if codec.dial != nil {
			t.Fatalf("%q (%v): the client side is kept", head, err)
		}
		if !codec.isClient() {
			t.Fatalf("%q: no longer a client's codec", head)
		}
		if err == nil {
			continue
		}
		if _, err := codec.Decode(codectest.Conn{Max: 1 << 16}, []byte(head)); !errors.Is(err, errBadResponse) {
			t.Fatalf("a second head after %q: %v", head, err)
		}
	}
}
