//go:build linux

package engine

import (
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// # The io_uring engine
//
// The same loops, connections and contract as the epoll engine (its
// fdConn's rules, kept in uConn), with an io_uring instance in place of each
// epoll set:
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
//   - writes are the epoll engine's: straight to the socket when nothing is
//     queued, otherwise queued and flushed with one sendmsg when a poll for
//     write space completes;
//   - listeners are multishot polls; accept4 takes the connections.
//
// A loop parks in the runtime's netpoller, as an epoll loop does, on an
// eventfd registered with the ring: the kernel signals it when it posts
// completions, other goroutines when they add a task. The kernel runs a
// receive in the task work of the thread that armed it, on that thread's
// next way out of the kernel (or waking it), never in the loop, which
// makes no blocking system call. (Deferred task running would wait for the
// loop instead and batch better, but needs one thread to make every
// io_uring_enter: a loop locked to its thread paid for it with a hand-off
// of the P at each wake-up, several times what the system calls saved.)
//
// TLS connections are served by the goroutine engine.

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
)

func userData(kind uint64, seq uint32, fd int32) uint64 {
	return kind<<56 | uint64(seq&0xffffff)<<32 | uint64(uint32(fd))
}

// ErrUringUnavailable is returned by NewUring where the kernel (or a
// seccomp policy) refuses io_uring, and on other platforms.
var ErrUringUnavailable = errors.New("workerman: io_uring unavailable")

type uringEngine struct {
	cfg     Config
	loops   []*uLoop
	gor     *goEngine // TLS connections
	wg      sync.WaitGroup
	stopped atomic.Bool
}

// NewUring returns the io_uring engine, or an error wrapping
// ErrUringUnavailable when the kernel refuses io_uring (the caller then
// uses New).
func NewUring(cfg Config) (Engine, error) {
	cfg = cfg.withDefaults()
	e := &uringEngine{cfg: cfg, gor: newGoEngine(cfg)}
	for i := 0; i < cfg.Loops; i++ {
		l := &uLoop{e: e, id: i, listeners: make(map[int32]*uListener)}
		if err := l.setup(); err != nil {
			for _, l := range e.loops {
				l.release()
			}
			e.gor.Stop()
			return nil, fmt.Errorf("%w: %w", ErrUringUnavailable, err)
		}
		e.loops = append(e.loops, l)
	}
	for _, l := range e.loops {
		e.wg.Add(1)
		go l.run()
	}
	return e, nil
}

func (e *uringEngine) Loops() int { return len(e.loops) }

func (e *uringEngine) Held() int {
	n := e.gor.Held()
	for _, l := range e.loops {
		n += int(l.n.Load())
	}
	return n
}

func (e *uringEngine) leastLoaded() *uLoop {
	best := e.loops[0]
	for _, l := range e.loops[1:] {
		if l.n.Load() < best.n.Load() {
			best = l
		}
	}
	return best
}

func (e *uringEngine) Stop() {
	if !e.stopped.CompareAndSwap(false, true) {
		return
	}
	for _, l := range e.loops {
		l.post(uTask{kind: taskStop})
	}
	e.wg.Wait()
	e.gor.Stop()
}

// uLoop is one event loop: a ring, its buffers, a wake-up eventfd and the
// connections it holds.
type uLoop struct {
	e      *uringEngine
	id     int
	r      *ring
	br     *bufRing
	bufOff []int // bytes of each buffer the kernel filled so far
	brDone bool  // buffers were given back: publish before entering
	wakefd int   // signalled by the kernel for completions, by post for tasks
	file   *os.File
	rc     syscall.RawConn
	iov    [][]byte
	iovecs []unix.Iovec
	seq    uint32
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

	conns     []*uConn // indexed by fd; loop-owned
	listeners map[int32]*uListener
	n         atomic.Int32

	tmu        sync.Mutex
	tasks      []uTask
	spare      []uTask
	wakeQueued atomic.Bool
	stopping   bool
	stopped    bool // under tmu: tasks posted now are dropped
}

// pendIn is a connection's input in a batch: data while it is one
// completion's bytes in a loop buffer, nil once they were copied to c.in.
type pendIn struct {
	c    *uConn
	data []byte
}

// The io_uring loops' own tasks.
const (
	taskSync taskKind = 100 + iota
	taskAccept
)

type uTask struct {
	kind taskKind
	c    *uConn
	ln   *uListener
	fd   int
	sa   unix.Sockaddr
	done chan struct{}
}

// setup creates the ring, its buffers and the eventfd the loop parks on.
func (l *uLoop) setup() error {
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
	file := os.NewFile(uintptr(wakefd), "io_uring")
	rc, err := file.SyscallConn()
	if err != nil {
		file.Close()
		return fail(err)
	}
	l.r, l.br, l.wakefd, l.file, l.rc = r, br, wakefd, file, rc
	l.bufOff = make([]int, len(br.entries))
	return nil
}

