package workerman

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/workerman-go/workerman/internal/engine"
)

// reactor is what a running Worker (or the shared client side) owns: the
// engine's loops, the goroutine pool that runs callbacks, the per-instance
// connection lists, and a coarse clock that drives timeouts.
type reactor struct {
	inline bool // callbacks run on the loops (not with the goroutine engine)
	eng    engine.Engine
	pool   *callbackPool
	insts  []*instance
	log    *slog.Logger

	now      atomic.Int64 // unix nanoseconds, refreshed every tick
	tick     time.Duration
	tickStop chan struct{}
	tickDone chan struct{}

	mu      sync.Mutex
	live    int           // connections whose OnClose has not finished
	zero    chan struct{} // closed when live drops to 0 while draining
	closing bool          // no new connections
}

// instance is one of a worker's Count event-loop instances and the
// connections it holds.
type instance struct {
	r    *reactor
	id   int
	mu   sync.Mutex
	head *Connection // intrusive list through Connection.prev/next
	n    int

	// Under mu, like the list: a connection's counters move into closed
	// as it leaves the list, so that stats sees each connection once.
	accepted uint64  // connections ever added
	closed   traffic // what the connections no longer listed moved

	// The connections whose job lists the loop runs after its pass
	// (loop-owned), and a list to reuse (a list whose run was handed off
	// is left to the garbage collector).
	inline *inlineList
	spare  atomic.Pointer[inlineList]
}

// inlineList is a loop's job lists to run after its pass.
type inlineList struct {
	in    *instance
	conns []*Connection // written by the loop before Run, read-only until Done
	next  atomic.Int32  // index of the next to claim
}

// EngineEnv names the environment variable that picks the engine every
// worker runs on:
//
//   - "epoll" (the default on Linux): event loops over epoll, no goroutine
//     per connection; where the kernel allows io_uring, the writes of a
//     pass of callbacks go out through a small ring, one system call for
//     all of them;
//   - "io_uring": the same event loops over io_uring (Linux), which receive
//     without a system call per read; where the kernel or a seccomp policy
//     refuses io_uring, the epoll engine serves instead;
//   - "goroutine": a goroutine per connection (the default elsewhere).
//
// It exists so that one test suite runs on each engine (CI runs it on all
// three); a program has no reason to set it.
const EngineEnv = "WORKERMAN_ENGINE"

func newReactor(loops, poolSize int, tick time.Duration, log *slog.Logger, goroutines bool) (*reactor, error) {
	pool, err := newCallbackPool(poolSize, func(v any) { log.Error("workerman: panic escaped a callback", "panic", v) })
	if err != nil {
		return nil, err
	}
	r := &reactor{pool: pool, log: log, tick: tick}
	for i := range max(loops, 1) {
		r.insts = append(r.insts, &instance{id: i, r: r})
	}
	cfg := engine.Config{Loops: len(r.insts)}
	var eng engine.Engine
	uring := false
	switch e := os.Getenv(EngineEnv); e {
	case "", "epoll":
	case "io_uring":
		uring = true
	case "goroutine":
		goroutines = true
	default:
		pool.release(0)
		return nil, fmt.Errorf("workerman: %s=%q: want epoll, io_uring or goroutine", EngineEnv, e)
	}
	if !goroutines {
		// Callbacks run on the loops after each pass (the engine moves a
		// loop on when one blocks), without a hand-over to the pool.
		cfg.AfterPass = r.afterPass
	}
	switch {
	case goroutines:
		eng = engine.NewGoroutine(cfg)
	case uring:
		var err error
		if eng, err = engine.NewUring(cfg); err != nil {
			if eng, err = engine.New(cfg); err != nil {
				pool.release(0)
				return nil, err
			}
		}
	default:
		var err error
		if eng, err = engine.New(cfg); err != nil {
			pool.release(0)
			return nil, err
		}
	}
	r.eng = eng
	// Only event loops call AfterPass: elsewhere (non-Linux systems) New
	// returns the goroutine engine.
	r.inline = cfg.AfterPass != nil && eng.Name() != "goroutine"
	r.now.Store(time.Now().UnixNano())
	if tick > 0 {
		r.tickStop = make(chan struct{})
		r.tickDone = make(chan struct{})
		go r.ticker()
	}
	return r, nil
}

// afterPass takes, on the goroutine of loop, the job lists its pass queued
// (see enqueueOnLoop); the loop runs them next.
func (r *reactor) afterPass(loop int) engine.Work {
	in := r.insts[loop]
	mine := in.inline
	if mine == nil || len(mine.conns) == 0 {
		return nil
	}
	in.inline = in.spare.Swap(nil)
	return mine
}

// Run runs the job lists on the loop, one connection after another. When
// a callback blocks, the engine hands the loop to another goroutine and
// the lists not started go to the pool (Abandon); this goroutine finishes
// the list it is in.
func (l *inlineList) Run(t engine.Turn) {
	r := l.in.r
	for c := l.claim(); c != nil; c = l.claim() {
		if t.HandedOff() || !r.pool.reserve() {
			r.pool.submit(c)
			continue
		}
		r.runInline(c)
	}
}

