package workerman

import (
	"errors"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/workerman-go/workerman/internal/engine"
	"github.com/workerman-go/workerman/internal/proto"
	"github.com/workerman-go/workerman/protocol"
)

// Process-wide defaults, as Workerman's TcpConnection::$defaultMaxSendBufferSize
// and ::$defaultMaxPackageSize. A Worker's own fields override them, and a
// connection's setters override the Worker. Set them before workers start.
var (
	DefaultMaxSendBufferSize = 1 << 20  // 1 MiB
	DefaultMaxPackageSize    = 10 << 20 // 10 MiB
)

var connectionIDs atomic.Uint64

// Connection is one client connection of a Worker (Workerman's
// TcpConnection). Its methods are safe to call from any goroutine.
//
// The callbacks of one connection never run concurrently with each other
// (see the package documentation), so state that only callbacks touch needs
// no lock.
type Connection struct {
	id    uint64
	ep    *endpoint
	inst  *instance
	tc    engine.Conn
	codec protocol.Codec

	sendMu sync.Mutex // one encoder and one writer at a time

	mu          sync.Mutex // guards the job list and what follows
	jobs        *job       // the job list's last job; its next is the first (see appendLocked)
	pendingIn   int32      // input bytes queued, each packet counted up to maxPendingInput+1 (see pendingSize)
	running     bool
	closeQueued bool
	bpPaused    bool
	full        bool // OnBufferFull reported; cleared by the drain (see markFull)

	// The fields are ordered so that the struct fills the 160-byte size
	// class with one byte of padding: an idle connection's memory is
	// budgeted (a test holds the size).
	closing   atomic.Bool          // Close or Destroy was asked for
	recvPause atomic.Bool          // PauseRecv
	drains    atomic.Uint32        // drains reported; changes under mu (compared for equality only: see markFull)
	msgType   protocol.MessageType // of the message being delivered
	badInput  bool                 // loop-owned: input is discarded after an error
	wsType    protocol.MessageType // under sendMu: an established WebSocket's frame type for data (text or binary); 0 before
	lastRead  atomic.Int64
	ext       atomic.Pointer[connExt]

	// Traffic counters (see stats.go): each is written by whoever runs
	// this connection's callbacks or holds sendMu, so no other goroutine
	// touches their cache line; the instance folds them into its totals
	// when the connection closes.
	received atomic.Uint64 // messages delivered (OnMessage, OnRequest, a Pipe)
	sent     atomic.Uint64 // writes handed to the engine
	dropped  atomic.Uint64 // sends dropped on a full buffer

	prev, next *Connection // the instance's list
}

// connExt holds what few connections need, so that the common case stays
// small.
type connExt struct {
	value               any
	maxSend, maxPackage int
	pipeTo, pipeFrom    *Connection
	async               *AsyncConnection // the AsyncConnection whose attempt this is
	closeWhenFull       bool
}

const engineBackpressure = engine.ByBackpressure

func newConnection(ep *endpoint, tc engine.Conn, inst *instance) *Connection {
	c := &Connection{
		id:    connectionIDs.Add(1),
		ep:    ep,
		inst:  inst,
		tc:    tc,
		codec: ep.proto.NewCodec(),
	}
	if ep.r.tick > 0 {
		c.lastRead.Store(ep.r.now.Load())
	}
	return c
}

// accepted runs when the connection is created, before any input: a
// protocol session starts (a WebSocket client sends its handshake).
func (c *Connection) accepted() {
	if s := c.session(); s != nil {
		s.Accepted(c.side())
	}
}

// ID is unique within the process, counting from 1.
func (c *Connection) ID() uint64 { return c.id }

// Worker returns the worker that accepted the connection (nil for the
// connection inside an AsyncConnection).
func (c *Connection) Worker() *Worker { return c.ep.worker }

// WorkerID is the ID (0..Count-1) of the event-loop instance that holds the
// connection, Workerman's $worker->id of the process that holds it.
func (c *Connection) WorkerID() int { return c.inst.id }

