//go:build linux

package engine

import (
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

// TLS on the event loop.
//
// crypto/tls drives a blocking net.Conn. Two of its properties let a loop use
// it without a goroutine per connection:
//
//   - after the handshake, an error from the transport's Read that is a
//     temporary net.Error does not break the connection (crypto/tls keeps
//     only permanent errors). The loop hands the tls.Conn the bytes it read
//     through a transport (tlsWire) whose Read says "temporary" when they are
//     used up, and takes the plaintext back record by record;
//   - the handshake, whose errors crypto/tls keeps for good, runs on a
//     goroutine of its own that lives as long as the handshake: it starts when
//     the first bytes arrive (the client's hello; at once for a dial) and
//     reads what the loop passes it.
//
// A TLS connection with no handshake in progress owns no goroutine and no
// buffer. A server's TLS 1.3 connection with an AES-GCM suite then keeps
// only its two ciphers and the engine's record layer (tls_records_linux.go:
// crypto/tls's tls.Conn is dropped after the handshake); others keep the
// tls.Conn, whose input buffers the loop lends per read
// (tls_buffers_linux.go).
//
// A tlsConn sits between the engine's fdConn (which carries records) and the
// owner's Handler (which gets plaintext): it is the fdConn's Handler and the
// owner's Conn. Writes the owner makes before the handshake ends wait in
// order and go out, encrypted, right after it.

// tlsHandshakeTimeout bounds a TLS handshake on the event loop, counted from
// the first byte the client sends (or, for a dial, together with the connect
// under DialRequest.Timeout when that is set).
var tlsHandshakeTimeout = 10 * time.Second

// tlsConn states.
const (
	tlsShaking uint32 = iota // the handshake goroutine owns the tls.Conn's input
	tlsReady                 // handshake done: the loop reads, writes go through tc
	tlsClosed                // the owner's Close: close_notify sent, no more writes
	tlsFailed                // the handshake failed or the connection closed during it
)

// tlsConn's fields are ordered so that it stays in the runtime's 128-byte
// size class (a test holds it there): an idle wss connection is mostly
// crypto/tls's state, and this is the part of it the engine owns.
type tlsConn struct {
	fd    *fdConn
	h     Handler
	tc    *tls.Conn   // crypto/tls's connection; nil once rec took its record layer over
	rec   *tlsRecords // the engine's record layer (tls_records_linux.go), when it took over
	state atomic.Uint32
	need  int32 // loop-owned: what the owner wants before it is called again

	dialing   bool // a dial whose done(nil) was not called yet (guarded by mu)
	drainOwed bool // an OnDrain for writes made during the handshake (set under mu before the loop's resume)
	rawEOF    bool // loop-owned: the peer closed its side of the socket
	eof       bool // loop-owned: crypto/tls reported the end of the stream
	eofSent   bool // loop-owned: the owner heard OnEOF
	partial   bool // loop-owned, with rec: a record is incomplete

	mu sync.Mutex // guards hs and the handshake's hand-over
	// wmu makes one owner's Write one batch of records: crypto/tls writes a
	// record at a time and batch gathers them for one write to the socket.
	wmu   sync.Mutex
	bmu   sync.Mutex    // guards *batch (crypto/tls may send an alert from the loop)
	hs    *tlsHandshake // while the handshake runs
	batch atomic.Pointer[[]byte]

	// Loop-owned once the handshake is done.
	left *[]byte // bytes the handshake goroutine received but crypto/tls did not take
	in   *[]byte // plaintext the owner has not consumed
}

// tlsHandshake is what a connection needs only while it handshakes.
type tlsHandshake struct {
	in       []byte        // received, not yet read by the handshake
	err      error         // the socket closed (or ended) during the handshake
	sig      chan struct{} // one-slot: in or err changed
	started  bool          // the goroutine runs
	deadline time.Time     // zero until it starts (server) or set by the dial
	pending  [][]byte      // the owner's writes, in order, not yet encrypted
	pendingN int
	pause    Reason // the owner's read pauses, applied when the handshake ends
	closeReq bool   // the owner's Close, carried out when the handshake ends
	dial     *tlsDial
	// A dial's done(nil) is called before the connection is handed to the
	// loop: a close meanwhile is reported after it.
	announced bool
	closed    bool
	closeErr  error
}

type tlsDial struct {
	addr    string
	done    func(error)
	tickets bool // the client keeps session tickets (its config has a ClientSessionCache)
}

func newTLSConn(fd *fdConn, hs *tlsHandshake) *tlsConn {
	hs.sig = make(chan struct{}, 1)
	t := &tlsConn{fd: fd, hs: hs}
	return t
}

func (e *loopEngine) listenTLS(spec *Listener, accept AcceptFunc) error {
	cfg := spec.TLS
	plain := *spec
	plain.TLS = nil
	err := e.Listen(&plain, func(c Conn, inst int) Handler {
		t := newTLSConn(c.(*fdConn), &tlsHandshake{})
		t.tc = tls.Server((*tlsWire)(t), cfg)
		t.h = accept(t, inst)
		return t
	})
	spec.impl = plain.impl
	return err
}

func (e *loopEngine) dialTLS(d DialRequest) DialConn {
	cfg := d.TLS
	plain := d
	plain.TLS = nil
	fd := e.Dial(plain).(*fdConn)
	t := newTLSConn(fd, &tlsHandshake{dial: &tlsDial{addr: d.Address, tickets: cfg.ClientSessionCache != nil}})
	t.dialing = true
	if d.Timeout > 0 {
		t.hs.deadline = time.Now().Add(d.Timeout)
	}
	t.tc = tls.Client((*tlsWire)(t), cfg)
	return t
}

func (t *tlsConn) Instance() int { return t.fd.Instance() }

// Start connects, then runs the client handshake; done hears the outcome of
// both, and h hears nothing before done(nil).
func (t *tlsConn) Start(h Handler, done func(error)) {
	t.h = h
	t.mu.Lock()
	t.hs.dial.done = done
	t.mu.Unlock()
	t.fd.Start(t, func(err error) {
		if err != nil {
			t.mu.Lock()
			t.hs = nil // later writes are refused, not queued
			t.state.Store(tlsFailed)
			t.mu.Unlock()
			done(err)
			return
		}
		t.mu.Lock()
		hs := t.hs
		hs.started = true
		if hs.deadline.IsZero() {
			hs.deadline = time.Now().Add(tlsHandshakeTimeout)
		}
		t.mu.Unlock()
		go t.handshake(hs)
	})
}

// ---- the handshake ----

func (t *tlsConn) handshake(hs *tlsHandshake) {
	timer := time.AfterFunc(time.Until(hs.deadline), func() {
		t.mu.Lock()
		if hs.err == nil {
			hs.err = os.ErrDeadlineExceeded
		}
		t.mu.Unlock()
		signal(hs.sig)
	})
	err := t.tc.Handshake()
	timer.Stop()
	var pending []byte
	if err == nil {
		if rec, raw, ok := takeTLSRecords(t.tc, hs.dial == nil || !hs.dial.tickets); ok {
			// The loop reads t.rec once the state says ready.
			t.rec, t.tc, pending = rec, nil, raw
		} else {
			releaseTLSBuffers(t.tc, nil)
			dropTLSSecrets(t.tc, hs.dial == nil)
		}
	}

	t.mu.Lock()
	if err == nil && hs.err != nil && hs.err != io.EOF {
		err = hs.err // closed meanwhile
	}
	if err != nil {
		t.hs = nil
		t.state.Store(tlsFailed)
		cause := hs.err
		t.mu.Unlock()
		t.handshakeFailed(hs, err, cause)
		return
	}
	if hs.dial != nil {
		// The owner hears of the connection before anything else; what
		// it writes or asks meanwhile (a Close in OnConnect) waits in hs.
		// A close of the socket meanwhile is reported after done(nil).
		hs.announced = true
		t.mu.Unlock()
		hs.dial.done(nil)
		t.mu.Lock()
		if hs.closed {
			t.hs = nil
			t.state.Store(tlsFailed)
			t.dialing = false // the owner knows the connection: it hears the close
			t.mu.Unlock()
			t.h.OnClose(hs.closeErr)
			return
		}
	}
	// One critical section to the hand-over: the writes the owner made
	// meanwhile go first, in order (a Write that comes now waits for the
	// lock and finds the connection ready), then the Close it asked for.
	// The socket's OnClose waits for the lock too: it finds hs gone and
	// goes to the owner, once.
	t.wmu.Lock()
	for _, p := range hs.pending {
		t.writeRecords(p)
	}
	if hs.closeReq {
		t.state.Store(tlsClosed)
		t.closeWriteLocked()
	}
	t.wmu.Unlock()
	if n := len(pending) + len(hs.in); n > 0 {
		// Records crypto/tls read but did not open go first.
		b := bufferGet(n)
		copy((*b)[copy(*b, pending):], hs.in)
		t.left = b
	}
	t.rawEOF = hs.err == io.EOF
	if hs.pause != 0 {
		t.fd.PauseRead(hs.pause)
	}
	// The owner may have been told its queue was full: the drain goes to
	// it from the loop (onResume), which also delivers OnClose.
	t.drainOwed = hs.pendingN > 0 && t.fd.Queued() == 0
	t.hs = nil
	t.dialing = false
	if hs.closeReq {
		t.fd.Close()
	} else {
		t.state.Store(tlsReady)
	}
	t.mu.Unlock()
	// What came with the handshake's last flight (a request, a greeting) is
	// read on the loop, as everything after it.
	t.fd.postResume()
}

func (t *tlsConn) handshakeFailed(hs *tlsHandshake, err, cause error) {
	if hs.dial == nil {
		t.fd.Destroy(fmt.Errorf("workerman: TLS handshake: %w", err))
		return
	}
	switch {
	case cause != nil && errors.Is(cause, net.ErrClosed):
		err = cause
	case errors.Is(cause, os.ErrDeadlineExceeded):
		err = cause
	}
	t.fd.Destroy(err)
	hs.dial.done(fmt.Errorf("workerman: connect %s: TLS handshake: %w", hs.dial.addr, err))
}

func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// readHandshake is the transport's Read while the handshake runs (its
// goroutine only): it waits for the loop's bytes.
func (t *tlsConn) readHandshake(p []byte) (int, error) {
	t.mu.Lock()
	hs := t.hs
	for len(hs.in) == 0 {
		if hs.err != nil {
			err := hs.err
			t.mu.Unlock()
			return 0, err
		}
		t.mu.Unlock()
		<-hs.sig
		t.mu.Lock()
	}
	n := copy(p, hs.in)
	hs.in = hs.in[n:]
	if len(hs.in) == 0 {
		hs.in = nil
	}
	t.mu.Unlock()
	return n, nil
}

// ---- the fdConn's Handler ----

// OnRead takes the socket's bytes: to the handshake while it runs, else
// through crypto/tls to the owner.
func (t *tlsConn) OnRead(in []byte) (int, int) {
	if t.state.Load() == tlsShaking {
		t.mu.Lock()
		if hs := t.hs; hs != nil {
			if len(hs.in)+len(in) > maxHandshakeInput {
				t.mu.Unlock()
				t.fd.Destroy(errHandshakeInput)
				return len(in), 0
			}
			hs.in = append(hs.in, in...)
			start := !hs.started && hs.dial == nil
			if start {
				hs.started = true
				hs.deadline = time.Now().Add(tlsHandshakeTimeout)
			}
			t.mu.Unlock()
			signal(hs.sig)
			if start {
				go t.handshake(hs)
			}
			return len(in), 0
		}
		t.mu.Unlock()
	}
	if t.state.Load() != tlsReady {
		return len(in), 0
	}
	if t.rec != nil {
		return t.onRecords(in)
	}
	if t.eof {
		return len(in), 0 // after close_notify: ignored
	}
	l := t.fd.loop
	saved := l.tlsRaw
	l.tlsRaw = in
	t.pump()
	rest := len(l.tlsRaw)
	l.tlsRaw = saved
	// Bytes crypto/tls did not take (the owner paused) stay with the
	// fdConn, which hands them back when reading resumes.
	return len(in) - rest, 0
}

func (t *tlsConn) OnEOF() {
	t.mu.Lock()
	if hs := t.hs; hs != nil {
		if !hs.started && hs.dial == nil {
			// A client that closed before it sent a byte (a health
			// check, a scanner): no handshake will ever end.
			t.mu.Unlock()
			t.fd.Destroy(fmt.Errorf("workerman: TLS handshake: %w", io.EOF))
			return
		}
		if hs.err == nil {
			hs.err = io.EOF
		}
		t.mu.Unlock()
		signal(hs.sig)
		return
	}
	t.mu.Unlock()
	if t.state.Load() != tlsReady {
		return
	}
	t.rawEOF = true
	if t.rec != nil {
		t.onRecords(nil) // the records kept in t.left first
		return
	}
	t.pump()
}

func (t *tlsConn) OnDrain() {
	if st := t.state.Load(); st == tlsReady || st == tlsClosed {
		t.h.OnDrain()
	}
}

func (t *tlsConn) OnClose(err error) {
	t.mu.Lock()
	hs := t.hs
	if hs != nil {
		if hs.err == nil || hs.err == io.EOF {
			hs.err = errClosedInHandshake
			if err != nil {
				hs.err = err
			}
		}
		if hs.dial != nil {
			// The handshake goroutine tells done, or, when done(nil)
			// was already called, reports the close after it.
			hs.closed, hs.closeErr = true, err
			t.mu.Unlock()
			signal(hs.sig)
			return
		}
	}
	t.mu.Unlock()
	if hs != nil {
		signal(hs.sig)
	}
	if t.left != nil && hs == nil {
		bufferPut(t.left)
		t.left = nil
	}
	if t.in != nil {
		bufferPut(t.in)
		t.in = nil
	}
	t.mu.Lock()
	silent := t.dialing
	t.mu.Unlock()
	if silent {
		return // done heard the error; h hears nothing
	}
	t.h.OnClose(err)
}

// maxHandshakeInput bounds what a connection buffers while its handshake
// runs: a client's flights are a few kilobytes, and it cannot send
// application data before it has the keys.
const maxHandshakeInput = 256 << 10

var errHandshakeInput = errors.New("workerman: TLS handshake: more input than a handshake sends")

var errClosedInHandshake = fmt.Errorf("workerman: connection closed during the TLS handshake: %w", net.ErrClosed)

// onResume runs on the loop when reading resumes, after the fdConn handed
// back its own buffered bytes: the plaintext kept here and the records
// crypto/tls holds go next.
func (t *tlsConn) onResume() {
	if t.state.Load() == tlsShaking || t.state.Load() == tlsFailed {
		return
	}
	if t.drainOwed {
		t.drainOwed = false
		t.h.OnDrain()
	}
	if t.in != nil {
		t.need = 0
		t.deliver(*t.in, false)
	}
	if t.rec != nil {
		t.onRecords(nil)
		return
	}
	t.pump()
}

// pump reads records from crypto/tls (which reads t.left, then the loop's
// tlsRaw) and hands their plaintext over until it needs more bytes, the
// owner pauses or the connection closes (loop goroutine).
func (t *tlsConn) pump() {
	var scratch, lent *[]byte
	for !t.eof && t.fd.paused.Load() == 0 && t.fd.state.Load() == stOpen {
		if l := lendTLSInput(t.tc, t.available()); l != nil {
			lent = l
		}
		var dst []byte
		if t.in != nil {
			growBuf(&t.in, int(t.need))
			b := *t.in
			dst = b[len(b):cap(b)]
		} else {
			if scratch == nil {
				scratch = bufferGet(tlsScratchSize)
			}
			dst = (*scratch)[:cap(*scratch)]
		}
		n, err := t.tc.Read(dst)
		if n > 0 {
			if t.in != nil {
				*t.in = (*t.in)[:len(*t.in)+n]
				t.deliver(*t.in, false)
			} else {
				t.deliver(dst[:n], true)
			}
		}
		switch {
		case err == nil:
		case err == errWouldBlock:
			// Everything at hand was read: an idle connection keeps no
			// input buffer.
			releaseTLSBuffers(t.tc, lent)
			goto done
		case err == io.EOF:
			t.eof = true
		default:
			t.fd.Destroy(fmt.Errorf("workerman: TLS: %w", err))
			goto done
		}
	}
done:
	if scratch != nil {
		bufferPut(scratch)
	}
	t.deliverEOF()
}

// deliverEOF tells the owner the stream ended once the peer ended it and
// the owner took what came before (loop goroutine).
func (t *tlsConn) deliverEOF() {
	if t.eof && !t.eofSent && t.in != nil && t.fd.paused.Load() == 0 && t.fd.state.Load() == stOpen {
		// Complete packets kept while the owner was paused go first.
		t.need = 0
		t.deliver(*t.in, false)
	}
	if t.eof && !t.eofSent && t.fd.paused.Load() == 0 && t.fd.state.Load() == stOpen {
		// A partial packet can never complete now; drop it.
		t.eofSent = true
		if t.in != nil {
			bufferPut(t.in)
			t.in = nil
		}
		t.h.OnEOF()
	}
}

// available is how many bytes crypto/tls can read now.
func (t *tlsConn) available() int {
	n := len(t.fd.loop.tlsRaw)
	if t.left != nil {
		n += len(*t.left)
	}
	return n
}

// tlsScratchSize holds the plaintext of one TLS record.
const tlsScratchSize = 16 << 10

// deliver hands plaintext to the owner unless reading is paused and keeps
// what it did not consume. data is a scratch buffer (fromScratch) or *t.in.
func (t *tlsConn) deliver(data []byte, fromScratch bool) {
	t.in, t.need = keepUnconsumed(t.fd, t.h, data, fromScratch, t.in, t.need)
}

// keepUnconsumed is the hand-over both the fdConn and the TLS layer make: it
// calls h.OnRead when reading is not paused, the connection is open and
// data holds what h asked for, and keeps the unconsumed rest in in (which
// data is when it is not a loop-owned buffer). It returns the new in and
// need.
func keepUnconsumed(c *fdConn, h Handler, data []byte, loopOwned bool, in *[]byte, need int32) (*[]byte, int32) {
	consumed := 0
	if c.paused.Load() == 0 && c.state.Load() == stOpen && len(data) >= int(need) {
		var n int
		consumed, n = h.OnRead(data)
		need = int32(min(n, maxBufferCap))
	}
	if c.state.Load() != stOpen {
		consumed = len(data) // closing: the rest is discarded
	}
	rest := data[consumed:]
	switch {
	case len(rest) == 0:
		if !loopOwned {
			bufferPut(in)
			in = nil
		}
		need = 0
	case loopOwned:
		b := bufferGet(max(len(rest), min(int(need), len(rest)*2)))
		copy(*b, rest)
		*b = (*b)[:len(rest)]
		in = b
	case consumed > 0:
		b := *in
		m := copy(b, rest)
		*in = b[:m]
	}
	return in, need
}

// ---- the owner's Conn ----

func (t *tlsConn) Write(p []byte, limit int, drop bool) (int, error) {
	if t.state.Load() != tlsReady {
		t.mu.Lock()
		if hs := t.hs; hs != nil {
			defer t.mu.Unlock()
			if hs.closeReq {
				return 0, errTLSClosed
			}
			q := hs.pendingN + t.fd.Queued()
			if drop && q >= limit {
				return q, ErrFull
			}
			hs.pending = append(hs.pending, append([]byte(nil), p...))
			hs.pendingN += len(p)
			return q + len(p), nil
		}
		t.mu.Unlock()
		if t.state.Load() != tlsReady {
			return 0, t.closedErr()
		}
	}
	if drop {
		if q := t.fd.Queued(); q >= limit {
			return q, ErrFull
		}
	}
	t.wmu.Lock()
	err := t.writeRecords(p)
	t.wmu.Unlock()
	if err != nil {
		return 0, t.writeErr(err)
	}
	return t.fd.Queued(), nil
}

var errTLSClosed = fmt.Errorf("workerman: connection closed: %w", net.ErrClosed)

func (t *tlsConn) closedErr() error {
	if _, err := t.fd.Write(nil, 0, false); err != nil {
		return err // the socket's own reason
	}
	return errTLSClosed
}

// writeErr makes crypto/tls's refusals after a close the engine's error.
func (t *tlsConn) writeErr(err error) error {
	if errors.Is(err, net.ErrClosed) {
		return err
	}
	if t.state.Load() != tlsReady || t.fd.state.Load() != stOpen {
		return t.closedErr()
	}
	return fmt.Errorf("workerman: TLS write: %w", err)
}

// tlsOneRecord is a write that crypto/tls always sends as one record.
const tlsOneRecord = 1 << 10

// writeRecords encrypts p; the caller holds wmu. crypto/tls writes a record
// at a time: the records of a bigger write are gathered into one socket
// write.
func (t *tlsConn) writeRecords(p []byte) error {
	if t.rec != nil {
		if st := t.state.Load(); st == tlsClosed || st == tlsFailed {
			return errTLSClosed // after our close_notify or a fatal alert
		}
		if len(p) == 0 {
			return nil
		}
		return t.sealLocked(recordTypeData, p)
	}
	if len(p) <= tlsOneRecord {
		_, err := t.tc.Write(p)
		return err
	}
	b := bufferGet(len(p) + len(p)>>6 + 256)
	*b = (*b)[:0]
	t.batch.Store(b)
	_, err := t.tc.Write(p)
	t.bmu.Lock()
	b = t.batch.Swap(nil)
	var werr error
	if len(*b) > 0 {
		_, werr = t.fd.Write(*b, 0, false)
	}
	t.bmu.Unlock()
	bufferPut(b)
	if err == nil {
		err = werr
	}
	return err
}

// closeWriteLocked sends close_notify; the caller holds wmu.
func (t *tlsConn) closeWriteLocked() {
	if t.rec != nil {
		t.sealLocked(recordTypeAlert, []byte{1, alertCloseNotify})
		return
	}
	t.tc.CloseWrite()
}

func (t *tlsConn) Queued() int {
	n := 0
	if t.state.Load() == tlsShaking {
		t.mu.Lock()
		if hs := t.hs; hs != nil {
			n = hs.pendingN
		}
		t.mu.Unlock()
	}
	return n + t.fd.Queued()
}

// Close sends the owner's queued writes (after the handshake, when it runs),
// then TLS's close_notify, then closes the socket as a plain connection does.
func (t *tlsConn) Close() {
	t.mu.Lock()
	if hs := t.hs; hs != nil {
		switch {
		case hs.dial != nil && !hs.announced:
			t.mu.Unlock()
			t.fd.Destroy(nil) // cancels the connect: done hears net.ErrClosed
			return
		case !hs.started && !hs.closeReq:
			// The client has not started its handshake: what the owner
			// wrote goes out if it does so in time.
			time.AfterFunc(tlsHandshakeTimeout, func() {
				if t.state.Load() == tlsShaking {
					t.fd.Destroy(fmt.Errorf("workerman: TLS handshake: %w", os.ErrDeadlineExceeded))
				}
			})
		}
		hs.closeReq = true
		t.mu.Unlock()
		return
	}
	t.mu.Unlock()
	if t.state.CompareAndSwap(tlsReady, tlsClosed) {
		// Writes from now on are refused as closed (net.ErrClosed), not
		// as crypto/tls's shutdown.
		t.wmu.Lock()
		t.closeWriteLocked()
		t.wmu.Unlock()
	}
	t.fd.Close()
}

func (t *tlsConn) Destroy(err error) { t.fd.Destroy(err) }

func (t *tlsConn) PauseRead(r Reason) {
	t.mu.Lock()
	if hs := t.hs; hs != nil {
		hs.pause |= r // the handshake goes on: it is not the owner's input
		t.mu.Unlock()
		return
	}
	t.mu.Unlock()
	t.fd.PauseRead(r)
}

func (t *tlsConn) ResumeRead(r Reason) {
	t.mu.Lock()
	if hs := t.hs; hs != nil {
		hs.pause &^= r
		t.mu.Unlock()
		return
	}
	t.mu.Unlock()
	t.fd.ResumeRead(r)
}

func (t *tlsConn) BytesRead() uint64    { return t.fd.BytesRead() }
func (t *tlsConn) BytesWritten() uint64 { return t.fd.BytesWritten() }
func (t *tlsConn) LocalAddr() net.Addr  { return t.fd.LocalAddr() }
func (t *tlsConn) RemoteAddr() net.Addr { return t.fd.RemoteAddr() }

// ---- crypto/tls's transport ----

// tlsWire is the net.Conn crypto/tls reads records from and writes records
// to: the handshake's bytes while it runs, then the loop's.
type tlsWire tlsConn

// errWouldBlock tells crypto/tls that the bytes at hand are used up. It is
// temporary, so crypto/tls keeps the connection and a partial record.
var errWouldBlock error = wouldBlock{}

type wouldBlock struct{}

func (wouldBlock) Error() string   { return "workerman: TLS: waiting for more input" }
func (wouldBlock) Timeout() bool   { return true }
func (wouldBlock) Temporary() bool { return true }

func (w *tlsWire) Read(p []byte) (int, error) {
	t := (*tlsConn)(w)
	if t.state.Load() == tlsShaking {
		return t.readHandshake(p)
	}
	if t.left != nil {
		b := *t.left
		n := copy(p, b)
		if n == len(b) {
			bufferPut(t.left)
			t.left = nil
		} else {
			*t.left = b[:copy(b, b[n:])]
		}
		return n, nil
	}
	l := t.fd.loop
	if len(l.tlsRaw) == 0 {
		if t.rawEOF {
			return 0, io.EOF
		}
		return 0, errWouldBlock
	}
	n := copy(p, l.tlsRaw)
	l.tlsRaw = l.tlsRaw[n:]
	return n, nil
}

// Write takes records in crypto/tls's order (it holds its output lock) and
// keeps that order to the socket: into the batch a big write is gathering,
// or to the socket under bmu, which a batch's flush holds too (a record
// crypto/tls made after a batch's, a key update's answer from the loop, must
// not overtake it).
func (w *tlsWire) Write(p []byte) (int, error) {
	t := (*tlsConn)(w)
	t.bmu.Lock()
	defer t.bmu.Unlock()
	if b := t.batch.Load(); b != nil {
		*b = append(*b, p...)
		return len(p), nil
	}
	if _, err := t.fd.Write(p, 0, false); err != nil {
		return 0, err
	}
	return len(p), nil
}

func (w *tlsWire) Close() error {
	(*tlsConn)(w).fd.Destroy(nil)
	return nil
}

func (w *tlsWire) LocalAddr() net.Addr              { return w.fd.LocalAddr() }
func (w *tlsWire) RemoteAddr() net.Addr             { return w.fd.RemoteAddr() }
func (w *tlsWire) SetDeadline(time.Time) error      { return nil }
func (w *tlsWire) SetReadDeadline(time.Time) error  { return nil }
func (w *tlsWire) SetWriteDeadline(time.Time) error { return nil }
