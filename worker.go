package workerman

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/workerman-go/workerman/internal/engine"
	"github.com/workerman-go/workerman/internal/proto"
	"github.com/workerman-go/workerman/protocol"
)

// Worker listens on one address and serves its connections with Count
// event-loop instances (Workerman's Worker). Set the fields, then call
// Listen (or Run, or RunAll for every worker made with NewWorker). Fields
// are read once when the worker starts; changing them later has no effect.
//
// The zero value with URI set is a working worker:
//
//	w := &workerman.Worker{URI: "text://127.0.0.1:5678"}
type Worker struct {
	// URI is the listen address: scheme://host:port, where the scheme names
	// the codec (tcp, text, frame, websocket, http, or one registered with
	// protocol.Register), unix:///path/to.sock, or udp://host:port.
	//
	// On udp:// each datagram is a message, delivered to OnMessage with a
	// Connection of its own whose Send answers the sender (Workerman's
	// UdpConnection); OnConnect and OnClose are not called, and there is no
	// send buffer. Count goroutines read the socket.
	URI string

	// Name shows in logs and in status output. Default "none".
	Name string

	// Count is the number of event-loop instances, IDs 0..Count-1. Each
	// has its own epoll set and read buffer; connections are spread over
	// them. It is Workerman's process count, inside one process: callbacks
	// run on a shared goroutine pool whatever Count is, so Count is about
	// spreading socket I/O over cores, not about parallel callbacks.
	// Default 1.
	Count int

	// ReusePort gives every instance its own listening socket with
	// SO_REUSEPORT, so the kernel spreads new connections over them (and
	// over other processes listening on the same port).
	ReusePort bool

	// Transport is "tcp" (default), "ssl" (TLS with TLSConfig; a
	// websocket:// worker then serves wss://), "unix" (implied by unix://)
	// or "udp" (implied by udp://; with text:// or frame://, each datagram
	// carries packets of that codec).
	Transport string

	// TLSConfig is used when Transport is "ssl".
	TLSConfig *tls.Config

	// Protocol overrides the codec named by the URI scheme (Workerman's
	// $worker->protocol), e.g. "text" for a unix:// worker.
	Protocol string

	// MaxSendBufferSize overrides DefaultMaxSendBufferSize for the
	// connections of this worker.
	MaxSendBufferSize int

	// MaxPackageSize overrides DefaultMaxPackageSize for the connections of
	// this worker.
	MaxPackageSize int

	// IdleTimeout closes connections that send nothing for this long,
	// reporting ErrIdleTimeout through OnError. 0 disables it.
	IdleTimeout time.Duration

	// ReadHeaderTimeout, on an http:// worker, bounds the wait for a
	// request's head (request line and headers): from the accept for the
	// first request, from its first byte for the next ones on a kept-alive
	// connection (IdleTimeout covers the wait between requests). A late head
	// is answered with 408 and the connection closed, reporting an
	// *HTTPError through OnError: this stops slowloris clients, which hold
	// connections by sending a head a byte at a time. With WebSocket.Path
	// set, WebSocket.HandshakeTimeout bounds it too (an upgrade's head is
	// the handshake). Default 10 s; negative disables it.
	ReadHeaderTimeout time.Duration

	// StopTimeout bounds a graceful stop by RunAll or Run: connections still
	// open after it are destroyed. Default 2 s, as in Workerman.
	StopTimeout time.Duration

	// PoolSize caps the callbacks running at once (on the pool's goroutines
	// and on the event loops); connections beyond
	// it wait in a FIFO queue for a free one (queueing never blocks the
	// event loop or a Send). 0 means no fixed cap: up to 256 (32 per CPU if
	// more) run at once while the queue moves, and when it has not moved
	// for 5 ms (every one of them blocked, in a database call say) each
	// waiting connection gets a goroutine of its own, so a blocking
	// callback delays another connection by at most that.
	PoolSize int

	// Logger receives errors nobody else hears about (a panicking callback
	// with no OnError). Default slog.Default().
	Logger *slog.Logger

	// OnWorkerStart runs once per instance, id 0..Count-1, before the worker
	// accepts connections. The instances' callbacks run concurrently; Listen
	// returns after all of them did. Start other workers here with Listen
	// (the inner text:// worker a backend pushes through).
	OnWorkerStart func(w *Worker, id int)

	// OnWorkerStop runs once per instance when the worker stops, after its
	// connections closed.
	OnWorkerStop func(w *Worker, id int)

	// OnConnect runs when a connection is accepted, before any TLS or
	// WebSocket handshake, and before its first OnMessage.
	OnConnect func(c *Connection)

	// OnMessage runs for every message, in arrival order. data is only valid
	// until OnMessage returns: copy it to keep it.
	OnMessage func(c *Connection, data []byte)

	// OnClose runs exactly once per connection, after its last other
	// callback, however the connection ended. The connection is no longer
	// listed in Connections.
	OnClose func(c *Connection)

	// OnError reports what went wrong on a connection: ErrSendBufferFull
	// (the data was dropped), ErrPackageTooLarge and ErrBadPacket (the
	// connection is closed), ErrIdleTimeout, a *PanicError.
	OnError func(c *Connection, err error)

	// OnRequest handles the requests of an http:// worker (Workerman's
	// onMessage with a Request): answer with c.SendResponse, c.Send (a 200
	// text/html response) or, for streams, SendEvent and SendChunk. When it
	// is nil, OnMessage receives the request bodies.
	OnRequest func(c *Connection, r *Request)

	// OnBufferFull runs when queued output reaches MaxSendBufferSize;
	// OnBufferDrain when the queue is empty again.
	OnBufferFull  func(c *Connection)
	OnBufferDrain func(c *Connection)

	// All callbacks of one connection run one at a time, in order: the
	// messages' on the event loop's goroutine right after it read them
	// (no hand-over), the others on a pool goroutine. They may block: a
	// callback that runs longer than about a millisecond keeps its
	// goroutine and the loop goes on in another, so other connections
	// wait a millisecond or two at most.

	// WebSocket configures websocket:// workers: compression, handshake
	// limits, default message type, heartbeats.
	WebSocket WebSocketOptions

	// OnWebSocketConnect runs with the opening handshake before the 101
	// response: read the path, query, headers and cookies, check a token,
	// pick a subprotocol (r.AcceptProtocol) or add response headers. Return
	// an error to refuse the connection: RejectWebSocket(401, "...") for a
	// chosen status, any other error for 403. Data sent from OnConnect or
	// here is delivered right after the 101.
	OnWebSocketConnect func(c *Connection, r *WebSocketRequest) error

	// OnWebSocketConnected runs after the 101 was sent.
	OnWebSocketConnected func(c *Connection, r *WebSocketRequest)

	// OnWebSocketPing runs for each ping. When it is set, answering with a
	// pong is up to it (c.SendMessage(protocol.PongMessage, data));
	// otherwise pongs are sent automatically.
	OnWebSocketPing func(c *Connection, data []byte)

	// OnWebSocketPong runs for each pong.
	OnWebSocketPong func(c *Connection, data []byte)

	// OnWebSocketClose runs when the peer sends a close frame, with its code
	// (1005 when it carried none) and reason. The closing handshake is
	// answered afterwards, echoing the code, and OnClose follows.
	OnWebSocketClose func(c *Connection, code int, reason string)

	// goroutines forces the goroutine-per-connection engine (tests).
	goroutines bool

	mu       sync.Mutex
	state    workerState
	done     chan struct{}
	r        *reactor
	ln       *engine.Listener // nil after Unlisten
	unln     *engine.Listener // what Unlisten closed, for Listen to bind again
	unAddr   string           // where it was bound (the port picked for port 0)
	relisten bool             // a Listen after Unlisten is binding
	ep       *endpoint
	stats    stats
	started  time.Time
}

