package engine

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// goEngine serves each connection with a reading goroutine and, while output
// is queued, a writing goroutine. It is the engine on platforms without epoll
// (and WORKERMAN_ENGINE=goroutine's); it serves TLS with a blocking tls.Conn.
type goEngine struct {
	cfg    Config
	counts []atomic.Int32 // connections per instance

	mu        sync.Mutex
	conns     map[*goConn]struct{}
	listeners map[*goListener]struct{}
	stopped   bool
	wg        sync.WaitGroup
}

func newGoEngine(cfg Config) *goEngine {
	return &goEngine{
		cfg:       cfg,
		counts:    make([]atomic.Int32, cfg.Loops),
		conns:     make(map[*goConn]struct{}),
		listeners: make(map[*goListener]struct{}),
	}
}

func (e *goEngine) Loops() int { return len(e.counts) }

func (e *goEngine) Name() string { return "goroutine" }

func (e *goEngine) Held() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.conns)
}

func (e *goEngine) pick() int {
	best := 0
	for i := range e.counts {
		if e.counts[i].Load() < e.counts[best].Load() {
			best = i
		}
	}
	e.counts[best].Add(1)
	return best
}

func (e *goEngine) track(c *goConn) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.stopped {
		return false
	}
	e.conns[c] = struct{}{}
	e.wg.Add(1)
	return true
}

func (e *goEngine) untrack(c *goConn) {
	e.mu.Lock()
	delete(e.conns, c)
	e.mu.Unlock()
	e.counts[c.inst].Add(-1)
	e.wg.Done()
}

func (e *goEngine) Stop() {
	e.mu.Lock()
	if e.stopped {
		e.mu.Unlock()
		return
	}
	e.stopped = true
	lns := make([]*goListener, 0, len(e.listeners))
	for l := range e.listeners {
		lns = append(lns, l)
	}
	conns := make([]*goConn, 0, len(e.conns))
	for c := range e.conns {
		conns = append(conns, c)
	}
	e.mu.Unlock()
	for _, l := range lns {
		l.close()
	}
	for _, c := range conns {
		c.Destroy(errEngineStoppedGo)
	}
	e.wg.Wait()
}

var errEngineStoppedGo = fmt.Errorf("workerman: engine stopped: %w", net.ErrClosed)

// ---- listening ----

type goListener struct {
	e      *goEngine
	nl     net.Listener
	accept AcceptFunc
	closed atomic.Bool
	done   chan struct{}
	pauseGate
}

func (e *goEngine) Listen(spec *Listener, accept AcceptFunc) error {
	if isPacket(spec.Network) {
		return listenUDP(spec, accept, e.Loops())
	}
	lc := net.ListenConfig{}
	if spec.ReusePort {
		lc.Control = reusePortControl
	}
	nl, err := lc.Listen(context.Background(), spec.Network, spec.Address)
	if err != nil {
		return fmt.Errorf("workerman: listen %s %s: %w", spec.Network, spec.Address, err)
	}
	if spec.TLS != nil {
		nl = tls.NewListener(nl, spec.TLS)
	}
	gl := &goListener{e: e, nl: nl, accept: accept, pauseGate: newPauseGate(spec.Paused), done: make(chan struct{})}
	e.mu.Lock()
	if e.stopped {
		e.mu.Unlock()
		nl.Close()
		return errEngineStoppedGo
	}
	e.listeners[gl] = struct{}{}
	e.wg.Add(1)
	e.mu.Unlock()
	spec.impl = gl
	go gl.run()
	return nil
}

