//go:build linux

package engine

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// # The io_uring backend
//
// The loops of loop_linux.go, their connections (fdConn) and contract, with
// an io_uring instance in place of each epoll set:
//
//   - each open connection has one multishot receive armed. The kernel
//     copies what arrives into a ring of buffers the loop provides (one
//     ring per loop, consumed incrementally where the kernel can: small
//     messages of many connections share one buffer), so the loop makes no
//     read system call and an idle connection still owns no buffer;
//   - a loop iteration reaps every completion without a system call, hands
//     each connection what came for it in one OnRead, then makes at most
//     one io_uring_enter, which submits what the iteration queued
//     (receives re-armed, polls for write space, cancels);
//   - writes made while the owner runs a pass's callbacks (Config.AfterPass)
//     are corked: kept in the connection's queue and sent by the loop at
//     the end of the pass, one send request per connection, all submitted
//     with the iteration's one io_uring_enter (the kernel runs a send to a
//     socket with room at once, inside that call). A pass that answers a
//     hundred messages so makes one system call, not a hundred. The epoll
//     backend corks the same way through a ring of its own (the code
//     below from cork on is shared). Other writes are the epoll engine's:
//     straight to the socket when nothing is queued, otherwise queued and
//     flushed with one sendmsg when a poll for write space completes;
//   - listeners are multishot polls; accept4 takes the connections.
//
// A loop parks in the runtime's netpoller, as an epoll loop does, on an
// eventfd registered with the ring: the kernel signals it when it posts
// completions, other goroutines when they add a task. The kernel runs a
// receive in the task work of the thread that armed it, on that thread's
// next way out of the kernel (or waking it), never in the loop, which
// makes no blocking system call. (Deferred task running, which runs the
// receives only when the loop asks, binds the ring to one thread, which a
// loop handed to a new goroutine by the watchdog cannot keep; measured in
// a prototype with the loop locked to its thread, it batched pipelined
// input well only while its wake-ups were late: on this kernel the
// eventfd missed most of the deferred work, and waiting in io_uring_enter
// instead woke per segment, as this backend does.)
//
// TLS runs on these loops as on epoll's (tls_linux.go).

const (
	uringEntries    = 1024
	uringCQEntries  = 16384
	uringBufSize    = 64 << 10 // incremental buffers: shared by many receives
	uringBufCount   = 16
	uringFlatSize   = 16 << 10 // buffers used whole (kernels without incremental rings)
	uringFlatCount  = 64
	iouPbufRingInc  = 2
	iouCQEFBufMore  = 1 << 4
	iosqeCQESkipSuc = 1 << 6
)

// uringIncremental lets the loops use incrementally consumed buffers where
// the kernel has them (6.12); tests turn it off to run the other kind.
var uringIncremental = true

// user_data: the operation in the top byte, the connection's sequence
// number (which tells a reused descriptor from its predecessor) and the
// descriptor below.
const (
	udRecv uint64 = iota + 1
	udPollOut
	udListen
	udCancel
	udSend // the low 32 bits: the index in uringLoop.sends
)

func userData(kind uint64, seq uint32, fd int32) uint64 {
	return kind<<56 | uint64(seq&0xffffff)<<32 | uint64(uint32(fd))
}

// ErrUringUnavailable is returned by NewUring where the kernel (or a
// seccomp policy) refuses io_uring, and on other platforms.
var ErrUringUnavailable = errors.New("workerman: io_uring unavailable")

// uringLoop is the io_uring backend's part of a loop.
type uringLoop struct {
	r      *ring
	br     *bufRing
	bufOff []int // bytes of each buffer the kernel filled so far
	brDone bool  // buffers were given back: publish before entering
	seq    uint32
	slots  []uSlot // indexed by fd, beside loop.conns
	// armed counts the requests whose last completion has not come: the
	// ring's buffers must outlive them.
	armed int
	// A batch of completions is handed over per connection: what came
	// for a connection in several completions goes to OnRead at once, as
	// one read of the epoll engine would take it. pend lists the
	// connections with input in this batch, spent the buffers to give
	// back after it.
	pend  []pendIn
	spent []uint16

	// Corked writes (see fdConn.cork): cmu guards corked, the connections
	// with corked output, appended to by any goroutine; the loop takes
	// the list (corkSpare is the other one) at the end of each iteration.
	cmu       sync.Mutex
	corked    []*fdConn
	corkSpare []*fdConn
	ncorked   atomic.Int32 // len(corked), read without cmu
	// sends are the send requests in flight, indexed by their user data;
	// each keeps the queue whose first chunk the kernel reads alive (and
	// its buffer out of the pool) until its completion, even when the
	// connection dropped its output meanwhile. sendFree lists free slots.
	sends    []uSend
	sendFree []uint32
}

