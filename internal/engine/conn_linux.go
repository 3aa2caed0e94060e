//go:build linux

package engine

import (
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// fdConn is a connection served by a loop, whatever the loop's backend.
// Fields marked loop-owned are only touched by the loop goroutine; the
// others are guarded by mu or atomic. It is kept small: an idle connection
// is this struct and its Handler only, and this struct stays in the
// runtime's 112-byte size class (a test holds it there). What few
// connections need is in x.
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
	need    int32 // loop-owned: bytes OnRead wants before it is called again
	// events is what the kernel watches, under mu: for epoll the interest
	// registered, for io_uring the uFlags of the requests armed; 0 = not
	// registered.
	events uint32

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

// ---- what the kernel watches ----

// updateLocked brings what the kernel watches in step with the state after
// a change made by any goroutine; the caller holds mu.
func (c *fdConn) updateLocked() {
	if c.loop.e.uring {
		c.kickLocked()
	} else {
		c.updateEventsLocked()
	}
}

// syncOnLoopLocked is updateLocked on the loop goroutine, which io_uring
// needs to submit requests; the caller holds mu.
func (c *fdConn) syncOnLoopLocked() {
	if c.loop.e.uring {
		c.syncLocked()
	} else {
		c.updateEventsLocked()
	}
}

// releaseFDLocked stops the kernel watching c, closes the descriptor and
// takes c out of the loop's table (loop goroutine, mu held).
func (c *fdConn) releaseFDLocked() {
	l := c.loop
	if l.e.uring {
		c.releaseUringLocked()
	} else {
		if c.events&^corkFlags != 0 {
			unix.EpollCtl(l.epfd, unix.EPOLL_CTL_DEL, int(c.fd), nil)
		}
		if c.events&uSending != 0 {
			l.cancelSend(c) // see releaseUringLocked
		}
	}
	c.events = 0
	unix.Close(int(c.fd))
	if int(c.fd) < len(l.conns) && l.conns[c.fd] == c {
		l.conns[c.fd] = nil
	}
}

// ---- input ----

// process hands data to the handler unless reading is paused, and keeps
// whatever it did not consume. data is the loop's (inLoop) or *c.in.
func (c *fdConn) process(data []byte, inLoop bool) {
	c.in, c.need = keepUnconsumed(c, c.h, data, inLoop, c.in, c.need)
}

func (c *fdConn) onEOF() {
	c.mu.Lock()
	c.eof = true
	st := c.state.Load()
	c.syncOnLoopLocked()
	c.mu.Unlock()
	switch st {
	case stOpen:
		if c.in != nil && c.paused.Load() == 0 {
			// Kept while paused; a resume may not have offered them yet.
			c.process(*c.in, false)
			if c.state.Load() != stOpen {
				return
			}
		}
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
	c.mu.Lock()
	if c.fdClosed {
		c.mu.Unlock()
		return
	}
	c.syncOnLoopLocked()
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

// resumer is a Handler that keeps input of its own (a TLS layer's decrypted
// bytes): resume hands it the turn after the connection's buffered bytes.
type resumer interface{ onResume() }

// postResume makes the loop run resume, as a ResumeRead that cleared the
// last reason does.
func (c *fdConn) postResume() { c.loop.post(task{kind: taskResume, c: c}) }

func (c *fdConn) PauseRead(r Reason) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for {
		old := c.paused.Load()
		if c.paused.CompareAndSwap(old, old|uint32(r)) {
			break
		}
	}
	c.updateLocked()
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
	if !c.loop.e.uring {
		c.updateEventsLocked() // io_uring arms its receive in resume
	}
	c.mu.Unlock()
	if now == 0 {
		c.postResume()
	}
}

// ---- output ----

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
	if drop && c.queuedLocked() >= limit {
		q := c.queuedLocked()
		c.mu.Unlock()
		return q, ErrFull
	}
	direct := c.queued() == 0 && st == stOpen
	if c.events&uCorked != 0 {
		if c.queued()+len(p) <= corkMax {
			c.out.cork(p, shared) // c is on the loop's corked list already
			c.mu.Unlock()
			return 0, nil
		}
		if p = c.uncorkLocked(p); p == nil {
			err := c.closedErrLocked()
			c.mu.Unlock()
			return 0, err
		}
		if len(p) == 0 {
			c.mu.Unlock()
			return 0, nil
		}
		direct = false // the socket is full: queue the rest
	}
	if direct {
		if c.corks(len(p)) {
			c.cork(p, shared)
			c.mu.Unlock()
			c.loop.addCorked(c)
			return 0, nil
		}
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
		c.out = newOutbox()
	}
	if shared {
		c.out.pushShared(p)
	} else {
		c.out.push(p)
	}
	c.updateLocked()
	q := c.queuedLocked()
	c.mu.Unlock()
	return q, nil
}

// uncorkLocked writes c's corked output and then p, which would not fit
// the cork, to the socket at once, in one system call; it returns what of
// p is left to queue (empty, not nil, when all was written) and nil when
// the write failed. c.mu held.
func (c *fdConn) uncorkLocked(p []byte) []byte {
	c.events &^= uCorked // c stays on the corked list: the loop skips it
	var iovs [3]unix.Iovec
	v := iovs[:0]
	var bufs [3][]byte
	bs := append(c.out.iovecs(bufs[:0], maxIovecs-1), p)
	n, err := rawWritev(int(c.fd), bs, &v)
	clear(bs)
	if n > 0 {
		c.written += uint64(n)
		m := min(n, c.out.len())
		c.out.consume(m)
		if c.out.len() == 0 {
			freeOutbox(c.out)
			c.out = nil
		}
		p = p[n-m:]
	}
	if err != nil && err != unix.EAGAIN && err != unix.EINTR {
		c.failLocked(err)
		return nil
	}
	return p
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

// flush writes queued output when the socket has room (loop goroutine).
func (c *fdConn) flush() {
	l := c.loop
	c.mu.Lock()
	if c.events&uSending != 0 {
		c.mu.Unlock() // the send's completion goes on
		return
	}
	if c.queued() == 0 {
		c.syncOnLoopLocked()
		c.mu.Unlock()
		return
	}
	iov := c.out.iovecs(l.iov[:0], maxIovecs)
	n, err := rawWritev(int(c.fd), iov, &l.iovecs)
	clear(iov)
	l.iov = iov[:0]
	if err == nil && c.queued() > n {
		l.again = true // epoll: still writable, flush more before parking
	}
	// OnDrain for a queue the owner was told of (without corking, any
	// queue: a write returns what it queued).
	c.wroteLocked(n, err, l.r == nil || c.events&uSeen != 0)
}

// wroteLocked ends a write of the queue, by a flush or a send request,
// which wrote its first n bytes or failed with err: the queue drops them,
// what the kernel watches follows the state, and once the queue is empty
// the owner hears OnDrain (if drained) and a closing connection lingers.
// Loop goroutine; c.mu held, and released.
func (c *fdConn) wroteLocked(n int, err error, drained bool) {
	if n > 0 {
		c.out.consume(n)
		c.written += uint64(n)
		if c.out.len() == 0 {
			freeOutbox(c.out)
			c.out = nil
		}
	}
	if err != nil && err != unix.EAGAIN && err != unix.EINTR {
		c.failLocked(err)
		c.mu.Unlock()
		return
	}
	c.syncOnLoopLocked() // stop watching for room, or (io_uring) ask again
	empty := c.queued() == 0
	closing := empty && c.state.Load() == stClosing
	if empty {
		c.events &^= uSeen
	}
	c.mu.Unlock()
	if empty && drained {
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

// queuedLocked is what the owner is told is queued: nothing while the
// output is corked (see cork). Telling it more makes a send's completion
// report OnDrain when the queue empties. c.mu held.
func (c *fdConn) queuedLocked() int {
	if c.events&uCorked != 0 {
		return 0
	}
	q := c.queued()
	if q > 0 && c.loop.r != nil {
		c.events |= uSeen
	}
	return q
}

// dropOutput drops what is queued; c.mu held.
func (c *fdConn) dropOutput() {
	if c.events&uCorked != 0 {
		c.writeCorkedLocked()
	}
	c.events &^= uSeen
	if c.out != nil {
		if c.events&uSending == 0 {
			c.out.reset() // else the send's completion does, once the kernel is done
			freeOutbox(c.out)
		}
		c.out = nil
	}
}

func (c *fdConn) Queued() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.queuedLocked()
}

func (c *fdConn) BytesRead() uint64 { return c.nread.Load() }

func (c *fdConn) BytesWritten() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.written
}

// ---- closing ----

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
	c.updateLocked() // read (and discard) while closing, even if paused
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
// reading and discarding, for the peer to close (loop goroutine).
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
	c.syncOnLoopLocked()
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
	c.releaseFDLocked()
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

// ---- addresses ----

func (c *fdConn) RemoteAddr() net.Addr {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.remoteAddrLocked()
}

func (c *fdConn) LocalAddr() net.Addr {
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

// sockError returns the pending socket error, or nil.
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
