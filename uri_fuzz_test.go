package workerman

import (
	"bufio"
	"errors"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"testing"

	"github.com/workerman-go/workerman/internal/websocket"
	"github.com/workerman-go/workerman/protocol"
)

// The URIs a program is given (a config file, a flag, an environment
// variable) are outside input too: a bad one is an error, never a panic,
// and a good one is taken apart into an address that can be dialed or
// bound.

// uriSeeds are listen and connect URIs of every scheme, good and bad.
var uriSeeds = []string{
	"tcp://127.0.0.1:0", "text://0.0.0.0:2347", "frame://[::1]:8080", "websocket://:80",
	"http://localhost:8080", "ssl://127.0.0.1:443", "udp://127.0.0.1:9292", "unix:///tmp/w.sock",
	"ws://example.com:80/chat?room=1#frag", "wss://[fe80::1%25eth0]:443/",
	"ws://user:pass@127.0.0.1:8080/p%20q", "ws://127.0.0.1:80/a b", "text://127.0.0.1",
	"tcp://:", "tcp://", "://x:1", "tcp:/x:1", "tcp:x:1", "tcp://[::1", "tcp://1.2.3.4:80:90",
	"nosuch://127.0.0.1:1", "websocket://127.0.0.1:99999", "tcp://127.0.0.1:-1",
	"TEXT://127.0.0.1:1", "tcp://127.0.0.1:http", "tcp://%zz:1", "tcp://a\x00b:1",
	"ws://127.0.0.1:1?x=\r\nHost: evil", "ws://127.0.0.1:1/?a b\x7f", "ws://127.0.0.1:1/\u00e9", "http://127.0.0.1:1/..",
}

// FuzzParseListenURI: Worker's "scheme://address" with its Transport and
// Protocol overrides. Accepted means a non-empty scheme and address that
// give back the URI, the overrides applied, and an address that binds
// (host:port, or a path for unix).
func FuzzParseListenURI(f *testing.F) {
	for _, s := range uriSeeds {
		f.Add(s, "", "")
	}
	f.Add("tcp://127.0.0.1:0", "udp", "websocket")
	f.Add("tcp://127.0.0.1:0", "unix", "")
	f.Add("text://127.0.0.1:0", "ssl", "http")
	f.Add("udp://127.0.0.1:0", "", "http")
	f.Add("unix://relative.sock", "", "")
	f.Add("unix://", "", "")
	f.Add("unix:///tmp/x", "tcp", "text")
	f.Fuzz(func(t *testing.T, uri, transport, proto string) {
		la, err := parseURI(uri, sideListen, transport, proto)
		scheme, rest, hasSep := strings.Cut(uri, "://")
		if err != nil {
			if !strings.HasPrefix(err.Error(), "workerman: ") {
				t.Fatalf("error without the package prefix: %v", err)
			}
			return
		}
		switch {
		case !hasSep || scheme == "" || rest == "":
			t.Fatalf("%q accepted without scheme://address", uri)
		case la.scheme != scheme || la.address != rest || la.scheme+"://"+la.address != uri:
			t.Fatalf("%q parsed as %+v: does not give back the URI", uri, la)
		case scheme == "ws" || scheme == "wss":
			t.Fatalf("client scheme %q accepted for listening", scheme)
		case transport != "" && la.transport != transport, proto != "" && la.protocol != proto:
			t.Fatalf("overrides %q, %q not applied: %+v", transport, proto, la)
		case la.protocol == "" || la.transport == "":
			t.Fatalf("%q parsed without protocol or transport: %+v", uri, la)
		case la.network == "udp" && (la.protocol == "websocket" || la.protocol == "http"):
			t.Fatalf("%s accepted over udp", la.protocol)
		}
		switch la.network {
		case "unix":
		case "tcp", "udp":
			if _, _, err := net.SplitHostPort(la.address); err != nil {
				t.Fatalf("%q accepted with address %q: %v", uri, la.address, err)
			}
		default:
			t.Fatalf("%q parsed to network %q", uri, la.network)
		}
	})
}

