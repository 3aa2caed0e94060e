// Package engine moves bytes between sockets and their owners.
//
// Three implementations share one contract:
//
//   - on Linux, N event loops, each an epoll instance parked in the Go
//     runtime's netpoller. An idle connection owns no goroutine and no read
//     buffer: a loop reads into its own buffer and a connection keeps only the
//     bytes of an incomplete packet. Where the kernel allows io_uring, the
//     writes made during a pass of the loop's callbacks are sent together
//     through a small ring, one system call for all;
//   - on Linux, opt-in (NewUring), the same loops and connections over
//     io_uring: a multishot receive per connection into a ring of buffers
//     the loop shares, no read system call (loop_linux.go says what the two
//     backends share and what each provides);
//   - everywhere, one goroutine per connection over a net.Conn, with the
//     same semantics.
//
// TLS runs on the loops too (tls_linux.go): crypto/tls decrypts the loop's
// bytes; only a handshake in progress has a goroutine.
//
// The engine knows nothing about protocols or callbacks. It calls a Handler
// with the bytes it read and tells it when output drained and when the socket
// closed. Writes may come from any goroutine: when nothing is queued they go
// straight to the kernel (non-blocking), otherwise they are queued and flushed
// when the socket becomes writable, many queued writes in one writev.
package engine

import (
	"crypto/tls"
	"errors"
	"net"
	"sync/atomic"
	"time"

	"github.com/workerman-go/workerman/internal/bufpool"
)

// Handler is the owner of one connection. The engine calls OnRead, OnEOF and
// (for server connections) nothing else concurrently: they all run on the
// goroutine that reads the connection. OnDrain and OnClose may run on any
// goroutine; OnClose runs exactly once and nothing runs after it.
type Handler interface {
	// OnRead is given the bytes received and not yet consumed. It returns how
	// many it consumed and, when it knows, how many bytes the next packet
	// needs counted from the first unconsumed byte (0 = unknown). The engine
	// keeps the unconsumed bytes and does not call OnRead again before that
	// many are available. in is only valid during the call.
	OnRead(in []byte) (consumed, need int)
	// OnEOF reports that the peer closed its sending side. No more OnRead
	// calls follow. The connection stays open for writing until the owner
	// closes it.
	OnEOF()
	// OnDrain reports that queued output was fully written.
	OnDrain()
	// OnClose reports that the socket is closed; err says why (nil after a
	// Close or Destroy asked for by the owner).
	OnClose(err error)
}

// Conn is one connection as seen by its Handler. All methods are safe to call
// from any goroutine.
type Conn interface {
	// Write sends p, writing to the kernel at once when nothing is queued and
	// queueing (copying) what the kernel does not take. p is not retained. It
	// returns the number of bytes queued after the call. limit is the
	// owner's send buffer size: with drop set and at least limit bytes
	// already queued, Write writes nothing and returns ErrFull. Whenever the
	// queue reached limit, OnDrain follows once it is empty again. After
	// Close or Destroy it returns an error wrapping net.ErrClosed.
	Write(p []byte, limit int, drop bool) (queued int, err error)
	// Queued returns the number of bytes waiting to be written.
	Queued() int
	// Close stops delivering input, flushes what is queued, then closes.
	Close()
	// Destroy closes at once and drops what is queued.
	Destroy(err error)
	// PauseRead stops reading for the given reason; ResumeRead clears it.
	// Reading resumes when no reason is left; bytes already buffered are then
	// handed to OnRead first.
	PauseRead(reason Reason)
	ResumeRead(reason Reason)
	// BytesRead and BytesWritten count the bytes moved through the socket.
	BytesRead() uint64
	BytesWritten() uint64
	LocalAddr() net.Addr
	RemoteAddr() net.Addr
}

// SharedWriter is implemented by the connections that can queue bytes by
// reference. WriteShared is Write for bytes that never change (a frame
// built once and sent to many connections): what the kernel does not take
// at once may be queued as a reference to p rather than a copy, so that
// slow readers of one broadcast hold it once between them, not once each.
// p must not be modified afterwards.
type SharedWriter interface {
	WriteShared(p []byte, limit int, drop bool) (queued int, err error)
}

// Reason is a bit set of reasons to stop reading.
type Reason uint8

const (
	// ByUser is Connection.PauseRecv.
	ByUser Reason = 1 << iota
	// ByBackpressure is set by the owner while its callbacks lag behind.
	ByBackpressure
)

// Engine owns the loops (or goroutines) that serve connections.
type Engine interface {
	// Loops returns the number of loop instances (IDs 0..Loops()-1).
	Loops() int
	// Listen starts accepting on ln. For each accepted connection accept is
	// called with the instance that will hold it and returns the Handler.
	// accept runs on that instance's loop goroutine and must not block.
	Listen(ln *Listener, accept AcceptFunc) error
	// Dial prepares an outgoing connection on one of the instances. Nothing
	// happens until Start; writes made before the connection is up are
	// queued and sent, in order, once it is.
	Dial(d DialRequest) DialConn
	// Stop ends the loops. Connections still open are destroyed.
	Stop()
	// Held is the number of connections the engine still holds: open ones,
	// and closed ones whose socket lingers for the peer's close (the end
	// of a WebSocket closing handshake).
	Held() int
	// Name says how the engine waits for sockets: "epoll", "io_uring" or
	// "goroutine" (a goroutine per connection).
	Name() string
}