func (l *goListener) run() {
	defer l.e.wg.Done()
	defer close(l.done)
	var backoff time.Duration
	for {
		l.wait(l.closed.Load)
		nc, err := l.nl.Accept()
		if err != nil {
			if l.closed.Load() || errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of descriptors and the like: back off, as net/http does.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		// Accept may have been waiting when the pause began: hold the
		// connection until it ends.
		l.wait(l.closed.Load)
		if l.closed.Load() {
			nc.Close()
			return
		}
		l.serve(nc)
	}
}

func (l *goListener) serve(nc net.Conn) {
	c := newGoConn(l.e, nc)
	if !l.e.track(c) {
		nc.Close()
		l.e.counts[c.inst].Add(-1)
		return
	}
	h := l.accept(c, c.inst)
	if h == nil {
		nc.Close()
		l.e.untrack(c)
		return
	}
	c.start(h)
	go c.readLoop()
}

// start hands the connection its handler; writes made before (by the
// owner's first callbacks, racing the accept) were only queued.
func (c *goConn) start(h Handler) {
	c.mu.Lock()
	c.h = h
	c.started = true
	open := c.state == stOpen || c.state == stClosing
	if c.out.len() > 0 && !c.writing && open {
		c.writing = true
		go c.writeLoop() // it lingers once flushed when closing
	}
	// A Close that came before the handler (the owner's first callback
	// racing the accept) waits for it to linger.
	linger := c.state == stClosing && !c.writing
	c.mu.Unlock()
	if linger {
		c.startLinger()
	}
}

func (l *goListener) addr() net.Addr { return l.nl.Addr() }

func (l *goListener) close() error {
	if !l.closed.CompareAndSwap(false, true) {
		return nil
	}
	l.setPaused(false) // wake a paused accept loop so that it sees closed
	err := l.nl.Close()
	<-l.done
	l.e.mu.Lock()
	delete(l.e.listeners, l)
	l.e.mu.Unlock()
	return err
}

// ---- connections ----

type goConn struct {
	e    *goEngine
	nc   net.Conn
	inst int
	h    Handler

	mu       sync.Mutex
	state    uint32
	out      outbox
	inflight int  // bytes handed to the writer goroutine
	writing  bool // a writer goroutine runs
	waited   bool // a write had to queue behind another: report the drain
	written  uint64
	nread    atomic.Uint64
	paused   Reason
	resume   chan struct{}
	closed   chan struct{} // closed when the connection is dead
	closeErr error
	dialReq  *DialRequest
	dialCtx  context.Context
	eof      bool // the peer shut down its side; nobody reads any more
	notified bool // OnClose was called
	started  bool // the handler is set: writes may start the writer
	cancel   context.CancelFunc

	in    *[]byte // reader-owned: bytes not yet consumed
	needN int     // reader-owned: bytes OnRead wants before it is called again
	held  bool    // reader-owned: in was kept because reading was paused
	buf   []byte  // reader-owned
}

func newGoConn(e *goEngine, nc net.Conn) *goConn {
	return &goConn{e: e, nc: nc, inst: e.pick(), state: stOpen, resume: make(chan struct{}), closed: make(chan struct{})}
}

const goReadSize = 16 << 10

func (c *goConn) readLoop() {
	defer c.finish()
	c.buf = make([]byte, goReadSize)
	for {
		if !c.waitReadable() {
			return
		}
		var dst []byte
		if c.in != nil {
			growBuf(&c.in, c.needN)
			b := *c.in
			dst = b[len(b):cap(b)]
		} else {
			dst = c.buf
		}
		n, err := c.nc.Read(dst)
		if n > 0 {
			c.nread.Add(uint64(n))
			c.mu.Lock()
			st := c.state
			c.mu.Unlock()
			if st == stOpen {
				if c.in != nil {
					*c.in = (*c.in)[:len(*c.in)+n]
					c.process(*c.in, false)
				} else {
					c.process(c.buf[:n], true)
				}
			} else if c.in != nil {
				*c.in = (*c.in)[:0]
			}
		}
		if err != nil {
			if err == io.EOF {
				c.onEOF()
			} else {
				c.fail(err)
			}
			<-c.closed
			return
		}
	}
}

// waitReadable blocks while reading is paused; false when the connection died.
func (c *goConn) waitReadable() bool {
	for {
		c.mu.Lock()
		if c.state == stDead {
			c.mu.Unlock()
			return false
		}
		if c.paused == 0 || c.state != stOpen {
			c.mu.Unlock()
			if c.held && c.in != nil {
				// Bytes read while a pause was in effect come first, even
				// when the pause ended before this goroutine noticed it.
				c.held = false
				c.process(*c.in, false)
				continue
			}
			return true
		}
		ch := c.resume
		c.mu.Unlock()
		select {
		case <-ch:
		case <-c.closed:
			return false
		}
	}
}

func (c *goConn) process(data []byte, fresh bool) {
	c.mu.Lock()
	ok := c.paused == 0 && c.state == stOpen
	c.mu.Unlock()
	consumed := 0
	if ok && len(data) >= c.needN {
		consumed, c.needN = c.h.OnRead(data)
	}
	c.mu.Lock()
	if c.state != stOpen {
		consumed = len(data)
	}
	// What is left may hold complete packets when reading was paused before
	// or during OnRead: offer it again as soon as reading resumes.
	c.held = consumed < len(data) && (!ok || c.paused != 0)
	c.mu.Unlock()
	rest := data[consumed:]
	switch {
	case len(rest) == 0:
		if !fresh {
			bufferPut(c.in)
			c.in = nil
		}
	case fresh:
		b := bufferGet(len(rest))
		copy(*b, rest)
		c.in = b
	case consumed > 0:
		m := copy(*c.in, rest)
		*c.in = (*c.in)[:m]
	}
}

// growBuf makes room for the next read, growing with arriving bytes only.
func growBuf(in **[]byte, need int) {
	b := **in
	if room := cap(b) - len(b); room >= minReadRoomGo || (room > 0 && need > 0 && cap(b) >= need) {
		return
	}
	want := max(2*cap(b), len(b)+minReadRoomGo)
	if need > len(b) {
		want = min(want, need)
	}
	want = max(want, len(b)+1)
	nb := bufferGet(want)
	copy(*nb, b)
	*nb = (*nb)[:len(b)]
	bufferPut(*in)
	*in = nb
}

const minReadRoomGo = 4 << 10

func (c *goConn) onEOF() {
	c.mu.Lock()
	st := c.state
	c.eof = true
	c.mu.Unlock()
	switch st {
	case stOpen:
		c.mu.Lock()
		paused := c.paused != 0
		c.mu.Unlock()
		if c.in != nil && !paused {
			// Bytes kept from the last read are offered once more: the
			// owner may have paused in its OnRead and resumed before this
			// goroutine looked, so that they were never offered again.
			c.process(*c.in, false)
		}
		// A pause now (in that OnRead) holds the end back until the
		// resume, which hands over what is held first.
		if !c.waitReadable() {
			return
		}
		if c.in != nil {
			bufferPut(c.in)
			c.in = nil
		}
		c.h.OnEOF()
	case stLinger, stClosing:
		c.mu.Lock()
		c.killLocked(nil)
		c.mu.Unlock()
	}
}

// finish runs when the reader exits: the one place OnClose is called.
func (c *goConn) finish() {
	if c.in != nil {
		bufferPut(c.in)
		c.in = nil
	}
	c.mu.Lock()
	err := c.closeErr
	notify := !c.notified
	c.notified = true
	c.mu.Unlock()
	if notify {
		c.h.OnClose(err)
	}
	c.e.untrack(c)
}

func (c *goConn) Write(p []byte, limit int, drop bool) (int, error) {
	return c.write(p, limit, drop, false)
}

func (c *goConn) WriteShared(p []byte, limit int, drop bool) (int, error) {
	return c.write(p, limit, drop, true)
}

func (c *goConn) write(p []byte, limit int, drop, shared bool) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state != stOpen && c.state != stConnecting {
		return 0, closedErr(c.closeErr)
	}
	q := c.out.len() + c.inflight
	if drop && q >= limit {
		return q, ErrFull
	}
	// Every write goes through the queue here; report the drain when
	// writes had to wait for each other or the queue reached the limit,
	// which is when the epoll engine's queue would have been used.
	if c.writing || c.out.len() > 0 || q+len(p) >= limit {
		c.waited = true
	}
	if shared {
		c.out.pushShared(p)
	} else {
		c.out.push(p)
	}
	if !c.writing && c.state == stOpen && c.started {
		c.writing = true
		go c.writeLoop()
	}
	return c.out.len() + c.inflight, nil
}

