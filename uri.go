package workerman

import (
	"fmt"
	"net"
	"net/url"
	"strings"

	"github.com/workerman-go/workerman/protocol"
)

// uriSide says who reads a URI: a Worker listens on it, an AsyncConnection
// connects to it over a stream, an AsyncUDPConnection sends datagrams to it.
type uriSide uint8

const (
	sideListen uriSide = iota
	sideDial
	sideUDP
)

// endpointURI is a parsed listen or connect URI (scheme://address), with
// the Transport and Protocol overrides applied: the one reading of
// Workerman's URIs, for servers and clients alike.
type endpointURI struct {
	scheme    string // as written: "text", "websocket", "ws", "unix", ...
	network   string // "tcp", "unix" or "udp"
	address   string // host:port, or a unix socket's path
	transport string // "tcp", "ssl", "unix" or "udp"
	protocol  string // the codec's scheme; "tcp" is the raw codec
	hostname  string // the host without its port (a TLS server name)
	// A ws:// or wss:// client's Host header and request target.
	host, path string
}

// parseURI reads uri for side, with Workerman's schemes: tcp, ssl, udp
// and unix name a transport (raw messages); any other scheme names a
// codec. ws:// and wss:// are client schemes (a websocket:// worker serves
// them; wss is ws over ssl), and a client of websocket:// speaks ws.
func parseURI(uri string, side uriSide, transport, proto string) (endpointURI, error) {
	bad := func(why string) (endpointURI, error) {
		return endpointURI{}, fmt.Errorf("workerman: bad URI %q: %s", uri, why)
	}
	scheme, rest, ok := strings.Cut(uri, "://")
	if !ok || scheme == "" || rest == "" {
		return bad("want scheme://host:port")
	}
	// A listen address is taken as written (an IPv6 zone, a scheme with
	// capitals or an underscore, as in Workerman's JsonNL://); a client's
	// URI is a URL, with a path and query for WebSocket.
	e := endpointURI{scheme: scheme, network: "tcp", transport: "tcp", protocol: codecName(scheme), address: rest}
	var u *url.URL
	if side == sideListen {
		e.hostname, _, _ = net.SplitHostPort(rest)
	} else {
		var err error
		if u, err = url.Parse(uri); err != nil {
			return bad(err.Error())
		}
		if !strings.EqualFold(u.Scheme, scheme) {
			// "//://0" is a URL without a scheme: what precedes the first
			// "://" is not one.
			return bad("want scheme://host:port")
		}
		e.address, e.hostname = u.Host, u.Hostname()
	}
	switch strings.ToLower(scheme) {
	case "unix":
		// A socket path is taken as written, never URL-decoded.
		e.network, e.transport, e.protocol, e.address = "unix", "unix", "tcp", rest
	case "tcp":
		e.protocol = "tcp"
	case "ssl":
		e.transport, e.protocol = "ssl", "tcp"
	case "udp":
		e.network, e.transport, e.protocol = "udp", "udp", "tcp"
	case "ws", "wss":
		if side == sideListen {
			return e, fmt.Errorf("workerman: %s:// is for clients (AsyncConnection); listen on websocket://", scheme)
		}
		e.protocol = "ws"
		if strings.EqualFold(scheme, "wss") {
			e.transport = "ssl"
		}
	}
	switch {
	case side == sideListen && transport != "":
		e.transport = transport
		if transport == "unix" || transport == "udp" {
			e.network = transport
		}
	case side == sideDial && transport == "ssl":
		e.transport = "ssl"
	case side == sideDial && transport != "" && transport != "tcp":
		return e, fmt.Errorf("workerman: Transport %q: a client connection runs over tcp or ssl (unix:// for a unix socket; AsyncUDPConnection for udp)", transport)
	}
	if proto != "" {
		e.protocol = proto
	}
	if side != sideListen && e.protocol == "websocket" {
		e.protocol = "ws"
	}
	if side == sideUDP {
		if e.transport != "tcp" && e.transport != "udp" || isStream(e.protocol) {
			return e, fmt.Errorf("%w: %s://", ErrUnsupportedOverUDP, scheme)
		}
		e.network, e.transport = "udp", "udp"
	}
	if side == sideDial && e.network == "udp" {
		return e, fmt.Errorf("workerman: %s:// is datagrams: use AsyncUDPConnection", scheme)
	}
	if e.network == "udp" && isStream(e.protocol) {
		return e, fmt.Errorf("workerman: %s needs a stream: it cannot run over udp", e.protocol)
	}
	if e.network == "unix" {
		if e.address == "" {
			return bad("want unix:///path/to/socket")
		}
	} else if _, _, err := net.SplitHostPort(e.address); err != nil {
		return bad(err.Error())
	}
	if e.protocol == "ws" && u != nil {
		e.host, e.path = u.Host, requestTarget(u)
	}
	if _, ok := protocol.Lookup(e.protocol); !ok {
		return e, fmt.Errorf("workerman: unknown protocol %q (register it with protocol.Register)", e.protocol)
	}
	return e, nil
}

// codecName is the registered codec a scheme names: as written (a codec
// may be registered as "JsonNL"), else in lower case (TEXT:// is text://).
func codecName(scheme string) string {
	if _, ok := protocol.Lookup(scheme); ok {
		return scheme
	}
	return strings.ToLower(scheme)
}

// isStream tells the protocols that need a stream, not datagrams.
func isStream(p string) bool {
	switch p {
	case "websocket", "ws", "http", "https":
		return true
	}
	return false
}

// requestTarget is u's path and query as an HTTP request target: bytes a
// request line cannot carry (spaces, controls, non-ASCII; url keeps a raw
// query as written) are percent-encoded (RFC 9112 section 3.2).
func requestTarget(u *url.URL) string {
	t := u.RequestURI()
	var b strings.Builder
	for i := 0; i < len(t); i++ {
		if c := t[i]; c <= ' ' || c >= 0x7f {
			fmt.Fprintf(&b, "%%%02X", c)
			continue
		}
		b.WriteByte(t[i])
	}
	return b.String()
}
