package workerman

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"
	"runtime"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/workerman-go/workerman/internal/engine"
	"github.com/workerman-go/workerman/internal/websocket"
	"github.com/workerman-go/workerman/protocol"
)

// WebSocketResponse is the server's answer to an AsyncConnection's
// WebSocket handshake.
type WebSocketResponse = protocol.WebSocketResponse

// WebSocketClientOptions configures the WebSocket side of an
// AsyncConnection (ws:// and wss://). The zero value works.
type WebSocketClientOptions struct {
	// Header holds extra handshake request headers (Authorization, Cookie).
	Header http.Header
	// Origin is sent as the Origin header when set.
	Origin string
	// Protocols are offered as subprotocols, in preference order.
	Protocols []string
	// NoCompression stops offering permessage-deflate.
	NoCompression bool
	// BinaryType makes Send send binary messages (Workerman's websocketType).
	BinaryType bool
	// HandshakeTimeout bounds the wait for the server's 101. Default 10 s.
	HandshakeTimeout time.Duration
	// PingInterval sends a ping (or PingData) every interval; with
	// PingNotResponseLimit the connection is closed after that many silent
	// intervals (Workerman's websocketPingInterval).
	PingInterval         time.Duration
	PingNotResponseLimit int
	PingData             []byte
}

// AsyncConnection is an outgoing connection with the same events as a
// server connection (Workerman's AsyncTcpConnection): how servers talk to
// other servers, and how to load-test a push server.
//
//	c := workerman.NewAsyncConnection("ws://127.0.0.1:8000/chat")
//	c.OnConnect = func(c *workerman.AsyncConnection) { c.SendString("hello") }
//	c.OnMessage = func(c *workerman.AsyncConnection, data []byte) { ... }
//	c.OnClose = func(c *workerman.AsyncConnection) { c.Reconnect(time.Second) }
//	c.Connect()
//
// Its settings and callbacks are the fields of its AsyncOptions, embedded:
// c.OnMessage = f sets them. Set them before Connect. Many connections with
// the same settings share one AsyncOptions (NewAsyncConnectionWith), and
// with it the parsed address, TLS configuration and WebSocket settings
// built at the first Connect: an idle ws:// client then costs about 0.8 KB
// of resident memory (bench/cmd/clientidle, 10,000 clients).
//
// Callbacks follow the rules of server connections: for one connection
// they run one at a time and in order on a pool goroutine, never on an
// event loop, and may block. Methods are safe from any goroutine. On Linux
// an idle AsyncConnection holds no goroutine: one process holds tens of
// thousands.
type AsyncConnection struct {
	*AsyncOptions

	// ext is what the Connection of every attempt starts with as its
	// connExt: the shared callbacks find the AsyncConnection through it
	// (asyncOf). It never changes (a Connection's setters copy it), so
	// that an attempt allocates none.
	ext connExt

	uri string
	id  uint64

	mu     sync.Mutex
	state  asyncState
	wsType protocol.MessageType // SetWebSocketType's; 0: the options' BinaryType
	refs   int32                // client reactor references held
	cur    *Connection
	tmpl   *asyncTemplate // shared by the connections of one AsyncOptions and URI
	timer  *time.Timer
	more   *asyncMore // nil until a value is set or a message queued
}

// asyncMore is what few AsyncConnections need, so that an idle one stays
// small.
type asyncMore struct {
	pending []protocol.Message // sent while no connection is up
	queued  int32              // bytes in pending (at most MaxSendBufferSize)
	value   any
}

// moreLocked returns a.more, made if needed (the caller holds mu).
func (a *AsyncConnection) moreLocked() *asyncMore {
	if a.more == nil {
		a.more = new(asyncMore)
	}
	return a.more
}

// dropPendingLocked forgets the queued messages (the caller holds mu).
func (a *AsyncConnection) dropPendingLocked() {
	if m := a.more; m != nil {
		m.pending, m.queued = nil, 0
	}
}

