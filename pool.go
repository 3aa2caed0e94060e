package workerman

import (
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/panjf2000/ants/v2"
)

// # The callback pool
//
// A connection with callbacks to run is submitted once (see dispatch.go);
// a pool goroutine runs its job list, then takes the next waiting
// connection, if any, before it goes back to ants. At most limit run at
// once; beyond it connections wait in a FIFO queue. Submitting never
// blocks, so neither an event loop nor a Send (which may submit under a
// connection's send lock) ever waits for a free goroutine.
//
// With Worker.PoolSize 0 the limit is soft. While the queue moves, busy
// callbacks share softPoolLimit goroutines instead of one goroutine per
// busy connection (a loaded machine once ran 1,638 at once, and the Go
// runtime keeps what that peak cost). When the queue has not moved for
// stallAfter while no pool goroutine finished anything (every one blocked,
// in a database call say), as many goroutines again start on the waiting
// connections, and so on every stallAfter while the stall lasts: a
// blocking callback delays another connection by about that.

// softPoolLimit is the number of pool goroutines that run callbacks at
// once before connections queue, when Worker.PoolSize is 0.
var softPoolLimit = max(256, 32*runtime.GOMAXPROCS(0))

// stallAfter is how long a queue may stand still before its connections
// get goroutines of their own (soft limit only).
var stallAfter = 5 * time.Millisecond

type callbackPool struct {
	ants  *ants.PoolWithFuncGeneric[*Connection]
	limit int64
	soft  bool

	active atomic.Int64 // pool goroutines running job lists
	queued atomic.Int64 // len(queue), readable without mu

	mu     sync.Mutex
	queue  []waiting // FIFO: queue[head:] wait
	head   int
	taken  uint64        // connections taken from the queue so far
	waited time.Duration // how long they waited in all
	timer  *time.Timer
	seen   uint64 // finished when the stall timer was last set
	closed bool

	finished atomic.Uint64 // job lists run to the end: the pool's progress
}

// waiting is a connection in the queue and when it joined it.
type waiting struct {
	c     *Connection
	since time.Time
}

func newCallbackPool(size int, onPanic func(any)) (*callbackPool, error) {
	p := &callbackPool{limit: int64(size)}
	if size <= 0 {
		p.limit, p.soft = int64(softPoolLimit), true
	}
	var err error
	p.ants, err = ants.NewPoolWithFuncGeneric(-1, p.work,
		ants.WithLogger(quietLogger{}), ants.WithPanicHandler(onPanic))
	if err != nil {
		return nil, err
	}
	return p, nil
}

type quietLogger struct{}

func (quietLogger) Printf(string, ...any) {}

// submit runs c's job list on a pool goroutine, now or when one is free.
func (p *callbackPool) submit(c *Connection) {
	if p.reserve() {
		p.spawn(c)
		return
	}
	now := time.Now() // only when queueing: a free goroutine costs no clock read
	p.mu.Lock()
	p.enqueue(waiting{c, now})
	p.queued.Add(1)
	if p.soft && p.timer == nil && !p.closed {
		p.seen = p.finished.Load()
		p.timer = time.AfterFunc(stallAfter, p.checkStall)
	}
	p.mu.Unlock()
	p.kick() // a goroutine may have finished since reserve failed
}