// Protocol is the URI scheme of the connection's codec ("text", "websocket").
func (c *Connection) Protocol() string { return c.ep.protoName }

// Transport is "tcp", "ssl", "unix" or "udp".
func (c *Connection) Transport() string { return c.ep.transport }

// MessageType is the type of the message being delivered to OnMessage:
// TextMessage or BinaryMessage for WebSocket, DataMessage otherwise. Only
// meaningful inside OnMessage.
func (c *Connection) MessageType() protocol.MessageType { return c.msgType }

// ---- sending ----

// Send encodes data with the connection's codec and sends it. It never
// blocks and does not keep data. It returns nil when the bytes were written
// to the kernel or queued; an error wrapping ErrSendBufferFull when
// MaxSendBufferSize bytes were already queued (the data is dropped and
// OnError is called, as in Workerman); an error wrapping ErrClosed (and
// net.ErrClosed) after Close or Destroy or once the peer is gone; the
// codec's error when it refuses data (ErrInvalidUTF8 for a WebSocket text
// message that is not UTF-8: nothing is sent, OnError is called).
//
// On WebSocket, Send sends text unless the connection's type is binary: to
// echo any message, answer in the type it came with,
// c.SendMessage(c.MessageType(), data).
//
// OnBufferFull is called (on the connection's callback goroutine) when a Send
// makes the queue reach MaxSendBufferSize; OnBufferDrain when it is empty
// again.
func (c *Connection) Send(data []byte) error {
	return c.send(protocol.Message{Data: data}, false)
}

// SendString is Send for a string.
func (c *Connection) SendString(s string) error {
	return c.Send([]byte(s))
}

// SendMessage sends a message of the given type: for WebSocket,
// protocol.TextMessage or protocol.BinaryMessage (or a control frame).
// Codecs without message types ignore the type.
func (c *Connection) SendMessage(typ protocol.MessageType, data []byte) error {
	return c.send(protocol.Message{Type: typ, Data: data}, false)
}

// SendRaw sends data as it is, bypassing the codec (Workerman's
// send($data, true)).
func (c *Connection) SendRaw(data []byte) error {
	return c.send(protocol.Message{Data: data}, true)
}

func (c *Connection) send(m protocol.Message, raw bool) error {
	c.sendMu.Lock()
	defer c.sendMu.Unlock()
	return c.sendLocked(m, raw)
}

// forward is Send for Pipe: it does not drop on a full buffer, because
// the full buffer pauses the source, which bounds what is queued.
func (c *Connection) forward(data []byte) error {
	c.sendMu.Lock()
	defer c.sendMu.Unlock()
	if c.closing.Load() {
		return ErrClosed
	}
	return c.sendMessage(protocol.Message{Data: data}, false)
}

// sendLocked is the send path (the caller holds sendMu): the codec
// encodes (a protocol session first decides what to send when: WebSocket
// holds frames until its handshake completed, HTTP holds what follows a
// file response until the file is sent), then write hands the bytes to the
// engine. raw bytes bypass the codec.
func (c *Connection) sendLocked(m protocol.Message, raw bool) error {
	if c.closing.Load() {
		return ErrClosed
	}
	if raw {
		return c.write(m.Data, true)
	}
	return c.sendMessage(m, true)
}

func (c *Connection) sendMessage(m protocol.Message, drop bool) error {
	if s := c.session(); s != nil {
		return s.Send(c.side(), m, drop)
	}
	return proto.WriteEncoded(c.side(), c.codec, c, m, drop)
}

// write writes encoded bytes with Workerman's buffer semantics; with drop
// false a full buffer queues anyway (Pipe, whose source is paused by the
// full buffer instead). The caller holds sendMu.
func (c *Connection) write(out []byte, drop bool) error {
	return c.writeBytes(out, drop, false)
}

