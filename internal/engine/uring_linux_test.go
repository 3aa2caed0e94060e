//go:build linux

package engine

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/workerman-go/workerman/internal/leakcheck"
	"golang.org/x/sys/unix"
)

// The io_uring engine also runs every table-driven engine test through
// testEngines; these tests are about what is its own: the shared receive
// buffers, the cancelled receive of a paused connection, and the fallback
// when the kernel refuses io_uring.

// newPlainEngine is the epoll engine without its ring for sends, as where
// the kernel refuses io_uring.
func newPlainEngine(cfg Config) (Engine, error) {
	return newLoopEngine(cfg.withDefaults(), false, true)
}

func newTestUring(t *testing.T, loops int) Engine {
	t.Helper()
	eng, err := NewUring(Config{Loops: loops})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(eng.Stop)
	return eng
}

// Many connections streaming at once, in pieces of every size, get every
// byte back in order: small receives of many connections share one
// buffer, large ones span buffers, and a burst that empties the ring of
// buffers re-arms the receives it ended. Both kinds of buffer ring.
func TestUringEchoStreams(t *testing.T) {
	for _, inc := range []bool{true, false} {
		name := "incremental"
		if !inc {
			name = "flat"
		}
		t.Run(name, func(t *testing.T) {
			leakcheck.Check(t)
			old := uringIncremental
			uringIncremental = inc
			t.Cleanup(func() { uringIncremental = old })
			eng := newTestUring(t, 2)
			closed := make(chan error, 1024)
			accept := func(c Conn, _ int) Handler { return &echoHandler{c: c, closed: closed} }
			ln := &Listener{Network: "tcp", Address: "127.0.0.1:0"}
			if err := eng.Listen(ln, accept); err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			const conns = 200
			total := 256 << 10
			if testing.Short() {
				total = 32 << 10
			}
			var wg sync.WaitGroup
			errs := make(chan error, conns)
			for i := range conns {
				wg.Add(1)
				go func() {
					defer wg.Done()
					errs <- echoStream(ln.Addr().String(), uint64(i), total)
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				if err != nil {
					t.Fatal(err)
				}
			}
			for range conns {
				waitFor(t, closed, "OnClose")
			}
			ln.Close()
			eng.Stop()
			// Every request ended before the buffers were unmapped.
			for _, l := range eng.(*loopEngine).loops {
				if l.armed != 0 {
					t.Errorf("loop %d stopped with %d requests armed", l.id, l.armed)
				}
			}
		})
	}
}

// echoStream writes total pseudo-random bytes in pieces of random sizes
// and checks that the same bytes come back.
func echoStream(addr string, seed uint64, total int) error {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	r := rand.New(rand.NewPCG(seed, 1))
	data := make([]byte, total)
	for i := range data {
		data[i] = byte(r.Uint32())
	}
	done := make(chan error, 1)
	go func() {
		p := data
		for len(p) > 0 {
			n := min(len(p), 1+r.IntN(20<<10))
			if r.IntN(2) == 0 {
				n = min(len(p), 1+r.IntN(100))
			}
			if _, err := c.Write(p[:n]); err != nil {
				done <- err
				return
			}
			p = p[n:]
		}
		done <- c.(*net.TCPConn).CloseWrite()
	}()
	got, err := io.ReadAll(c)
	if werr := <-done; werr != nil {
		return werr
	}
	if err != nil {
		return err
	}
	if !bytes.Equal(got, data) {
		return errors.New("echo differs from what was sent")
	}
	return nil
}

// pauser pauses its connection on the first byte and counts what it is
// handed.
type pauser struct {
	c      Conn
	mu     sync.Mutex
	got    []byte
	first  chan struct{}
	more   chan struct{}
	closed chan error
}

func (h *pauser) OnRead(in []byte) (int, int) {
	h.mu.Lock()
	first := len(h.got) == 0
	h.got = append(h.got, in...)
	h.mu.Unlock()
	if first {
		h.c.PauseRead(ByUser)
		close(h.first)
	}
	select {
	case h.more <- struct{}{}:
	default:
	}
	return len(in), 0
}
func (h *pauser) OnEOF()            { h.c.Close() }
func (h *pauser) OnDrain()          {}
func (h *pauser) OnClose(err error) { h.closed <- err }

func (h *pauser) received() []byte {
	h.mu.Lock()
	defer h.mu.Unlock()
	return bytes.Clone(h.got)
}

// A paused connection stops reading: its receive is cancelled, so the
// peer's writes fill the socket buffers and block instead of piling up in
// the process. Resumed, it hands over what it kept, then the rest, in
// order.
func TestUringPauseStopsReading(t *testing.T) {
	leakcheck.Check(t)
	eng := newTestUring(t, 1)
	h := &pauser{first: make(chan struct{}), more: make(chan struct{}, 1), closed: make(chan error, 1)}
	accepted := make(chan Conn, 1)
	ln := &Listener{Network: "tcp", Address: "127.0.0.1:0"}
	if err := eng.Listen(ln, func(c Conn, _ int) Handler { h.c = c; accepted <- c; return h }); err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.DialTimeout("tcp", ln.Addr().String(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// Small kernel buffers, so that a stopped reader blocks the writer soon.
	raw, _ := c.(*net.TCPConn).SyscallConn()
	raw.Control(func(fd uintptr) { unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_SNDBUF, 4096) })
	sc := waitFor(t, accepted, "accept")

	const total = 4 << 20
	data := bytes.Repeat([]byte("0123456789abcdef"), total/16)
	written := make(chan int, 1)
	go func() {
		c.SetWriteDeadline(time.Now().Add(500 * time.Millisecond))
		n, _ := c.Write(data)
		written <- n
	}()
	waitFor(t, h.first, "the first bytes")
	n := waitFor(t, written, "the writer to stop")
	if n >= total {
		t.Fatalf("the peer wrote all %d bytes to a paused connection", n)
	}
	if r := sc.BytesRead(); r > 2<<20 {
		t.Fatalf("a paused connection read %d bytes", r)
	}
	sc.ResumeRead(ByUser)
	c.SetWriteDeadline(time.Time{})
	go func() {
		c.Write(data[n:])
		c.(*net.TCPConn).CloseWrite()
	}()
	select {
	case <-h.closed:
	case <-time.After(10 * time.Second):
		t.Fatalf("no OnClose; %d of %d bytes read, %d handed over", sc.BytesRead(), total, len(h.received()))
	}
	if got := h.received(); !bytes.Equal(got, data) {
		t.Fatalf("got %d bytes, want the %d sent in order", len(got), len(data))
	}
}

// Where io_uring_setup is refused (no kernel support, a seccomp policy),
// NewUring says so with ErrUringUnavailable and leaves nothing behind.
func TestUringRefused(t *testing.T) {
	for _, errno := range []unix.Errno{unix.ENOSYS, unix.EPERM} {
		t.Run(errno.Error(), func(t *testing.T) {
			leakcheck.Check(t)
			old := iouSetup
			iouSetup = func(uint32, *iouParams) (int, error) { return -1, errno }
			t.Cleanup(func() { iouSetup = old })
			eng, err := NewUring(Config{Loops: 2})
			if !errors.Is(err, ErrUringUnavailable) || !errors.Is(err, errno) || eng != nil {
				t.Fatalf("NewUring with io_uring_setup failing with %v: %v, %v", errno, eng, err)
			}
		})
	}
}