// AsyncOptions are the settings and callbacks of AsyncConnections. One
// value may serve many connections (NewAsyncConnectionWith): what it
// builds at a connection's first Connect for a URI (the parsed address,
// the TLS configuration, the WebSocket handshake's settings, the callbacks'
// wiring) is built once and shared by the others, so that many clients of
// one server cost little each. Set the fields before the first Connect of
// any of its connections; setting a field of shared options (also through
// one of the connections: c.OnMessage = f) sets it for all of them. Clone
// gives a connection options of its own.
//
// Callbacks receive the connection they are for.
type AsyncOptions struct {
	// OnConnect runs when the TCP (or TLS) connection is up; for ws:// the
	// handshake follows, and what is sent before it completes is delivered
	// right after it.
	OnConnect func(c *AsyncConnection)
	// OnMessage runs for every message; data is valid until it returns.
	OnMessage func(c *AsyncConnection, data []byte)
	// OnClose runs once per connection attempt, also after a failed
	// connect; calling c.Reconnect here retries, as in Workerman.
	OnClose func(c *AsyncConnection)
	// OnError reports failures: ErrConnectFailed (wrapping the cause, such
	// as a refused connection or os.ErrDeadlineExceeded) before OnClose,
	// ErrSendBufferFull, protocol errors.
	OnError       func(c *AsyncConnection, err error)
	OnBufferFull  func(c *AsyncConnection)
	OnBufferDrain func(c *AsyncConnection)

	// OnWebSocketConnect runs after the server accepted the handshake.
	OnWebSocketConnect func(c *AsyncConnection, r *WebSocketResponse)
	OnWebSocketPing    func(c *AsyncConnection, data []byte)
	OnWebSocketPong    func(c *AsyncConnection, data []byte)
	OnWebSocketClose   func(c *AsyncConnection, code int, reason string)

	// ConnectTimeout bounds each connect attempt (Workerman has none).
	// Default 10 s.
	ConnectTimeout time.Duration
	// Transport "ssl" connects with TLS (implied by wss://).
	Transport string
	// Protocol overrides the codec named by the scheme (Workerman's
	// $connection->protocol), e.g. "text" over unix://.
	Protocol string
	// TLSConfig is used for TLS; nil means a default configuration that
	// verifies the server against the host name.
	TLSConfig         *tls.Config
	MaxSendBufferSize int
	MaxPackageSize    int
	WebSocket         WebSocketClientOptions
	Logger            *slog.Logger

	templates map[string]*asyncTemplate // by URI; guarded by asyncTemplates
}

// Clone returns a copy of o that shares nothing built from it: a
// connection given the copy (c.AsyncOptions = o.Clone()) may then change
// its settings alone, from its next Connect or Reconnect on. The copy is shallow: WebSocket.Header, Protocols,
// PingData and TLSConfig are the same values.
func (o *AsyncOptions) Clone() *AsyncOptions {
	asyncTemplates.Lock()
	c := *o
	asyncTemplates.Unlock()
	c.templates = nil
	return &c
}

// asyncTemplate is what the connections of one AsyncOptions to one URI
// share: the dial target and an endpoint (codec, limits, callbacks that
// find their AsyncConnection through the connection's connExt). It does
// not change once published: a connection on a later client reactor (after
// the last one stopped) gets a copy for it (on).
type asyncTemplate struct {
	opts   *AsyncOptions // what it was built from
	target dialTarget
	ep     endpoint
}

// on returns the template for reactor r: t itself, or the options' current
// one for the URI if it is on r, or a copy on r that becomes the current one.
func (t *asyncTemplate) on(r *reactor, o *AsyncOptions, uri string) *asyncTemplate {
	if t.ep.r == r {
		return t
	}
	asyncTemplates.Lock()
	defer asyncTemplates.Unlock()
	if cur := o.templates[uri]; cur != nil && cur.ep.r == r {
		return cur
	}
	n := &asyncTemplate{opts: t.opts, target: t.target, ep: t.ep}
	n.ep.r = r
	if o.templates == nil {
		o.templates = make(map[string]*asyncTemplate)
	}
	o.templates[uri] = n
	return n
}

// asyncOf is the AsyncConnection whose attempt c is.
func asyncOf(c *Connection) *AsyncConnection { return c.ext.Load().async }

var asyncTemplates sync.Mutex

type asyncState uint8

const (
	asyncIdle       asyncState = iota // never connected
	asyncConnecting                   // an attempt is under way
	asyncOpen                         // connected
	asyncWaiting                      // Reconnect scheduled
	asyncEnded                        // the last attempt ended
	asyncClosed                       // Close or Destroy was called
)