func closedErr(cause error) error {
	if cause != nil && !errors.Is(cause, net.ErrClosed) {
		return fmt.Errorf("workerman: connection closed: %w (%w)", net.ErrClosed, cause)
	}
	return fmt.Errorf("workerman: connection closed: %w", net.ErrClosed)
}

func (c *goConn) writeLoop() {
	for {
		c.mu.Lock()
		if c.out.len() == 0 || c.state == stDead {
			c.writing = false
			drained := c.waited && c.state != stDead
			c.waited = false
			closing := c.state == stClosing
			c.mu.Unlock()
			if drained {
				c.h.OnDrain()
			}
			if closing {
				c.startLinger()
			}
			return
		}
		chunks := c.out.chunks
		off := c.out.off
		n := c.out.n
		c.out.chunks, c.out.off, c.out.n = nil, 0, 0
		c.inflight = n
		c.mu.Unlock()

		bufs := make(net.Buffers, 0, len(chunks))
		for i, ch := range chunks {
			if i == 0 {
				bufs = append(bufs, ch.bytes()[off:])
			} else {
				bufs = append(bufs, ch.bytes())
			}
		}
		w, err := bufs.WriteTo(c.nc)
		for _, ch := range chunks {
			ch.release()
		}
		c.mu.Lock()
		c.inflight = 0
		c.written += uint64(w)
		if err != nil {
			c.killLocked(err)
			c.writing = false
			c.mu.Unlock()
			return
		}
		c.mu.Unlock()
	}
}

func (c *goConn) Queued() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.out.len() + c.inflight
}

func (c *goConn) BytesRead() uint64 { return c.nread.Load() }

func (c *goConn) BytesWritten() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.written
}

func (c *goConn) Close() {
	c.mu.Lock()
	switch c.state {
	case stConnecting:
		c.killLocked(nil)
		c.mu.Unlock()
		return
	case stOpen:
	default:
		c.mu.Unlock()
		return
	}
	c.state = stClosing
	// Wake a paused reader: while closing, input is read and discarded.
	close(c.resume)
	c.resume = make(chan struct{})
	if c.writing || c.out.len() > 0 {
		c.nc.SetWriteDeadline(time.Now().Add(c.e.cfg.FlushTimeout))
		c.mu.Unlock()
		return
	}
	c.mu.Unlock()
	c.startLinger()
}

