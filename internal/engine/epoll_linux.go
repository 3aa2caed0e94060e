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

// The loops do not block an OS thread in epoll_wait. Each epoll descriptor is
// itself registered with the Go runtime's netpoller (an epoll set becomes
// readable when it has ready events), and a loop parks in RawConn.Read until
// then. Polling with a zero timeout afterwards never blocks, so a loop is an
// ordinary goroutine for the scheduler: with GOMAXPROCS=1 the callbacks on the
// pool and the loops share the one P without waiting for sysmon to hand it
// over.

const (
	maxEvents    = 256
	maxIovecs    = 1024 // IOV_MAX on Linux
	acceptBatch  = 64   // connections accepted per readiness event
	minReadRoom  = 4 << 10
	readEvents   = unix.EPOLLIN | unix.EPOLLRDHUP
	writeEvents  = unix.EPOLLOUT
	errorEvents  = unix.EPOLLERR | unix.EPOLLHUP
	maxBufferCap = 1 << 30
)

type epollEngine struct {
	cfg     Config
	loops   []*loop
	wg      sync.WaitGroup
	stopped atomic.Bool
}

func newPlatform(cfg Config) (Engine, error) {
	e := &epollEngine{cfg: cfg}
	for i := 0; i < cfg.Loops; i++ {
		l, err := newLoop(e, i)
		if err != nil {
			for _, l := range e.loops {
				l.file.Close()
				unix.Close(l.wakefd)
			}
			return nil, err
		}
		e.loops = append(e.loops, l)
	}
	for _, l := range e.loops {
		e.wg.Add(1)
		go l.run()
	}
	return e, nil
}

func (e *epollEngine) Loops() int { return len(e.loops) }

func (e *epollEngine) Held() int {
	n := 0
	for _, l := range e.loops {
		n += int(l.n.Load())
	}
	return n
}

// leastLoaded picks the loop holding the fewest connections, so that
// long-lived connections spread evenly even when they close unevenly.
func (e *epollEngine) leastLoaded() *loop {
	best := e.loops[0]
	for _, l := range e.loops[1:] {
		if l.n.Load() < best.n.Load() {
			best = l
		}
	}
	return best
}

func (e *epollEngine) Stop() {
	if !e.stopped.CompareAndSwap(false, true) {
		return
	}
	for _, l := range e.loops {
		l.post(task{kind: taskStop})
	}
	e.wg.Wait()
}

// loop is one event loop: an epoll set, a wake-up eventfd, a read buffer and
// the connections it holds.
type loop struct {
	e      *epollEngine
	id     int
	epfd   int
	wakefd int
	file   *os.File
	rc     syscall.RawConn
	events []unix.EpollEvent
	again  bool // something may still be ready: poll before parking
	buf    []byte
	iov    [][]byte
	iovecs []unix.Iovec // rawWritev's

	conns     []*fdConn // indexed by fd; loop-owned
	listeners map[int]*fdListener
	n         atomic.Int32 // connections held

	tmu        sync.Mutex
	tasks      []task
	spare      []task
	wakeQueued atomic.Bool
	stopping   bool
}

type taskKind uint8

const (
	taskStop taskKind = iota
	taskAdopt
	taskClose
	taskLinger
	taskResume
	taskListen
	taskUnlisten
	taskPauseListen
	taskResumeListen
	taskDial
	taskDialTimeout
)

type task struct {
	kind taskKind
	c    *fdConn
	ln   *fdListener
	fd   int
	peer rawPeer // taskAdopt
	done chan struct{}
}

func newLoop(e *epollEngine, id int) (*loop, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("workerman: epoll_create1: %w", err)
	}
	wakefd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		unix.Close(epfd)
		return nil, fmt.Errorf("workerman: eventfd: %w", err)
	}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, wakefd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(wakefd)}); err != nil {
		unix.Close(epfd)
		unix.Close(wakefd)
		return nil, fmt.Errorf("workerman: epoll_ctl: %w", err)
	}
	if err := unix.SetNonblock(epfd, true); err != nil {
		unix.Close(epfd)
		unix.Close(wakefd)
		return nil, err
	}
	file := os.NewFile(uintptr(epfd), "epoll")
	rc, err := file.SyscallConn()
	if err != nil {
		file.Close()
		unix.Close(wakefd)
		return nil, err
	}
	return &loop{
		e:         e,
		id:        id,
		epfd:      epfd,
		wakefd:    wakefd,
		file:      file,
		rc:        rc,
		events:    make([]unix.EpollEvent, maxEvents),
		buf:       make([]byte, e.cfg.ReadBufferSize),
		listeners: make(map[int]*fdListener),
	}, nil
}

