//go:build linux

package engine

import (
	"io"
	"net"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/workerman-go/workerman/internal/leakcheck"
)

// passQueue is an owner that answers on the loop after each pass: OnRead
// queues the connection, AfterPass hands the queue to the loop as Work,
// and Run echoes "x" at once and blocks on "block" until released.
type passQueue struct {
	queued    []queued // loop-owned
	release   chan struct{}
	abandoned atomic.Int32
}

type queuedConn struct {
	q *passQueue
	c Conn
}

// queued is one read, to answer after the pass.
type queued struct {
	c    Conn
	data string
}

func (h *queuedConn) OnRead(in []byte) (int, int) {
	h.q.queued = append(h.q.queued, queued{h.c, string(in)})
	return len(in), 0
}
func (h *queuedConn) OnEOF()        { h.c.Close() }
func (h *queuedConn) OnDrain()      {}
func (h *queuedConn) OnClose(error) {}

type queueWork struct {
	q     *passQueue
	items []queued
	next  atomic.Int32
}

func (q *passQueue) afterPass(int) Work {
	if len(q.queued) == 0 {
		return nil
	}
	w := &queueWork{q: q, items: q.queued}
	q.queued = nil
	return w
}

func (w *queueWork) claim() *queued {
	if i := int(w.next.Add(1)) - 1; i < len(w.items) {
		return &w.items[i]
	}
	return nil
}

func (w *queueWork) Run(t Turn) {
	for h := w.claim(); h != nil; h = w.claim() {
		if h.data == "block" {
			<-w.q.release
			if !t.HandedOff() {
				panic("the loop waited for a blocked Run")
			}
		}
		h.c.Write([]byte(h.data), 1<<20, false)
	}
}

func (w *queueWork) Abandon() {
	for h := w.claim(); h != nil; h = w.claim() {
		w.q.abandoned.Add(1)
		go h.c.Write([]byte(h.data), 1<<20, false)
	}
}

func (w *queueWork) Done() {}

// Work that blocks on the loop does not hold the loop up: the watchdog
// moves the loop to a new goroutine within a tick or two, the Work's rest
// goes elsewhere (Abandon), other connections are served meanwhile, and
// once the blocked Run returns its goroutine leaves (nothing leaks). While
// the loops are idle the watchdog parks.
func TestAfterPassBlockedWorkIsHandedOff(t *testing.T) {
	for _, name := range []string{"epoll", "epoll-plain", "io_uring"} {
		t.Run(name, func(t *testing.T) {
			leakcheck.Check(t)
			q := &passQueue{release: make(chan struct{})}
			cfg := Config{Loops: 1, AfterPass: q.afterPass}
			var eng Engine
			var err error
			if name == "epoll" {
				eng, err = New(cfg)
			} else if name == "epoll-plain" {
				eng, err = newPlainEngine(cfg)
			} else {
				eng, err = NewUring(cfg)
			}
			if err != nil {
				t.Skip(err)
			}
			defer eng.Stop()
			ln := &Listener{Network: "tcp", Address: "127.0.0.1:0"}
			if err := eng.Listen(ln, func(c Conn, _ int) Handler { return &queuedConn{q: q, c: c} }); err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			echo := func(c net.Conn, msg string) {
				t.Helper()
				if _, err := c.Write([]byte(msg)); err != nil {
					t.Fatal(err)
				}
				got := make([]byte, len(msg))
				if _, err := io.ReadFull(c, got); err != nil || string(got) != msg {
					t.Fatalf("echo %q: %q, %v", msg, got, err)
				}
			}
			slow, quick := dialScript(t, ln.Addr().String()), dialScript(t, ln.Addr().String())
			echo(quick, "x") // connected and served on the loop
			fds := openFDs(t)
			slow.Write([]byte("block"))
			for range 20 {
				echo(quick, "x") // while the slow one's Run blocks
			}
			if n := openFDs(t); n != fds {
				t.Errorf("%d descriptors open while a Run blocks, %d before: a hand-off costs none", n, fds)
			}
			close(q.release)
			got := make([]byte, 5)
			if _, err := io.ReadFull(slow, got); err != nil || string(got) != "block" {
				t.Fatalf("the blocked one: %q, %v", got, err)
			}

			// Idle: the watchdog parks.
			e := eng.(*loopEngine)
			deadline := time.Now().Add(5 * time.Second)
			for !e.wdParked.Load() {
				if time.Now().After(deadline) {
					t.Fatal("the watchdog did not park while the loops were idle")
				}
				time.Sleep(10 * time.Millisecond)
			}
			echo(quick, "x") // and a pass wakes it
		})
	}
}

func openFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}
