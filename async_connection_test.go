package workerman

import (
	"bufio"
	"context"
	"crypto/sha1"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"

	"github.com/workerman-go/workerman/internal/leakcheck"
	"github.com/workerman-go/workerman/protocol"

	"github.com/workerman-go/workerman/internal/testcert"
)

// client wires an AsyncConnection to channels for assertions.
type client struct {
	*AsyncConnection
	msgs      chan string
	types     chan protocol.MessageType
	connected chan struct{}
	closed    chan struct{}
	errs      chan error
	wsConn    chan *WebSocketResponse
}

func newClient(t *testing.T, uri string) *client {
	t.Helper()
	c := &client{
		AsyncConnection: NewAsyncConnection(uri),
		msgs:            make(chan string, 10000),
		types:           make(chan protocol.MessageType, 10000),
		connected:       make(chan struct{}, 100),
		closed:          make(chan struct{}, 100),
		errs:            make(chan error, 100),
		wsConn:          make(chan *WebSocketResponse, 10),
	}
	c.OnConnect = func(*AsyncConnection) { c.connected <- struct{}{} }
	c.OnMessage = func(a *AsyncConnection, d []byte) {
		c.types <- a.MessageType()
		c.msgs <- string(d)
	}
	c.OnClose = func(*AsyncConnection) { c.closed <- struct{}{} }
	c.OnError = func(_ *AsyncConnection, err error) { c.errs <- err }
	c.OnWebSocketConnect = func(_ *AsyncConnection, r *WebSocketResponse) { c.wsConn <- r }
	t.Cleanup(func() { c.Destroy() })
	return c
}

func (c *client) connect(t *testing.T) {
	t.Helper()
	if err := c.Connect(); err != nil {
		t.Fatal(err)
	}
}

func (c *client) expect(t *testing.T, want string) {
	t.Helper()
	if got := wait(t, c.msgs, "message "+want); got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}

// Every scheme against our own server, with messages queued before the
// connection is up delivered first and in order.
func TestAsyncConnectionSchemes(t *testing.T) {
	leakcheck.Check(t)
	cert, pool := testcert.Pair(t)
	cases := []struct {
		name, server, client string
		ssl                  bool
	}{
		{name: "text", server: "text", client: "text"},
		{name: "frame", server: "frame", client: "frame"},
		{name: "ws", server: "websocket", client: "ws"},
		{name: "wss", server: "websocket", client: "wss", ssl: true},
		{name: "text over ssl", server: "text", client: "text", ssl: true},
		{name: "unix", server: "unix", client: "unix"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := echoWorker(tc.server, false)
			w.OnMessage = func(c *Connection, d []byte) { c.SendMessage(c.MessageType(), d) }
			if tc.ssl {
				w.Transport, w.TLSConfig = "ssl", &tls.Config{Certificates: []tls.Certificate{cert}}
			}
			var uri string
			if tc.server == "unix" {
				path := filepath.Join(t.TempDir(), "s.sock")
				w.URI, w.Protocol = "unix://"+path, "text"
				serve(t, w)
				uri = "unix://" + path
			} else {
				uri = tc.client + "://" + serve(t, w) + "/path"
			}
			c := newClient(t, uri)
			if tc.ssl {
				c.Transport = "ssl"
				c.TLSConfig = &tls.Config{RootCAs: pool}
			}
			if tc.server == "unix" {
				c.Protocol = "text" // unix:// carries no codec of its own
			}
			for i := range 20 {
				c.SendString(fmt.Sprintf("queued %d", i)) // before Connect
			}
			c.OnConnect = func(a *AsyncConnection) { a.SendString("from OnConnect") }
			c.connect(t)
			for i := range 20 {
				c.expect(t, fmt.Sprintf("queued %d", i))
			}
			c.expect(t, "from OnConnect")
			if tc.client == "ws" || tc.client == "wss" {
				r := wait(t, c.wsConn, "OnWebSocketConnect")
				if r.Status != 101 || !r.Compressed {
					t.Fatalf("response %+v: want 101 with compression", r)
				}
				for range 21 {
					if typ := <-c.types; typ != protocol.TextMessage {
						t.Fatalf("text echoed as %v", typ)
					}
				}
				c.SendMessage(protocol.BinaryMessage, []byte{0, 1, 2})
				c.expect(t, "\x00\x01\x02")
				if typ := <-c.types; typ != protocol.BinaryMessage {
					t.Fatalf("binary echoed as %v", typ)
				}
			}
			c.Close()
			wait(t, c.closed, "OnClose")
		})
	}
}