func (l *loop) run() {
	defer l.e.wg.Done()
	// The whole life of the loop is one RawRead call: RawRead clears the
	// descriptor's readiness only when it starts, so a wake-up that arrives
	// while events are being handled is never lost. After a batch the loop
	// parks without polling again unless something may still be ready that
	// the kernel will not signal anew (a read that filled the buffer, a
	// partial flush, a full accept batch): a new event on any descriptor
	// of the set wakes the runtime's netpoller, and with it this loop.
	l.rc.Read(func(uintptr) bool {
		for {
			n, err := unix.EpollWait(l.epfd, l.events, 0)
			if err != nil || n == 0 {
				return l.stopping
			}
			l.again = n == len(l.events)
			for i := 0; i < n; i++ {
				ev := &l.events[i]
				fd := int(ev.Fd)
				switch {
				case fd == l.wakefd:
					l.runTasks()
				case l.listeners[fd] != nil:
					l.accept(l.listeners[fd], fd)
				default:
					if fd < len(l.conns) && l.conns[fd] != nil {
						l.conns[fd].onEvents(ev.Events)
					}
				}
			}
			if l.stopping {
				return true
			}
			if !l.again {
				return false
			}
		}
	})
	l.shutdown()
}

func (l *loop) post(t task) {
	l.tmu.Lock()
	l.tasks = append(l.tasks, t)
	l.tmu.Unlock()
	l.wake()
}

// wake makes the loop poll, from any goroutine.
func (l *loop) wake() {
	if l.wakeQueued.CompareAndSwap(false, true) {
		var one = [8]byte{1}
		unix.Write(l.wakefd, one[:])
	}
}

func (l *loop) runTasks() {
	// Order matters. A poster appends, then sets wakeQueued, and writes the
	// eventfd only if it was the one to set it. Draining the eventfd before
	// clearing the flag means every write that happens after the clear is
	// still pending for the next wake-up, and every post that found the flag
	// set appended its task before the swap below.
	var drain [8]byte
	unix.Read(l.wakefd, drain[:])
	l.wakeQueued.Store(false)
	l.tmu.Lock()
	tasks := l.tasks
	l.tasks = l.spare[:0]
	l.tmu.Unlock()
	for i := range tasks {
		l.exec(&tasks[i])
		tasks[i] = task{}
	}
	// The two lists take turns; one that a burst grew (thousands of
	// connections handed over at once) is not kept for the next.
	if cap(tasks) > maxSpareTasks {
		tasks = nil
	}
	l.spare = tasks[:0]
}

// maxSpareTasks is the most tasks a spare list keeps room for.
const maxSpareTasks = 256

func (l *loop) exec(t *task) {
	switch t.kind {
	case taskStop:
		l.stopping = true
	case taskAdopt:
		l.adopt(t.fd, t.peer, t.ln)
	case taskClose:
		t.c.closeFD(nil) // keeps the recorded cause
	case taskLinger:
		t.c.startLinger()
	case taskResume:
		t.c.resume()
	case taskListen:
		l.listeners[t.fd] = t.ln
		if !t.ln.paused.Load() {
			l.ctl(unix.EPOLL_CTL_ADD, t.fd, unix.EPOLLIN)
		}
		close(t.done)
	case taskUnlisten:
		if _, ok := l.listeners[t.fd]; ok {
			delete(l.listeners, t.fd)
			unix.EpollCtl(l.epfd, unix.EPOLL_CTL_DEL, t.fd, nil)
			unix.Close(t.fd)
		}
		close(t.done)
	case taskPauseListen:
		if l.listeners[t.fd] != nil {
			unix.EpollCtl(l.epfd, unix.EPOLL_CTL_DEL, t.fd, nil)
		}
	case taskResumeListen:
		if l.listeners[t.fd] != nil {
			l.ctl(unix.EPOLL_CTL_ADD, t.fd, unix.EPOLLIN)
		}
	case taskDial:
		l.startDial(t.c)
	case taskDialTimeout:
		if d := t.c.dialing(); d != nil {
			t.c.dialFailed(fmt.Errorf("workerman: connect %s: %w", d.addr, os.ErrDeadlineExceeded))
		}
	}
}