// dialTarget is what a client connects to: the parsed URI, its TLS
// configuration (transport ssl) and whether it speaks WebSocket.
type dialTarget struct {
	endpointURI
	tls *tls.Config
	ws  bool
}

// NewAsyncConnection returns a connection to uri, not yet connected: one of
// tcp://, text://, frame://, ws://, wss://, ssl://, unix:///path, or a
// scheme registered with protocol.Register. Call Connect.
func NewAsyncConnection(uri string) *AsyncConnection {
	return NewAsyncConnectionWith(uri, nil)
}

// NewAsyncConnectionWith is NewAsyncConnection with settings and callbacks
// shared with other connections (nil: options of its own).
//
//	opts := &workerman.AsyncOptions{OnMessage: onMessage, OnClose: onClose}
//	for i := range 10000 {
//		workerman.NewAsyncConnectionWith("ws://127.0.0.1:8000/", opts).Connect()
//	}
func NewAsyncConnectionWith(uri string, o *AsyncOptions) *AsyncConnection {
	if o == nil {
		o = new(AsyncOptions)
	}
	a := &AsyncConnection{AsyncOptions: o, uri: uri, id: connectionIDs.Add(1)}
	a.ext.async = a
	return a
}

// ErrAlreadyConnected is returned by Connect while connected or connecting.
var ErrAlreadyConnected = errors.New("workerman: already connected")

func (a *AsyncConnection) parse() (dialTarget, error) {
	e, err := parseURI(a.uri, sideDial, a.Transport, a.Protocol)
	if err != nil {
		return dialTarget{}, err
	}
	t := dialTarget{endpointURI: e, ws: e.protocol == "ws"}
	if e.transport == "ssl" {
		t.tls = a.tlsConfig(e.hostname)
	}
	return t, nil
}

func (a *AsyncConnection) tlsConfig(host string) *tls.Config {
	if a.TLSConfig != nil {
		c := a.TLSConfig.Clone()
		if c.ServerName == "" {
			c.ServerName = host
		}
		return c
	}
	return &tls.Config{ServerName: host}
}

// Connect starts connecting and returns at once; OnConnect or OnError and
// OnClose tell how it went. It fails only for a bad address or when already
// connected.
func (a *AsyncConnection) Connect() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	switch a.state {
	case asyncConnecting, asyncOpen:
		return ErrAlreadyConnected
	case asyncWaiting:
		a.timer.Stop()
		a.timer = nil
		a.releaseLocked()
	}
	if a.tmpl == nil || a.tmpl.opts != a.AsyncOptions {
		// First Connect, or options replaced since (c.AsyncOptions = o.Clone()).
		t, err := a.template()
		if err != nil {
			return err
		}
		a.tmpl = t
	}
	if err := a.acquireLocked(); err != nil {
		return err
	}
	a.startLocked()
	return nil
}

// startLocked begins one attempt; the caller holds a reactor reference,
// which the attempt owns until its OnClose ran.
func (a *AsyncConnection) startLocked() {
	waiting := a.state == asyncWaiting
	ep := &a.tmpl.ep
	r := ep.r
	t := a.tmpl.target
	timeout := a.ConnectTimeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	dc := r.eng.Dial(engine.DialRequest{Network: t.network, Address: t.address, Timeout: timeout, TLS: t.tls})
	c := newConnection(ep, dc, r.insts[dc.Instance()])
	c.ext.Store(&a.ext) // the shared callbacks find a through it
	r.admit()
	a.cur = c
	a.state = asyncConnecting
	c.accepted() // a WebSocket client sends its handshake
	if t.ws {
		// The codec was configured at the first attempt; SetWebSocketType
		// may have changed the type since.
		c.SetWebSocketType(a.webSocketType())
	}
	if m := a.more; m != nil {
		for _, msg := range m.pending {
			c.send(msg, false)
		}
	}
	a.dropPendingLocked()
	c.inst.add(c)
	if waiting {
		a.setWaiting(false) // after add: StopAll finds it in one place or the other
	}
	dc.Start(c.handler(), func(err error) { a.dialed(c, err) })
}