type workerState uint8

const (
	stateIdle workerState = iota
	stateStarting
	stateRunning
	stateStopping
	stateStopped
)

// NewWorker returns a worker listening on uri once started, with Count 1.
// RunAll starts every worker made with NewWorker.
func NewWorker(uri string) *Worker {
	w := &Worker{URI: uri, Count: 1}
	declare(w)
	return w
}

// endpoint is the private, resolved copy of what a connection needs from
// its worker (or AsyncConnection): callbacks, limits, the protocol (whose
// codecs are, for WebSocket and HTTP, their sessions too) and counters.
type endpoint struct {
	r          *reactor
	worker     *Worker
	proto      protocol.Protocol
	protoName  string
	transport  string
	maxSend    int
	maxPackage int
	idle       time.Duration
	datagram   bool // udp: a connection per datagram, no OnConnect or OnClose
	log        *slog.Logger
	stats      *stats
	afterClose func(*Connection) // after OnClose (AsyncConnection)

	onConnect     func(*Connection)
	onMessage     func(*Connection, []byte)
	onClose       func(*Connection)
	onError       func(*Connection, error)
	onBufferFull  func(*Connection)
	onBufferDrain func(*Connection)
}

// newEndpoint is what the connections of a Worker or of an AsyncConnection
// share, built the same way for both: the codec the URI names, the limits
// with their process-wide defaults, a logger and the counters. The caller
// adds its callbacks, and the protocol of websocket and http (which carry
// callbacks of their own).
func newEndpoint(u endpointURI, maxSend, maxPackage int, log *slog.Logger, stats *stats) *endpoint {
	codec, _ := protocol.Lookup(u.protocol) // parseURI made sure it exists
	return &endpoint{
		proto:      codec,
		protoName:  u.protocol,
		transport:  u.transport,
		maxSend:    cmpOr(maxSend, DefaultMaxSendBufferSize),
		maxPackage: cmpOr(maxPackage, DefaultMaxPackageSize),
		datagram:   u.network == "udp",
		log:        cmp.Or(log, slog.Default()),
		stats:      stats,
	}
}