func (l *loop) ctl(op, fd int, events uint32) error {
	return unix.EpollCtl(l.epfd, op, fd, &unix.EpollEvent{Events: events, Fd: int32(fd)})
}

// shutdown runs when the loop stops: every connection is destroyed (its
// owner hears OnClose) and the descriptors are released.
func (l *loop) shutdown() {
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
		unix.Close(fd)
	}
	// Tasks posted after the stop (a Listen racing Stop) must not hang.
	l.tmu.Lock()
	for _, t := range l.tasks {
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
	l.tasks = nil
	l.tmu.Unlock()
	l.file.Close()
	unix.Close(l.wakefd)
}

var errEngineStopped = fmt.Errorf("workerman: engine stopped: %w", net.ErrClosed)

// ---- connections ----

// fdConn is a connection served by a loop. Fields marked loop-owned are only
// touched by the loop goroutine; the others are guarded by mu or atomic. It
// is kept small: an idle connection is this struct and its Handler only,
// and this struct stays in the runtime's 112-byte size class (a test holds
// it there). What few connections need is in x.
type fdConn struct {
	loop    *loop
	h       Handler
	out     *outbox     // queued output; nil when nothing is queued
	in      *[]byte     // loop-owned: bytes not yet consumed
	x       *connExtra  // guarded by mu; nil until needed
	ln      *fdListener // the listener that accepted it, if any
	nread   atomic.Uint64
	written uint64
	mu      sync.Mutex
	state   atomic.Uint32
	paused  atomic.Uint32
	fd      int32
	need    int32  // loop-owned: bytes OnRead wants before it is called again
	events  uint32 // current epoll interest; 0 = not registered

	eof        bool // peer shut down its side; no more reading
	fdClosed   bool
	notified   bool // OnClose was called
	eofPending bool // loop-owned: EOF seen while paused with input buffered

	remote peerAddr // guarded by mu (set before the connection is shared, or while it dials)
}

// connExtra is the part of a connection that few connections need: one that
// dials, closes with output queued or lingers, failed with an error, or has
// an IPv6 peer. It is allocated by the first of these that happens (see
// extraLocked) and, like the fields of fdConn it extends, guarded by mu.
type connExtra struct {
	dial     *dialState  // while connecting
	timer    *time.Timer // dial timeout, flush stall or linger deadline
	closeErr error       // why the connection failed, if it did
	ip6      [16]byte    // the peer's address when remote.kind is 6
}

// extraLocked returns c.x, allocating it; the caller holds mu (or c is not
// shared yet).
func (c *fdConn) extraLocked() *connExtra {
	if c.x == nil {
		c.x = new(connExtra)
	}
	return c.x
}

func (c *fdConn) dialLocked() *dialState {
	if c.x == nil {
		return nil
	}
	return c.x.dial
}

// dialing returns the dial state while the connection connects, nil once it
// is connected. What it returns may be read without mu except done and err.
func (c *fdConn) dialing() *dialState {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.dialLocked()
}

func (c *fdConn) closeErrLocked() error {
	if c.x == nil {
		return nil
	}
	return c.x.closeErr
}

// setCloseErrLocked records why the connection failed (nothing for nil).
func (c *fdConn) setCloseErrLocked(err error) {
	if err != nil {
		c.extraLocked().closeErr = err
	}
}

// dialState is what a connection needs only while it connects.
type dialState struct {
	req  DialRequest
	done func(error)
	addr string
	err  error
}