// release frees what setup made.
func (l *uLoop) release() {
	l.r.close()
	l.br.free()
	l.file.Close()
}

func (l *uLoop) run() {
	defer l.e.wg.Done()
	// As the epoll loops do, a loop parks in the runtime's netpoller, on
	// the eventfd that the kernel signals when it posts completions (and
	// post when it adds a task); the counter is never read, every signal
	// is a new edge for the netpoller. The whole life of the loop is one
	// RawRead call: RawRead clears the descriptor's readiness only when it
	// starts, so a signal that comes while completions are being handled
	// is never lost. The kernel runs the receives in the task work of the
	// thread that submitted them, interrupting it as a signal would, and
	// never blocks the loop: the loop makes no blocking system call.
	r := l.r
	l.rc.Read(func(uintptr) bool {
		for {
			did := false
			for cqe := r.peek(); cqe != nil; cqe = r.peek() {
				ud, res, flags := cqe.userData, cqe.res, cqe.flags
				r.advance()
				l.complete(ud, res, flags)
				did = true
			}
			l.handOver()
			if l.wakeQueued.Load() {
				l.runTasks()
				did = true
			}
			if l.stopping {
				return true
			}
			if l.brDone {
				l.br.publish()
				l.brDone = false
			}
			if r.toSubmit > 0 {
				if err := r.enter(0); err != nil {
					panic(fmt.Sprintf("workerman: io_uring_enter: %v", err))
				}
				did = true // a submission may complete at once
			}
			if !did {
				return false
			}
		}
	})
	l.shutdown()
}

func (l *uLoop) complete(ud uint64, res int32, flags uint32) {
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
			if c := l.conns[fd]; c != nil && c.seq == seq {
				if kind == udRecv {
					c.onRecv(res, flags, data)
				} else {
					c.onPollOut()
				}
			}
		}
	case udListen:
		if ln := l.listeners[fd]; ln != nil {
			if flags&iouCQEFMore == 0 {
				ln.armed[l.id] = false
			}
			if res > 0 && !ln.paused.Load() {
				l.accept(ln, int(fd))
			}
			l.syncListener(ln, fd)
		}
	}
	if bid >= 0 {
		// Given back once its bytes were handed over (and any rest copied).
		l.spent = append(l.spent, uint16(bid))
	}
}

