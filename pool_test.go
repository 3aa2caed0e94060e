package workerman

import (
	"bytes"
	"fmt"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/workerman-go/workerman/internal/leakcheck"
)

// withPoolLimits sets the soft limit and the stall delay for one test.
func withPoolLimits(t *testing.T, limit int, stall time.Duration) {
	t.Helper()
	oldLimit, oldStall := softPoolLimit, stallAfter
	softPoolLimit, stallAfter = limit, stall
	t.Cleanup(func() { softPoolLimit, stallAfter = oldLimit, oldStall })
}

// concurrency tracks how many callbacks run at once.
type concurrency struct{ now, peak atomic.Int64 }

func (c *concurrency) enter() {
	n := c.now.Add(1)
	for p := c.peak.Load(); n > p && !c.peak.CompareAndSwap(p, n); p = c.peak.Load() {
	}
}

func (c *concurrency) leave() { c.now.Add(-1) }

// dialLines opens n text:// clients and writes msgs lines on each.
func dialLines(t *testing.T, addr string, n, msgs int) []net.Conn {
	t.Helper()
	conns := make([]net.Conn, n)
	for i := range conns {
		conns[i] = dial(t, addr)
	}
	for i, c := range conns {
		var b bytes.Buffer
		for k := range msgs {
			fmt.Fprintf(&b, "%d.%d\n", i, k)
		}
		go c.Write(b.Bytes())
	}
	return conns
}

// Busy callbacks share the soft limit's goroutines: many connections with
// work to do never run more callbacks at once than the limit, and every
// message is handled, in order per connection.
func TestPoolSoftLimitBoundsBusyCallbacks(t *testing.T) {
	leakcheck.Check(t)
	withPoolLimits(t, 4, time.Minute) // no stall escape in this test
	const conns, msgs = 50, 40
	var cc concurrency
	var mu sync.Mutex
	next := map[*Connection]int{}
	done := make(chan struct{}, conns)
	w := &Worker{URI: "text://127.0.0.1:0"}
	w.OnMessage = func(c *Connection, data []byte) {
		cc.enter()
		defer cc.leave()
		var i, k int
		fmt.Sscanf(string(data), "%d.%d", &i, &k)
		mu.Lock()
		want := next[c]
		next[c] = k + 1
		mu.Unlock()
		if k != want {
			t.Errorf("connection %d: message %d, want %d", i, k, want)
		}
		if k == msgs-1 {
			done <- struct{}{}
		}
	}
	addr := serve(t, w)
	dialLines(t, addr, conns, msgs)
	for range conns {
		wait(t, done, "the last message of a connection")
	}
	if p := cc.peak.Load(); p > 4 {
		t.Fatalf("%d callbacks ran at once, over the limit of 4", p)
	}
}

// When every goroutine of the soft limit blocks, waiting connections get
// goroutines of their own: ten callbacks that each wait for all ten to be
// running complete with a limit of four.
func TestPoolSoftLimitEscapesBlockedCallbacks(t *testing.T) {
	leakcheck.Check(t)
	withPoolLimits(t, 4, 5*time.Millisecond)
	const conns = 10
	var cc concurrency
	all := make(chan struct{})
	var once sync.Once
	done := make(chan struct{}, conns)
	w := &Worker{URI: "text://127.0.0.1:0"}
	w.OnMessage = func(c *Connection, data []byte) {
		cc.enter()
		if cc.now.Load() == conns {
			once.Do(func() { close(all) })
		}
		select {
		case <-all:
		case <-time.After(10 * time.Second):
			t.Error("blocked callbacks never ran side by side")
		}
		cc.leave()
		done <- struct{}{}
	}
	addr := serve(t, w)
	dialLines(t, addr, conns, 1)
	for range conns {
		wait(t, done, "a blocked callback")
	}
	if p := cc.peak.Load(); p != conns {
		t.Fatalf("peak %d callbacks at once, want %d", p, conns)
	}
}