// uSend is a send request in flight.
type uSend struct {
	c   *fdConn
	out *outbox
}

// uSlot is what an io_uring loop keeps per descriptor of a connection it
// holds (outside fdConn, which stays small for epoll).
type uSlot struct {
	seq  uint32 // the connection's sequence number in its requests' user data
	pend int32  // 1 + its index in uringLoop.pend, 0 = no input in this batch
}

// pendIn is a connection's input in a batch: data while it is one
// completion's bytes in a loop buffer, nil once they were copied to c.in.
type pendIn struct {
	c    *fdConn
	data []byte
}

// The uFlags in fdConn.events on an io_uring loop.
const (
	uRegistered uint32 = 1 << iota
	uRecvArmed         // a multishot receive is armed (or its cancel is on the way)
	uRecvCancel        // and its cancel was asked for
	uOutArmed          // a poll for write space is armed
	uSyncQueued        // a taskSync is posted
	uCorked            // the queue holds corked output only; c is in corked
	uSending           // a send request of the queue's first bytes is in flight
	uSeen              // the owner was told of queued bytes (a write or Queued)
)

// corkFlags are the uFlags of corked sends, which epoll loops use too: in
// fdConn.events beside the epoll interest, whose bits they never share.
const corkFlags = uCorked | uSending | uSeen

var _ [0]struct{} = [(readEvents | writeEvents | errorEvents) & corkFlags]struct{}{}

// setupUring creates the ring, its buffers and the eventfd the loop parks
// on.
func (l *loop) setupUring() error {
	r, err := newRing(uringEntries, uringCQEntries)
	if err != nil {
		return err
	}
	br, err := newBufRing(r, uringBufCount, uringBufSize, iouPbufRingInc)
	if err != nil || !uringIncremental {
		if br != nil {
			br.unregister(r)
			br.free()
		}
		br, err = newBufRing(r, uringFlatCount, uringFlatSize, 0)
	}
	if err != nil {
		r.close()
		return err
	}
	fail := func(err error) error {
		br.free()
		r.close()
		return err
	}
	wakefd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		return fail(fmt.Errorf("workerman: eventfd: %w", err))
	}
	if err := r.registerEventfd(wakefd); err != nil {
		unix.Close(wakefd)
		return fail(err)
	}
	l.r, l.br, l.wakefd = r, br, wakefd
	l.bufOff = make([]int, len(br.entries))
	return nil
}

// releaseUring frees what setupUring made.
func (l *loop) releaseUring() {
	l.r.close()
	l.br.free()
	unix.Close(l.wakefd)
}

// pollUring handles completions until the owner has work from a pass (it
// returns it) or the loop stops, parking while nothing is ready.
func (l *loop) pollUring() (w Work) {
	// As the epoll loops do, a loop parks in the runtime's netpoller, on
	// the eventfd that the kernel signals when it posts completions (and
	// post when it adds a task); the counter is never read, every signal
	// is a new edge for the netpoller. RawRead clears the descriptor's
	// readiness only when it starts, and the callback looks at the ring
	// before it parks, so no signal is lost. The kernel runs the receives
	// in the task work of the thread that submitted them, interrupting it
	// as a signal would, and never blocks the loop: the loop makes no
	// blocking system call. Where traffic is dense it waits a moment
	// before it parks (coalesce_linux.go), and the receives that came
	// meanwhile are reaped in one batch.
	r := l.r
	l.park.rc.Read(func(uintptr) bool {
		l.co.woke()
		for {
			did := false
			for cqe := r.peek(); cqe != nil; cqe = r.peek() {
				ud, res, flags := cqe.userData, cqe.res, cqe.flags
				r.advance()
				l.complete(ud, res, flags)
				did = true
			}
			l.co.handled = l.co.handled || did
			if r.flushOverflow() {
				continue // reap what waited in the kernel first
			}
			l.handOver()
			if l.wakeQueued.Load() {
				l.runTasks()
				did = true
			}
			if l.stopping {
				w = l.takeWork()
				return true
			}
			if l.brDone {
				l.br.publish()
				l.brDone = false
			}
			if l.sendCorked() {
				did = true
			}
			if r.toSubmit > 0 {
				if err := r.enter(0); err != nil {
					panic(fmt.Sprintf("workerman: io_uring_enter: %v", err))
				}
				did = true // a submission may complete at once
			}
			if did {
				if w = l.takeWork(); w != nil {
					return true
				}
				if l.co.overdue() {
					l.yieldNetwork()
					return false
				}
			}
			if !did {
				if l.co.nap() {
					continue
				}
				return false
			}
		}
	})
	return w
}