// AcceptFunc is called for each accepted connection.
type AcceptFunc func(c Conn, instance int) Handler

// DialConn is an outgoing connection.
type DialConn interface {
	Conn
	// Instance is the loop instance that holds the connection.
	Instance() int
	// Start connects in the background. done is called exactly once, on a
	// goroutine of the engine: with nil once connected, after which h
	// receives the connection's events, or with the error, after which h
	// receives nothing. Closing the connection before that cancels the
	// connect (done gets an error wrapping net.ErrClosed).
	Start(h Handler, done func(err error))
}

// DialRequest says where to connect.
type DialRequest struct {
	Network string // "tcp", "tcp4", "tcp6" or "unix"
	Address string
	Timeout time.Duration // 0 = no timeout
	TLS     *tls.Config   // nil = plain
}

// Listener is a listening socket shared by the loops.
type Listener struct {
	Network   string // "tcp", "tcp4", "tcp6", "unix" or "udp" (see udpListener)
	Address   string
	ReusePort bool
	TLS       *tls.Config
	// Backlog is the listen queue length (the kernel caps it at somaxconn).
	Backlog int
	// Paused creates the listener without accepting until Resume, so that
	// a worker can bind its port before its start callbacks ran.
	Paused bool

	impl listenerImpl
}

type listenerImpl interface {
	addr() net.Addr
	close() error
	setPaused(bool)
}

// Addr is the address the listener is bound to (useful with port 0).
func (l *Listener) Addr() net.Addr {
	if l.impl == nil {
		return nil
	}
	return l.impl.addr()
}

// Close stops accepting. Connections already accepted are not affected.
func (l *Listener) Close() error {
	if l.impl == nil {
		return nil
	}
	return l.impl.close()
}

// Pause stops accepting new connections without closing the socket (the
// kernel keeps queueing them up to the backlog); Resume starts again.
func (l *Listener) Pause()  { l.impl.setPaused(true) }
func (l *Listener) Resume() { l.impl.setPaused(false) }

// ErrFull is returned by Write when the queue already holds limit bytes.
var ErrFull = errors.New("workerman: send queue full")

// ErrLingerTimeout closes a connection whose peer neither read what was
// queued nor closed its side within the linger time after Close.
var ErrLingerTimeout = errors.New("workerman: close timed out waiting for the peer")

// LingerTimeout bounds how long a closed connection waits, after its output is
// flushed, for the peer to close its side before the socket is closed anyway.
const LingerTimeout = 2 * time.Second

// Connection states, shared by both engines.
const (
	stConnecting uint32 = iota
	stOpen
	stClosing // Close called: flushing, then lingering
	stLinger  // output flushed and write side shut down; waiting for the peer
	stDead    // closed or about to be: no more writes
)

// Config configures an engine.
type Config struct {
	Loops          int
	ReadBufferSize int // per loop; default 64 KiB
	// FlushTimeout bounds how long Close waits for queued output to drain
	// when the peer makes no progress reading it. Default 10 s.
	FlushTimeout time.Duration
	// AfterPass, when set, is called on a loop's goroutine after each pass
	// over the events the loop found ready, before it polls again. It takes
	// what the pass queued for the owner (callbacks to run, which then cost
	// no hand-over to another goroutine) and returns it, or nil; it must
	// not block. The loop then runs the work and waits for it, unless the
	// work lasts longer than a tick of the engine's watchdog (about a
	// millisecond; a callback blocked): the loop then goes on in a new
	// goroutine, and the work's goroutine is no longer the loop's (its
	// Turn says so). Only the loop engines call it.
	AfterPass func(loop int) Work
}

// Work is what an AfterPass call took from its loop, run right after it.
type Work interface {
	// Run runs on the loop's goroutine; t tells whether the loop was
	// handed to another goroutine meanwhile, after which Run should hand
	// what is left to other goroutines and return.
	Run(t Turn)
	// Abandon is called, on the engine's watchdog goroutine, when the loop
	// is handed off while Run runs (what Run has not started must go to
	// other goroutines now: Run is blocked), and in place of Run when the
	// loop stops after the pass. It must not block.
	Abandon()
	// Done is called on the loop's goroutine after Run, when the loop was
	// not handed off: nothing else uses the work any more.
	Done()
}

// Turn is one run of Work on a loop.
type Turn struct {
	busy *atomic.Uint64
	pass uint64
}

// HandedOff reports whether the loop went on in another goroutine.
func (t Turn) HandedOff() bool { return t.busy.Load() != t.pass }

func (c Config) withDefaults() Config {
	if c.Loops <= 0 {
		c.Loops = 1
	}
	if c.ReadBufferSize <= 0 {
		c.ReadBufferSize = 64 << 10
	}
	if c.FlushTimeout <= 0 {
		c.FlushTimeout = 10 * time.Second
	}
	return c
}

// New returns the best engine for this platform: epoll loops on Linux,
// goroutines elsewhere.
func New(cfg Config) (Engine, error) {
	return newPlatform(cfg.withDefaults())
}

// NewGoroutine returns the goroutine-per-connection engine on any platform.
// It serves TLS and the platforms without an event loop.
func NewGoroutine(cfg Config) Engine {
	return newGoEngine(cfg.withDefaults())
}

func bufferGet(n int) *[]byte { return bufpool.Get(n) }
func bufferPut(b *[]byte)     { bufpool.Put(b) }