func (c *goConn) startLinger() {
	c.mu.Lock()
	if c.state != stClosing || !c.started {
		c.mu.Unlock()
		return // not yet started: start lingers
	}
	c.state = stLinger
	cw, ok := c.nc.(interface{ CloseWrite() error })
	if c.eof || !ok || cw.CloseWrite() != nil {
		c.killLocked(nil) // both sides are done, or no half-close here
		c.mu.Unlock()
		return
	}
	c.nc.SetReadDeadline(time.Now().Add(LingerTimeout))
	// Everything was written: for the owner the connection is over while
	// the socket lingers for the peer's close.
	c.notified = true
	c.mu.Unlock()
	c.h.OnClose(nil)
}

func (c *goConn) Destroy(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.killLocked(err)
}

func (c *goConn) fail(err error) {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		err = nil // the linger deadline: the peer did not close, we do
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.killLocked(err)
}

func (c *goConn) killLocked(err error) {
	if c.state == stDead {
		return
	}
	c.state = stDead
	if c.closeErr == nil {
		c.closeErr = err
	}
	c.out.reset()
	if c.cancel != nil {
		c.cancel()
	}
	if c.nc != nil {
		c.nc.Close()
	}
	close(c.closed)
}

func (c *goConn) PauseRead(r Reason) {
	c.mu.Lock()
	c.paused |= r
	c.mu.Unlock()
}

func (c *goConn) ResumeRead(r Reason) {
	c.mu.Lock()
	defer c.mu.Unlock()
	old := c.paused
	c.paused &^= r
	if old != 0 && c.paused == 0 {
		close(c.resume)
		c.resume = make(chan struct{})
	}
}

func (c *goConn) RemoteAddr() net.Addr {
	if c.nc == nil {
		return nil
	}
	return c.nc.RemoteAddr()
}

func (c *goConn) LocalAddr() net.Addr {
	if c.nc == nil {
		return nil
	}
	return c.nc.LocalAddr()
}

// ---- dialing ----

// dialTimeout is a connect that ran out of time: its own error, and
// os.ErrDeadlineExceeded.
type dialTimeout struct{ err error }

func (e dialTimeout) Error() string   { return e.err.Error() }
func (e dialTimeout) Unwrap() []error { return []error{e.err, os.ErrDeadlineExceeded} }

func (e *goEngine) Dial(d DialRequest) DialConn {
	c := &goConn{e: e, inst: e.pick(), state: stConnecting, resume: make(chan struct{}), closed: make(chan struct{}), dialReq: &d}
	ctx, cancel := context.WithCancel(context.Background())
	if d.Timeout > 0 {
		ctx, cancel = context.WithTimeout(context.Background(), d.Timeout)
	}
	c.dialCtx, c.cancel = ctx, cancel
	return c
}

func (c *goConn) Instance() int { return c.inst }

func (c *goConn) Start(h Handler, done func(error)) {
	c.mu.Lock()
	c.h = h
	c.mu.Unlock()
	if !c.e.track(c) {
		c.cancel()
		c.e.counts[c.inst].Add(-1)
		go done(errEngineStoppedGo)
		return
	}
	go c.connect(done)
}

func (c *goConn) connect(done func(error)) {
	d := *c.dialReq
	var dialer net.Dialer
	nc, err := dialer.DialContext(c.dialCtx, d.Network, d.Address)
	if err == nil && d.TLS != nil {
		tc := tls.Client(nc, d.TLS)
		if err = tc.HandshakeContext(c.dialCtx); err != nil {
			nc.Close()
		}
		nc = tc
	}
	c.mu.Lock()
	if err == nil && c.state != stConnecting {
		nc.Close()
		err = closedErr(c.closeErr)
	} else if err != nil && c.state != stConnecting {
		// Closed or destroyed while connecting or in the TLS handshake:
		// the cancellation, not the context's error, is the reason.
		err = closedErr(c.closeErr)
	}
	if err != nil {
		if c.state != stDead {
			c.state = stDead
			close(c.closed)
		}
		c.out.reset()
		c.mu.Unlock()
		c.cancel()
		c.e.untrack(c)
		if errors.Is(c.dialCtx.Err(), context.DeadlineExceeded) && !errors.Is(err, os.ErrDeadlineExceeded) {
			// As on the epoll engine: a connect that ran out of time is
			// os.ErrDeadlineExceeded (net's own dial timeout is not).
			err = dialTimeout{err}
		}
		done(fmt.Errorf("workerman: connect %s: %w", d.Address, err))
		return
	}
	c.nc = nc
	c.state = stOpen
	c.mu.Unlock()
	c.cancel()
	done(nil)
	c.start(c.h)
	c.readLoop()
}