// register adds c to the loop; the caller holds c.mu.
func (l *loop) register(c *fdConn) error {
	if int(c.fd) >= len(l.conns) {
		// The table is a pointer per descriptor of every connection held:
		// growing it by a quarter (the kernel hands out the lowest free
		// descriptor, so it is dense) costs at most a quarter more, where
		// doubling cost up to twice the size.
		n := max(len(l.conns)+len(l.conns)/4, int(c.fd)+1, 64)
		conns := make([]*fdConn, n)
		copy(conns, l.conns)
		l.conns = conns
	}
	c.events = c.wantedEventsLocked()
	if err := l.ctl(unix.EPOLL_CTL_ADD, int(c.fd), c.events); err != nil {
		return err
	}
	l.conns[c.fd] = c
	return nil
}

func (c *fdConn) onEvents(ev uint32) {
	switch c.state.Load() {
	case stConnecting:
		if ev&(unix.EPOLLOUT|errorEvents) == 0 || !c.finishDial() {
			return
		}
		// Connected. What the server sent at once (a greeting, maybe its
		// FIN) may have come with the connect: this event is the only
		// report of it the loop gets, since the epoll set is not signalled
		// again for a socket that stays readable. Read it now, as for an
		// open socket, or it waits for the next byte the server sends.
		if c.state.Load() == stDead {
			return
		}
	case stDead:
		c.closeFD(nil) // keeps the recorded cause
		return
	}
	if ev&(unix.EPOLLOUT|errorEvents) != 0 {
		c.flush()
	}
	if ev&(readEvents|errorEvents) != 0 && c.loop.conns[c.fd] == c {
		c.read(ev)
	}
}

// read handles readability: one read per event, fair to the other
// connections of the loop since epoll is level-triggered.
func (c *fdConn) read(ev uint32) {
	l := c.loop
	c.mu.Lock()
	eof := c.eof
	c.mu.Unlock()
	if eof {
		if ev&errorEvents != 0 {
			c.closeFD(sockError(int(c.fd)))
		}
		return
	}
	var (
		n   int
		err error
	)
	fromLoopBuf := c.in == nil
	if fromLoopBuf {
		n, err = rawRead(int(c.fd), l.buf)
	} else {
		c.grow()
		b := *c.in
		n, err = rawRead(int(c.fd), b[len(b):cap(b)])
		if n > 0 {
			*c.in = b[:len(b)+n]
		}
	}
	switch {
	case n > 0:
		c.nread.Add(uint64(n))
		// A level-triggered socket that is still readable is not signalled
		// again: poll before parking when more bytes may wait (the read
		// filled the buffer) or the peer's FIN came with the data.
		if fromLoopBuf && n == len(l.buf) || !fromLoopBuf && len(*c.in) == cap(*c.in) ||
			ev&(unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) != 0 {
			l.again = true
		}
	case err == unix.EAGAIN || err == unix.EINTR:
		return
	case err != nil:
		c.closeFD(err)
		return
	default:
		c.onEOF()
		return
	}
	st := c.state.Load()
	if st != stOpen {
		// Closing: input is discarded, but reading goes on so that unread
		// bytes do not turn our close into a reset.
		if !fromLoopBuf {
			*c.in = (*c.in)[:0]
		}
		return
	}
	if fromLoopBuf {
		c.process(l.buf[:n], true)
	} else {
		c.process(*c.in, false)
	}
}

