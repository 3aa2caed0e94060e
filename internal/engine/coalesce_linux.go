package engine

import (
	"runtime"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Coalescing input. A loop that parks as soon as nothing is ready is woken
// again by the next segment that arrives: when its peers are slower than
// it, as a server's clients usually are, it pays a park and a wake-up (the
// runtime's epoll_wait, a context switch, its own poll) and a system call
// to send for almost every message. Where traffic is dense, a loop that
// has just handled input therefore waits a moment before it parks, and
// handles what came meanwhile in one pass. Measured on pipelined 64-byte
// echo over 100 connections: without the wait 2.5 times a net.Conn
// server's CPU per message on both engines, with it 0.8-1.1 times (epoll)
// and 0.6 times (io_uring); lockstep echo gains a little too.
//
// Traffic counts as dense when the loop's last park lasted less than
// coalesceDense; where it is sparse the loop parks at once, so that an
// idle loop costs nothing and a lone message waits for nothing. The price
// is latency under dense traffic: a message that arrives while the loop
// waits is handled when the wait ends, coalesceWait plus the kernel's
// timer slack (50 µs by default) later at most: a round trip on loopback
// takes about 40 µs instead of 20, nothing beside a network's.
//
// The wait is a raw nanosleep: the thread keeps its P (telling the
// scheduler would wake sysmon, see rawio_linux.go), so the loop first
// yields to any goroutine ready to run, and no goroutine waits for the
// loop longer than one wait. A goroutine waiting for the network waits
// for the scheduler to poll it, which it does when a P has nothing to
// run: a loop that keeps finding input parks at least every
// coalesceBusy, whereupon the netpoller is polled (and wakes the loop at
// once). A loop that always has more to do (an io_uring ring that always
// holds completions, epoll reads that keep filling the buffer) never gets
// to nap: it parks after it wakes itself (yieldNetwork).
const (
	coalesceWait  = 20 * time.Microsecond
	coalesceDense = 200 * time.Microsecond
	coalesceBusy  = time.Millisecond
)

// coalescer is a loop's record of its parks (loop-owned).
type coalescer struct {
	parkedAt time.Time // when it last parked
	parked   bool      // it parked after its last poll
	dense    bool      // its last park lasted less than coalesceDense
	handled  bool      // it handled events since it last waited or parked
}

// woke notes that the loop polls again, after a park or after a pass.
func (c *coalescer) woke() {
	if c.parked {
		c.dense = time.Since(c.parkedAt) < coalesceDense
		c.parked = false
	}
}

// overdue tells whether the loop, busy without a park for coalesceBusy,
// should park now although it has work (it then makes sure it is woken at
// once: see yieldNetwork), and if so records the park.
func (c *coalescer) overdue() bool {
	if time.Since(c.parkedAt) < coalesceBusy {
		return false
	}
	c.handled = false
	c.parked, c.parkedAt = true, time.Now()
	return true
}

// nap is called when the loop would park: it waits for more input and
// returns true (poll again), or returns false and the loop parks. A nap
// ends early when a signal arrives (the runtime's preemption, a profiler):
// harmless, the loop polls sooner.
func (c *coalescer) nap() bool {
	if c.dense && c.handled && time.Since(c.parkedAt) < coalesceBusy {
		c.handled = false
		start := time.Now()
		runtime.Gosched()
		// Other goroutines may have run for a while: wait only for what
		// is left of coalesceWait.
		if left := coalesceWait - time.Since(start); left > 0 {
			ts := unix.NsecToTimespec(int64(left))
			unix.RawSyscall(unix.SYS_NANOSLEEP, uintptr(unsafe.Pointer(&ts)), 0, 0)
		}
		return true
	}
	c.handled = false
	c.parked, c.parkedAt = true, time.Now()
	return false
}

// yieldNetwork is called by a loop whose park is overdue but which has
// more to do: it signals its eventfd, so that the park that follows
// returns as soon as the scheduler has polled the network (for the
// program's other goroutines) and run what was ready. Always a write, not
// wake: wake writes nothing while a wake-up is queued, and one queued
// before this RawRead began (its edge reset) would leave the loop parked
// on a set it did not poll since (the epoll loop yields with more ready
// than it took); a write is a new edge, and the loop polls after it.
func (l *loop) yieldNetwork() { eventfdAdd(l.wakefd) }