func (l *loop) complete(ud uint64, res int32, flags uint32) {
	kind := ud >> 56
	fd := int32(uint32(ud))
	seq := uint32(ud>>32) & 0xffffff
	var data []byte
	bid := -1
	if flags&iouCQEFBuffer != 0 {
		bid = int(flags >> iouCQEBufferShift)
		if res > 0 {
			off := l.bufOff[bid]
			data = l.br.buf(uint16(bid), off+int(res))[off:]
			l.bufOff[bid] += int(res)
		}
		if flags&iouCQEFBufMore != 0 {
			bid = -1 // the kernel goes on filling it
		}
	}
	if kind != udCancel && (kind == udPollOut || flags&iouCQEFMore == 0) {
		l.armed--
	}
	switch kind {
	case udRecv, udPollOut:
		if fd >= 0 && int(fd) < len(l.conns) {
			if c := l.conns[fd]; c != nil && l.slots[fd].seq == seq {
				if kind == udRecv {
					c.onRecv(res, flags, data)
				} else {
					c.onPollOut()
				}
			}
		}
	case udSend:
		l.onSend(uint32(ud), res)
	case udListen:
		if ln := l.listeners[int(fd)]; ln != nil {
			if flags&iouCQEFMore == 0 {
				ln.watched[l.id] = false
			}
			if res > 0 && !ln.paused.Load() {
				l.accept(ln, int(fd))
			}
			l.syncListener(ln, int(fd))
		}
	}
	if bid >= 0 {
		// Given back once its bytes were handed over (and any rest copied).
		l.spent = append(l.spent, uint16(bid))
	}
}

// handOver ends a batch of completions: each connection's input goes to
// its handler, then the buffers go back to the kernel.
func (l *loop) handOver() {
	for i := range l.pend {
		if c := l.pend[i].c; c != nil {
			c.handOver()
		}
	}
	clear(l.pend)
	l.pend = l.pend[:0]
	for _, bid := range l.spent {
		l.bufOff[bid] = 0
		l.br.put(bid)
		l.brDone = true
	}
	l.spent = l.spent[:0]
}

// queueIn adds data, received in this batch, to c's input.
func (c *fdConn) queueIn(data []byte) {
	l := c.loop
	slot := &l.slots[c.fd]
	if slot.pend == 0 {
		if c.in != nil {
			c.appendIn(data)
			data = nil
		}
		l.pend = append(l.pend, pendIn{c: c, data: data})
		slot.pend = int32(len(l.pend))
		return
	}
	p := &l.pend[slot.pend-1]
	if p.data != nil {
		// A second completion: keep both in c.in.
		b := bufferGet(max(len(p.data)+len(data), minReadRoom))
		*b = append((*b)[:0], p.data...)
		c.in = b
		p.data = nil
	}
	c.appendIn(data)
}

// handOver gives the handler what queueIn kept in this batch.
func (c *fdConn) handOver() {
	l := c.loop
	if l.conns[c.fd] != c {
		return // closed in this batch (its descriptor may be another's now)
	}
	slot := &l.slots[c.fd]
	if slot.pend == 0 {
		return
	}
	p := &l.pend[slot.pend-1]
	data := p.data
	*p = pendIn{}
	slot.pend = 0
	if data != nil {
		c.process(data, true)
	} else if c.in != nil {
		c.process(*c.in, false)
	}
}

// appendIn adds data to the bytes kept from earlier reads.
func (c *fdConn) appendIn(data []byte) { c.in = appendPooled(c.in, data) }

// appendPooled appends data to the pooled buffer in, moving it to a bigger
// pooled buffer when it has no room, and returns the buffer.
func appendPooled(in *[]byte, data []byte) *[]byte {
	b := *in
	if cap(b)-len(b) < len(data) {
		want := min(max(2*cap(b), len(b)+len(data), len(b)+minReadRoom), max(maxBufferCap, len(b)+len(data)))
		nb := bufferGet(want)
		copy(*nb, b)
		*nb = (*nb)[:len(b)]
		bufferPut(in)
		in = nb
		b = *nb
	}
	*in = append(b, data...)
	return in
}