// handOver ends a batch of completions: each connection's input goes to
// its handler, then the buffers go back to the kernel.
func (l *uLoop) handOver() {
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
func (c *uConn) queueIn(data []byte) {
	l := c.loop
	if c.pend == 0 {
		if c.in != nil {
			c.appendIn(data)
			data = nil
		}
		l.pend = append(l.pend, pendIn{c: c, data: data})
		c.pend = int32(len(l.pend))
		return
	}
	p := &l.pend[c.pend-1]
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
func (c *uConn) handOver() {
	if c.pend == 0 {
		return
	}
	p := &c.loop.pend[c.pend-1]
	data := p.data
	*p = pendIn{}
	c.pend = 0
	if data != nil {
		c.process(data, true)
	} else if c.in != nil {
		c.process(*c.in, false)
	}
}

// cancel asks the kernel to drop the requests made with user data ud.
func (l *uLoop) cancel(ud uint64) {
	s := l.r.sqe()
	s.opcode = iouOpAsyncCancel
	s.fd = -1
	s.addr = ud
	s.opFlags = iouAsyncCancelAll
	s.flags = iosqeCQESkipSuc
	s.userData = udCancel << 56
}

func (l *uLoop) post(t uTask) {
	l.tmu.Lock()
	if l.stopped {
		l.tmu.Unlock()
		l.dropTask(t)
		return
	}
	l.tasks = append(l.tasks, t)
	if l.wakeQueued.CompareAndSwap(false, true) {
		// Under tmu, so that the eventfd is not closed meanwhile.
		var one = [8]byte{1}
		unix.Write(l.wakefd, one[:])
	}
	l.tmu.Unlock()
}

func (l *uLoop) runTasks() {
	// A poster appends, then sets wakeQueued and signals the eventfd if it
	// was the one to set it: after the clear below, a new post signals
	// again, and a post that found the flag set appended its task before
	// the swap.
	l.wakeQueued.Store(false)
	l.tmu.Lock()
	tasks := l.tasks
	l.tasks = l.spare[:0]
	l.tmu.Unlock()
	for i := range tasks {
		l.exec(&tasks[i])
		tasks[i] = uTask{}
	}
	if cap(tasks) > maxSpareTasks {
		tasks = nil
	}
	l.spare = tasks[:0]
}

func (l *uLoop) exec(t *uTask) {
	switch t.kind {
	case taskStop:
		l.stopping = true
	case taskSync:
		t.c.mu.Lock()
		t.c.syncQueued = false
		if !t.c.fdClosed {
			t.c.syncLocked()
		}
		t.c.mu.Unlock()
	case taskAdopt:
		l.adopt(t.fd, t.sa, t.ln)
	case taskClose:
		t.c.closeFD(nil)
	case taskLinger:
		t.c.startLinger()
	case taskResume:
		t.c.resume()
	case taskListen:
		l.listeners[int32(t.fd)] = t.ln
		l.syncListener(t.ln, int32(t.fd))
		close(t.done)
	case taskUnlisten:
		if ln, ok := l.listeners[int32(t.fd)]; ok {
			delete(l.listeners, int32(t.fd))
			if ln.armed[l.id] {
				l.cancel(userData(udListen, 0, int32(t.fd)))
				ln.armed[l.id] = false
				// The poll holds the socket open until the cancel ran:
				// run it now, so that the port is closed when Close returns.
				l.r.enter(0)
			}
			unix.Close(t.fd)
		}
		close(t.done)
	case taskAccept:
		if ln := l.listeners[int32(t.fd)]; ln == t.ln && !ln.paused.Load() {
			l.accept(ln, t.fd)
		}
	case taskPauseListen, taskResumeListen:
		if ln := l.listeners[int32(t.fd)]; ln != nil {
			l.syncListener(ln, int32(t.fd))
		}
	case taskDial:
		l.startDial(t.c)
	case taskDialTimeout:
		if d := t.c.dial; d != nil {
			t.c.dialFailed(fmt.Errorf("workerman: connect %s: %w", d.addr, os.ErrDeadlineExceeded))
		}
	}
}

// syncListener arms or cancels a listener's poll to match its pause.
func (l *uLoop) syncListener(ln *uListener, fd int32) {
	want := !ln.paused.Load() && !ln.closed.Load()
	switch {
	case want && !ln.armed[l.id]:
		s := l.r.sqe()
		s.opcode = iouOpPollAdd
		s.fd = fd
		s.opFlags = unix.POLLIN
		s.len = iouPollAddMulti
		s.userData = userData(udListen, 0, fd)
		ln.armed[l.id] = true
		l.armed++
	case !want && ln.armed[l.id]:
		l.cancel(userData(udListen, 0, fd))
		ln.armed[l.id] = false
	}
}

func (l *uLoop) dropTask(t uTask) {
	if t.done != nil {
		close(t.done)
	}
	switch t.kind {
	case taskAdopt:
		unix.Close(t.fd)
	case taskDial:
		t.c.dialFailed(errEngineStopped)
	}
}

// shutdown destroys every connection, closes the listeners and the ring.
func (l *uLoop) shutdown() {
	for _, c := range l.conns {
		if c != nil {
			if c.state.Load() == stConnecting {
				c.dialFailed(errEngineStopped)
			} else {
				c.closeFD(errEngineStopped)
			}
		}
	}
	for fd := range l.listeners {
		unix.Close(int(fd))
	}
	l.tmu.Lock()
	tasks := l.tasks
	l.tasks = nil
	l.stopped = true
	l.tmu.Unlock()
	for _, t := range tasks {
		l.dropTask(t)
	}
	l.drain()
	l.release()
}

// drain cancels every request still armed and waits (a bounded time) for
// their last completions, so that no receive writes into the buffers after
// they are unmapped. The cancels also release the sockets closed above.
func (l *uLoop) drain() {
	s := l.r.sqe()
	s.opcode = iouOpAsyncCancel
	s.fd = -1
	s.opFlags = iouAsyncCancelAll | iouAsyncCancelAny
	s.flags = iosqeCQESkipSuc
	s.userData = udCancel << 56
	deadline := time.Now().Add(2 * time.Second)
	for l.armed > 0 && time.Now().Before(deadline) {
		for cqe := l.r.peek(); cqe != nil; cqe = l.r.peek() {
			ud, res, flags := cqe.userData, cqe.res, cqe.flags
			l.r.advance()
			if kind := ud >> 56; kind != udCancel && (kind == udPollOut || flags&iouCQEFMore == 0) {
				l.armed--
			}
			_ = res
		}
		if l.armed > 0 {
			l.r.wait(100 * time.Millisecond)
		}
	}
}

// ---- connections ----

// uConn is a connection served by a uLoop: fdConn's fields and rules, with
// the requests armed in the ring in place of an epoll interest.
type uConn struct {
	loop     *uLoop
	h        Handler
	out      *outbox
	in       *[]byte // loop-owned
	timer    *time.Timer
	dial     *uDial
	ln       *uListener
	closeErr error
	nread    atomic.Uint64
	written  uint64
	mu       sync.Mutex
	state    atomic.Uint32
	paused   atomic.Uint32
	fd       int32
	need     int32 // loop-owned
	pend     int32 // loop-owned: 1 + its index in loop.pend, 0 = none
	seq      uint32

	// Under mu, changed by the loop only.
	registered bool
	recvArmed  bool // a multishot receive is armed (or its cancel is on the way)
	recvCancel bool // and its cancel was asked for
	outArmed   bool // a poll for write space is armed
	syncQueued bool // a taskSync is posted

	eof        bool
	fdClosed   bool
	notified   bool
	eofPending bool // loop-owned

	remote uPeer
}

// register adds c to the loop; the caller holds c.mu.
func (l *uLoop) register(c *uConn) {
	if int(c.fd) >= len(l.conns) {
		n := max(2*len(l.conns), int(c.fd)+1, 64)
		conns := make([]*uConn, n)
		copy(conns, l.conns)
		l.conns = conns
	}
	l.seq++
	c.seq = l.seq & 0xffffff
	c.registered = true
	l.conns[c.fd] = c
	c.syncLocked()
}

func (c *uConn) wantsReadLocked() bool {
	st := c.state.Load()
	return !c.eof && !c.fdClosed && st != stConnecting && st != stDead &&
		(c.paused.Load() == 0 || st == stClosing || st == stLinger)
}

// syncLocked arms and cancels requests to match the state (loop goroutine,
// c.mu held).
func (c *uConn) syncLocked() {
	if !c.registered || c.fdClosed {
		return
	}
	l := c.loop
	read := c.wantsReadLocked()
	switch {
	case read && !c.recvArmed:
		s := l.r.sqe()
		s.opcode = iouOpRecv
		s.fd = c.fd
		s.ioprio = iouRecvMultishot
		s.flags = iosqeBufferSelect
		s.userData = userData(udRecv, c.seq, c.fd)
		c.recvArmed = true
		l.armed++
	case !read && c.recvArmed && !c.recvCancel && !c.eof:
		l.cancel(userData(udRecv, c.seq, c.fd))
		c.recvCancel = true
	}
	if (c.queued() > 0 || c.state.Load() == stConnecting) && !c.outArmed {
		s := l.r.sqe()
		s.opcode = iouOpPollAdd
		s.fd = c.fd
		s.opFlags = unix.POLLOUT | unix.POLLERR | unix.POLLHUP
		s.userData = userData(udPollOut, c.seq, c.fd)
		c.outArmed = true
		l.armed++
	}
}

// kickLocked has the loop sync c's requests (any goroutine, c.mu held).
func (c *uConn) kickLocked() {
	if c.syncQueued || !c.registered || c.fdClosed {
		return
	}
	c.syncQueued = true
	c.loop.post(uTask{kind: taskSync, c: c})
}

// onRecv handles a completion of the multishot receive.
func (c *uConn) onRecv(res int32, flags uint32, data []byte) {
	if flags&iouCQEFMore == 0 {
		c.mu.Lock()
		c.recvArmed, c.recvCancel = false, false
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

// appendIn adds data to the bytes kept from earlier reads.
func (c *uConn) appendIn(data []byte) {
	b := *c.in
	if cap(b)-len(b) < len(data) {
		want := min(max(2*cap(b), len(b)+len(data), len(b)+minReadRoom), max(maxBufferCap, len(b)+len(data)))
		nb := bufferGet(want)
		copy(*nb, b)
		*nb = (*nb)[:len(b)]
		bufferPut(c.in)
		c.in = nb
		b = *nb
	}
	*c.in = append(b, data...)
}

// process is fdConn.process.
func (c *uConn) process(data []byte, inLoop bool) {
	consumed := 0
	if c.paused.Load() == 0 && c.state.Load() == stOpen && len(data) >= int(c.need) {
		var need int
		consumed, need = c.h.OnRead(data)
		c.need = int32(min(need, maxBufferCap))
	}
	if c.state.Load() != stOpen {
		consumed = len(data)
	}
	rest := data[consumed:]
	switch {
	case len(rest) == 0:
		if !inLoop {
			bufferPut(c.in)
			c.in = nil
		}
		c.need = 0
	case inLoop:
		b := bufferGet(max(len(rest), min(int(c.need), len(rest)*2)))
		copy(*b, rest)
		*b = (*b)[:len(rest)]
		c.in = b
	case consumed > 0:
		b := *c.in
		m := copy(b, rest)
		*c.in = b[:m]
	}
}

func (c *uConn) onEOF() {
	c.mu.Lock()
	c.eof = true
	st := c.state.Load()
	c.mu.Unlock()
	switch st {
	case stOpen:
		if c.in != nil && c.paused.Load() != 0 {
			c.eofPending = true
			return
		}
		c.deliverEOF()
	case stLinger:
		c.closeFD(nil)
	}
}

func (c *uConn) deliverEOF() {
	c.eofPending = false
	if c.in != nil {
		bufferPut(c.in)
		c.in = nil
	}
	c.h.OnEOF()
}

func (c *uConn) resume() {
	c.mu.Lock()
	if c.fdClosed {
		c.mu.Unlock()
		return
	}
	c.syncLocked()
	c.mu.Unlock()
	if c.paused.Load() != 0 {
		return
	}
	if c.in != nil {
		c.need = 0
		c.process(*c.in, false)
	}
	if c.eofPending && c.paused.Load() == 0 && c.state.Load() == stOpen {
		c.deliverEOF()
	}
	if r, ok := c.h.(resumer); ok && c.paused.Load() == 0 && c.state.Load() == stOpen {
		r.onResume()
	}
}

func (c *uConn) onPollOut() {
	c.mu.Lock()
	c.outArmed = false
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

func (c *uConn) Write(p []byte, limit int, drop bool) (int, error) {
	return c.write(p, limit, drop, false)
}

func (c *uConn) WriteShared(p []byte, limit int, drop bool) (int, error) {
	return c.write(p, limit, drop, true)
}

func (c *uConn) write(p []byte, limit int, drop, shared bool) (int, error) {
	c.mu.Lock()
	st := c.state.Load()
	if st != stOpen && st != stConnecting {
		err := c.closedErrLocked()
		c.mu.Unlock()
		return 0, err
	}
	if drop && c.queued() >= limit {
		q := c.queued()
		c.mu.Unlock()
		return q, ErrFull
	}
	if c.queued() == 0 && st == stOpen {
		for len(p) > 0 {
			n, err := rawWrite(int(c.fd), p)
			if n > 0 {
				c.written += uint64(n)
				p = p[n:]
				continue
			}
			if err == unix.EINTR {
				continue
			}
			if err == unix.EAGAIN {
				break
			}
			c.failLocked(err)
			c.mu.Unlock()
			return 0, fmt.Errorf("workerman: write: %w (%w)", net.ErrClosed, err)
		}
		if len(p) == 0 {
			c.mu.Unlock()
			return 0, nil
		}
	}
	if c.out == nil {
		c.out = new(outbox)
	}
	if shared {
		c.out.pushShared(p)
	} else {
		c.out.push(p)
	}
	if !c.outArmed {
		c.kickLocked()
	}
	q := c.queued()
	c.mu.Unlock()
	return q, nil
}

func (c *uConn) closedErrLocked() error {
	if c.closeErr != nil && !errors.Is(c.closeErr, net.ErrClosed) {
		return fmt.Errorf("workerman: connection closed: %w (%w)", net.ErrClosed, c.closeErr)
	}
	return fmt.Errorf("workerman: connection closed: %w", net.ErrClosed)
}

func (c *uConn) failLocked(err error) {
	if c.state.Load() == stDead {
		return
	}
	c.state.Store(stDead)
	c.closeErr = err
	c.dropOutput()
	c.loop.post(uTask{kind: taskClose, c: c})
}

// flush writes queued output once the socket has room (loop goroutine).
func (c *uConn) flush() {
	l := c.loop
	c.mu.Lock()
	if c.queued() == 0 {
		c.mu.Unlock()
		return
	}
	iov := c.out.iovecs(l.iov[:0], maxIovecs)
	n, err := rawWritev(int(c.fd), iov, &l.iovecs)
	clear(iov)
	l.iov = iov[:0]
	if n > 0 {
		c.out.consume(n)
		c.written += uint64(n)
		if c.out.len() == 0 {
			c.out = nil
		}
	}
	if err != nil && err != unix.EAGAIN && err != unix.EINTR {
		c.failLocked(err)
		c.mu.Unlock()
		return
	}
	drained := c.queued() == 0
	if !drained {
		c.syncLocked() // poll for room again
	}
	closing := drained && c.state.Load() == stClosing
	c.mu.Unlock()
	if drained {
		c.h.OnDrain()
	}
	if closing {
		c.startLinger()
	}
}

func (c *uConn) queued() int {
	if c.out == nil {
		return 0
	}
	return c.out.len()
}

func (c *uConn) dropOutput() {
	if c.out != nil {
		c.out.reset()
		c.out = nil
	}
}

func (c *uConn) Queued() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.queued()
}

func (c *uConn) BytesRead() uint64 { return c.nread.Load() }

func (c *uConn) BytesWritten() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.written
}

func (c *uConn) Close() {
	c.mu.Lock()
	switch c.state.Load() {
	case stConnecting:
		c.mu.Unlock()
		c.Destroy(nil)
		return
	case stOpen:
	default:
		c.mu.Unlock()
		return
	}
	c.state.Store(stClosing)
	if c.paused.Load() != 0 {
		c.kickLocked() // read (and discard) again while closing
	}
	if c.queued() == 0 {
		c.mu.Unlock()
		c.loop.post(uTask{kind: taskLinger, c: c})
		return
	}
	c.armFlushTimerLocked(c.written)
	c.mu.Unlock()
}

func (c *uConn) armFlushTimerLocked(progress uint64) {
	timeout := c.loop.e.cfg.FlushTimeout
	c.stopTimerLocked()
	c.timer = time.AfterFunc(timeout, func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.state.Load() != stClosing {
			return
		}
		if c.written != progress {
			c.armFlushTimerLocked(c.written)
			return
		}
		c.failLocked(ErrLingerTimeout)
	})
}

func (c *uConn) stopTimerLocked() {
	if c.timer != nil {
		c.timer.Stop()
		c.timer = nil
	}
}

// startLinger shuts down the write side once output is flushed and waits,
// reading and discarding, for the peer to close.
func (c *uConn) startLinger() {
	c.mu.Lock()
	if c.state.Load() != stClosing || c.fdClosed {
		c.mu.Unlock()
		return
	}
	c.state.Store(stLinger)
	if c.eof {
		c.mu.Unlock()
		c.closeFD(nil)
		return
	}
	unix.Shutdown(int(c.fd), unix.SHUT_WR)
	c.stopTimerLocked()
	c.timer = time.AfterFunc(LingerTimeout, func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.state.Load() == stLinger {
			c.failLocked(nil)
		}
	})
	c.syncLocked()
	c.notified = true
	c.mu.Unlock()
	c.h.OnClose(nil)
}

func (c *uConn) Destroy(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state.Load() == stDead {
		return
	}
	c.failLocked(err)
}

// releaseLocked cancels c's requests and closes its descriptor (loop
// goroutine). The kernel closes the socket when the cancels ran.
func (c *uConn) releaseLocked() {
	l := c.loop
	if c.registered {
		if c.recvArmed && !c.recvCancel {
			l.cancel(userData(udRecv, c.seq, c.fd))
		}
		if c.outArmed {
			l.cancel(userData(udPollOut, c.seq, c.fd))
		}
		c.recvArmed, c.outArmed, c.registered = false, false, false
		if l.conns[c.fd] == c {
			l.conns[c.fd] = nil
		}
	}
	unix.Close(int(c.fd))
}

// closeFD closes the descriptor and tells the handler (loop goroutine only).
func (c *uConn) closeFD(err error) {
	if c.dial != nil {
		c.dialFailed(err)
		return
	}
	c.mu.Lock()
	if c.fdClosed {
		c.mu.Unlock()
		return
	}
	c.fdClosed = true
	c.state.Store(stDead)
	if c.closeErr == nil {
		c.closeErr = err
	}
	err = c.closeErr
	c.dropOutput()
	c.stopTimerLocked()
	c.releaseLocked()
	notify := !c.notified
	c.notified = true
	c.mu.Unlock()
	c.loop.n.Add(-1)
	if c.in != nil {
		bufferPut(c.in)
		c.in = nil
	}
	if c.h != nil && notify {
		c.h.OnClose(err)
	}
}

func (c *uConn) PauseRead(r Reason) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for {
		old := c.paused.Load()
		if c.paused.CompareAndSwap(old, old|uint32(r)) {
			break
		}
	}
	if c.recvArmed && !c.wantsReadLocked() {
		c.kickLocked()
	}
}

