package workerman

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"strings"
	"testing"

	"github.com/workerman-go/workerman/internal/testcert"
)

// greeting is what the servers of TestAsyncConnectionHearsTheGreeting send
// from OnConnect: a few small messages, one larger than any read buffer
// (the loops read 64 KiB at a time, the goroutine engine 16 KiB) and one
// more small one after it.
func greeting() []string {
	// Letters that do not repeat in a short cycle, so that permessage-deflate
	// does not make the large message small on the wire.
	var b strings.Builder
	x := uint32(1)
	for b.Len() < 100<<10 {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		b.WriteByte('a' + byte(x%26))
	}
	return []string{"hello", "second", "third", b.String(), "last"}
}

// An AsyncConnection hears everything a server sends the moment it
// accepts, in order, on every connection: the bytes may arrive together
// with the completion of the connect (or with the 101 of a WebSocket
// handshake), and a client that sends nothing must still read them. Every
// scheme, against both server engines; the ssl cases run the client on the
// goroutine engine (TLS), the others on the event loops. With "then close"
// the server closes right after sending: the messages still all arrive
// before OnClose.
func TestAsyncConnectionHearsTheGreeting(t *testing.T) {
	cert, pool := testcert.Pair(t)
	msgs := greeting()
	cases := []struct {
		name, server, client string
		ssl                  bool
	}{
		{name: "text", server: "text", client: "text"},
		{name: "frame", server: "frame", client: "frame"},
		{name: "tcp", server: "tcp", client: "tcp"},
		{name: "ws", server: "websocket", client: "ws"},
		{name: "text over ssl", server: "text", client: "text", ssl: true},
		{name: "wss", server: "websocket", client: "wss", ssl: true},
	}
	for _, tc := range cases {
		for _, closeAfter := range []bool{false, true} {
			name := tc.name
			if closeAfter {
				name += " then close"
			}
			t.Run(name, func(t *testing.T) {
				engines(t, func(t *testing.T, goroutines bool) {
					w := &Worker{URI: tc.server + "://127.0.0.1:0", goroutines: goroutines, Logger: quietLog()}
					if tc.ssl {
						w.Transport, w.TLSConfig = "ssl", &tls.Config{Certificates: []tls.Certificate{cert}}
					}
					w.OnConnect = func(c *Connection) {
						for _, m := range msgs {
							if err := c.SendString(m); err != nil {
								t.Errorf("server Send: %v", err)
							}
						}
						if closeAfter && tc.server != "websocket" {
							c.Close()
						}
					}
					if closeAfter && tc.server == "websocket" {
						// A close before the handshake refuses it; after
						// the 101 it follows the greeting.
						w.OnWebSocketConnected = func(c *Connection, _ *WebSocketRequest) { c.Close() }
					}
					uri := tc.client + "://" + serve(t, w)
					n := 200
					switch {
					case tc.ssl || testing.Short():
						n = 50 // a TLS handshake each, under the race detector
					case closeAfter:
						n = 100
					}
					for i := range n {
						hearGreeting(t, uri, tc.ssl, pool, tc.client == "tcp", closeAfter, msgs, i)
						if t.Failed() {
							return
						}
					}
				})
			})
		}
	}
}

// hearGreeting makes connection i to uri and checks that it receives msgs,
// in order (for tcp://, which has no message boundaries, the same bytes).
func hearGreeting(t *testing.T, uri string, ssl bool, pool *x509.CertPool, stream, closeAfter bool, msgs []string, i int) {
	t.Helper()
	c := newClient(t, uri)
	c.Logger = quietLog()
	c.OnConnect = nil // the client sends nothing: only the server speaks
	if ssl {
		c.Transport = "ssl"
		c.TLSConfig = &tls.Config{RootCAs: pool}
	}
	c.connect(t)
	if stream {
		want := strings.Join(msgs, "")
		var got strings.Builder
		for got.Len() < len(want) {
			got.WriteString(wait(t, c.msgs, fmt.Sprintf("connection %d: bytes %d.. of %d", i, got.Len(), len(want))))
		}
		if got.String() != want {
			t.Fatalf("connection %d: the %d bytes received differ from those sent", i, got.Len())
		}
	} else {
		for k, want := range msgs {
			got := wait(t, c.msgs, fmt.Sprintf("connection %d: message %d (%d bytes)", i, k, len(want)))
			if got != want {
				t.Fatalf("connection %d: message %d is %s, want %s", i, k, describe(got), describe(want))
			}
		}
	}
	if !closeAfter {
		c.Close()
	}
	wait(t, c.closed, fmt.Sprintf("connection %d: OnClose", i))
	select {
	case m := <-c.msgs:
		t.Fatalf("connection %d: an extra message %s", i, describe(m))
	case err := <-c.errs:
		t.Fatalf("connection %d: OnError(%v)", i, err)
	default:
	}
}

func describe(s string) string {
	if len(s) > 32 {
		return fmt.Sprintf("%q... (%d bytes)", s[:32], len(s))
	}
	return fmt.Sprintf("%q", s)
}