// writeBytes is write; shared bytes never change (a prepared message's
// frame), and the engine may queue them by reference instead of a copy.
func (c *Connection) writeBytes(out []byte, drop, shared bool) error {
	if len(out) == 0 {
		return nil
	}
	limit := c.MaxSendBufferSize()
	drains := c.drains.Load() // before the write: see markFull
	var sw engine.SharedWriter
	if shared {
		sw, _ = c.tc.(engine.SharedWriter)
	}
	var (
		queued int
		err    error
	)
	if sw != nil {
		queued, err = sw.WriteShared(out, limit, drop)
	} else {
		queued, err = c.tc.Write(out, limit, drop)
	}
	switch {
	case err == engine.ErrFull:
		c.post(jobError, ErrSendBufferFull) // counts the drop
		if x := c.ext.Load(); x != nil && x.closeWhenFull {
			// Nothing after the dropped message may reach the peer.
			c.closeLocked(protocol.ClosePayload(protocol.CloseTryAgainLater, "send buffer full"))
		}
		return ErrSendBufferFull
	case errors.Is(err, net.ErrClosed):
		return ErrClosed
	case err != nil:
		return err
	}
	c.sent.Add(1) // uncontended: the caller holds sendMu
	if queued >= limit {
		c.markFull(drains, limit)
	}
	return nil
}

// post queues a callback job unless its callback would do nothing. An
// error is counted (see countError) whether or not OnError is set.
func (c *Connection) post(kind jobKind, err error) {
	if kind == jobError {
		c.countError(err, false)
	}
	if !c.wants(kind) {
		return
	}
	j := newJob(kind)
	j.err = err
	c.enqueue(j)
}

// wants tells whether a job of this kind would do anything.
func (c *Connection) wants(kind jobKind) bool {
	x := c.ext.Load()
	switch kind {
	case jobBufferFull:
		return c.ep.onBufferFull != nil || (x != nil && x.pipeFrom != nil)
	case jobBufferDrain:
		return c.ep.onBufferDrain != nil || (x != nil && x.pipeFrom != nil)
	case jobError:
		return c.ep.onError != nil
	}
	return true
}

// markFull reports OnBufferFull: a write left limit bytes or more queued,
// and drains is the drain count read before that write. When a drain was
// reported in between, the queue may be empty already: it reports only if
// the queue is still at the limit, for a full reported after its own drain
// would never be followed by one (a Pipe's source would stay paused for
// good). The flag and the job list change under one lock, so OnBufferFull
// and OnBufferDrain run in the order of the changes.
func (c *Connection) markFull(drains uint32, limit int) {
	for {
		c.mu.Lock()
		if c.full {
			c.mu.Unlock()
			return
		}
		if c.drains.Load() == drains {
			// No drain since the buffer was seen full: one will follow.
			c.full = true
			c.ep.stats.bufferFull.Add(1) // once per fill-and-drain cycle
			start := c.wants(jobBufferFull) && c.appendLocked(newJob(jobBufferFull))
			c.mu.Unlock()
			if start {
				c.ep.r.submit(c)
			}
			return
		}
		c.mu.Unlock()
		drains = c.drains.Load()
		if c.tc.Queued() < limit {
			return
		}
	}
}

// markDrained reports OnBufferDrain: the engine wrote all that was queued.
func (c *Connection) markDrained() {
	want := c.wants(jobBufferDrain)
	c.mu.Lock()
	c.full = false
	c.drains.Add(1)
	start := want && c.appendLocked(newJob(jobBufferDrain))
	c.mu.Unlock()
	if start {
		c.ep.r.submit(c)
	}
}

// ---- closing ----

// Close sends data (each as one message, if given), stops delivering
// messages, flushes what is queued and then closes the connection. OnClose
// follows. Calling it again does nothing.
func (c *Connection) Close(data ...[]byte) error {
	c.sendMu.Lock()
	defer c.sendMu.Unlock()
	if c.closing.Load() {
		return nil
	}
	var err error
	for _, d := range data {
		if e := c.sendLocked(protocol.Message{Data: d}, false); e != nil && err == nil {
			err = e
		}
	}
	c.closeLocked(nil)
	return err
}