// dialed runs on the engine when an attempt connected or failed.
func (a *AsyncConnection) dialed(c *Connection, err error) {
	if err == nil {
		a.mu.Lock()
		if a.cur == c && a.state == asyncConnecting {
			a.state = asyncOpen
		}
		a.mu.Unlock()
		if a.OnConnect != nil {
			c.enqueue(newJob(jobConnect))
		}
		return
	}
	if !c.closing.Load() {
		c.post(jobError, fmt.Errorf("%w: %w", ErrConnectFailed, err))
	}
	j := newJob(jobClose)
	c.enqueue(j)
}

// attemptEnded runs after an attempt's OnClose returned.
func (a *AsyncConnection) attemptEnded(c *Connection) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.cur == c {
		a.cur = nil
		if a.state == asyncConnecting || a.state == asyncOpen {
			a.state = asyncEnded
		}
	}
	a.releaseLocked()
}

func (a *AsyncConnection) acquireLocked() error {
	if a.tmpl.opts != a.AsyncOptions {
		// The options were replaced since the last attempt: build anew.
		t, err := a.template()
		if err != nil {
			return err
		}
		a.tmpl = t
	}
	r, err := acquireClientReactor()
	if err != nil {
		return err
	}
	a.tmpl = a.tmpl.on(r, a.AsyncOptions, a.uri)
	a.refs++
	return nil
}

func (a *AsyncConnection) releaseLocked() {
	if a.refs > 0 {
		a.refs--
		releaseClientReactor()
	}
}

// Reconnect closes the current connection, if any, and connects again after
// the delay (Workerman's reconnect). Messages sent meanwhile are queued and
// delivered once connected.
func (a *AsyncConnection) Reconnect(after time.Duration) error {
	a.mu.Lock()
	if a.tmpl == nil {
		a.mu.Unlock()
		return a.Connect()
	}
	if a.timer != nil {
		a.timer.Stop()
	} else if err := a.acquireLocked(); err != nil {
		a.mu.Unlock()
		return err
	}
	cur := a.cur
	a.state = asyncWaiting
	a.setWaiting(true)
	a.timer = time.AfterFunc(after, a.reconnectNow)
	a.mu.Unlock()
	if cur != nil {
		cur.Close()
	}
	return nil
}

func (a *AsyncConnection) reconnectNow() {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.state != asyncWaiting || a.timer == nil {
		return
	}
	a.timer = nil
	a.startLocked() // uses the reference Reconnect took
}

// CancelReconnect stops a reconnect that was scheduled.
func (a *AsyncConnection) CancelReconnect() {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.state == asyncWaiting {
		a.timer.Stop()
		a.timer = nil
		a.state = asyncEnded
		a.dropPendingLocked()
		a.releaseLocked()
		a.setWaiting(false)
	}
}

// current returns the connection of the current attempt, if any.
func (a *AsyncConnection) current() *Connection {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.cur
}

// ---- sending ----

// Send sends data, encoded with the connection's codec. While no
// connection is up (before Connect completed, while a Reconnect waits) it
// is queued, up to MaxSendBufferSize bytes, and sent in order once
// connected. Errors as Connection.Send.
func (a *AsyncConnection) Send(data []byte) error {
	return a.send(protocol.Message{Data: data}, false)
}

// SendString is Send for a string.
func (a *AsyncConnection) SendString(s string) error { return a.Send([]byte(s)) }

// SendMessage sends a message of the given type (WebSocket text, binary,
// ping...).
func (a *AsyncConnection) SendMessage(typ protocol.MessageType, data []byte) error {
	return a.send(protocol.Message{Type: typ, Data: data}, false)
}

// SendRaw sends bytes as they are, bypassing the codec.
func (a *AsyncConnection) SendRaw(data []byte) error {
	return a.send(protocol.Message{Data: data}, true)
}