// FuzzAsyncConnectionURI: AsyncConnection's URI with its Transport and
// Protocol overrides. Accepted means a registered protocol and a non-empty
// address to dial (host:port, or a path for unix); TLS exactly for ssl://,
// wss:// and Transport "ssl", for the URI's host; for ws:// and wss:// a
// Host and request target that make a well-formed opening handshake.
func FuzzAsyncConnectionURI(f *testing.F) {
	for _, s := range uriSeeds {
		f.Add(s, "", "")
	}
	f.Add("tcp://127.0.0.1:1", "ssl", "text")
	f.Add("ws://127.0.0.1:1/", "", "frame")
	f.Add("text://127.0.0.1:1", "", "ws")
	f.Add("unix:///tmp/x.sock", "", "nosuch")
	f.Fuzz(func(t *testing.T, uri, transport, proto string) {
		a := NewAsyncConnection(uri)
		a.Transport, a.Protocol = transport, proto
		target, err := a.parse()
		u, uerr := url.Parse(uri)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "workerman: ") {
				t.Fatalf("error without the package prefix: %v", err)
			}
			return
		}
		if uerr != nil || u.Scheme == "" {
			t.Fatalf("%q accepted, but url.Parse says %v", uri, uerr)
		}
		if _, ok := protocol.Lookup(target.protocol); !ok {
			t.Fatalf("%q accepted with unregistered protocol %q", uri, target.protocol)
		}
		if proto != "" && target.protocol != proto {
			t.Fatalf("Protocol %q not applied: %q", proto, target.protocol)
		}
		if target.address == "" {
			t.Fatalf("%q accepted with an empty address: %+v", uri, target)
		}
		switch target.network {
		case "unix":
			if u.Scheme != "unix" {
				t.Fatalf("%q dials unix", uri)
			}
		case "tcp":
			if _, _, err := net.SplitHostPort(target.address); err != nil {
				t.Fatalf("%q accepted with address %q: %v", uri, target.address, err)
			}
		default:
			t.Fatalf("%q dials network %q", uri, target.network)
		}
		wantTLS := u.Scheme == "ssl" || u.Scheme == "wss" || transport == "ssl"
		switch {
		case (target.tls != nil) != wantTLS:
			t.Fatalf("%q with Transport %q: TLS %v", uri, transport, target.tls != nil)
		case target.tls != nil && target.tls.ServerName != u.Hostname():
			t.Fatalf("%q: TLS server name %q", uri, target.tls.ServerName)
		case target.ws != (target.protocol == "ws"):
			t.Fatalf("%q: ws %v for protocol %q", uri, target.ws, target.protocol)
		}
		if target.ws {
			checkClientHandshakeRequest(t, uri, target)
		}
	})
}

// checkClientHandshakeRequest: the opening handshake for target is one
// well-formed HTTP request for its host and request target.
func checkClientHandshakeRequest(t *testing.T, uri string, target dialTarget) {
	t.Helper()
	if strings.IndexFunc(target.path, notVisibleASCII) >= 0 {
		t.Fatalf("%q: request target %q is not all visible ASCII (RFC 9112 section 3.2)", uri, target.path)
	}
	codec := websocket.Client(websocket.Config{}, websocket.ClientConfig{Host: target.host, Path: target.path}).NewCodec()
	raw := string(codec.(*websocket.Codec).HandshakeRequest())
	req, err := http.ReadRequest(bufio.NewReader(strings.NewReader(raw)))
	switch {
	case err != nil:
		t.Fatalf("%q: handshake %q does not parse: %v", uri, raw, err)
	case req.Method != http.MethodGet || req.RequestURI != target.path || req.Host != validUTF8(target.host):
		t.Fatalf("%q: handshake %q is GET %q for %q; want %q for %q", uri, raw, req.RequestURI, req.Host, target.path, target.host)
	case !strings.HasPrefix(target.path, "/"):
		t.Fatalf("%q: request target %q", uri, target.path)
	}
}

// FuzzAsyncUDPConnectionURI: AsyncUDPConnection's URI. Refused are URIs
// without scheme or host, stream protocols (ErrUnsupportedOverUDP) and
// unknown ones; accepted ones open a socket that Close releases. Only URIs
// whose host is an IP address (or none) are connected, so that fuzzing
// never asks DNS.
func FuzzAsyncUDPConnectionURI(f *testing.F) {
	for _, s := range uriSeeds {
		f.Add(s)
	}
	f.Add("udp://127.0.0.1:1")
	f.Add("text://[::1]:1")
	f.Add("frame://127.0.0.1")
	f.Add("websocket://127.0.0.1:1")
	f.Add("udp://:1")
	f.Add("unix://")
	f.Fuzz(func(t *testing.T, uri string) {
		u, uerr := url.Parse(uri)
		if uerr == nil && !isIPOrEmpty(u.Hostname()) {
			return // Connect would resolve a name
		}
		a := NewAsyncUDPConnection(uri)
		err := a.Connect()
		defer a.Close()
		stream := false
		if uerr == nil {
			switch u.Scheme {
			case "websocket", "ws", "wss", "http", "https", "ssl", "unix":
				stream = true
			}
		}
		switch {
		case uerr != nil || u.Scheme == "" || u.Host == "":
			if err == nil {
				t.Fatalf("%q connected without scheme and host", uri)
			}
		case stream:
			if !errors.Is(err, ErrUnsupportedOverUDP) {
				t.Fatalf("%q: %v, want ErrUnsupportedOverUDP", uri, err)
			}
		case err == nil:
			if a.RemoteAddr() == nil || a.LocalAddr() == nil {
				t.Fatalf("%q connected without addresses", uri)
			}
			if err := a.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			if err := a.Connect(); !errors.Is(err, ErrClosed) {
				t.Fatalf("Connect after Close: %v, want ErrClosed", err)
			}
		}
		if err != nil && !strings.HasPrefix(err.Error(), "workerman: ") {
			t.Fatalf("error without the package prefix: %v", err)
		}
		if err != nil && a.RemoteAddr() != nil {
			t.Fatalf("%q failed (%v) but left a socket open", uri, err)
		}
	})
}

func notVisibleASCII(r rune) bool { return r <= ' ' || r >= 0x7f }

// validUTF8 replaces each byte that is not UTF-8 with U+FFFD, as header
// values are written.
func validUTF8(s string) string { return strings.Map(func(r rune) rune { return r }, s) }

func isIPOrEmpty(host string) bool {
	if host == "" {
		return true
	}
	_, err := netip.ParseAddr(host)
	return err == nil
}