// cancel asks the kernel to drop the requests made with user data ud.
func (l *loop) cancel(ud uint64) {
	s := l.r.sqe()
	s.opcode = iouOpAsyncCancel
	s.fd = -1
	s.addr = ud
	s.opFlags = iouAsyncCancelAll
	s.flags = iosqeCQESkipSuc
	s.userData = udCancel << 56
}

// watchListenerUring arms a multishot poll on a listening socket.
func (l *loop) watchListenerUring(fd int) {
	s := l.r.sqe()
	s.opcode = iouOpPollAdd
	s.fd = int32(fd)
	s.opFlags = unix.POLLIN
	s.len = iouPollAddMulti
	s.userData = userData(udListen, 0, int32(fd))
	l.armed++
}

// unwatchListenerUring cancels a listening socket's poll, at once: the poll
// holds the socket open until the cancel ran, and a closed listener's port
// must be closed when Close returns.
func (l *loop) unwatchListenerUring(fd int) {
	l.cancel(userData(udListen, 0, int32(fd)))
	l.r.enter(0)
}

// drain cancels every request still armed and waits (a bounded time) for
// their last completions, so that no receive writes into the buffers after
// they are unmapped. The cancels also release the sockets closed above.
func (l *loop) drain() {
	s := l.r.sqe()
	s.opcode = iouOpAsyncCancel
	s.fd = -1
	s.opFlags = iouAsyncCancelAll | iouAsyncCancelAny
	s.flags = iosqeCQESkipSuc
	s.userData = udCancel << 56
	deadline := time.Now().Add(2 * time.Second)
	for l.armed > 0 && time.Now().Before(deadline) {
		for cqe := l.r.peek(); cqe != nil; cqe = l.r.peek() {
			ud, flags := cqe.userData, cqe.flags
			l.r.advance()
			if kind := ud >> 56; kind != udCancel && (kind == udPollOut || flags&iouCQEFMore == 0) {
				l.armed--
			}
		}
		if l.armed > 0 {
			l.r.wait(100 * time.Millisecond)
		}
	}
}

// ---- connections ----

// registerUring adds c to the loop's table and arms its requests; the
// caller holds c.mu.
func (l *loop) registerUring(c *fdConn) {
	l.seq++
	l.slots[c.fd] = uSlot{seq: l.seq & 0xffffff}
	c.events = uRegistered
	l.conns[c.fd] = c
	c.syncLocked()
}

func (c *fdConn) wantsReadLocked() bool {
	st := c.state.Load()
	return !c.eof && !c.fdClosed && st != stConnecting && st != stDead &&
		(c.paused.Load() == 0 || st == stClosing || st == stLinger)
}

// needsSyncLocked tells whether syncLocked would arm or cancel anything.
func (c *fdConn) needsSyncLocked() bool {
	read, ev := c.wantsReadLocked(), c.events
	return read && ev&uRecvArmed == 0 ||
		!read && ev&uRecvArmed != 0 && ev&uRecvCancel == 0 && !c.eof ||
		c.wantsPollOutLocked() && ev&uOutArmed == 0
}

// wantsPollOutLocked tells whether c waits for write space: to flush its
// queue (unless the queue is corked or a send of it is in flight: the loop
// sends it) or to end a connect.
func (c *fdConn) wantsPollOutLocked() bool {
	return c.queued() > 0 && c.events&(uCorked|uSending) == 0 || c.state.Load() == stConnecting
}

// syncLocked arms and cancels requests to match the state (loop goroutine,
// c.mu held).
func (c *fdConn) syncLocked() {
	if c.events&uRegistered == 0 || c.fdClosed {
		return
	}
	l := c.loop
	seq := l.slots[c.fd].seq
	read := c.wantsReadLocked()
	switch {
	case read && c.events&uRecvArmed == 0:
		s := l.r.sqe()
		s.opcode = iouOpRecv
		s.fd = c.fd
		s.ioprio = iouRecvMultishot
		s.flags = iosqeBufferSelect
		s.userData = userData(udRecv, seq, c.fd)
		c.events |= uRecvArmed
		l.armed++
	case !read && c.events&uRecvArmed != 0 && c.events&uRecvCancel == 0 && !c.eof:
		l.cancel(userData(udRecv, seq, c.fd))
		c.events |= uRecvCancel
	}
	if c.wantsPollOutLocked() && c.events&uOutArmed == 0 {
		s := l.r.sqe()
		s.opcode = iouOpPollAdd
		s.fd = c.fd
		s.opFlags = unix.POLLOUT | unix.POLLERR | unix.POLLHUP
		s.userData = userData(udPollOut, seq, c.fd)
		c.events |= uOutArmed
		l.armed++
	}
}