func (c *uConn) ResumeRead(r Reason) {
	c.mu.Lock()
	var now uint32
	for {
		old := c.paused.Load()
		now = old &^ uint32(r)
		if c.paused.CompareAndSwap(old, now) {
			if old == now {
				c.mu.Unlock()
				return
			}
			break
		}
	}
	c.mu.Unlock()
	if now == 0 {
		c.loop.post(uTask{kind: taskResume, c: c})
	}
}

// postResume makes the loop run resume.
func (c *uConn) postResume() { c.loop.post(uTask{kind: taskResume, c: c}) }

func (c *uConn) RemoteAddr() net.Addr { return c.remote.addr() }

func (c *uConn) LocalAddr() net.Addr {
	c.mu.Lock()
	closed, fd := c.fdClosed, int(c.fd)
	c.mu.Unlock()
	if !closed && fd >= 0 {
		if sa, err := unix.Getsockname(fd); err == nil {
			if a := sockaddrToAddr(sa); a != nil {
				return a
			}
		}
	}
	if c.ln != nil {
		return c.ln.local
	}
	return nil
}

// ---- listeners ----

// uListener is fdListener for the io_uring loops.
type uListener struct {
	e        *uringEngine
	accept   AcceptFunc
	fds      []int
	owners   []*uLoop
	armed    []bool // per loop id: a poll is armed (loop-owned)
	local    net.Addr
	unixPath string
	spread   bool
	paused   atomic.Bool
	closed   atomic.Bool
	mu       sync.Mutex
	held     []uHeld
}