func (a *AsyncConnection) send(m protocol.Message, raw bool) error {
	a.mu.Lock()
	if c := a.cur; c != nil {
		a.mu.Unlock()
		return c.send(m, raw)
	}
	defer a.mu.Unlock()
	switch a.state {
	case asyncClosed, asyncEnded:
		return ErrClosed
	}
	limit := cmpOr(a.MaxSendBufferSize, DefaultMaxSendBufferSize)
	if a.more != nil && int(a.more.queued) >= limit {
		if f := a.OnError; f != nil {
			go f(a, ErrSendBufferFull)
		}
		return ErrSendBufferFull
	}
	if raw {
		return errors.New("workerman: SendRaw needs a connection")
	}
	if a.refusedText(m) {
		if f := a.OnError; f != nil {
			go f(a, ErrInvalidUTF8)
		}
		return ErrInvalidUTF8
	}
	q := a.moreLocked()
	q.pending = append(q.pending, protocol.Message{Type: m.Type, Data: bytes.Clone(m.Data)})
	q.queued = int32(min(int64(q.queued)+int64(len(m.Data)), math.MaxInt32))
	return nil
}

// refusedText tells whether the WebSocket codec will refuse m (text that
// is not UTF-8), for a message queued while there is no codec to ask, so
// that Send fails at once instead of when the connection is up.
func (a *AsyncConnection) refusedText(m protocol.Message) bool {
	var t dialTarget
	if a.tmpl != nil {
		t = a.tmpl.target
	} else {
		t, _ = a.parse()
	}
	text := m.Type == protocol.TextMessage || m.Type == protocol.DataMessage && a.webSocketType() == protocol.TextMessage
	return t.ws && text && !utf8.Valid(m.Data)
}

// webSocketType is the frame type of Send on ws:// (the caller holds mu).
func (a *AsyncConnection) webSocketType() protocol.MessageType {
	switch {
	case a.wsType != 0:
		return a.wsType
	case a.WebSocket.BinaryType:
		return protocol.BinaryMessage
	}
	return protocol.TextMessage
}

// Close sends data (if given), flushes and closes; no reconnect follows
// unless OnClose asks for one.
func (a *AsyncConnection) Close(data ...[]byte) error {
	a.mu.Lock()
	c := a.stopLocked()
	a.mu.Unlock()
	if c != nil {
		return c.Close(data...)
	}
	return nil
}

// Destroy closes at once, dropping what is queued.
func (a *AsyncConnection) Destroy() {
	a.mu.Lock()
	c := a.stopLocked()
	a.mu.Unlock()
	if c != nil {
		c.Destroy()
	}
}

func (a *AsyncConnection) stopLocked() *Connection {
	if a.timer != nil {
		a.timer.Stop()
		a.timer = nil
		a.releaseLocked()
	}
	if a.state == asyncWaiting {
		a.setWaiting(false)
	}
	a.state = asyncClosed
	a.dropPendingLocked()
	return a.cur
}

// CloseWebSocket closes a ws:// connection with a close code and reason.
func (a *AsyncConnection) CloseWebSocket(code int, reason string) error {
	a.mu.Lock()
	c := a.stopLocked()
	a.mu.Unlock()
	if c != nil {
		return c.CloseWebSocket(code, reason)
	}
	return nil
}

// ---- the rest of the Connection API ----

// ID is unique in the process and stays the same across reconnects.
func (a *AsyncConnection) ID() uint64 { return a.id }

// Connection is the connection of the current attempt (nil between
// attempts). It changes on reconnect.
func (a *AsyncConnection) Connection() *Connection { return a.current() }

// Connected reports whether a connection is up (for ws://, the handshake
// may still be under way).
func (a *AsyncConnection) Connected() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.state == asyncOpen && a.cur != nil && !a.cur.closing.Load()
}

// MessageType is the type of the message being delivered to OnMessage.
func (a *AsyncConnection) MessageType() protocol.MessageType {
	if c := a.current(); c != nil {
		return c.MessageType()
	}
	return protocol.DataMessage
}

// PauseRecv stops reading; ResumeRecv starts again.
func (a *AsyncConnection) PauseRecv() {
	if c := a.current(); c != nil {
		c.PauseRecv()
	}
}

// ResumeRecv starts reading again after PauseRecv.
func (a *AsyncConnection) ResumeRecv() {
	if c := a.current(); c != nil {
		c.ResumeRecv()
	}
}

// SetWebSocketType sets the type Send uses on this ws:// connection, also
// after a reconnect (its AsyncOptions are not changed).
func (a *AsyncConnection) SetWebSocketType(t protocol.MessageType) {
	a.mu.Lock()
	a.wsType = protocol.TextMessage
	if t == protocol.BinaryMessage {
		a.wsType = t
	}
	c := a.cur
	a.mu.Unlock()
	if c != nil {
		c.SetWebSocketType(t)
	}
}