// kickLocked has the loop sync c's requests when they no longer match its
// state (any goroutine, c.mu held).
func (c *fdConn) kickLocked() {
	if c.events&(uSyncQueued|uRegistered) != uRegistered || c.fdClosed || !c.needsSyncLocked() {
		return
	}
	c.events |= uSyncQueued
	c.loop.post(task{kind: taskSync, c: c})
}

// onRecv handles a completion of the multishot receive.
func (c *fdConn) onRecv(res int32, flags uint32, data []byte) {
	if flags&iouCQEFMore == 0 {
		c.mu.Lock()
		c.events &^= uRecvArmed | uRecvCancel
		c.mu.Unlock()
	}
	switch {
	case res > 0:
		c.nread.Add(uint64(res))
		if c.state.Load() != stOpen {
			// Closing: input is discarded, but reading goes on so that
			// unread bytes do not turn our close into a reset.
			c.handOver()
			if c.in != nil {
				*c.in = (*c.in)[:0]
			}
		} else {
			c.queueIn(data)
		}
	case res == 0:
		c.handOver()
		c.onEOF()
		return
	case res == -int32(unix.ENOBUFS), res == -int32(unix.ECANCELED), res == -int32(unix.EINTR):
		// Out of buffers (re-armed below, after they came back) or cancelled.
	default:
		c.handOver()
		c.closeFD(unix.Errno(-res))
		return
	}
	if flags&iouCQEFMore == 0 {
		c.mu.Lock()
		c.syncLocked()
		c.mu.Unlock()
	}
}

// onPollOut handles the completion of a poll for write space (or for the
// end of a connect).
func (c *fdConn) onPollOut() {
	c.mu.Lock()
	c.events &^= uOutArmed
	c.mu.Unlock()
	switch c.state.Load() {
	case stConnecting:
		c.finishDial()
		return
	case stDead:
		c.closeFD(nil)
		return
	}
	c.flush()
}

// releaseUringLocked cancels c's requests (loop goroutine, c.mu held); the
// kernel closes the socket when the cancels ran.
func (c *fdConn) releaseUringLocked() {
	if c.events&uRegistered == 0 {
		return
	}
	l := c.loop
	seq := l.slots[c.fd].seq
	if c.events&uRecvArmed != 0 && c.events&uRecvCancel == 0 {
		l.cancel(userData(udRecv, seq, c.fd))
	}
	if c.events&uOutArmed != 0 {
		l.cancel(userData(udPollOut, seq, c.fd))
	}
	if c.events&uSending != 0 {
		l.cancelSend(c)
	}
}

// cancelSend cancels c's send in flight: a peer that does not read would
// hold the socket open forever (loop goroutine). Its index is looked up
// (a close with a send in flight is rare; no per-descriptor slot for it).
func (l *loop) cancelSend(c *fdConn) {
	for i := range l.sends {
		if l.sends[i].c == c {
			l.cancel(udSend<<56 | uint64(i))
			return
		}
	}
}

// ---- corked writes ----

// corkMax is the most output a connection corks: beyond it, a write goes
// to the socket at once (and, before it, what was corked), as it would
// without corking. Corked output fits one queue chunk: one send request.
const corkMax = chunkSize

// corkBatch is the most connections a loop corks at once: beyond it, the
// batch gains little more and writes go out at once as without corking,
// so that a pass that answers thousands (a storm of handshakes, a
// broadcast) does not hold thousands of corked buffers.
const corkBatch = 128

// corks tells whether a write of n bytes to c, which has nothing queued,
// is corked: on an io_uring loop running a pass's callbacks (any
// goroutine, c.mu held).
func (c *fdConn) corks(n int) bool {
	l := c.loop
	return l.r != nil && n > 0 && n <= corkMax && l.busy.Load() != 0 && l.ncorked.Load() < corkBatch
}