type uHeld struct {
	loop *uLoop
	fd   int
	sa   unix.Sockaddr
}

func (e *uringEngine) Listen(spec *Listener, accept AcceptFunc) error {
	if isPacket(spec.Network) {
		return listenUDP(spec, accept, e.Loops())
	}
	if spec.TLS != nil {
		return e.gor.Listen(spec, accept)
	}
	family, sa, err := listenSockaddr(spec.Network, spec.Address)
	if err != nil {
		return err
	}
	ln := &uListener{e: e, accept: accept, armed: make([]bool, len(e.loops))}
	ln.paused.Store(spec.Paused)
	tcp := family != unix.AF_UNIX
	if !tcp {
		ln.unixPath = spec.Address
		removeStaleSocket(spec.Address)
	}
	count := 1
	if spec.ReusePort && tcp {
		count = len(e.loops)
	}
	ln.spread = count == 1
	backlog := spec.Backlog
	if backlog <= 0 {
		backlog = 102400
	}
	for i := 0; i < count; i++ {
		fd, err := listenSocket(family, sa, spec.ReusePort, backlog)
		if err != nil {
			for _, fd := range ln.fds {
				unix.Close(fd)
			}
			return fmt.Errorf("workerman: listen %s %s: %w", spec.Network, spec.Address, err)
		}
		ln.fds = append(ln.fds, fd)
		if i == 0 {
			if bound, err := unix.Getsockname(fd); err == nil {
				sa = bound
				ln.local = sockaddrToAddr(bound)
			}
		}
	}
	for i, fd := range ln.fds {
		l := e.loops[i]
		ln.owners = append(ln.owners, l)
		done := make(chan struct{})
		l.post(uTask{kind: taskListen, fd: fd, ln: ln, done: done})
		<-done
	}
	spec.impl = ln
	return nil
}