// closeLocked is the one close sequence (the caller holds sendMu): nothing
// more is sent or delivered, the protocol says goodbye (a WebSocket close
// frame with closeFrame as its payload, or the default code when it is
// nil), and the socket closes once what is queued is written.
func (c *Connection) closeLocked(closeFrame []byte) {
	if c.closing.Swap(true) {
		return
	}
	if s := c.session(); s != nil {
		s.Closing(c.side(), closeFrame)
	}
	c.tc.Close()
}

// Destroy closes the connection at once, dropping what is queued. OnClose
// follows.
func (c *Connection) Destroy() {
	c.closing.Store(true)
	c.tc.Destroy(nil)
}

// PauseRecv stops reading from the connection (Workerman's pauseRecv).
// Messages already received are still delivered.
func (c *Connection) PauseRecv() {
	c.recvPause.Store(true)
	c.tc.PauseRead(engine.ByUser)
}

// ResumeRecv starts reading again after PauseRecv.
func (c *Connection) ResumeRecv() {
	c.recvPause.Store(false)
	c.tc.ResumeRead(engine.ByUser)
}

// Pipe forwards every message of c to dest (encoded with dest's codec) and
// applies back-pressure: while dest's send buffer is full, c stops reading.
// When c closes, dest is closed. Workerman's pipe(). c's OnMessage is no
// longer called; its OnClose and dest's buffer callbacks still are.
func (c *Connection) Pipe(dest *Connection) {
	c.updateExt(func(x *connExt) { x.pipeTo = dest })
	dest.updateExt(func(x *connExt) { x.pipeFrom = c })
}

func (c *Connection) updateExt(f func(*connExt)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	x := new(connExt)
	if old := c.ext.Load(); old != nil {
		*x = *old
	}
	f(x)
	c.ext.Store(x)
}

// ---- limits and counters ----

// MaxSendBufferSize is the number of queued bytes at which Send starts
// dropping (default: the Worker's, else DefaultMaxSendBufferSize).
func (c *Connection) MaxSendBufferSize() int {
	if x := c.ext.Load(); x != nil && x.maxSend > 0 {
		return x.maxSend
	}
	return c.ep.maxSend
}

// CloseWhenBufferFull makes a send that finds the send buffer full close
// the connection instead of only dropping the message: what was queued
// before still goes out, then (on WebSocket) a close frame with 1013, try
// again later, and nothing sent later reaches the peer. The drop is still
// reported (ErrSendBufferFull, OnError). For peers that must never miss a
// message unnoticed, such as push clients that resume from history: they
// reconnect and resume from the last message they got. Safe from any
// goroutine; it cannot be undone.
func (c *Connection) CloseWhenBufferFull() {
	c.updateExt(func(x *connExt) { x.closeWhenFull = true })
}

// SetMaxSendBufferSize overrides MaxSendBufferSize for this connection.
func (c *Connection) SetMaxSendBufferSize(n int) {
	c.updateExt(func(x *connExt) { x.maxSend = n })
}

// MaxPackageSize is the largest packet accepted (default: the Worker's, else
// DefaultMaxPackageSize). A larger one closes the connection.
func (c *Connection) MaxPackageSize() int {
	if x := c.ext.Load(); x != nil && x.maxPackage > 0 {
		return x.maxPackage
	}
	return c.ep.maxPackage
}

// SetMaxPackageSize overrides MaxPackageSize for this connection.
func (c *Connection) SetMaxPackageSize(n int) {
	c.updateExt(func(x *connExt) { x.maxPackage = n })
}

// BytesRead is the number of bytes received.
func (c *Connection) BytesRead() uint64 { return c.tc.BytesRead() }

// BytesWritten is the number of bytes written to the kernel.
func (c *Connection) BytesWritten() uint64 { return c.tc.BytesWritten() }

// SendQueueSize is the number of bytes waiting to be written.
func (c *Connection) SendQueueSize() int { return c.tc.Queued() }

