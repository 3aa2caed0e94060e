//go:build linux

package engine

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// The epoll backend of the loops (see loop_linux.go): a loop is an epoll
// set, level-triggered, itself registered with the runtime's netpoller (an
// epoll set becomes readable when it has ready events); the loop parks in
// RawConn.Read until then, and polling with a zero timeout afterwards never
// blocks. A readable connection is read with one read system call into the
// loop's buffer. Where the kernel allows io_uring, a loop also has a small
// ring for sends only (setupSendRing): the writes a pass corked are sent
// with one io_uring_enter at the start of the next iteration. It has no
// receives, so none of the per-segment task work that keeps the io_uring
// backend behind epoll on pipelined small messages.

const (
	maxEvents   = 256
	readEvents  = unix.EPOLLIN | unix.EPOLLRDHUP
	writeEvents = unix.EPOLLOUT
	errorEvents = unix.EPOLLERR | unix.EPOLLHUP
)

// epollLoop is the epoll backend's part of a loop.
type epollLoop struct {
	epfd   int
	events []unix.EpollEvent
	again  bool // something may still be ready: poll before parking
	buf    []byte
	// sendfd, with a ring for sends (uringLoop.r), is the eventfd the
	// kernel signals when it posts a send's completion, in the epoll set
	// edge-triggered (never read: every signal is a new edge); -1 without.
	sendfd int
}

// The sizes of an epoll loop's ring for sends: submissions are made in
// batches of a pass's connections (a full queue is submitted and reused),
// completions are reaped each iteration.
const (
	sendRingEntries = 256
	sendRingCQ      = 1024 // more wait in the kernel (sendRing takes them)
)

func (l *loop) setupEpoll() error {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return fmt.Errorf("workerman: epoll_create1: %w", err)
	}
	wakefd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		unix.Close(epfd)
		return fmt.Errorf("workerman: eventfd: %w", err)
	}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, wakefd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(wakefd)}); err != nil {
		unix.Close(epfd)
		unix.Close(wakefd)
		return fmt.Errorf("workerman: epoll_ctl: %w", err)
	}
	if err := unix.SetNonblock(epfd, true); err != nil {
		unix.Close(epfd)
		unix.Close(wakefd)
		return err
	}
	l.epfd, l.wakefd, l.sendfd = epfd, wakefd, -1
	l.events = make([]unix.EpollEvent, maxEvents)
	l.buf = make([]byte, l.e.cfg.ReadBufferSize)
	if !l.e.plain && l.e.cfg.AfterPass != nil {
		// Where the kernel allows io_uring; else a system call per write.
		// (Without AfterPass nothing is corked.)
		l.setupSendRing()
	}
	return nil
}

// setupSendRing gives an epoll loop a ring for the writes corked during a
// pass (see fdConn.cork): they are sent with one io_uring_enter. It leaves
// the loop without one when the kernel refuses io_uring.
func (l *loop) setupSendRing() {
	r, err := newRing(sendRingEntries, sendRingCQ)
	if err != nil {
		return
	}
	if !r.cancelsAll() {
		r.close() // a kernel before 5.19: a close could not cancel a send
		return
	}
	fd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		r.close()
		return
	}
	if r.registerEventfd(fd) != nil ||
		unix.EpollCtl(l.epfd, unix.EPOLL_CTL_ADD, fd, &unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLET, Fd: int32(fd)}) != nil {
		unix.Close(fd)
		r.close()
		return
	}
	l.r, l.sendfd = r, fd
}

// sendRing submits the corked sends of the pass that ended and handles
// the completions of sends (epoll loop with a ring for sends); it reports
// whether there were any.
func (l *loop) sendRing() bool {
	r := l.r
	did := l.sendCorked()
	if r.toSubmit > 0 {
		if err := r.enter(0); err != nil {
			panic(fmt.Sprintf("workerman: io_uring_enter: %v", err))
		}
	}
	for {
		for cqe := r.peek(); cqe != nil; cqe = r.peek() {
			ud, res, flags := cqe.userData, cqe.res, cqe.flags
			r.advance()
			l.complete(ud, res, flags)
			did = true
		}
		if !r.flushOverflow() {
			return did
		}
	}
}

// pollEpoll handles ready events until the owner has work from a pass (it
// returns it) or the loop stops, parking while nothing is ready.
func (l *loop) pollEpoll() (w Work) {
	// RawRead clears the descriptor's readiness only when it starts, so a
	// wake-up that arrives while events are being handled is never lost;
	// and the callback polls before RawRead parks, so neither is one that
	// came while the work of the previous call ran. After a batch the loop
	// parks without polling again unless something may still be ready that
	// the kernel will not signal anew (a read that filled the buffer, a
	// partial flush, a full accept batch): a new event on any descriptor
	// of the set wakes the runtime's netpoller, and with it this loop.
	//
	// Where traffic is dense the loop waits a moment before it parks
	// (coalesce_linux.go).
	//
	// With a ring for sends, each iteration first submits the corked
	// writes of the pass that ran before it and reaps send completions;
	// a completion that comes later signals the ring's eventfd (in the
	// set), and tasks, which may cork, make the loop go round once more.
	l.park.rc.Read(func(uintptr) bool {
		l.co.woke()
		for {
			sent := l.r != nil && l.sendRing()
			n, err := rawEpollPoll(l.epfd, l.events)
			if err != nil || n == 0 {
				if sent && !l.stopping {
					// Completions may have queued callbacks (OnDrain).
					if w = l.takeWork(); w != nil {
						return true
					}
				}
				if l.r != nil && l.r.toSubmit > 0 {
					continue // the kernel was busy: submit before parking
				}
				if l.stopping {
					return true
				}
				if l.co.nap() {
					continue
				}
				return false
			}
			l.again = n == len(l.events)
			l.co.handled = true
			for i := 0; i < n; i++ {
				ev := &l.events[i]
				fd := int(ev.Fd)
				switch {
				case fd == l.wakefd:
					l.runTasks()
					l.again = l.again || l.r != nil
				case fd == l.sendfd:
					l.again = true // reaped at the top
				case l.listeners[fd] != nil:
					l.accept(l.listeners[fd], fd)
				default:
					if fd < len(l.conns) && l.conns[fd] != nil {
						l.conns[fd].onEvents(ev.Events)
					}
				}
			}
			if w = l.takeWork(); w != nil || l.stopping {
				return true
			}
			if !l.again {
				// Nothing can be ready that the kernel will not signal:
				// park (or nap first) without polling again.
				if l.co.nap() {
					continue
				}
				return false
			}
			if l.co.overdue() {
				l.yieldNetwork()
				return false
			}
		}
	})
	return w
}

func (l *loop) ctl(op, fd int, events uint32) error {
	return unix.EpollCtl(l.epfd, op, fd, &unix.EpollEvent{Events: events, Fd: int32(fd)})
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

// updateEventsLocked sets the epoll interest from the state.
func (c *fdConn) updateEventsLocked() {
	if c.fdClosed || c.events&^corkFlags == 0 {
		return // not registered (yet)
	}
	if ev := c.wantedEventsLocked(); ev != c.events {
		added := ev &^ c.events
		c.events = ev
		c.loop.ctl(unix.EPOLL_CTL_MOD, int(c.fd), ev&^corkFlags)
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
	if c.queued() > 0 && c.events&(uCorked|uSending) == 0 || st == stConnecting {
		ev |= writeEvents // (corked output, or a send in flight: the loop sends)
	}
	// Never 0, so that 0 means "not registered"; the corking flags kept.
	return ev | unix.EPOLLERR | c.events&corkFlags
}