func (ln *uListener) addr() net.Addr { return ln.local }

func (ln *uListener) close() error {
	if !ln.closed.CompareAndSwap(false, true) {
		return nil
	}
	for i, fd := range ln.fds {
		done := make(chan struct{})
		ln.owners[i].post(uTask{kind: taskUnlisten, fd: fd, done: done})
		<-done
	}
	ln.mu.Lock()
	held := ln.held
	ln.held = nil
	ln.mu.Unlock()
	for _, h := range held {
		unix.Close(h.fd)
		h.loop.n.Add(-1)
	}
	if ln.unixPath != "" {
		os.Remove(ln.unixPath)
	}
	return nil
}

func (ln *uListener) setPaused(p bool) {
	ln.mu.Lock()
	defer ln.mu.Unlock()
	if ln.closed.Load() || ln.paused.Swap(p) == p {
		return
	}
	kind := taskResumeListen
	if p {
		kind = taskPauseListen
	}
	for i, fd := range ln.fds {
		ln.owners[i].post(uTask{kind: kind, fd: fd})
	}
	if !p {
		for _, h := range ln.held {
			h.loop.post(uTask{kind: taskAdopt, fd: h.fd, sa: h.sa, ln: ln})
		}
		ln.held = nil
	}
}

func (ln *uListener) hold(l *uLoop, fd int, sa unix.Sockaddr) bool {
	if !ln.paused.Load() {
		return false
	}
	ln.mu.Lock()
	defer ln.mu.Unlock()
	if !ln.paused.Load() || ln.closed.Load() {
		return false
	}
	ln.held = append(ln.held, uHeld{l, fd, sa})
	return true
}