// RemoteAddr is the server's address (nil while not connected).
func (a *AsyncConnection) RemoteAddr() net.Addr {
	if c := a.current(); c != nil {
		return c.RemoteAddr()
	}
	return nil
}

// LocalAddr is the local address (nil while not connected).
func (a *AsyncConnection) LocalAddr() net.Addr {
	if c := a.current(); c != nil {
		return c.LocalAddr()
	}
	return nil
}

// Value returns what SetValue stored; it survives reconnects.
func (a *AsyncConnection) Value() any {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.more == nil {
		return nil
	}
	return a.more.value
}

// SetValue attaches v to the connection.
func (a *AsyncConnection) SetValue(v any) {
	a.mu.Lock()
	if v != nil || a.more != nil {
		a.moreLocked().value = v
	}
	a.mu.Unlock()
}

// template returns what the connections of a.AsyncOptions to a.uri share,
// built by the first of them to connect.
func (a *AsyncConnection) template() (*asyncTemplate, error) {
	asyncTemplates.Lock()
	defer asyncTemplates.Unlock()
	if t := a.templates[a.uri]; t != nil {
		return t, nil
	}
	target, err := a.parse()
	if err != nil {
		return nil, err
	}
	t := &asyncTemplate{opts: a.AsyncOptions, target: target}
	a.buildEndpoint(&t.ep, target)
	if a.templates == nil {
		a.templates = make(map[string]*asyncTemplate)
	}
	a.templates[a.uri] = t
	return t, nil
}

// buildEndpoint makes the codec and the callbacks' wiring of a template:
// the callbacks are the same functions for every connection (they find it
// through the endpoint's copy), set where the options have one, as for a
// Worker.
func (a *AsyncConnection) buildEndpoint(ep *endpoint, t dialTarget) {
	*ep = *newEndpoint(t.endpointURI, a.MaxSendBufferSize, a.MaxPackageSize, a.Logger, &clientStats)
	if a.OnConnect != nil {
		ep.onConnect = func(c *Connection) { a := asyncOf(c); a.OnConnect(a) }
	}
	if a.OnMessage != nil {
		ep.onMessage = func(c *Connection, d []byte) { a := asyncOf(c); a.OnMessage(a, d) }
	}
	ep.onClose = func(c *Connection) {
		if a := asyncOf(c); a.OnClose != nil {
			a.OnClose(a)
		}
	}
	ep.afterClose = func(c *Connection) { asyncOf(c).attemptEnded(c) }
	if a.OnError != nil {
		ep.onError = func(c *Connection, err error) { a := asyncOf(c); a.OnError(a, err) }
	}
	if a.OnBufferFull != nil {
		ep.onBufferFull = func(c *Connection) { a := asyncOf(c); a.OnBufferFull(a) }
	}
	if a.OnBufferDrain != nil {
		ep.onBufferDrain = func(c *Connection) { a := asyncOf(c); a.OnBufferDrain(a) }
	}
	if !t.ws {
		return
	}
	o := a.WebSocket
	opt := WebSocketOptions{NoCompression: o.NoCompression, HandshakeTimeout: o.HandshakeTimeout, BinaryType: o.BinaryType,
		PingInterval: o.PingInterval, PingNotResponseLimit: o.PingNotResponseLimit, PingData: o.PingData}
	var cb wsCallbacks
	if a.OnWebSocketConnect != nil {
		cb.connected = func(c *Connection, v any) {
			r, _ := v.(*WebSocketResponse)
			a := asyncOf(c)
			a.OnWebSocketConnect(a, r)
		}
	}
	if a.OnWebSocketPing != nil {
		cb.ping = func(c *Connection, d []byte) { a := asyncOf(c); a.OnWebSocketPing(a, d) }
	}
	if a.OnWebSocketPong != nil {
		cb.pong = func(c *Connection, d []byte) { a := asyncOf(c); a.OnWebSocketPong(a, d) }
	}
	if a.OnWebSocketClose != nil {
		cb.close = func(c *Connection, code int, reason string) { a := asyncOf(c); a.OnWebSocketClose(a, code, reason) }
	}
	ep.proto = websocket.Client(webSocketConfig(opt, cb), websocket.ClientConfig{
		Host: t.host, Path: t.path, Header: o.Header, Origin: o.Origin, Protocols: o.Protocols,
	})
}