// Against gobwas/ws's server, which offers no compression: plain frames,
// in order. The interop with gorilla/websocket's server is in the e2e module.
func TestAsyncConnectionAgainstGobwas(t *testing.T) {
	leakcheck.Check(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				if _, err := ws.Upgrade(conn); err != nil {
					return
				}
				for {
					m, op, err := wsutil.ReadClientData(conn)
					if err != nil {
						return
					}
					wsutil.WriteServerMessage(conn, op, m)
				}
			}()
		}
	}()
	c := newClient(t, "ws://"+ln.Addr().String()+"/")
	c.connect(t)
	if r := wait(t, c.wsConn, "OnWebSocketConnect"); r.Compressed {
		t.Fatal("gobwas's plain Upgrade accepted compression?")
	}
	for i := range 100 {
		c.SendString(fmt.Sprintf("m%d", i))
	}
	for i := range 100 {
		c.expect(t, fmt.Sprintf("m%d", i))
	}
}

// A server restart: the client's OnClose reconnects until the server is
// back, and messages sent meanwhile are delivered.
func TestAsyncConnectionReconnectsAfterServerRestart(t *testing.T) {
	leakcheck.Check(t)
	w := wsEchoWorker(false)
	addr := serve(t, w)
	c := newClient(t, "ws://"+addr+"/")
	var attempts atomic.Int32
	var done atomic.Bool
	c.OnClose = func(a *AsyncConnection) {
		attempts.Add(1)
		c.closed <- struct{}{}
		if !done.Load() {
			a.Reconnect(20 * time.Millisecond)
		}
	}
	c.connect(t)
	c.SendString("one")
	c.expect(t, "one")

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	w.Shutdown(ctx)
	wait(t, c.closed, "OnClose after the server stopped")
	// While the server is down: failed attempts, each reported.
	for range 3 {
		if err := wait(t, c.errs, "OnError"); !errors.Is(err, ErrConnectFailed) || !errors.Is(err, syscall.ECONNREFUSED) {
			t.Fatalf("OnError(%v), want ErrConnectFailed wrapping ECONNREFUSED", err)
		}
		wait(t, c.closed, "OnClose after a failed attempt")
	}
	c.SendString("sent while down")

	back := wsEchoWorker(false)
	back.URI = "websocket://" + addr
	serve(t, back)
	for {
		select {
		case <-c.errs:
			continue // attempts racing the restart
		case <-c.closed:
			continue
		case m := <-c.msgs:
			if m != "sent while down" {
				t.Fatalf("got %q", m)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("never reconnected")
		}
		break
	}
	c.SendString("two")
	c.expect(t, "two")
	if attempts.Load() < 4 {
		t.Fatalf("%d attempts", attempts.Load())
	}
	done.Store(true)
	c.Close()
	wait(t, c.closed, "the final OnClose")
}

func TestAsyncConnectionConnectFailures(t *testing.T) {
	leakcheck.Check(t)
	t.Run("refused", func(t *testing.T) {
		ln, _ := net.Listen("tcp", "127.0.0.1:0")
		addr := ln.Addr().String()
		ln.Close()
		c := newClient(t, "text://"+addr)
		c.connect(t)
		if err := wait(t, c.errs, "OnError"); !errors.Is(err, ErrConnectFailed) || !errors.Is(err, syscall.ECONNREFUSED) {
			t.Fatalf("OnError(%v)", err)
		}
		wait(t, c.closed, "OnClose")
		select {
		case <-c.connected:
			t.Fatal("OnConnect after a refused connect")
		default:
		}
	})
	t.Run("timeout", func(t *testing.T) {
		addr := blackHole(t)
		c := newClient(t, "text://"+addr)
		c.ConnectTimeout = 200 * time.Millisecond
		start := time.Now()
		c.connect(t)
		if err := wait(t, c.errs, "OnError"); !errors.Is(err, ErrConnectFailed) || !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("OnError(%v), want a deadline", err)
		}
		wait(t, c.closed, "OnClose")
		if el := time.Since(start); el < 200*time.Millisecond || el > 5*time.Second {
			t.Fatalf("gave up after %v", el)
		}
	})
	t.Run("close while connecting", func(t *testing.T) {
		c := newClient(t, "text://"+blackHole(t))
		c.connect(t)
		c.Close()
		wait(t, c.closed, "OnClose")
		select {
		case err := <-c.errs:
			t.Fatalf("OnError(%v) after Close", err)
		default:
		}
	})
	t.Run("bad addresses", func(t *testing.T) {
		for _, uri := range []string{"", "127.0.0.1:80", "text://nohostport", "nosuch://127.0.0.1:1"} {
			if err := NewAsyncConnection(uri).Connect(); err == nil {
				t.Errorf("Connect(%q) succeeded", uri)
			}
		}
	})
}