// reserve takes a place among the limit running goroutines.
func (p *callbackPool) reserve() bool {
	for {
		n := p.active.Load()
		if n >= p.limit {
			return false
		}
		if p.active.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

// kick starts a goroutine for the queue when one may run.
func (p *callbackPool) kick() {
	for p.queued.Load() > 0 {
		if !p.reserve() {
			return // a running goroutine will take it when it finishes
		}
		if c := p.take(); c != nil {
			p.spawn(c)
			continue
		}
		p.active.Add(-1)
	}
}

// spawn runs c on an ants goroutine holding a place reserved for it.
func (p *callbackPool) spawn(c *Connection) {
	if err := p.ants.Invoke(c); err != nil {
		// Released: the pool is released only after every connection
		// closed; a late straggler still gets its callbacks run.
		go p.work(c)
	}
}

// work runs c's job list, then those of waiting connections.
func (p *callbackPool) work(c *Connection) {
	for c != nil {
		c.run()
		if p.soft {
			p.finished.Add(1)
		}
		c = p.take()
	}
	p.active.Add(-1)
	if p.queued.Load() > 0 {
		p.kick() // queued after take found it empty
	}
}

// finish ends a job list's run that an event loop made in a place it
// reserved.
func (p *callbackPool) finish() {
	if p.soft {
		p.finished.Add(1)
	}
	p.active.Add(-1)
	if p.queued.Load() > 0 {
		p.kick()
	}
}

// take returns the next waiting connection, or nil.
func (p *callbackPool) take() *Connection {
	if p.queued.Load() == 0 {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.head == len(p.queue) {
		return nil
	}
	w := p.queue[p.head]
	p.queue[p.head] = waiting{}
	p.head++
	if p.head == len(p.queue) {
		p.emptied()
	}
	p.queued.Add(-1)
	p.taken++
	p.waited += time.Since(w.since)
	return w.c
}

// queueKeep is the most waiting places the queue keeps when it empties; a
// queue that grew for a burst gives its memory back.
const queueKeep = 256

// enqueue appends w to the queue (the caller holds mu). When the slice is
// full and at least half of it was taken already, the waiting connections
// move to its front first: a queue that never empties under a steady load
// stays the size of the most that waited at once, instead of growing by
// every connection that ever passed through it.
func (p *callbackPool) enqueue(w waiting) {
	if len(p.queue) == cap(p.queue) && p.head > 0 && p.head >= len(p.queue)/2 {
		n := copy(p.queue, p.queue[p.head:])
		clear(p.queue[n:])
		p.queue, p.head = p.queue[:n], 0
	}
	p.queue = append(p.queue, w)
}

// emptied resets the queue once every connection in it was taken (the
// caller holds mu). A slice the queue's peak grew is dropped.
func (p *callbackPool) emptied() {
	if cap(p.queue) > queueKeep {
		p.queue = nil
	} else {
		p.queue = p.queue[:0]
	}
	p.head = 0
}

// checkStall runs stallAfter after the queue was found waiting. When no
// pool goroutine finished a job list since, they are all blocked (on a
// lock a slow broadcast holds, say): up to limit more goroutines start on
// the waiting connections (and go on draining the queue, as the others
// do). It does not wait out a timer that fired late: a process starved
// of CPU looks the same as blocked callbacks, and callbacks that wait on
// a lock held by CPU-bound work are both (a 30-minute soak saw bye
// answers wait for seconds behind them when it did).
func (p *callbackPool) checkStall() {
	p.mu.Lock()
	if p.head == len(p.queue) || p.closed {
		p.timer = nil
		p.mu.Unlock()
		return
	}
	now := time.Now()
	if done := p.finished.Load(); done != p.seen {
		p.seen = done
		p.timer.Reset(stallAfter)
		p.mu.Unlock()
		return
	}
	n := min(len(p.queue)-p.head, int(p.limit))
	stalled := append([]waiting(nil), p.queue[p.head:p.head+n]...)
	clear(p.queue[p.head : p.head+n])
	p.head += n
	if p.head == len(p.queue) {
		p.emptied()
	}
	p.queued.Add(-int64(n))
	p.taken += uint64(n)
	for _, w := range stalled {
		p.waited += now.Sub(w.since)
	}
	p.active.Add(int64(n)) // over the limit until the queue is empty
	p.seen = p.finished.Load()
	p.timer.Reset(stallAfter)
	p.mu.Unlock()
	for _, w := range stalled {
		p.spawn(w.c)
	}
}

// waits returns how many connections waited in the queue so far and how
// long they waited in all (Stats.PoolWaitCount, Stats.PoolWaitDuration).
func (p *callbackPool) waits() (n uint64, total time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.taken, p.waited
}

// release stops the pool once its goroutines finished, waiting at most
// wait.
func (p *callbackPool) release(wait time.Duration) error {
	p.mu.Lock()
	p.closed = true
	if p.timer != nil {
		p.timer.Stop()
		p.timer = nil
	}
	p.mu.Unlock()
	return p.ants.ReleaseTimeout(wait)
}