var clientStats stats

// ---- the shared client reactor ----

// Client connections share one reactor (loops and pool), started on first
// use and stopped shortly after the last client connection is gone, so a
// program that is done with its clients keeps no goroutines.
var clientRT struct {
	mu      sync.Mutex
	r       *reactor
	refs    int
	idle    *time.Timer
	stopped Stats // the final figures of the reactors stopped before
}

const clientTick = 25 * time.Millisecond

func acquireClientReactor() (*reactor, error) {
	clientRT.mu.Lock()
	defer clientRT.mu.Unlock()
	if clientRT.idle != nil {
		clientRT.idle.Stop()
		clientRT.idle = nil
	}
	if clientRT.r == nil {
		r, err := newReactor(max(1, numLoops()), 0, clientTick, slog.Default(), false)
		if err != nil {
			return nil, err
		}
		clientRT.r = r
	}
	clientRT.refs++
	return clientRT.r, nil
}

func releaseClientReactor() {
	clientRT.mu.Lock()
	defer clientRT.mu.Unlock()
	clientRT.refs--
	if clientRT.refs == 0 {
		clientRT.idle = time.AfterFunc(100*time.Millisecond, stopIdleClientReactor)
	}
}

func stopIdleClientReactor() {
	clientRT.mu.Lock()
	r := clientRT.r
	if clientRT.refs != 0 || r == nil {
		clientRT.mu.Unlock()
		return
	}
	r.stats(&clientRT.stopped) // no connection is left: the figures are final
	clientRT.stopped.Connections, clientRT.stopped.PoolQueued = 0, 0
	clientRT.r, clientRT.idle = nil, nil
	clientRT.mu.Unlock()
	r.stop(context.Background())
}

func numLoops() int { return runtime.GOMAXPROCS(0) }

// ---- the process-wide list, closed by StopAll ----

// stopper is a client connection that StopAll closes.
type stopper interface{ stopAll() }

// asyncs are the client connections StopAll closes that it cannot find
// among the client reactor's connections: the AsyncConnections waiting to
// reconnect (with no attempt under way) and the AsyncUDPConnections. An
// AsyncConnection with an attempt under way is found through its
// Connection (asyncOf), so that a load test's tens of thousands of
// connected clients cost no entry here.
var asyncs = struct {
	sync.Mutex
	waiting map[*AsyncConnection]struct{}
	others  map[stopper]struct{}
}{waiting: map[*AsyncConnection]struct{}{}, others: map[stopper]struct{}{}}

func (a *AsyncConnection) stopAll() { a.Close() }

// setWaiting lists a while it waits to reconnect (the caller holds a.mu).
func (a *AsyncConnection) setWaiting(on bool) {
	asyncs.Lock()
	defer asyncs.Unlock()
	if on {
		asyncs.waiting[a] = struct{}{}
	} else {
		delete(asyncs.waiting, a)
	}
}

// trackAsync lists (on) or forgets a client connection that StopAll
// closes and cannot find otherwise (AsyncUDPConnection).
func trackAsync(s stopper, on bool) {
	asyncs.Lock()
	defer asyncs.Unlock()
	if on {
		asyncs.others[s] = struct{}{}
	} else {
		delete(asyncs.others, s)
	}
}

// closeAsyncs closes every AsyncConnection and AsyncUDPConnection (StopAll).
// The waiting ones are collected before the attempts: one that starts an
// attempt meanwhile is listed with the client reactor before it leaves
// the waiting set (startLocked), so that it is found in one or the other.
func closeAsyncs() {
	asyncs.Lock()
	all := make([]stopper, 0, len(asyncs.waiting)+len(asyncs.others))
	for a := range asyncs.waiting {
		all = append(all, a)
	}
	for s := range asyncs.others {
		all = append(all, s)
	}
	asyncs.Unlock()
	clientRT.mu.Lock()
	r := clientRT.r
	clientRT.mu.Unlock()
	if r != nil {
		for _, c := range r.connections() {
			if x := c.ext.Load(); x != nil && x.async != nil {
				all = append(all, x.async)
			}
		}
	}
	for _, s := range all {
		s.stopAll()
	}
}
