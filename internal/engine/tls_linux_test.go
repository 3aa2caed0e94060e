//go:build linux

package engine

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"os"
	"reflect"
	"runtime"
	"sync"
	"testing"
	"time"
	"unsafe"

	"github.com/workerman-go/workerman/internal/leakcheck"

	"github.com/workerman-go/workerman/internal/testcert"
)

// tlsServer listens with TLS on a fresh engine of each kind and returns the
// address; accept makes the handlers.
func tlsServer(t testing.TB, eng Engine, accept AcceptFunc) (string, *tls.Config) {
	t.Helper()
	cert, pool := testcert.Pair(t)
	ln := &Listener{Network: "tcp", Address: "127.0.0.1:0", TLS: &tls.Config{Certificates: []tls.Certificate{cert}}}
	if err := eng.Listen(ln, accept); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln.Addr().String(), &tls.Config{RootCAs: pool}
}

func tlsEngines(t *testing.T, f func(t *testing.T, eng Engine)) {
	for _, e := range testEngines(2) {
		t.Run(e.name, func(t *testing.T) {
			leakcheck.Check(t)
			eng, err := e.new()
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(eng.Stop) // after the listener's Close
			f(t, eng)
		})
	}
}

// Over TLS the engine echoes what crypto/tls clients send, in order, from a
// byte to many records, on many connections at once; on the loop an idle
// TLS connection keeps no goroutine once its handshake is over.
func TestTLSEcho(t *testing.T) {
	tlsEngines(t, func(t *testing.T, eng Engine) {
		closed := make(chan error, 100)
		addr, cfg := tlsServer(t, eng, func(c Conn, _ int) Handler { return &echoHandler{c: c, closed: closed} })
		base := runtime.NumGoroutine()
		const conns = 40
		sizes := []int{1, 100, 1000, 1 << 10, 16<<10 + 3, 200 << 10}
		clients := make([]*tls.Conn, conns)
		var wg sync.WaitGroup
		errs := make(chan error, conns)
		for i := range clients {
			c, err := tls.Dial("tcp", addr, cfg)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { c.Close() })
			clients[i] = c
			wg.Add(1)
			go func() {
				defer wg.Done()
				c.SetDeadline(time.Now().Add(20 * time.Second))
				for k, n := range sizes {
					msg := bytes.Repeat([]byte{byte('a' + k + i%7)}, n)
					go c.Write(msg) // the echo comes back while we write
					got := make([]byte, n)
					if _, err := io.ReadFull(c, got); err != nil {
						errs <- err
						return
					}
					if !bytes.Equal(got, msg) {
						errs <- errors.New("echo differs")
						return
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		if _, ok := eng.(*loopEngine); ok {
			// Every handshake is over: the connections hold no goroutine.
			deadline := time.Now().Add(10 * time.Second)
			for runtime.NumGoroutine() > base+2 {
				if time.Now().After(deadline) {
					t.Fatalf("%d goroutines with %d idle TLS connections, %d before", runtime.NumGoroutine(), conns, base)
				}
				runtime.Gosched()
				time.Sleep(time.Millisecond)
			}
		}
		for _, c := range clients {
			c.Close()
		}
		for range conns {
			waitFor(t, closed, "OnClose")
		}
	})
}

// pausingHandler stops reading after its first bytes until told to go on.
type pausingHandler struct {
	c      Conn
	mu     sync.Mutex
	got    []byte
	first  chan struct{}
	all    chan struct{}
	want   int
	eof    chan struct{}
	closed chan error
}

func (h *pausingHandler) OnRead(in []byte) (int, int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	first := len(h.got) == 0
	h.got = append(h.got, in...)
	if first {
		h.c.PauseRead(ByUser)
		close(h.first)
	}
	if len(h.got) == h.want {
		close(h.all)
	}
	return len(in), 0
}
func (h *pausingHandler) OnEOF()            { close(h.eof) }
func (h *pausingHandler) OnDrain()          {}
func (h *pausingHandler) OnClose(err error) { h.closed <- err }

// A TLS connection paused by its owner holds what it read (decrypted or
// not) and hands all of it over, in order, when resumed, then the peer's
// close_notify as OnEOF.
func TestTLSPauseResume(t *testing.T) {
	tlsEngines(t, func(t *testing.T, eng Engine) {
		const size = 3 << 20
		h := &pausingHandler{first: make(chan struct{}), all: make(chan struct{}), want: size, eof: make(chan struct{}), closed: make(chan error, 1)}
		conns := make(chan Conn, 1)
		addr, cfg := tlsServer(t, eng, func(c Conn, _ int) Handler { h.c = c; conns <- c; return h })
		c, err := tls.Dial("tcp", addr, cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		msg := make([]byte, size)
		for i := range msg {
			msg[i] = byte(i * 7 / 3)
		}
		wrote := make(chan error, 1)
		go func() {
			_, err := c.Write(msg)
			if err == nil {
				err = c.CloseWrite()
			}
			wrote <- err
		}()
		sc := waitFor(t, conns, "accept")
		waitFor(t, h.first, "the first bytes")
		h.mu.Lock()
		held := len(h.got)
		h.mu.Unlock()
		if held == size {
			t.Fatal("everything arrived in the first read")
		}
		sc.ResumeRead(ByUser)
		waitFor(t, h.all, "every byte after the resume")
		waitFor(t, h.eof, "OnEOF after close_notify")
		if err := waitFor(t, wrote, "the client's write"); err != nil {
			t.Fatal(err)
		}
		h.mu.Lock()
		defer h.mu.Unlock()
		if !bytes.Equal(h.got, msg) {
			t.Fatal("the bytes differ from those sent")
		}
	})
}

// greeter writes on accept, before the handshake, and closes at once: the
// client gets every byte, then close_notify (io.EOF).
type greeter struct {
	closed chan error
}

func (g *greeter) OnRead(in []byte) (int, int) { return len(in), 0 }
func (g *greeter) OnEOF()                      {}
func (g *greeter) OnDrain()                    {}
func (g *greeter) OnClose(err error)           { g.closed <- err }

func TestTLSWriteAndCloseBeforeTheHandshake(t *testing.T) {
	tlsEngines(t, func(t *testing.T, eng Engine) {
		g := &greeter{closed: make(chan error, 10)}
		big := bytes.Repeat([]byte("0123456789"), 100<<10)
		addr, cfg := tlsServer(t, eng, func(c Conn, _ int) Handler {
			c.Write([]byte("hello "), 1<<30, false)
			c.Write(big, 1<<30, false)
			c.Close()
			return g
		})
		for range 5 {
			c, err := tls.Dial("tcp", addr, cfg)
			if err != nil {
				t.Fatal(err)
			}
			c.SetDeadline(time.Now().Add(10 * time.Second))
			got, err := io.ReadAll(c)
			c.Close()
			if err != nil {
				t.Fatalf("read: %v (after %d bytes)", err, len(got))
			}
			if want := append([]byte("hello "), big...); !bytes.Equal(got, want) {
				t.Fatalf("got %d bytes, want %d", len(got), len(want))
			}
			if err := waitFor(t, g.closed, "OnClose"); err != nil {
				t.Fatalf("OnClose(%v), want nil", err)
			}
		}
	})
}

// A peer that does not speak TLS, or stalls in the handshake, is closed
// with an error; a good client meanwhile is served.
func TestTLSBadPeers(t *testing.T) {
	old := tlsHandshakeTimeout
	tlsHandshakeTimeout = 300 * time.Millisecond
	defer func() { tlsHandshakeTimeout = old }()
	leakcheck.Check(t)
	eng, err := New(Config{Loops: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(eng.Stop)
	closed := make(chan error, 10)
	addr, cfg := tlsServer(t, eng, func(c Conn, _ int) Handler { return &echoHandler{c: c, closed: closed} })

	plain, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	plain.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
	if err := waitFor(t, closed, "OnClose of a plain HTTP client"); err == nil {
		t.Fatal("a plain HTTP client closed with no error")
	}

	stalled, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer stalled.Close()
	stalled.Write([]byte{22, 3, 1}) // the start of a record, then nothing
	start := time.Now()
	if err := waitFor(t, closed, "OnClose of a stalled handshake"); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("a stalled handshake closed with %v, want a deadline", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("a stalled handshake was closed after %v", d)
	}

	good, err := tls.Dial("tcp", addr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer good.Close()
	good.SetDeadline(time.Now().Add(10 * time.Second))
	good.Write([]byte("ping"))
	buf := make([]byte, 4)
	if _, err := io.ReadFull(good, buf); err != nil || string(buf) != "ping" {
		t.Fatalf("good client: %q, %v", buf, err)
	}
	good.Close()
	waitFor(t, closed, "OnClose of the good client")
}

// A TLS dial: writes made before it is up go out after the handshake, in
// order; a server that does not speak TLS fails the dial and its handler
// hears nothing; Close during the handshake cancels it (net.ErrClosed); a
// silent server runs into the dial's timeout (os.ErrDeadlineExceeded).
func TestTLSDial(t *testing.T) {
	addr, pool := serveTLS(t, func(c net.Conn) {
		c.Write([]byte("greeting;"))
		io.Copy(c, c)
	})
	var served sync.WaitGroup
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	var held []net.Conn
	var hmu sync.Mutex
	served.Add(1)
	go func() {
		defer served.Done()
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			hmu.Lock()
			held = append(held, c)
			hmu.Unlock()
		}
	}()
	defer func() {
		silent.Close()
		hmu.Lock()
		for _, c := range held {
			c.Close()
		}
		hmu.Unlock()
		served.Wait()
	}()

	tlsEngines(t, func(t *testing.T, eng Engine) {
		cfg := &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}
		dc := eng.Dial(DialRequest{Network: "tcp", Address: addr, Timeout: 5 * time.Second, TLS: cfg})
		h := &collector{in: make(chan []byte, 100), eof: make(chan struct{}, 1), closed: make(chan error, 1)}
		dc.Write([]byte("one;"), 1<<20, false)
		dc.Write([]byte("two;"), 1<<20, false)
		up := make(chan error, 1)
		dc.Start(h, func(err error) { up <- err })
		if err := waitFor(t, up, "dial"); err != nil {
			t.Fatal(err)
		}
		dc.Write([]byte("three;"), 1<<20, false)
		want := "greeting;one;two;three;"
		var got []byte
		for len(got) < len(want) {
			got = append(got, waitFor(t, h.in, "echo")...)
		}
		if string(got) != want {
			t.Fatalf("got %q, want %q", got, want)
		}
		dc.Close()
		if err := waitFor(t, h.closed, "OnClose"); err != nil {
			t.Fatalf("OnClose(%v)", err)
		}

		// Not TLS: the silent server's socket is closed by the dial's
		// timeout; Close cancels a dial in its handshake.
		dc = eng.Dial(DialRequest{Network: "tcp", Address: silent.Addr().String(), Timeout: 300 * time.Millisecond, TLS: cfg})
		h = &collector{in: make(chan []byte, 1), eof: make(chan struct{}, 1), closed: make(chan error, 1)}
		dc.Start(h, func(err error) { up <- err })
		if err := waitFor(t, up, "dial timeout"); !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("dial to a silent server: %v, want a deadline", err)
		}
		dc = eng.Dial(DialRequest{Network: "tcp", Address: silent.Addr().String(), Timeout: 5 * time.Second, TLS: cfg})
		dc.Start(h, func(err error) { up <- err })
		for deadline := time.Now().Add(10 * time.Second); ; {
			hmu.Lock()
			n := len(held)
			hmu.Unlock()
			if n >= 2 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("the silent server accepted nothing")
			}
			time.Sleep(time.Millisecond)
		}
		dc.Close()
		if err := waitFor(t, up, "cancelled dial"); !errors.Is(err, net.ErrClosed) {
			t.Fatalf("dial closed in its handshake: %v, want net.ErrClosed", err)
		}
		select {
		case err := <-h.closed:
			t.Fatalf("the handler of a failed dial heard OnClose(%v)", err)
		case <-h.in:
			t.Fatal("the handler of a failed dial heard OnRead")
		default:
		}
		hmu.Lock()
		for _, c := range held {
			c.Close()
		}
		held = nil
		hmu.Unlock()
	})
}

// capsHandler echoes and, when the byte it waits for arrives, reports the
// capacities of crypto/tls's input buffers as they are during that read: its
// own connection's, or, with of set, another connection's on the same loop.
type capsHandler struct {
	c    *tlsConn
	of   *capsHandler
	n    int
	at   int
	caps chan [2]int
}

func (h *capsHandler) OnRead(in []byte) (int, int) {
	h.n += len(in)
	if h.n == h.at {
		c := h.c
		if h.of != nil {
			c = h.of.c
		}
		raw, hand := tlsBufferCaps(c.tc)
		h.caps <- [2]int{raw, hand}
	}
	h.c.Write(in, 1<<30, false)
	return len(in), 0
}
func (h *capsHandler) OnEOF()        { h.c.Close() }
func (h *capsHandler) OnDrain()      {}
func (h *capsHandler) OnClose(error) {}

// An idle TLS connection on the loop that keeps crypto/tls's record layer
// (TLS 1.2 here) keeps none of crypto/tls's input buffers, whatever its
// handshake or its largest message grew them to; while it reads a small
// message, its record buffer is one the size of that message.
func TestTLSBuffersReleased(t *testing.T) {
	if !tlsBuffersFound {
		t.Fatal("crypto/tls's rawInput, input and hand buffers were not found: idle TLS connections keep them (see tls_buffers_linux.go)")
	}
	leakcheck.Check(t)
	eng, err := New(Config{Loops: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(eng.Stop)
	const big = 10 << 10
	first := &capsHandler{at: big + 1, caps: make(chan [2]int, 1)}
	// The second connection's byte is read on the same loop after the
	// first connection's last read ended: its handler sees the first
	// connection idle.
	second := &capsHandler{of: first, at: 1, caps: make(chan [2]int, 1)}
	accepted := 0
	addr, cfg := tlsServer(t, eng, func(c Conn, _ int) Handler {
		h := []*capsHandler{first, second}[accepted]
		accepted++
		h.c = c.(*tlsConn)
		return h
	})
	cfg.MaxVersion = tls.VersionTLS12
	dial := func() *tls.Conn {
		c, err := tls.Dial("tcp", addr, cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		c.SetDeadline(time.Now().Add(10 * time.Second))
		return c
	}
	echo := func(c *tls.Conn, n int) {
		go c.Write(bytes.Repeat([]byte("y"), n))
		if _, err := io.ReadFull(c, make([]byte, n)); err != nil {
			t.Fatal(err)
		}
	}
	c := dial()
	for _, n := range []int{big, 1} {
		echo(c, n)
	}
	caps := waitFor(t, first.caps, "the first connection's second message")
	if caps[0] > 1<<10 || caps[1] != 0 {
		t.Fatalf("reading a 1-byte message after a 10 KiB one: record buffer %d bytes (want at most 1 KiB), handshake buffer %d (want 0)", caps[0], caps[1])
	}
	echo(dial(), 1)
	caps = waitFor(t, second.caps, "the second connection's message")
	if caps != [2]int{0, 0} {
		t.Fatalf("an idle connection keeps a record buffer of %d bytes and a handshake buffer of %d (want none)", caps[0], caps[1])
	}
}

// A client that connects and closes without sending a byte (a health check)
// is closed at once, with an error: no handshake will ever end.
func TestTLSClosedBeforeTheHandshake(t *testing.T) {
	leakcheck.Check(t)
	eng, err := New(Config{Loops: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(eng.Stop)
	closed := make(chan error, 1)
	addr, _ := tlsServer(t, eng, func(c Conn, _ int) Handler { return &echoHandler{c: c, closed: closed} })
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	if err := waitFor(t, closed, "OnClose of a client gone before its handshake"); !errors.Is(err, io.EOF) {
		t.Fatalf("OnClose(%v), want io.EOF", err)
	}
	if n := eng.Held(); n != 0 {
		t.Fatalf("the engine holds %d connections", n)
	}
}

// A dial whose owner writes and closes as soon as it hears done(nil) (an
// OnConnect that says goodbye): the server gets the bytes, then the close.
func TestTLSDialWriteAndCloseAtOnce(t *testing.T) {
	leakcheck.Check(t)
	got := make(chan string, 10)
	addr, pool := serveTLS(t, func(c net.Conn) {
		b, err := io.ReadAll(c)
		if err != nil {
			b = append(b, "(error: "+err.Error()+")"...)
		}
		got <- string(b)
	})
	eng, err := New(Config{Loops: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Stop()
	for i := range 20 {
		dc := eng.Dial(DialRequest{Network: "tcp", Address: addr, Timeout: 5 * time.Second, TLS: &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}})
		h := &collector{in: make(chan []byte, 10), eof: make(chan struct{}, 1), closed: make(chan error, 1)}
		dc.Start(h, func(err error) {
			if err != nil {
				t.Errorf("dial %d: %v", i, err)
				return
			}
			dc.Write([]byte("bye"), 1<<20, false)
			dc.Close()
		})
		if s := waitFor(t, got, "what the server read"); s != "bye" {
			t.Fatalf("dial %d: the server read %q, want bye", i, s)
		}
		if err := waitFor(t, h.closed, "OnClose"); err != nil {
			t.Fatalf("dial %d: OnClose(%v)", i, err)
		}
	}
}

// serveTLS runs a crypto/tls server for the test: serve handles each
// connection (10 s deadline), which is then closed. It returns the address
// and the pool that trusts the server.
func serveTLS(t *testing.T, serve func(net.Conn)) (string, *x509.CertPool) {
	t.Helper()
	cert, pool := testcert.Pair(t)
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}})
	if err != nil {
		t.Fatal(err)
	}
	var served sync.WaitGroup
	served.Add(1)
	go func() {
		defer served.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			served.Add(1)
			go func() {
				defer served.Done()
				defer c.Close()
				c.SetDeadline(time.Now().Add(10 * time.Second))
				serve(c)
			}()
		}
	}()
	t.Cleanup(func() { ln.Close(); served.Wait() })
	return ln.Addr().String(), pool
}

// secrets is what a TLS connection keeps of the secrets dropTLSSecrets
// drops, read on its loop when a byte arrives.
type secrets struct {
	taken      bool  // the engine's record layer took over: no tls.Conn is kept
	handshake  error // Handshake() again
	fnDropped  bool  // handshakeFn is nil
	ekmDropped bool  // ekm is noEKM
	resumption int   // len(resumptionSecret)
	resumed    bool  // ConnectionState().DidResume
}

func tlsSecrets(tc *tls.Conn) secrets {
	p := unsafe.Pointer(tc)
	ekm := *(*tlsExporter)(unsafe.Add(p, tlsEKM))
	return secrets{
		handshake:  tc.Handshake(),
		fnDropped:  *(*func(context.Context) error)(unsafe.Add(p, tlsHandshakeFn)) == nil,
		ekmDropped: reflect.ValueOf(ekm).Pointer() == reflect.ValueOf(noEKM).Pointer(),
		resumption: len(*(*[]byte)(unsafe.Add(p, tlsResumptionSecret))),
		resumed:    tc.ConnectionState().DidResume,
	}
}

// secretsHandler echoes (a server) or collects (a dial) and reports its
// connection's secrets at the first byte.
type secretsHandler struct {
	c    *tlsConn
	dial bool
	seen bool
	got  chan secrets
}

func (h *secretsHandler) OnRead(in []byte) (int, int) {
	if !h.seen {
		h.seen = true
		if h.c.tc == nil {
			h.got <- secrets{taken: h.c.rec != nil}
		} else {
			h.got <- tlsSecrets(h.c.tc)
		}
	}
	if !h.dial {
		h.c.Write(in, 1<<20, false)
	}
	return len(in), 0
}
func (h *secretsHandler) OnEOF()        { h.c.Close() }
func (h *secretsHandler) OnDrain()      {}
func (h *secretsHandler) OnClose(error) {}

// After the handshake a TLS connection on the loop keeps neither its
// handshake function (Handshake still says it is done), the exporter's
// secret nor, on a server, the resumption secret; a client keeps
// the one it needs for the tickets that come after the handshake, and a
// second dial resumes the session with one. A TLS 1.3 server keeps no
// tls.Conn at all (the engine's record layer took over).
func TestTLSSecretsDropped(t *testing.T) {
	if !tlsSecretsFound {
		t.Fatal("crypto/tls's ekm and resumptionSecret fields were not found: TLS connections keep them (see tls_state_linux.go)")
	}
	leakcheck.Check(t)
	eng, err := New(Config{Loops: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(eng.Stop)
	served := make(chan secrets, 2)
	addr, cfg := tlsServer(t, eng, func(c Conn, _ int) Handler {
		return &secretsHandler{c: c.(*tlsConn), got: served}
	})
	cfg.ServerName = "127.0.0.1"
	for _, vers := range []uint16{tls.VersionTLS13, tls.VersionTLS12} {
		cfg := cfg.Clone()
		cfg.MaxVersion = vers
		cfg.ClientSessionCache = tls.NewLRUClientSessionCache(4)
		dialTwice(t, eng, addr, cfg, served)
	}
}

func dialTwice(t *testing.T, eng Engine, addr string, cfg *tls.Config, served chan secrets) {
	tls13 := cfg.MaxVersion == tls.VersionTLS13
	for i, resumed := range []bool{false, true} {
		dc := eng.Dial(DialRequest{Network: "tcp", Address: addr, Timeout: 5 * time.Second, TLS: cfg})
		h := &secretsHandler{c: dc.(*tlsConn), dial: true, got: make(chan secrets, 1)}
		up := make(chan error, 1)
		dc.Start(h, func(err error) { up <- err })
		if err := waitFor(t, up, "dial"); err != nil {
			t.Fatal(err)
		}
		dc.Write([]byte("x"), 1<<20, false)
		server := waitFor(t, served, "the server's read")
		client := waitFor(t, h.got, "the echo")
		want := secrets{fnDropped: true, ekmDropped: true, resumed: resumed}
		if tls13 {
			want = secrets{taken: true}
		}
		if server != want {
			t.Errorf("TLS %x, dial %d: the server keeps %+v, want %+v", cfg.MaxVersion, i+1, server, want)
		}
		if client.handshake != nil || !client.fnDropped || !client.ekmDropped || (client.resumption == 0) == tls13 || client.resumed != resumed {
			t.Errorf("dial %d: the client keeps %+v, want the handshake function and the exporter dropped, the resumption secret kept, resumed %v", i+1, client, resumed)
		}
		dc.Close()
	}
}

// The fields the engine's record layer takes from a tls.Conn are where it
// looks for them: should a Go release move them, TLS 1.3 servers keep
// crypto/tls's record layer (and its memory) and this test says so.
func TestTLSRecordFieldsFound(t *testing.T) {
	if !tlsRecordFields.ok {
		t.Fatal("crypto/tls's version, suite, halfConn cipher, sequence or traffic secret fields were not found: TLS 1.3 servers keep crypto/tls's record layer (see tls_records_linux.go)")
	}
}