// ---- user data ----

// Value returns what SetValue stored (Workerman apps set $connection->uid).
func (c *Connection) Value() any {
	if x := c.ext.Load(); x != nil {
		return x.value
	}
	return nil
}

// SetValue attaches v to the connection.
func (c *Connection) SetValue(v any) {
	c.updateExt(func(x *connExt) { x.value = v })
}

// ---- addresses ----

// RemoteAddr is the peer's address.
func (c *Connection) RemoteAddr() net.Addr { return c.tc.RemoteAddr() }

// LocalAddr is the local address of the connection.
func (c *Connection) LocalAddr() net.Addr { return c.tc.LocalAddr() }

// RemoteIP is the peer's IP address ("" for unix sockets).
func (c *Connection) RemoteIP() string { return addrIP(c.RemoteAddr()) }

// RemotePort is the peer's port (0 for unix sockets).
func (c *Connection) RemotePort() int { return addrPort(c.RemoteAddr()) }

// RemoteAddress is "ip:port".
func (c *Connection) RemoteAddress() string { return addrString(c.RemoteAddr()) }

// LocalIP is the local IP address ("" for unix sockets).
func (c *Connection) LocalIP() string { return addrIP(c.LocalAddr()) }

// LocalPort is the local port (0 for unix sockets).
func (c *Connection) LocalPort() int { return addrPort(c.LocalAddr()) }

// LocalAddress is "ip:port".
func (c *Connection) LocalAddress() string { return addrString(c.LocalAddr()) }

// IsIPv4 reports whether the peer's address is IPv4.
func (c *Connection) IsIPv4() bool {
	a, ok := c.RemoteAddr().(*net.TCPAddr)
	return ok && a.IP.To4() != nil
}

// IsIPv6 reports whether the peer's address is IPv6.
func (c *Connection) IsIPv6() bool {
	a, ok := c.RemoteAddr().(*net.TCPAddr)
	return ok && a.IP.To4() == nil
}

func addrIP(a net.Addr) string {
	if t, ok := a.(*net.TCPAddr); ok {
		return t.IP.String()
	}
	return ""
}

func addrPort(a net.Addr) int {
	if t, ok := a.(*net.TCPAddr); ok {
		return t.Port
	}
	return 0
}

func addrString(a net.Addr) string {
	if t, ok := a.(*net.TCPAddr); ok {
		return net.JoinHostPort(t.IP.String(), strconv.Itoa(t.Port))
	}
	if a == nil {
		return ""
	}
	return a.String()
}

// ---- timeouts ----

// due reports whether the ticker has something to check on c. It runs under
// the instance lock and must be cheap.
func (c *Connection) due(now int64) bool {
	if c.closing.Load() {
		return false
	}
	if c.idleFor(now) >= c.ep.idle && c.ep.idle > 0 {
		return true
	}
	s := c.session()
	return s != nil && s.Due(c.side(), now)
}

// idleFor is how long nothing was received, never more than the truth: the
// last read is stamped with the ticker's clock, which may lag by one tick.
func (c *Connection) idleFor(now int64) time.Duration {
	return time.Duration(now-c.lastRead.Load()) - c.ep.r.tick
}

func (c *Connection) onTick(now int64) {
	if idle := c.ep.idle; idle > 0 && c.idleFor(now) >= idle {
		c.post(jobError, ErrIdleTimeout)
		if s := c.session(); s != nil {
			s.Timeout(c.side())
		} else {
			c.Close()
		}
		return
	}
	if s := c.session(); s != nil {
		s.Tick(c.side(), now)
	}
}

func errTooLarge(n, max int) error {
	return &sizeError{n: n, max: max}
}

type sizeError struct{ n, max int }

func (e *sizeError) Error() string {
	return "workerman: package of " + strconv.Itoa(e.n) + " bytes exceeds MaxPackageSize " + strconv.Itoa(e.max)
}

func (e *sizeError) Unwrap() error { return ErrPackageTooLarge }
