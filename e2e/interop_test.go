package e2e

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/workerman-go/workerman"
	"github.com/workerman-go/workerman/internal/leakcheck"
	"github.com/workerman-go/workerman/protocol"

	"github.com/workerman-go/workerman/internal/testcert"
)

// Interoperability with gorilla/websocket, the most used Go WebSocket
// implementation: its client against the server, and the AsyncConnection
// client against its server. These live here rather than in the root module
// so that the library's go.mod requires only what the library links.

// interopEchoWorker serves a WebSocket echo on a free port of 127.0.0.1 and
// stops when the test ends; tlsConfig, when set, puts it on the ssl
// transport.
func interopEchoWorker(t *testing.T, tlsConfig *tls.Config) string {
	t.Helper()
	w := &workerman.Worker{URI: "websocket://127.0.0.1:0"}
	if tlsConfig != nil {
		w.Transport, w.TLSConfig = "ssl", tlsConfig
	}
	w.OnMessage = func(c *workerman.Connection, data []byte) { c.SendMessage(c.MessageType(), data) }
	if err := w.Listen(); err != nil {
		t.Fatalf("Listen(%s): %v", w.URI, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := w.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	})
	return w.Addr().String()
}

// gorillaDial dials url and closes the connection when the test ends.
func gorillaDial(t *testing.T, url string, d *websocket.Dialer) (*websocket.Conn, *http.Response) {
	t.Helper()
	c, resp, err := d.Dial(url, nil)
	if err != nil {
		t.Fatalf("gorilla dial %s: %v (%v)", url, err, resp)
	}
	t.Cleanup(func() { c.Close() })
	return c, resp
}

// expectDeflate checks that permessage-deflate was negotiated exactly when
// the client offered it.
func expectDeflate(t *testing.T, resp *http.Response, offered bool) {
	t.Helper()
	ext := resp.Header.Get("Sec-WebSocket-Extensions")
	if strings.Contains(ext, "permessage-deflate") != offered {
		t.Fatalf("offered compression: %v; Sec-WebSocket-Extensions %q", offered, ext)
	}
}

// A gorilla client, with compression and without: text, binary, long and
// non-ASCII messages come back as sent, and a close code is echoed.
func TestWebSocketInteropGorilla(t *testing.T) {
	for _, compress := range []bool{false, true} {
		t.Run(fmt.Sprintf("compression=%v", compress), func(t *testing.T) {
			leakcheck.Check(t)
			addr := interopEchoWorker(t, nil)
			d := &websocket.Dialer{HandshakeTimeout: 10 * time.Second, EnableCompression: compress}
			c, resp := gorillaDial(t, "ws://"+addr+"/echo", d)
			expectDeflate(t, resp, compress)
			c.SetReadDeadline(time.Now().Add(20 * time.Second))
			long := strings.Repeat("compressible text ", 1000)
			for _, msg := range []struct {
				typ  int
				data string
			}{{websocket.TextMessage, "hello"}, {websocket.BinaryMessage, "\x00\x01\x02"}, {websocket.TextMessage, long}, {websocket.TextMessage, "héllo wörld ✓"}} {
				if err := c.WriteMessage(msg.typ, []byte(msg.data)); err != nil {
					t.Fatal(err)
				}
				typ, got, err := c.ReadMessage()
				if err != nil || typ != msg.typ || string(got) != msg.data {
					t.Fatalf("got type %d len %d err %v, want type %d len %d", typ, len(got), err, msg.typ, len(msg.data))
				}
			}
			c.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(4321, "done"))
			_, _, err := c.ReadMessage()
			var ce *websocket.CloseError
			if !errors.As(err, &ce) || ce.Code != 4321 {
				t.Fatalf("close: %v, want the code echoed", err)
			}
		})
	}
}

