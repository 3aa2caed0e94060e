package workerman

import (
	"testing"

	"github.com/workerman-go/workerman/protocol"
)

// parseURI reads servers' and clients' URIs the same way, with what each
// side needs: listen addresses as written, clients' as URLs.
func TestParseURI(t *testing.T) {
	protocol.Register("JsonNL", protocol.Shared(protocol.Text{}))
	protocol.Register("json_nl", protocol.Shared(protocol.Text{}))
	cases := []struct {
		uri                  string
		side                 uriSide
		transport, proto     string
		network, address     string
		wantTransport, codec string
		host, path           string
	}{
		{uri: "text://0.0.0.0:5678", side: sideListen, network: "tcp", address: "0.0.0.0:5678", wantTransport: "tcp", codec: "text"},
		{uri: "TEXT://127.0.0.1:1", side: sideListen, network: "tcp", address: "127.0.0.1:1", wantTransport: "tcp", codec: "text"},
		{uri: "JsonNL://127.0.0.1:0", side: sideListen, network: "tcp", address: "127.0.0.1:0", wantTransport: "tcp", codec: "JsonNL"},
		{uri: "json_nl://127.0.0.1:0", side: sideListen, network: "tcp", address: "127.0.0.1:0", wantTransport: "tcp", codec: "json_nl"},
		{uri: "tcp://[fe80::1%eth0]:80", side: sideListen, network: "tcp", address: "[fe80::1%eth0]:80", wantTransport: "tcp", codec: "tcp"},
		{uri: "unix:///tmp/w.sock", side: sideListen, network: "unix", address: "/tmp/w.sock", wantTransport: "unix", codec: "tcp"},
		{uri: "unix://relative.sock", side: sideDial, network: "unix", address: "relative.sock", wantTransport: "unix", codec: "tcp"},
		{uri: "text://127.0.0.1:0", side: sideListen, transport: "udp", network: "udp", address: "127.0.0.1:0", wantTransport: "udp", codec: "text"},
		{uri: "websocket://127.0.0.1:8000", side: sideListen, network: "tcp", address: "127.0.0.1:8000", wantTransport: "tcp", codec: "websocket"},
		{uri: "websocket://127.0.0.1:8000/x", side: sideDial, network: "tcp", address: "127.0.0.1:8000", wantTransport: "tcp", codec: "ws", host: "127.0.0.1:8000", path: "/x"},
		{uri: "wss://example.com:443/chat?name=John Doe", side: sideDial, network: "tcp", address: "example.com:443", wantTransport: "ssl", codec: "ws", host: "example.com:443", path: "/chat?name=John%20Doe"},
		{uri: "ssl://127.0.0.1:1", side: sideDial, proto: "text", network: "tcp", address: "127.0.0.1:1", wantTransport: "ssl", codec: "text"},
		{uri: "frame://127.0.0.1:9", side: sideUDP, network: "udp", address: "127.0.0.1:9", wantTransport: "udp", codec: "frame"},
	}
	for _, tc := range cases {
		e, err := parseURI(tc.uri, tc.side, tc.transport, tc.proto)
		if err != nil {
			t.Errorf("%q: %v", tc.uri, err)
			continue
		}
		if e.network != tc.network || e.address != tc.address || e.transport != tc.wantTransport || e.protocol != tc.codec || e.host != tc.host || e.path != tc.path {
			t.Errorf("%q: %+v", tc.uri, e)
		}
	}
	for _, bad := range []struct {
		uri  string
		side uriSide
	}{
		{"ws://127.0.0.1:1", sideListen}, {"udp://127.0.0.1:1", sideDial}, {"websocket://127.0.0.1:1", sideUDP},
		{"nosuch://127.0.0.1:1", sideListen}, {"text://127.0.0.1", sideDial}, {"unix://", sideListen}, {"text:127.0.0.1:1", sideListen},
		{"http://127.0.0.1:1", sideUDP},
	} {
		if e, err := parseURI(bad.uri, bad.side, "", ""); err == nil {
			t.Errorf("%q (side %d) accepted: %+v", bad.uri, bad.side, e)
		}
	}

	// A worker on a custom scheme with capitals, as in Workerman's docs.
	w := NewWorker("JsonNL://127.0.0.1:0")
	got := make(chan string, 1)
	w.OnMessage = func(c *Connection, data []byte) { got <- string(data) }
	c := dial(t, serve(t, w))
	c.Write([]byte("{}\n"))
	if m := wait(t, got, "a JsonNL message"); m != "{}" {
		t.Fatalf("got %q", m)
	}
}