// Listen starts the worker without blocking: it binds the address, runs
// OnWorkerStart for every instance and starts accepting. It is how a worker
// is started at run time, for example from another worker's OnWorkerStart.
// After Unlisten, Listen binds the same address again (OnWorkerStart does
// not run again).
func (w *Worker) Listen() error {
	w.mu.Lock()
	switch w.state {
	case stateIdle:
	case stateStopped:
		w.mu.Unlock()
		return ErrWorkerClosed
	case stateRunning:
		if w.ln == nil && !w.relisten {
			return w.listenAgainLocked()
		}
		fallthrough
	default:
		w.mu.Unlock()
		return ErrWorkerStarted
	}
	w.state = stateStarting
	if w.done == nil {
		w.done = make(chan struct{})
	}
	w.mu.Unlock()

	err := w.start()

	w.mu.Lock()
	if err != nil {
		w.state = stateIdle
	} else {
		w.state = stateRunning
		w.started = time.Now()
	}
	w.mu.Unlock()
	if err == nil {
		setRunning(w, true)
	}
	return err
}

// listenAgainLocked binds the address that Unlisten let go of; it is
// called with w.mu held and releases it.
func (w *Worker) listenAgainLocked() error {
	w.relisten = true
	old, addr, r := w.unln, w.unAddr, w.r
	w.mu.Unlock()
	ln := &engine.Listener{Network: old.Network, Address: addr, ReusePort: old.ReusePort, TLS: old.TLS, Backlog: old.Backlog}
	err := r.eng.Listen(ln, w.accept)
	w.mu.Lock()
	defer w.mu.Unlock()
	w.relisten = false
	switch {
	case err != nil:
		return err
	case w.state != stateRunning: // stopped meanwhile
		ln.Close()
		return ErrWorkerClosed
	}
	w.ln, w.unln = ln, nil
	return nil
}

// Unlisten stops accepting and closes the listening socket, so that another
// process can bind the address; the connections already accepted go on
// being served. Listen binds again. Workerman's unlisten().
func (w *Worker) Unlisten() {
	w.mu.Lock()
	ln := w.ln
	if w.state != stateRunning || ln == nil {
		w.mu.Unlock()
		return
	}
	w.ln, w.unln, w.unAddr = nil, ln, ln.Address
	if a := ln.Addr(); a != nil && ln.Network != "unix" {
		w.unAddr = a.String() // the port picked for port 0
	}
	w.mu.Unlock()
	ln.Close()
}