// accept takes the pending connections from lfd. The poll is multishot and
// signals each new connection, so a batch that stops short is resumed by
// the next completion; one that empties the queue waits for it.
func (l *uLoop) accept(ln *uListener, lfd int) {
	for range acceptBatch {
		fd, sa, err := unix.Accept4(lfd, unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC)
		if err != nil {
			switch err {
			case unix.EINTR, unix.ECONNABORTED:
				continue
			case unix.EMFILE, unix.ENFILE, unix.ENOBUFS, unix.ENOMEM:
				ln.setPaused(true)
				time.AfterFunc(100*time.Millisecond, func() { ln.setPaused(false) })
			}
			return
		}
		target := l
		if ln.spread {
			target = l.e.leastLoaded()
		}
		target.n.Add(1)
		if target == l {
			l.adopt(fd, sa, ln)
		} else {
			target.post(uTask{kind: taskAdopt, fd: fd, sa: sa, ln: ln})
		}
	}
	// Connections may still be pending, and the multishot poll reports new
	// ones only: come back for them after the other completions.
	l.post(uTask{kind: taskAccept, ln: ln, fd: lfd})
}

func (l *uLoop) adopt(fd int, sa unix.Sockaddr, ln *uListener) {
	if ln.hold(l, fd, sa) {
		return
	}
	c := &uConn{loop: l, fd: int32(fd), remote: uPeerFrom(sa), ln: ln}
	c.state.Store(stOpen)
	h := ln.accept(c, l.id)
	if h == nil {
		unix.Close(fd)
		l.n.Add(-1)
		return
	}
	c.h = h
	c.mu.Lock()
	l.register(c)
	c.mu.Unlock()
}

// Dial prepares a connect on the least-loaded loop.
func (e *uringEngine) Dial(d DialRequest) DialConn {
	if d.TLS != nil {
		return e.gor.Dial(d)
	}
	l := e.leastLoaded()
	l.n.Add(1)
	c := &uConn{loop: l, fd: -1, dial: &uDial{addr: d.Address, req: d}}
	c.state.Store(stConnecting)
	return c
}