// With PoolSize, no more callbacks run at once, and a Send from a callback
// that has to queue a callback for another connection (its OnBufferFull)
// does not wait for a free goroutine: with PoolSize 1 it once deadlocked.
func TestPoolSizeCapsAndNeverBlocksASend(t *testing.T) {
	leakcheck.Check(t)
	var cc concurrency
	full := make(chan struct{}, 1)
	sent := make(chan error, 1)
	var mu sync.Mutex
	var sink *Connection
	ready := make(chan struct{})
	w := &Worker{URI: "text://127.0.0.1:0", PoolSize: 1, MaxSendBufferSize: 64 << 10}
	w.OnConnect = func(c *Connection) {
		mu.Lock()
		defer mu.Unlock()
		if sink == nil {
			sink = c
			close(ready)
		}
	}
	w.OnBufferFull = func(c *Connection) {
		select {
		case full <- struct{}{}:
		default:
		}
	}
	w.OnMessage = func(c *Connection, data []byte) {
		cc.enter()
		defer cc.leave()
		if string(data) != "fill" {
			return
		}
		<-ready
		line := bytes.Repeat([]byte("x"), 1000)
		var err error
		for range 10000 {
			if err = sink.Send(line); err != nil {
				break
			}
		}
		sent <- err
	}
	addr := serve(t, w)
	dial(t, addr) // the sink: it never reads
	wait(t, ready, "the sink's OnConnect")
	dialLines(t, addr, 20, 5)
	filler := dial(t, addr)
	filler.Write([]byte("fill\n"))
	if err := wait(t, sent, "the filling callback"); err == nil {
		t.Fatal("10 MB to a peer that never reads were all accepted")
	}
	wait(t, full, "the sink's OnBufferFull")
	if p := cc.peak.Load(); p > 1 {
		t.Fatalf("%d callbacks ran at once with PoolSize 1", p)
	}
}

// queueCap is the capacity of the pool's queue of waiting connections.
func (p *callbackPool) queueCap() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return cap(p.queue)
}

// The queue of waiting connections keeps no memory for its peak: after a
// burst of connections waited behind a blocked callback and ran, the
// queue's slice is given back.
func TestPoolQueueShrinksAfterABurst(t *testing.T) {
	leakcheck.Check(t)
	const conns = 600
	release := make(chan struct{})
	blocked := make(chan struct{})
	done := make(chan struct{}, conns)
	w := &Worker{URI: "text://127.0.0.1:0", PoolSize: 1}
	w.OnMessage = func(c *Connection, data []byte) {
		if string(data) == "block" {
			close(blocked)
			<-release
			return
		}
		done <- struct{}{}
	}
	addr := serve(t, w)
	dial(t, addr).Write([]byte("block\n"))
	wait(t, blocked, "the blocking callback")
	dialLines(t, addr, conns, 1)
	pool := w.reactor().pool
	for deadline := time.Now().Add(10 * time.Second); pool.queued.Load() < conns; {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d connections queued behind the blocked callback", pool.queued.Load(), conns)
		}
		runtime.Gosched() // the lines reach the loops and queue behind the block
	}
	if c := pool.queueCap(); c < conns {
		t.Fatalf("%d connections wait in a queue of capacity %d", conns, c)
	}
	close(release)
	for range conns {
		wait(t, done, "a queued callback")
	}
	if c := pool.queueCap(); c > queueKeep {
		t.Fatalf("the emptied queue keeps room for %d connections (at most %d)", c, queueKeep)
	}
}

// Under a steady load the queue may never empty: it stays about the size
// of the most connections that waited at once, not of all that passed.
func TestPoolQueueStaysItsPeakSizeWhenItNeverEmpties(t *testing.T) {
	p := &callbackPool{}
	const most, passed = 100, 100000
	c := new(Connection)
	p.mu.Lock()
	for i := range passed {
		p.enqueue(waiting{c: c})
		p.queued.Add(1)
		if i >= most {
			p.mu.Unlock()
			p.take()
			p.mu.Lock()
		}
		if c := cap(p.queue); c > 4*most {
			p.mu.Unlock()
			t.Fatalf("after %d connections, %d waiting in a queue of capacity %d", i+1, len(p.queue)-p.head, c)
		}
	}
	p.mu.Unlock()
	for p.take() != nil {
	}
	if c := p.queueCap(); c > queueKeep {
		t.Fatalf("the emptied queue keeps room for %d connections", c)
	}
}
