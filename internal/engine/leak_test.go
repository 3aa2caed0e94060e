package engine

import (
	"bytes"
	"io"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/workerman-go/workerman/internal/leakcheck"
)

func TestMain(m *testing.M) { leakcheck.Main(m) }

// testEngines are the engines, with loops event loops each.
func testEngines(loops int) []struct {
	name string
	new  func() (Engine, error)
} {
	return []struct {
		name string
		new  func() (Engine, error)
	}{
		{"platform", func() (Engine, error) { return New(Config{Loops: loops}) }},
		{"goroutine", func() (Engine, error) { return NewGoroutine(Config{Loops: loops}), nil }},
		{"io_uring", func() (Engine, error) { return NewUring(Config{Loops: loops}) }},
		{"epoll-plain", func() (Engine, error) { return newPlainEngine(Config{Loops: loops}) }},
	}
}

// echoHandler sends back what it reads and reports its OnClose.
type echoHandler struct {
	c      Conn
	got    chan []byte // for dialed connections: what came back
	closed chan<- error
}

func (h *echoHandler) OnRead(in []byte) (int, int) {
	if h.got != nil {
		h.got <- bytes.Clone(in)
	} else {
		h.c.Write(in, 1<<20, false)
	}
	return len(in), 0
}
func (h *echoHandler) OnEOF()            { h.c.Close() }
func (h *echoHandler) OnDrain()          {}
func (h *echoHandler) OnClose(err error) { h.closed <- err }

// Stop leaves nothing behind: not the loops' goroutines and epoll and
// wake-up descriptors, not the listeners, and not the connections still
// open, which it destroys, whether accepted or dialed, over TCP and unix
// sockets, on both engines.
func TestStopReleasesDescriptorsAndGoroutines(t *testing.T) {
	for _, e := range testEngines(2) {
		t.Run(e.name, func(t *testing.T) {
			leakcheck.Check(t)
			eng, err := e.new()
			if err != nil {
				t.Fatal(err)
			}
			const clients, dialed = 100, 20
			closed := make(chan error, 2*(clients+dialed))
			accept := func(c Conn, _ int) Handler { return &echoHandler{c: c, closed: closed} }
			listeners := []*Listener{
				{Network: "tcp", Address: "127.0.0.1:0"},
				{Network: "unix", Address: filepath.Join(t.TempDir(), "s.sock")},
			}
			for _, ln := range listeners {
				if err := eng.Listen(ln, accept); err != nil {
					t.Fatal(err)
				}
			}

			// Plain clients: every other one closes after its echo, the
			// rest stay open until Stop.
			closing := 0
			for i := range clients {
				ln := listeners[i%2]
				c, err := net.DialTimeout(ln.Network, ln.Addr().String(), 5*time.Second)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { c.Close() })
				c.SetDeadline(time.Now().Add(10 * time.Second))
				if _, err := c.Write([]byte("hi")); err != nil {
					t.Fatal(err)
				}
				if _, err := io.ReadFull(c, make([]byte, 2)); err != nil {
					t.Fatal(err)
				}
				if i%4 < 2 {
					c.Close()
					closing++
				}
			}
			for range closing {
				waitFor(t, closed, "OnClose of a connection the client closed")
			}

			// Dialed connections, written to before they are up.
			for i := range dialed {
				ln := listeners[i%2]
				dc := eng.Dial(DialRequest{Network: ln.Network, Address: ln.Addr().String(), Timeout: 5 * time.Second})
				h := &echoHandler{c: dc, got: make(chan []byte, 10), closed: closed}
				dc.Write([]byte("x"), 1<<20, false)
				up := make(chan error, 1)
				dc.Start(h, func(err error) { up <- err })
				if err := waitFor(t, up, "dial"); err != nil {
					t.Fatal(err)
				}
				waitFor(t, h.got, "echo of a dialed connection")
			}

			for _, ln := range listeners {
				ln.Close()
			}
			eng.Stop()
			for range clients - closing + 2*dialed {
				waitFor(t, closed, "OnClose of a connection Stop destroyed")
			}
		})
	}
}

func waitFor[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(10 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}