// blackHole returns an address whose listen queue is full, so that a
// connect there never completes: the kernel drops further SYNs.
func blackHole(t *testing.T) string {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	sa, _ := syscall.Getsockname(fd)
	addr := fmt.Sprintf("127.0.0.1:%d", sa.(*syscall.SockaddrInet4).Port)
	// Fill the queue; from now on SYNs go unanswered.
	for range 8 {
		d := net.Dialer{Timeout: 100 * time.Millisecond}
		if c, err := d.Dial("tcp", addr); err == nil {
			t.Cleanup(func() { c.Close() })
		} else {
			break
		}
	}
	return addr
}

// The WebSocket client checks the server: the accept key, unmasked frames,
// and it masks each of its own frames with a fresh key.
func TestAsyncConnectionWebSocketClientIsStrict(t *testing.T) {
	leakcheck.Check(t)
	rawServer := func(t *testing.T, respond func(conn net.Conn, key string)) string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ln.Close() })
		go func() {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			defer conn.Close()
			req, err := http.ReadRequest(bufio.NewReader(conn))
			if err != nil {
				return
			}
			respond(conn, req.Header.Get("Sec-WebSocket-Key"))
		}()
		return ln.Addr().String()
	}
	accept := func(conn net.Conn, key string) {
		fmt.Fprintf(conn, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n", protocolAccept(key))
	}
	t.Run("wrong accept key", func(t *testing.T) {
		addr := rawServer(t, func(conn net.Conn, key string) {
			fmt.Fprintf(conn, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n", protocolAccept("other"))
			io.Copy(io.Discard, conn)
		})
		c := newClient(t, "ws://"+addr+"/")
		c.connect(t)
		var he *HandshakeError
		if err := wait(t, c.errs, "OnError"); !errors.As(err, &he) {
			t.Fatalf("OnError(%v)", err)
		}
		wait(t, c.closed, "OnClose")
	})
	t.Run("masked server frame", func(t *testing.T) {
		got := make(chan []byte, 1)
		addr := rawServer(t, func(conn net.Conn, key string) {
			accept(conn, key)
			conn.Write(frame(true, 0, 1, true, []byte("masked!")))
			b, _ := io.ReadAll(conn)
			got <- b
		})
		c := newClient(t, "ws://"+addr+"/")
		c.connect(t)
		var ce *CloseError
		if err := wait(t, c.errs, "OnError"); !errors.As(err, &ce) || ce.Code != 1002 {
			t.Fatalf("OnError(%v), want 1002", err)
		}
		b := wait(t, got, "what the client sent")
		// A masked close frame with 1002.
		if len(b) < 8 || b[0] != 0x88 || b[1]&0x80 == 0 {
			t.Fatalf("client sent % x", b)
		}
		var key [4]byte
		copy(key[:], b[2:6])
		code := int(b[6]^key[0])<<8 | int(b[7]^key[1])
		if code != 1002 {
			t.Fatalf("close code %d", code)
		}
	})
	t.Run("fresh mask per frame", func(t *testing.T) {
		frames := make(chan []byte, 1)
		addr := rawServer(t, func(conn net.Conn, key string) {
			accept(conn, key)
			buf := make([]byte, 4096)
			var all []byte
			conn.SetReadDeadline(time.Now().Add(5 * time.Second))
			for len(all) < 3*(2+4+5) {
				n, err := conn.Read(buf)
				all = append(all, buf[:n]...)
				if err != nil {
					break
				}
			}
			frames <- all
		})
		c := newClient(t, "ws://"+addr+"/")
		c.WebSocket.NoCompression = true
		c.connect(t)
		wait(t, c.wsConn, "handshake")
		for range 3 {
			c.SendString("hello")
		}
		all := wait(t, frames, "frames")
		keys := map[[4]byte]bool{}
		for i := 0; i+11 <= len(all); i += 11 {
			f := all[i : i+11]
			if f[0] != 0x81 || f[1] != 0x85 {
				t.Fatalf("frame % x is not a masked text frame", f)
			}
			var k [4]byte
			copy(k[:], f[2:6])
			keys[k] = true
			for j := range 5 {
				f[6+j] ^= k[j%4]
			}
			if string(f[6:]) != "hello" {
				t.Fatalf("unmasked %q", f[6:])
			}
		}
		if len(keys) != 3 {
			t.Fatalf("%d distinct mask keys in 3 frames", len(keys))
		}
	})
}

func protocolAccept(key string) string {
	h := sha1.Sum([]byte(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	return base64.StdEncoding.EncodeToString(h[:])
}

// Ping interval: the client pings, the server's hook sees the pings.
func TestAsyncConnectionPingInterval(t *testing.T) {
	leakcheck.Check(t)
	w := wsEchoWorker(false)
	pings := make(chan struct{}, 10)
	w.OnWebSocketPing = func(c *Connection, d []byte) {
		pings <- struct{}{}
		c.SendMessage(protocol.PongMessage, d)
	}
	c := newClient(t, "ws://"+serve(t, w)+"/")
	c.WebSocket.PingInterval = 30 * time.Millisecond
	c.connect(t)
	for range 3 {
		wait(t, pings, "a client ping")
	}
}

// From a Worker's OnWorkerStart, as in Workerman: a worker that relays to
// another server.
func TestAsyncConnectionInsideOnWorkerStart(t *testing.T) {
	leakcheck.Check(t)
	backend := echoWorker("text", false)
	backendAddr := serve(t, backend)
	relayed := make(chan string, 1)
	front := &Worker{URI: "text://127.0.0.1:0"}
	var up *AsyncConnection
	front.OnWorkerStart = func(w *Worker, id int) {
		up = NewAsyncConnection("text://" + backendAddr)
		up.OnMessage = func(a *AsyncConnection, d []byte) { relayed <- string(d) }
		up.Connect()
	}
	front.OnMessage = func(c *Connection, d []byte) { up.Send(d) }
	c := dial(t, serve(t, front))
	t.Cleanup(func() { up.Close() })
	c.Write([]byte("through the relay\n"))
	if got := wait(t, relayed, "relayed echo"); got != "through the relay" {
		t.Fatalf("got %q", got)
	}
}

// 5,000 client connections in one process, each exchanging messages.
func TestAsyncConnectionFiveThousand(t *testing.T) {
	leakcheck.Check(t)
	if testing.Short() {
		t.Skip("5,000 connections")
	}
	w := wsEchoWorker(false)
	w.Count = 2
	addr := serve(t, w)
	const n = 5000
	var done sync.WaitGroup
	var failures atomic.Int32
	conns := make([]*AsyncConnection, n)
	for i := range n {
		done.Add(1)
		var once sync.Once
		finish := func() { once.Do(done.Done) }
		a := NewAsyncConnection("ws://" + addr + "/")
		a.OnConnect = func(a *AsyncConnection) { a.SendString(fmt.Sprint(i)) }
		a.OnMessage = func(a *AsyncConnection, d []byte) {
			if string(d) != fmt.Sprint(i) {
				failures.Add(1)
			}
			finish()
		}
		a.OnError = func(_ *AsyncConnection, err error) {
			failures.Add(1)
			t.Logf("connection %d: %v", i, err)
			finish()
		}
		conns[i] = a
		if err := a.Connect(); err != nil {
			t.Fatal(err)
		}
	}
	ch := make(chan struct{})
	go func() { done.Wait(); close(ch) }()
	wait(t, ch, "5,000 echoes")
	if failures.Load() != 0 {
		t.Fatalf("%d failures", failures.Load())
	}
	if got := w.ConnectionCount(); got != n {
		t.Fatalf("server holds %d connections, want %d", got, n)
	}
	closed := make(chan struct{}, n)
	for _, a := range conns {
		a.OnClose = func(*AsyncConnection) { closed <- struct{}{} }
		a.Close()
	}
	for range n {
		wait(t, closed, "OnClose")
	}
}

// SetWebSocketType outlives the connection it was called on: after a
// reconnect, Send still sends that type.
func TestAsyncConnectionKeepsWebSocketTypeAcrossReconnects(t *testing.T) {
	leakcheck.Check(t)
	got := make(chan protocol.MessageType, 4)
	w := &Worker{URI: "websocket://127.0.0.1:0"}
	w.OnMessage = func(c *Connection, data []byte) {
		got <- c.MessageType()
		if string(data) == "bye" {
			c.Close()
		}
	}
	addr := serve(t, w)
	c := newClient(t, "ws://"+addr+"/")
	var done atomic.Bool
	c.OnClose = func(a *AsyncConnection) {
		c.closed <- struct{}{}
		if !done.Load() {
			a.Reconnect(10 * time.Millisecond)
		}
	}
	c.connect(t)
	wait(t, c.wsConn, "the handshake")
	c.SetWebSocketType(protocol.BinaryMessage)
	c.SendString("bye")
	if typ := wait(t, got, "the first message"); typ != protocol.BinaryMessage {
		t.Fatalf("first connection sent %v, want binary", typ)
	}
	wait(t, c.closed, "OnClose")
	wait(t, c.wsConn, "the handshake of the reconnect")
	c.SendString("again")
	if typ := wait(t, got, "the message after the reconnect"); typ != protocol.BinaryMessage {
		t.Fatalf("after a reconnect Send sent %v, want binary", typ)
	}
	done.Store(true)
	c.Close()
	wait(t, c.closed, "the final OnClose")
}

// Connections made from one AsyncOptions share what the first Connect built
// (one template per URI) and each hears its own events; SetWebSocketType
// and a Clone change one connection alone.
func TestAsyncOptionsShared(t *testing.T) {
	leakcheck.Check(t)
	type msg struct {
		a    *AsyncConnection
		data string
	}
	got := make(chan msg, 100)
	types := make(chan protocol.MessageType, 100)
	w := &Worker{URI: "websocket://127.0.0.1:0"}
	w.OnMessage = func(c *Connection, data []byte) {
		types <- c.MessageType()
		c.SendMessage(c.MessageType(), data)
	}
	addr := serve(t, w)
	up := make(chan *AsyncConnection, 100)
	opts := &AsyncOptions{
		OnWebSocketConnect: func(a *AsyncConnection, _ *WebSocketResponse) { up <- a },
		OnMessage:          func(a *AsyncConnection, d []byte) { got <- msg{a, string(d)} },
	}
	const n = 20
	conns := make([]*AsyncConnection, n)
	for i := range conns {
		conns[i] = NewAsyncConnectionWith("ws://"+addr+"/", opts)
		t.Cleanup(conns[i].Destroy)
		if err := conns[i].Connect(); err != nil {
			t.Fatal(err)
		}
	}
	for range n {
		wait(t, up, "a handshake")
	}
	for i, a := range conns {
		if a.tmpl != conns[0].tmpl {
			t.Fatalf("connection %d: template %p; the first's %p", i, a.tmpl, conns[0].tmpl)
		}
		a.SendString(fmt.Sprint(i))
	}
	for range n {
		m := wait(t, got, "an echo")
		if m.data != fmt.Sprint(slices.Index(conns, m.a)) {
			t.Fatalf("connection %d heard %q", slices.Index(conns, m.a), m.data)
		}
	}
	for range n {
		if typ := wait(t, types, "a message's type"); typ != protocol.TextMessage {
			t.Fatalf("sent as %v", typ)
		}
	}

	// One connection binary, the others still text; the options unchanged.
	conns[0].SetWebSocketType(protocol.BinaryMessage)
	conns[0].SendString("b")
	if typ := wait(t, types, "the binary message"); typ != protocol.BinaryMessage {
		t.Fatalf("SetWebSocketType(binary): sent as %v", typ)
	}
	conns[1].SendString("t")
	if typ := wait(t, types, "a sibling's message"); typ != protocol.TextMessage || opts.WebSocket.BinaryType {
		t.Fatalf("a sibling sent %v (options' BinaryType %v)", typ, opts.WebSocket.BinaryType)
	}
	wait(t, got, "echo")
	wait(t, got, "echo")

	// A clone is a connection's own: its callback, not the others'.
	mine := make(chan string, 1)
	c := NewAsyncConnectionWith("ws://"+addr+"/", opts)
	t.Cleanup(c.Destroy)
	c.AsyncOptions = opts.Clone()
	c.OnMessage = func(_ *AsyncConnection, d []byte) { mine <- string(d) }
	if err := c.Connect(); err != nil {
		t.Fatal(err)
	}
	wait(t, up, "the clone's handshake")
	if c.tmpl == conns[0].tmpl {
		t.Fatal("the clone shares the template of the options it was copied from")
	}
	c.SendString("own")
	if d := wait(t, mine, "the clone's echo"); d != "own" {
		t.Fatalf("the clone heard %q", d)
	}
	select {
	case m := <-got:
		t.Fatalf("the shared OnMessage heard the clone's echo: %q", m.data)
	default:
	}

	// Options replaced after a connection's first Connect take effect at
	// its next attempt.
	moved := make(chan string, 1)
	b := conns[1]
	b.AsyncOptions = opts.Clone()
	b.OnMessage = func(_ *AsyncConnection, d []byte) { moved <- string(d) }
	if err := b.Reconnect(0); err != nil {
		t.Fatal(err)
	}
	wait(t, up, "the reconnect's handshake")
	b.SendString("moved")
	if d := wait(t, moved, "the echo after the options changed"); d != "moved" {
		t.Fatalf("heard %q", d)
	}
}

// StopAll closes every AsyncConnection: connected, still connecting, or
// waiting to reconnect. Those with an attempt under way are found among
// the client reactor's connections, the waiting one in the set that holds
// only the waiting ones; none is left listed.
func TestStopAllClosesAsyncConnections(t *testing.T) {
	leakcheck.Check(t)
	w := &Worker{URI: "websocket://127.0.0.1:0"}
	addr := serve(t, w)

	connected := newClient(t, "ws://"+addr+"/")
	connected.connect(t)
	wait(t, connected.wsConn, "the handshake")

	connecting := newClient(t, "tcp://"+blackHole(t))
	connecting.ConnectTimeout = time.Hour
	connecting.connect(t)

	waiting := newClient(t, "ws://"+addr+"/")
	waiting.connect(t)
	wait(t, waiting.wsConn, "the second handshake")
	if err := waiting.Reconnect(time.Hour); err != nil {
		t.Fatal(err)
	}
	wait(t, waiting.closed, "the waiting client's OnClose")

	closeAsyncs() // what StopAll does first
	wait(t, connected.closed, "the connected client's OnClose")
	wait(t, connecting.closed, "the connecting client's OnClose")
	for _, c := range []*client{connected, connecting, waiting} {
		if err := c.SendString("x"); !errors.Is(err, ErrClosed) {
			t.Errorf("%s: Send after StopAll: %v", c.uri, err)
		}
		c.mu.Lock()
		state, timer := c.state, c.timer
		c.mu.Unlock()
		if state != asyncClosed || timer != nil {
			t.Errorf("%s: state %d, reconnect timer %v after StopAll", c.uri, state, timer != nil)
		}
	}
	asyncs.Lock()
	listed := len(asyncs.waiting)
	asyncs.Unlock()
	if listed != 0 {
		t.Fatalf("%d AsyncConnections still listed as waiting", listed)
	}
}