func (c *uConn) Instance() int { return c.loop.id }

func (c *uConn) Start(h Handler, done func(err error)) {
	l := c.loop
	c.mu.Lock()
	c.h = h
	c.dial.done = done
	d := c.dial.req
	if c.state.Load() != stConnecting {
		c.mu.Unlock()
		l.post(uTask{kind: taskDial, c: c})
		return
	}
	if d.Timeout > 0 {
		c.timer = time.AfterFunc(d.Timeout, func() { l.post(uTask{kind: taskDialTimeout, c: c}) })
	}
	c.mu.Unlock()
	if family, sa, err := dialSockaddr(d.Network, d.Address); err == nil {
		c.startConnect(family, sa)
		l.post(uTask{kind: taskDial, c: c})
		return
	}
	go func() {
		family, sa, err := resolveDial(d.Network, d.Address, d.Timeout)
		if err != nil {
			c.mu.Lock()
			c.dial.err = err
			c.mu.Unlock()
		} else {
			c.startConnect(family, sa)
		}
		l.post(uTask{kind: taskDial, c: c})
	}()
}

func (c *uConn) startConnect(family int, sa unix.Sockaddr) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.fdClosed {
		return
	}
	fd, err := unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		c.dial.err = fmt.Errorf("workerman: socket: %w", err)
		return
	}
	if family != unix.AF_UNIX {
		unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
		unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_KEEPALIVE, 1)
	}
	err = unix.Connect(fd, sa)
	if err != nil && err != unix.EINPROGRESS && err != unix.EINTR && err != unix.EAGAIN {
		unix.Close(fd)
		c.dial.err = fmt.Errorf("workerman: connect %s: %w", c.dial.addr, err)
		return
	}
	c.fd = int32(fd)
	c.remote = uPeerFrom(sa)
}

func (l *uLoop) startDial(c *uConn) {
	c.mu.Lock()
	if c.fdClosed {
		c.mu.Unlock()
		c.dialFailed(nil)
		return
	}
	err := c.dial.err
	if err == nil && c.state.Load() != stConnecting {
		err = c.closedErrLocked()
	}
	if err == nil {
		l.register(c) // polls for the connect's end
	}
	c.mu.Unlock()
	if err != nil {
		c.dialFailed(err)
	}
}

// finishDial runs when a connecting socket polled writable.
func (c *uConn) finishDial() {
	if err := sockError(int(c.fd)); err != nil {
		c.dialFailed(fmt.Errorf("workerman: connect %s: %w", c.dial.addr, err))
		return
	}
	c.mu.Lock()
	c.stopTimerLocked()
	c.state.Store(stOpen)
	done := c.dial.done
	c.dial = nil
	c.mu.Unlock()
	done(nil)
	c.mu.Lock()
	c.syncLocked() // start reading
	c.mu.Unlock()
	c.flush()
}

func (c *uConn) dialFailed(err error) {
	c.mu.Lock()
	if c.dial == nil {
		c.mu.Unlock()
		return
	}
	if !c.fdClosed {
		c.fdClosed = true
		c.state.Store(stDead)
		c.dropOutput()
		c.stopTimerLocked()
		if c.fd >= 0 {
			c.releaseLocked()
		}
		c.loop.n.Add(-1)
		if err == nil {
			err = c.closeErr
		}
		if err == nil {
			err = fmt.Errorf("workerman: connect %s: %w", c.dial.addr, net.ErrClosed)
		}
		c.dial.err = err
	}
	done, err := c.dial.done, c.dial.err
	c.dial.done = nil
	c.mu.Unlock()
	if done != nil {
		done(err)
	}
}

// uDial is what a connection needs only while it connects.
type uDial struct {
	req  DialRequest
	done func(error)
	addr string
	err  error
}

// uPeer keeps an IP socket address inline, without the allocation of a
// unix.Sockaddr.
type uPeer struct {
	ip   [16]byte
	port uint16
	kind uint8 // 0 none (unix socket), 4 or 6
}

func uPeerFrom(sa unix.Sockaddr) uPeer {
	switch sa := sa.(type) {
	case *unix.SockaddrInet4:
		p := uPeer{port: uint16(sa.Port), kind: 4}
		copy(p.ip[:], sa.Addr[:])
		return p
	case *unix.SockaddrInet6:
		return uPeer{ip: sa.Addr, port: uint16(sa.Port), kind: 6}
	}
	return uPeer{}
}

func (p uPeer) addr() net.Addr {
	switch p.kind {
	case 4:
		return &net.TCPAddr{IP: net.IPv4(p.ip[0], p.ip[1], p.ip[2], p.ip[3]), Port: int(p.port)}
	case 6:
		ip := make(net.IP, net.IPv6len)
		copy(ip, p.ip[:])
		return &net.TCPAddr{IP: ip, Port: int(p.port)}
	}
	return nil
}