func (w *Worker) start() error {
	la, err := parseURI(w.URI, sideListen, w.Transport, w.Protocol)
	if err != nil {
		return err
	}
	var tlsConfig *tls.Config
	if la.transport == "ssl" {
		if w.TLSConfig == nil {
			return errors.New("workerman: transport ssl needs TLSConfig")
		}
		tlsConfig = w.TLSConfig
	}
	ep := newEndpoint(la, w.MaxSendBufferSize, w.MaxPackageSize, w.Logger, &w.stats)
	ep.worker = w
	ep.idle = w.IdleTimeout
	ep.onConnect, ep.onMessage, ep.onClose, ep.onError = w.OnConnect, w.OnMessage, w.OnClose, w.OnError
	ep.onBufferFull, ep.onBufferDrain = w.OnBufferFull, w.OnBufferDrain
	switch la.protocol {
	case "websocket":
		ep.proto = serverWebSocket(w)
	case "http":
		ep.proto = serverHTTP(w)
	}
	count := max(w.Count, 1)
	r, err := newReactor(count, w.PoolSize, tickFor(ep), ep.log, w.goroutines)
	if err != nil {
		return err
	}
	ep.r = r
	ln := &engine.Listener{Network: la.network, Address: la.address, ReusePort: w.ReusePort, TLS: tlsConfig, Paused: true}
	if err := r.eng.Listen(ln, w.accept); err != nil {
		r.stop(context.Background())
		return err
	}
	w.r, w.ln, w.ep = r, ln, ep
	if err := w.eachInstance("OnWorkerStart", w.OnWorkerStart); err != nil {
		ln.Close()
		r.stop(context.Background())
		return err
	}
	ln.Resume()
	return nil
}

// eachInstance runs fn for every instance concurrently and waits.
func (w *Worker) eachInstance(name string, fn func(*Worker, int)) error {
	if fn == nil {
		return nil
	}
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	for i := range w.r.insts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() {
				if v := recover(); v != nil {
					mu.Lock()
					errs = append(errs, &PanicError{Callback: name, Value: v})
					mu.Unlock()
				}
			}()
			fn(w, i)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// accept runs on the loop that will hold the new connection.
func (w *Worker) accept(tc engine.Conn, inst int) engine.Handler {
	r := w.r
	if !r.admit() {
		return nil
	}
	c := newConnection(w.ep, tc, r.insts[inst])
	c.accepted()
	c.inst.add(c)
	if w.ep.onConnect != nil && !w.ep.datagram {
		c.enqueue(newJob(jobConnect))
	}
	return c.handler()
}

func cmpOr(v, def int) int {
	if v > 0 {
		return v
	}
	return def
}

// tickFor picks how often timeouts are checked: a quarter of the shortest
// timeout, between 5 ms and 1 s; 0 when nothing needs checking.
func tickFor(ep *endpoint) time.Duration {
	shortest := ep.idle
	var d time.Duration
	if p, ok := ep.proto.(proto.Periodic); ok {
		d = p.Period()
	}
	if d > 0 && (shortest == 0 || d < shortest) {
		shortest = d
	}
	if shortest <= 0 {
		return 0
	}
	return min(max(shortest/4, 5*time.Millisecond), time.Second)
}

// Run starts the worker and blocks until ctx is done, then stops it
// gracefully within StopTimeout. It returns nil after a clean stop (also one
// asked for by Shutdown, Close or StopAll).
func (w *Worker) Run(ctx context.Context) error {
	if err := w.Listen(); err != nil {
		return err
	}
	select {
	case <-ctx.Done():
	case <-w.done:
		return nil
	}
	sctx, cancel := context.WithTimeout(context.Background(), w.stopTimeout())
	defer cancel()
	return w.Shutdown(sctx)
}

func (w *Worker) stopTimeout() time.Duration {
	if w.StopTimeout > 0 {
		return w.StopTimeout
	}
	return 2 * time.Second
}

// Shutdown stops the worker gracefully: it stops accepting, closes every
// connection (flushing what is queued, as Workerman's stop does; a
// WebSocket gets a close frame with 1001), waits for their OnClose, then
// for the peers to close their side (the end of the closing handshake:
// a connection's socket lingers after its OnClose, at most 2 s), runs
// OnWorkerStop and releases the loops and the pool. When ctx ends first,
// the remaining connections are destroyed, and ctx's error is returned if
// an OnClose was still to come. Calling it on a stopped worker returns nil.
func (w *Worker) Shutdown(ctx context.Context) error {
	return w.stop(ctx, true)
}

// Close stops the worker at once: connections are destroyed, not flushed.
// It waits up to StopTimeout for their OnClose callbacks.
func (w *Worker) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), w.stopTimeout())
	defer cancel()
	return w.stop(ctx, false)
}