// process hands data to the handler unless reading is paused, and keeps
// whatever it did not consume. data is l.buf (inLoop) or *c.in.
func (c *fdConn) process(data []byte, inLoop bool) {
	consumed := 0
	if c.paused.Load() == 0 && c.state.Load() == stOpen && len(data) >= int(c.need) {
		var need int
		consumed, need = c.h.OnRead(data)
		c.need = int32(min(need, maxBufferCap))
	}
	if c.state.Load() != stOpen {
		consumed = len(data) // closing: the rest is discarded
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

// grow makes room in c.in for the next read. The buffer grows with the
// bytes that actually arrive, never to a length the peer merely announced.
func (c *fdConn) grow() {
	b := *c.in
	room, need := cap(b)-len(b), int(c.need)
	if room >= minReadRoom || (room > 0 && need > 0 && cap(b) >= need) {
		return
	}
	want := max(2*cap(b), len(b)+minReadRoom)
	if need > len(b) {
		want = min(want, need)
	}
	want = min(max(want, len(b)+1), maxBufferCap)
	nb := bufferGet(want)
	copy(*nb, b)
	*nb = (*nb)[:len(b)]
	bufferPut(c.in)
	c.in = nb
}

func (c *fdConn) onEOF() {
	c.mu.Lock()
	c.eof = true
	st := c.state.Load()
	c.updateEventsLocked()
	c.mu.Unlock()
	switch st {
	case stOpen:
		if c.in != nil && c.paused.Load() != 0 {
			// Complete packets may wait in the buffer: report the EOF after
			// they were handed over.
			c.eofPending = true
			return
		}
		c.deliverEOF()
	case stLinger:
		c.closeFD(nil)
	}
}

func (c *fdConn) deliverEOF() {
	c.eofPending = false
	if c.in != nil {
		// A partial packet can never complete now; drop it.
		bufferPut(c.in)
		c.in = nil
	}
	c.h.OnEOF()
}

// resume runs on the loop after reading was resumed: bytes buffered while
// paused are handed over before new ones are read.
func (c *fdConn) resume() {
	if c.fdClosedLoop() || c.paused.Load() != 0 {
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

// resumer is a Handler that keeps input of its own (a TLS layer's decrypted
// bytes): resume hands it the turn after the connection's buffered bytes.
type resumer interface{ onResume() }

// postResume makes the loop run resume, as a ResumeRead that cleared the
// last reason does.
func (c *fdConn) postResume() { c.loop.post(task{kind: taskResume, c: c}) }

func (c *fdConn) fdClosedLoop() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.fdClosed
}

// updateEventsLocked sets the epoll interest from the state.
func (c *fdConn) updateEventsLocked() {
	if c.fdClosed || c.events == 0 {
		return // not registered (yet)
	}
	if ev := c.wantedEventsLocked(); ev != c.events {
		added := ev &^ c.events
		c.events = ev
		c.loop.ctl(unix.EPOLL_CTL_MOD, int(c.fd), ev)
		if added != 0 {
			// epoll_ctl(MOD) signals the runtime's netpoller only when it
			// puts the socket on the ready list; a socket still listed
			// from an earlier event stays silent, and a socket that is
			// already writable gets no later write-space wake-up. Make
			// the loop poll once.
			c.loop.wake()
		}
	}
}

func (c *fdConn) wantedEventsLocked() uint32 {
	var ev uint32
	st := c.state.Load()
	if !c.eof && (c.paused.Load() == 0 || st == stClosing || st == stLinger) {
		ev |= readEvents
	}
	if c.queued() > 0 || st == stConnecting {
		ev |= writeEvents
	}
	return ev | unix.EPOLLERR // never 0, so that 0 means "not registered"
}

func (c *fdConn) Write(p []byte, limit int, drop bool) (int, error) {
	return c.write(p, limit, drop, false)
}

func (c *fdConn) WriteShared(p []byte, limit int, drop bool) (int, error) {
	return c.write(p, limit, drop, true)
}

func (c *fdConn) write(p []byte, limit int, drop, shared bool) (int, error) {
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
	c.updateEventsLocked()
	q := c.queued()
	c.mu.Unlock()
	return q, nil
}

func (c *fdConn) closedErrLocked() error {
	if err := c.closeErrLocked(); err != nil && !errors.Is(err, net.ErrClosed) {
		return fmt.Errorf("workerman: connection closed: %w (%w)", net.ErrClosed, err)
	}
	return fmt.Errorf("workerman: connection closed: %w", net.ErrClosed)
}

// failLocked marks the connection dead after a write error; the loop closes
// the descriptor.
func (c *fdConn) failLocked(err error) {
	if c.state.Load() == stDead {
		return
	}
	c.state.Store(stDead)
	c.setCloseErrLocked(err) // none was recorded: only a dead connection has one
	c.dropOutput()
	c.loop.post(task{kind: taskClose, c: c})
}

// flush writes queued output when the socket is writable (loop goroutine).
func (c *fdConn) flush() {
	l := c.loop
	c.mu.Lock()
	if c.queued() == 0 {
		c.updateEventsLocked()
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
	if err == nil && c.queued() > 0 {
		l.again = true // still writable: flush more before parking
	}
	drained := c.queued() == 0
	if drained {
		c.updateEventsLocked()
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

func (c *fdConn) queued() int {
	if c.out == nil {
		return 0
	}
	return c.out.len()
}

func (c *fdConn) dropOutput() {
	if c.out != nil {
		c.out.reset()
		c.out = nil
	}
}

func (c *fdConn) Queued() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.queued()
}

func (c *fdConn) BytesRead() uint64 { return c.nread.Load() }

func (c *fdConn) BytesWritten() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.written
}

func (c *fdConn) Close() {
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
	c.updateEventsLocked()
	if c.queued() == 0 {
		c.mu.Unlock()
		c.loop.post(task{kind: taskLinger, c: c})
		return
	}
	// Bound the flush: a peer that stops reading must not keep the
	// connection forever.
	c.armFlushTimerLocked(c.written)
	c.mu.Unlock()
}

func (c *fdConn) armFlushTimerLocked(progress uint64) {
	timeout := c.loop.e.cfg.FlushTimeout
	c.stopTimerLocked()
	c.extraLocked().timer = time.AfterFunc(timeout, func() {
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

func (c *fdConn) stopTimerLocked() {
	if c.x != nil && c.x.timer != nil {
		c.x.timer.Stop()
		c.x.timer = nil
	}
}

// startLinger shuts down the write side once output is flushed and waits,
// reading and discarding, for the peer to close.
func (c *fdConn) startLinger() {
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
	c.extraLocked().timer = time.AfterFunc(LingerTimeout, func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.state.Load() == stLinger {
			c.failLocked(nil)
		}
	})
	// For the owner the connection is over: everything was written. The
	// socket lingers on its own, discarding input, until the peer closes.
	c.notified = true
	c.mu.Unlock()
	c.h.OnClose(nil)
}

func (c *fdConn) Destroy(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state.Load() == stDead {
		return
	}
	c.failLocked(err)
}

// closeFD closes the descriptor and tells the handler (loop goroutine only).
func (c *fdConn) closeFD(err error) {
	c.mu.Lock()
	if c.dialLocked() != nil {
		c.mu.Unlock()
		c.dialFailed(err)
		return
	}
	if c.fdClosed {
		c.mu.Unlock()
		return
	}
	c.fdClosed = true
	c.state.Store(stDead)
	if recorded := c.closeErrLocked(); recorded != nil {
		err = recorded
	} else {
		c.setCloseErrLocked(err)
	}
	c.dropOutput()
	c.stopTimerLocked()
	unix.EpollCtl(c.loop.epfd, unix.EPOLL_CTL_DEL, int(c.fd), nil)
	unix.Close(int(c.fd))
	notify := !c.notified
	c.notified = true
	c.mu.Unlock()
	l := c.loop
	if l.conns[c.fd] == c {
		l.conns[c.fd] = nil
	}
	l.n.Add(-1)
	if c.in != nil {
		bufferPut(c.in)
		c.in = nil
	}
	if c.h != nil && notify {
		c.h.OnClose(err)
	}
}

func (c *fdConn) PauseRead(r Reason) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for {
		old := c.paused.Load()
		if c.paused.CompareAndSwap(old, old|uint32(r)) {
			break
		}
	}
	c.updateEventsLocked()
}

func (c *fdConn) ResumeRead(r Reason) {
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
	c.updateEventsLocked()
	c.mu.Unlock()
	if now == 0 {
		c.loop.post(task{kind: taskResume, c: c})
	}
}

func (c *fdConn) RemoteAddr() net.Addr {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.remoteAddrLocked()
}

func (c *fdConn) LocalAddr() net.Addr {
	c.mu.Lock()
	closed, fd := c.fdClosed, int(c.fd)
	c.mu.Unlock()
	if !closed {
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

// sockError returns the pending socket error, or io.EOF-like nil.
func sockError(fd int) error {
	v, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ERROR)
	if err != nil {
		return err
	}
	if v != 0 {
		return unix.Errno(v)
	}
	return nil
}