// cork queues p, to be sent at the end of the loop's pass (any goroutine,
// c.mu held, nothing queued). Corked bytes are not reported as queued (by
// the write or by Queued): they are as good as written, sent before the
// loop waits again, and the owner waits for no OnDrain for them. The
// caller then calls loop.addCorked, after releasing c.mu.
func (c *fdConn) cork(p []byte, shared bool) {
	if c.out == nil {
		c.out = newOutbox()
	}
	c.out.cork(p, shared)
	c.events |= uCorked
}

// writeCorkedLocked writes corked output that is about to be dropped (the
// connection is destroyed, or the engine stops) as the write that corked
// it would have: what the socket takes now. The owner was told it was
// written. c.mu held.
func (c *fdConn) writeCorkedLocked() {
	c.events &^= uCorked
	if c.fdClosed || c.queued() == 0 {
		return
	}
	b := c.out.chunks[0].bytes()[c.out.off:]
	for len(b) > 0 {
		n, err := rawWrite(int(c.fd), b)
		if n > 0 {
			c.written += uint64(n)
			b = b[n:]
		} else if err != unix.EINTR {
			return
		}
	}
}

// addCorked puts c on the list of connections to send for at the end of
// the pass, and wakes the loop when the pass ended meanwhile (any
// goroutine). The loop takes the list after clearing busy, so either the
// load below sees the pass over or the loop sees c.
func (l *loop) addCorked(c *fdConn) {
	l.cmu.Lock()
	l.corked = append(l.corked, c)
	l.cmu.Unlock()
	l.ncorked.Add(1)
	if l.busy.Load() == 0 {
		l.wake()
	}
}

// sendCorked submits a send request for each connection with corked output
// (loop goroutine, before the iteration's io_uring_enter); it reports
// whether there were any.
func (l *loop) sendCorked() bool {
	l.cmu.Lock()
	list := l.corked
	l.corked = l.corkSpare[:0]
	l.cmu.Unlock()
	l.ncorked.Add(-int32(len(list)))
	for i, c := range list {
		list[i] = nil
		c.submitSend()
	}
	did := len(list) > 0
	if cap(list) > maxSpareTasks {
		list = nil
	}
	l.corkSpare = list[:0]
	return did
}

// submitSend sends c's corked output with one send request (loop
// goroutine).
func (c *fdConn) submitSend() {
	l := c.loop
	c.mu.Lock()
	if c.events&uCorked == 0 {
		c.mu.Unlock() // written meanwhile, or dropped
		return
	}
	c.events &^= uCorked
	st := c.state.Load()
	if c.fdClosed || st != stOpen && st != stClosing || c.queued() == 0 {
		c.mu.Unlock()
		return
	}
	if len(c.out.chunks) != 1 {
		panic("workerman: corked output in more than one chunk")
	}
	b := c.out.chunks[0].bytes()[c.out.off:]
	var idx uint32
	if k := len(l.sendFree); k > 0 {
		idx = l.sendFree[k-1]
		l.sendFree = l.sendFree[:k-1]
	} else {
		idx = uint32(len(l.sends))
		l.sends = append(l.sends, uSend{})
	}
	l.sends[idx] = uSend{c: c, out: c.out}
	s := l.r.sqe()
	s.opcode = iouOpSend
	s.fd = c.fd
	s.addr = uint64(uintptr(unsafe.Pointer(&b[0])))
	s.len = uint32(len(b))
	s.opFlags = unix.MSG_NOSIGNAL
	s.userData = udSend<<56 | uint64(idx)
	c.events |= uSending
	l.armed++
	c.mu.Unlock()
}

// onSend handles the completion of a send request: as a flush would, the
// bytes written leave the queue; what a short send left, or what was
// queued meanwhile, waits for write space.
func (l *loop) onSend(idx uint32, res int32) {
	if int(idx) >= len(l.sends) || l.sends[idx].c == nil {
		return
	}
	e := l.sends[idx]
	l.sends[idx] = uSend{}
	l.sendFree = append(l.sendFree, idx)
	c := e.c
	c.mu.Lock()
	c.events &^= uSending
	if c.out != e.out {
		// The output was dropped (the connection failed or closed) while
		// the kernel read it: its buffers are free now.
		c.mu.Unlock()
		e.out.reset()
		freeOutbox(e.out)
		return
	}
	n, err := int(res), error(nil)
	if res < 0 {
		n, err = 0, unix.Errno(-res)
		if err == unix.ECANCELED {
			err = unix.EINTR // not a socket error: what is left waits for room
		}
	}
	c.wroteLocked(n, err, c.events&uSeen != 0)
}