func (w *Worker) stop(ctx context.Context, graceful bool) error {
	w.mu.Lock()
	switch w.state {
	case stateIdle:
		w.state = stateStopped
		w.mu.Unlock()
		return nil
	case stateRunning:
	default:
		done := w.done
		w.mu.Unlock()
		if done != nil {
			select {
			case <-done:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		return nil
	}
	w.state = stateStopping
	r, ln := w.r, w.ln
	w.mu.Unlock()

	if ln != nil {
		ln.Close()
	}
	r.stopAdmitting()
	r.closeAll(graceful)
	var err error
	select {
	case <-r.drained():
	case <-ctx.Done():
		err = ctx.Err()
		r.closeAll(false)
		select {
		case <-r.drained():
		case <-time.After(time.Second):
			// A callback is blocked: its connection's OnClose cannot run.
			// Stop anyway rather than hang (Workerman's "stop fail").
			err = fmt.Errorf("workerman: %s: callbacks still blocked after stop: %w", w.name(), err)
		}
	}
	if graceful && err == nil {
		r.waitLingering(ctx)
	}
	if e := w.eachInstance("OnWorkerStop", w.OnWorkerStop); e != nil && err == nil {
		err = e
	}
	if e := r.stop(ctx); e != nil && err == nil {
		err = fmt.Errorf("workerman: %s: callback goroutines still running: %w", w.name(), e)
	}
	w.mu.Lock()
	w.state = stateStopped
	close(w.done)
	w.mu.Unlock()
	setRunning(w, false)
	return err
}

func (w *Worker) name() string {
	if w.Name != "" {
		return w.Name
	}
	return "none"
}

// Addr is the address the worker listens on (with the real port when the
// URI asked for port 0), or nil before Listen.
func (w *Worker) Addr() net.Addr {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.ln == nil {
		return nil
	}
	return w.ln.Addr()
}

// Connections returns the worker's open connections (Workerman's
// $worker->connections), a snapshot safe to use from any goroutine.
func (w *Worker) Connections() []*Connection {
	r := w.reactor()
	if r == nil {
		return nil
	}
	return r.connections()
}

// ConnectionCount is the number of open connections.
func (w *Worker) ConnectionCount() int {
	r := w.reactor()
	if r == nil {
		return 0
	}
	return r.count()
}

// PauseAccept stops accepting new connections; ResumeAccept starts again.
func (w *Worker) PauseAccept() {
	if ln := w.listener(); ln != nil {
		ln.Pause()
	}
}

// ResumeAccept starts accepting again after PauseAccept.
func (w *Worker) ResumeAccept() {
	if ln := w.listener(); ln != nil {
		ln.Resume()
	}
}

// drain stops accepting and returns a channel closed once the connections
// already accepted have all closed (Workerman's stop -g).
func (w *Worker) drain() <-chan struct{} {
	w.Unlisten()
	r := w.reactor()
	if r == nil {
		ch := make(chan struct{})
		close(ch)
		return ch
	}
	r.stopAdmitting()
	return r.drained()
}

func (w *Worker) startTime() time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.started
}

func (w *Worker) reactor() *reactor {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.r
}

func (w *Worker) listener() *engine.Listener {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.state != stateRunning {
		return nil
	}
	return w.ln
}

// Done is closed when the worker has stopped.
func (w *Worker) Done() <-chan struct{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.done == nil {
		w.done = make(chan struct{})
	}
	return w.done
}
