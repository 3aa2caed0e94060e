package workerman

import (
	"bufio"
	"cmp"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/workerman-go/workerman/internal/leakcheck"
)

func TestMain(m *testing.M) {
	if pid := os.Getenv(cliHelperEnv); pid != "" {
		cliHelper(pid) // this binary, run by TestCommandLine as a server program
		return
	}
	// The snapshot leakcheck takes first holds the default pool ants
	// starts at init.
	leakcheck.Main(m)
}

const (
	cliHelperEnv = "WORKERMAN_TEST_CLI_PIDFILE"
	cliAddrEnv   = "WORKERMAN_TEST_CLI_ADDR" // where the helper listens
)

// cliHelper is a server program as users write it: workers, then Main.
func cliHelper(pidFile string) {
	PidFile = pidFile
	StdoutFile = pidFile + ".log"
	w := NewWorker("text://" + cmp.Or(os.Getenv(cliAddrEnv), "127.0.0.1:0"))
	w.Name = "clitest"
	w.Count = 2
	w.OnMessage = func(c *Connection, data []byte) { c.Send(data) }
	Main()
	os.Exit(0)
}

// engines runs f once on the platform engine and once on the
// goroutine-per-connection engine, so that both meet the same contract,
// and checks that each run leaves no goroutine and no descriptor behind.
func engines(t *testing.T, f func(t *testing.T, goroutines bool)) {
	t.Helper()
	t.Run("loop", func(t *testing.T) { leakcheck.Check(t); f(t, false) })
	t.Run("goroutine", func(t *testing.T) { leakcheck.Check(t); f(t, true) })
}

// serve starts w on 127.0.0.1 with a free port and stops it when the test
// ends. It returns the address to dial.
func serve(t *testing.T, w *Worker) string {
	t.Helper()
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

func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	network := "tcp"
	if strings.HasPrefix(addr, "/") {
		network = "unix"
	}
	c, err := net.DialTimeout(network, addr, 5*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// readN reads exactly n bytes or fails the test after a deadline.
func readN(t *testing.T, c net.Conn, n int) []byte {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, n)
	if _, err := io.ReadFull(c, buf); err != nil {
		t.Fatalf("read %d bytes: %v", n, err)
	}
	return buf
}

// readSteadily reads n bytes from c, failing if no byte arrives for 10
// seconds: large transfers under the race detector on a loaded machine take
// longer than readN's overall deadline, but must never stall.
func readSteadily(t *testing.T, c net.Conn, n int) []byte {
	t.Helper()
	buf := make([]byte, n)
	for got := 0; got < n; {
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		m, err := c.Read(buf[got:])
		got += m
		if err != nil {
			t.Fatalf("read %d bytes: stalled after %d: %v", n, got, err)
		}
	}
	return buf
}

func readLine(t *testing.T, r *bufio.Reader, c net.Conn) string {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	s, err := r.ReadString('\n')
	if err != nil {
		t.Fatalf("read line: %v", err)
	}
	return s
}

// expectEOF waits for the server to close the connection.
func expectEOF(t *testing.T, c net.Conn) []byte {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	rest, err := io.ReadAll(c)
	if err != nil && !isReset(err) {
		t.Fatalf("waiting for close: %v", err)
	}
	return rest
}

func isReset(err error) bool {
	return err != nil && (strings.Contains(err.Error(), "connection reset") || errors.Is(err, net.ErrClosed))
}

// wait fails the test if ch does not deliver within the deadline.
func wait[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(10 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}

// never fails the test if ch delivers within d: for asserting that
// something does not happen, the only place a fixed wait is used.
func never[T any](t *testing.T, ch <-chan T, d time.Duration, what string) {
	t.Helper()
	select {
	case v := <-ch:
		t.Fatalf("unexpected %s: %v", what, v)
	case <-time.After(d):
	}
}

// events records callbacks for assertions.
type events struct {
	mu       sync.Mutex
	connects int
	closes   map[uint64]int
	errs     []error
	closed   chan uint64
	errCh    chan error
}

func newEvents() *events {
	return &events{closes: map[uint64]int{}, closed: make(chan uint64, 4096), errCh: make(chan error, 4096)}
}

func (e *events) attach(w *Worker) {
	w.OnConnect = func(c *Connection) {
		e.mu.Lock()
		e.connects++
		e.mu.Unlock()
	}
	w.OnClose = func(c *Connection) {
		e.mu.Lock()
		e.closes[c.ID()]++
		e.mu.Unlock()
		e.closed <- c.ID()
	}
	w.OnError = func(c *Connection, err error) {
		e.mu.Lock()
		e.errs = append(e.errs, err)
		e.mu.Unlock()
		e.errCh <- err
	}
}

func (e *events) closeCounts() map[uint64]int {
	e.mu.Lock()
	defer e.mu.Unlock()
	m := make(map[uint64]int, len(e.closes))
	for k, v := range e.closes {
		m[k] = v
	}
	return m
}

func echoWorker(scheme string, goroutines bool) *Worker {
	w := &Worker{URI: scheme + "://127.0.0.1:0", goroutines: goroutines}
	w.OnMessage = func(c *Connection, data []byte) { c.Send(data) }
	return w
}

func frameOf(payload string) []byte {
	b := make([]byte, 4+len(payload))
	n := len(b)
	b[0], b[1], b[2], b[3] = byte(n>>24), byte(n>>16), byte(n>>8), byte(n)
	copy(b[4:], payload)
	return b
}

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