// wss:// with a gorilla client offering compression, against a Worker on
// the ssl transport.
func TestWebSocketTLSInteropGorilla(t *testing.T) {
	leakcheck.Check(t)
	cert, pool := testcert.Pair(t)
	addr := interopEchoWorker(t, &tls.Config{Certificates: []tls.Certificate{cert}})
	d := &websocket.Dialer{TLSClientConfig: &tls.Config{RootCAs: pool}, HandshakeTimeout: 10 * time.Second, EnableCompression: true}
	c, resp := gorillaDial(t, "wss://"+addr+"/", d)
	expectDeflate(t, resp, true)
	c.SetReadDeadline(time.Now().Add(20 * time.Second))
	for _, m := range []string{"over tls", strings.Repeat("big ", 50000), "héllo wörld ✓"} {
		if err := c.WriteMessage(websocket.TextMessage, []byte(m)); err != nil {
			t.Fatal(err)
		}
		if typ, got, err := c.ReadMessage(); err != nil || typ != websocket.TextMessage || string(got) != m {
			t.Fatalf("type %d, %d bytes back of %d, %v", typ, len(got), len(m), err)
		}
	}
}

// An AsyncConnection against a gorilla server: the handshake carries the
// configured header, origin, subprotocol and compression offer; messages of
// every size come back.
func TestAsyncConnectionAgainstGorilla(t *testing.T) {
	leakcheck.Check(t)
	var sawHeader, sawOrigin, sawExt atomic.Value
	up := websocket.Upgrader{EnableCompression: true, Subprotocols: []string{"chat"}, CheckOrigin: func(*http.Request) bool { return true }}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sawHeader.Store(r.Header.Get("X-App"))
		sawOrigin.Store(r.Header.Get("Origin"))
		sawExt.Store(r.Header.Get("Sec-WebSocket-Extensions"))
		conn, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer conn.Close()
		for {
			mt, m, err := conn.ReadMessage()
			if err != nil {
				return
			}
			conn.WriteMessage(mt, m)
		}
	}))
	t.Cleanup(srv.Close)

	msgs := make(chan string, 16)
	types := make(chan protocol.MessageType, 16)
	handshakes := make(chan *workerman.WebSocketResponse, 1)
	errs := make(chan error, 16)
	c := workerman.NewAsyncConnection("ws://" + strings.TrimPrefix(srv.URL, "http://") + "/echo")
	c.WebSocket.Header = http.Header{"X-App": {"demo"}}
	c.WebSocket.Origin = "http://origin.test"
	c.WebSocket.Protocols = []string{"chat"}
	c.OnWebSocketConnect = func(_ *workerman.AsyncConnection, r *workerman.WebSocketResponse) { handshakes <- r }
	c.OnMessage = func(a *workerman.AsyncConnection, d []byte) {
		types <- a.MessageType()
		msgs <- string(d)
	}
	c.OnError = func(_ *workerman.AsyncConnection, err error) { errs <- err }
	t.Cleanup(c.Destroy) // before srv.Close: the handler returns once the client is gone
	if err := c.Connect(); err != nil {
		t.Fatal(err)
	}

	var r *workerman.WebSocketResponse
	select {
	case r = <-handshakes:
	case err := <-errs:
		t.Fatalf("OnError(%v)", err)
	case <-time.After(10 * time.Second):
		t.Fatal("no handshake")
	}
	if r.Subprotocol != "chat" || !r.Compressed {
		t.Fatalf("response %+v", r)
	}
	if sawHeader.Load() != "demo" || sawOrigin.Load() != "http://origin.test" || !strings.Contains(sawExt.Load().(string), "permessage-deflate") {
		t.Fatalf("server saw header %v origin %v extensions %v", sawHeader.Load(), sawOrigin.Load(), sawExt.Load())
	}

	// The 8 MiB echo is compressed both ways by gorilla under the race
	// detector: on a loaded machine that takes many seconds.
	expect := func(typ protocol.MessageType, want string, within time.Duration) {
		t.Helper()
		select {
		case got := <-msgs:
			if got != want {
				t.Fatalf("echo of %d bytes: got %d bytes that differ", len(want), len(got))
			}
			if gotType := <-types; gotType != typ {
				t.Fatalf("echo of a %v message came back as %v", typ, gotType)
			}
		case err := <-errs:
			t.Fatalf("OnError(%v)", err)
		case <-time.After(within):
			t.Fatalf("no echo of %d bytes within %v", len(want), within)
		}
	}
	long := strings.Repeat("compress me ", 2000)
	for _, m := range []string{"hi", long, "ünïcødé"} {
		c.SendString(m)
		expect(protocol.TextMessage, m, 10*time.Second)
	}
	big := make([]byte, 8<<20)
	rand.Read(big)
	c.SendMessage(protocol.BinaryMessage, big)
	expect(protocol.BinaryMessage, string(big), time.Minute)
}