// Abandon gives the lists Run has not started to the pool.
func (l *inlineList) Abandon() {
	for c := l.claim(); c != nil; c = l.claim() {
		l.in.r.pool.submit(c)
	}
}

// Done makes the list the instance's spare.
func (l *inlineList) Done() {
	clear(l.conns)
	l.conns = l.conns[:0]
	l.next.Store(0)
	l.in.spare.Store(l)
}

// claim takes the next connection to run, once: Run and Abandon may claim
// at the same time.
func (l *inlineList) claim() *Connection {
	if i := int(l.next.Add(1)) - 1; i < len(l.conns) {
		return l.conns[i]
	}
	return nil
}

// runInline runs c's job list on the loop, in a place of the pool's limit
// the caller reserved.
func (r *reactor) runInline(c *Connection) {
	defer func() {
		if v := recover(); v != nil {
			r.log.Error("workerman: panic escaped a callback", "panic", v)
		}
		r.pool.finish()
	}()
	c.run()
}

// submit runs c's pending callbacks on the pool.
func (r *reactor) submit(c *Connection) { r.pool.submit(c) }

// admit counts a new connection unless the reactor is shutting down.
func (r *reactor) admit() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closing {
		return false
	}
	r.live++
	return true
}

// release is called after a connection's OnClose returned.
func (r *reactor) release() {
	r.mu.Lock()
	r.live--
	if r.live == 0 && r.zero != nil {
		close(r.zero)
		r.zero = nil
	}
	r.mu.Unlock()
}

// drained returns a channel closed once no connection is left.
func (r *reactor) drained() <-chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	ch := make(chan struct{})
	if r.live == 0 {
		close(ch)
		return ch
	}
	if r.zero == nil {
		r.zero = make(chan struct{})
	}
	return r.zero
}

func (r *reactor) isClosing() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.closing
}

func (r *reactor) stopAdmitting() {
	r.mu.Lock()
	r.closing = true
	r.mu.Unlock()
}

func (r *reactor) connections() []*Connection {
	var all []*Connection
	for _, in := range r.insts {
		in.mu.Lock()
		for c := in.head; c != nil; c = c.next {
			all = append(all, c)
		}
		in.mu.Unlock()
	}
	return all
}

func (r *reactor) count() int {
	n := 0
	for _, in := range r.insts {
		in.mu.Lock()
		n += in.n
		in.mu.Unlock()
	}
	return n
}

// closeAll closes (gracefully) or destroys every connection.
func (r *reactor) closeAll(graceful bool) {
	for _, c := range r.connections() {
		if graceful {
			c.Close()
		} else {
			c.Destroy()
		}
	}
}

// ticker refreshes the clock and checks each connection's deadlines.
func (r *reactor) ticker() {
	defer close(r.tickDone)
	t := time.NewTicker(r.tick)
	defer t.Stop()
	var due []*Connection
	for {
		select {
		case <-r.tickStop:
			return
		case now := <-t.C:
			ns := now.UnixNano()
			r.now.Store(ns)
			for _, in := range r.insts {
				in.mu.Lock()
				for c := in.head; c != nil; c = c.next {
					if c.due(ns) {
						due = append(due, c)
					}
				}
				in.mu.Unlock()
			}
			for i, c := range due {
				c.onTick(ns)
				due[i] = nil
			}
			due = due[:0]
		}
	}
}

// waitLingering waits, until ctx ends, for the sockets that outlive their
// connection's OnClose: they linger until the peer closes its side (for a
// WebSocket, after answering the close frame), bounded by the engine's
// linger time. Stopping the loops earlier would reset them.
func (r *reactor) waitLingering(ctx context.Context) {
	if r.eng.Held() == 0 {
		return
	}
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for r.eng.Held() > 0 {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// stop ends the ticker, the loops and the pool. Connections must be gone.
func (r *reactor) stop(ctx context.Context) error {
	if r.tickStop != nil {
		close(r.tickStop)
		<-r.tickDone
		r.tickStop = nil
	}
	r.eng.Stop()
	wait := 2 * time.Second
	if dl, ok := ctx.Deadline(); ok {
		wait = max(time.Until(dl), 10*time.Millisecond)
	}
	return r.pool.release(wait)
}

func (in *instance) add(c *Connection) {
	in.mu.Lock()
	c.next = in.head
	if in.head != nil {
		in.head.prev = c
	}
	in.head = c
	in.n++
	in.accepted++
	in.mu.Unlock()
}

func (in *instance) remove(c *Connection) {
	in.mu.Lock()
	if c.prev != nil {
		c.prev.next = c.next
	} else if in.head == c {
		in.head = c.next
	} else {
		in.mu.Unlock()
		return // not listed
	}
	if c.next != nil {
		c.next.prev = c.prev
	}
	c.prev, c.next = nil, nil
	in.n--
	in.closed.add(c.traffic())
	in.mu.Unlock()
}
