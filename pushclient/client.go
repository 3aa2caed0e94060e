package pushclient

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/workerman-go/workerman"
	"github.com/workerman-go/workerman/protocol"
)

// Options configures a Client. The zero value works: no token, the
// default delays, no callbacks.
type Options struct {
	// Token is sent as the token query parameter of every connection (the
	// JWT of a server with -jwt-secret); "" sends none.
	Token string
	// TokenFunc, when set, is called before every attempt, and the token it
	// returns is used instead of Token, so that a refreshed token is used.
	// Close cancels ctx. An error fails that attempt (OnClose reports it)
	// and the next one follows the usual wait. It runs on the goroutine of
	// the attempt, never beside a callback.
	TokenFunc func(ctx context.Context) (string, error)
	// Header holds extra handshake request headers (Cookie, Origin).
	Header http.Header
	// TLSConfig is used for wss:// URLs; nil verifies the server against
	// the URL's host name.
	TLSConfig *tls.Config

	// MinReconnectDelay is the back-off base: the longest wait before the
	// first attempt after a disconnect. Default 500 ms.
	MinReconnectDelay time.Duration
	// MaxReconnectDelay caps the back-off. Default 20 s.
	MaxReconnectDelay time.Duration
	// ConnectTimeout bounds an attempt from its start to the welcome: a
	// connection without its welcome by then is given up as failed.
	// Default 10 s.
	ConnectTimeout time.Duration

	// Resume holds the positions to start from, stream by stream (as
	// Positions returned them before, when the program persists them): the
	// first connection resumes from them, and the server replays what the
	// program missed. A Position with an empty Epoch asks for every
	// message the server keeps. Nil starts with no position; the client
	// tracks the positions of what it receives either way (see "History
	// and resume" in the package documentation).
	Resume map[string]Position

	// The callbacks: see the package documentation for where they run.

	// OnOpen runs when a WebSocket is open, before its welcome.
	OnOpen func(c *Client, url string)
	// OnWelcome runs with the server's welcome: the client is reachable by
	// pushes to w.ClientID (and to w.UID, when set) from now on.
	OnWelcome func(c *Client, w Welcome)
	// OnMessage runs for every push, in order. m.Data is valid until
	// OnMessage returns: copy it to keep it.
	OnMessage func(c *Client, m Message)
	// OnResumed runs with the server's answer to a connection's resume,
	// after the replayed messages (OnMessage) and before the live ones.
	// A stream whose Recovered is false lost messages: the program
	// reloads its state for it (see Resumed.Lost). It runs again, for
	// those streams, when the backend binds the client after connect to
	// a uid or group it resumed (the server replays that stream then).
	OnResumed func(c *Client, r Resumed)
	// OnClose runs once per attempt, when it ended or failed, with where
	// and when the next attempt goes. After Close, a connection that was
	// open or opening ends with one last OnClose, Reconnect false; no
	// callback follows it.
	OnClose func(c *Client, e CloseEvent)
}

// Welcome is the server's first frame, {"type":"welcome",...}.
type Welcome struct {
	ClientID string // the connection's client ID, for the backend's API calls
	UID      string // the uid the server bound at connect (from a JWT), or ""
	URL      string // the URL connected to, without the token
}

// Message is one push.
type Message struct {
	// Data is the push's payload, valid until OnMessage returns.
	Data []byte
	// Binary is true for a binary push (the API's message_base64), false
	// for a text one (its message).
	Binary bool
	// Stream, Offset and Epoch name the push in its stream ("uid:alice",
	// "group:g" or "all"), from a server that keeps history; "", 0 and ""
	// otherwise, and for pushes to one client ID (sendToClient).
	Stream string
	Offset uint64
	Epoch  string
}

// Position is where a client is in a stream: the epoch of the stream's
// history and the offset of the last message received. It encodes as the
// resume parameter's {"epoch":…,"offset":…}.
type Position struct {
	Epoch  string `json:"epoch"`
	Offset uint64 `json:"offset"`
}

// Resumed is the server's answer to a connection's resume,
// {"type":"resumed","streams":{…}}.
type Resumed struct {
	// Streams holds every stream of the resume the client may read.
	Streams map[string]StreamResumed
	URL     string // the URL connected to, without the token
}

// StreamResumed is how one stream resumed. The client goes on from Epoch
// and Offset (its position becomes them).
type StreamResumed struct {
	// Recovered is true when every message after the position was
	// replayed; false when the server's history no longer reaches back to
	// it: messages were lost, and the program reloads its state.
	Recovered bool
	Epoch     string
	Offset    uint64
}

// Lost returns the streams that did not recover, sorted.
func (r Resumed) Lost() []string {
	var lost []string
	for s, st := range r.Streams {
		if !st.Recovered {
			lost = append(lost, s)
		}
	}
	slices.Sort(lost)
	return lost
}

// CloseEvent describes an attempt that ended: a connection that closed or
// an attempt that failed.
type CloseEvent struct {
	URL      string // the URL of the attempt, without the token
	ClientID string // the client ID its welcome gave, or "" when none came
	// Code and Reason are the close frame's (1001: the server is going
	// away; 1013: it could not queue a push for this client, which the
	// next connection's resume replays); 1006 when the connection ended
	// without one; 0 when no connection was made.
	Code   int
	Reason string
	// Err tells why the attempt failed, when it did: a refused connection
	// (workerman.ErrConnectFailed), a refused handshake
	// (*workerman.HandshakeError: Status 401 for a bad token),
	// ErrConnectTimeout, or what TokenFunc returned. Nil when the
	// connection simply closed.
	Err error
	// Reconnect tells whether another attempt follows, after Delay.
	Reconnect bool
	Delay     time.Duration
}

var (
	// ErrNotConnected is what Send returns while no connection is open.
	ErrNotConnected = errors.New("pushclient: not connected")
	// ErrConnectTimeout: no welcome within Options.ConnectTimeout.
	ErrConnectTimeout = errors.New("pushclient: no welcome in time")
)

// CloseAbnormal is the close code of a connection that ended without a
// close frame (RFC 6455's 1006).
const CloseAbnormal = 1006

// Client is a connection to a push service that reconnects on its own
// until Close. Its methods are safe from any goroutine, callbacks
// included.
type Client struct {
	urls []string
	opt  Options // with the defaults applied

	ctx      context.Context // cancelled by Close: ends a TokenFunc call
	cancel   context.CancelFunc
	done     chan struct{} // closed after the last callback returned
	welcomed chan struct{} // closed at the first welcome (Dial waits for it)

	mu           sync.Mutex
	closed       bool
	timer        *time.Timer // the next attempt, while waiting for it
	att          *attempt    // the attempt under way
	next         int         // index in urls of the next attempt
	attempts     int         // attempts since the last welcome
	hops         int         // 1001 closes in a row, each answered at once
	welcomedAt   time.Time
	everWelcomed bool
	url          string // of the attempt under way, or the last one
	clientID     string
	uid          string
	lastErr      error // of the last attempt that failed, for Dial
	positions    map[string]Position
	history      bool // the server showed it keeps history
}

// attempt is one connection attempt. Its fields are guarded by Client.mu:
// the connection's callbacks set them, one at a time, and the timeout
// reads them from its own goroutine.
type attempt struct {
	url      string
	conn     *workerman.AsyncConnection
	timeout  *time.Timer
	opened   bool // the WebSocket handshake completed
	welcomed bool // the first frame came
	code     int
	reason   string
	err      error
	// resuming: resume was sent, and the server's answer to it is due.
	resuming bool
	// awaiting: the streams resumed that no answer named yet (the backend
	// binds the client to them later: each bind answers with its own
	// resumed frame).
	awaiting map[string]bool
}

// New returns a client of the push service at urls (ws:// or wss://;
// http:// and https:// are taken as ws:// and wss://), connecting in the
// background to the first one. It fails only when urls is empty or holds a
// URL that is not one.
func New(urls []string, opt Options) (*Client, error) {
	if len(urls) == 0 {
		return nil, errors.New("pushclient: no URL to connect to")
	}
	list := make([]string, len(urls))
	for i, u := range urls {
		ws, err := wsURL(u)
		if err != nil {
			return nil, err
		}
		list[i] = ws
	}
	if opt.MinReconnectDelay <= 0 {
		opt.MinReconnectDelay = 500 * time.Millisecond
	}
	if opt.MaxReconnectDelay <= 0 {
		opt.MaxReconnectDelay = 20 * time.Second
	}
	opt.MaxReconnectDelay = max(opt.MaxReconnectDelay, opt.MinReconnectDelay)
	if opt.ConnectTimeout <= 0 {
		opt.ConnectTimeout = 10 * time.Second
	}
	opt.Header = opt.Header.Clone()
	c := &Client{urls: list, opt: opt, done: make(chan struct{}), welcomed: make(chan struct{}), positions: make(map[string]Position)}
	for s, p := range opt.Resume {
		if s != "" {
			c.positions[s] = p
		}
	}
	c.opt.Resume = nil
	c.ctx, c.cancel = context.WithCancel(context.Background())
	c.mu.Lock()
	c.timer = time.AfterFunc(0, c.connect)
	c.mu.Unlock()
	return c, nil
}

// Dial is New, then waits for the first welcome. When ctx ends first, it
// closes the client and returns ctx's error joined with why the last
// attempt failed.
func Dial(ctx context.Context, urls []string, opt Options) (*Client, error) {
	c, err := New(urls, opt)
	if err != nil {
		return nil, err
	}
	select {
	case <-c.welcomed:
		return c, nil
	case <-ctx.Done():
		c.Close()
		<-c.done
		c.mu.Lock()
		last := c.lastErr
		c.mu.Unlock()
		if last == nil {
			return nil, fmt.Errorf("pushclient: dial %s: %w", strings.Join(c.urls, ", "), ctx.Err())
		}
		return nil, fmt.Errorf("pushclient: dial %s: %w (last attempt: %w)", strings.Join(c.urls, ", "), ctx.Err(), last)
	}
}

// Close stops the client for good: it closes the connection (code 1000)
// or cancels the attempt under way, and no attempt follows. It returns at
// once, so that callbacks may call it; Done tells when the last callback
// returned. Close after the first returns nil and does nothing.
func (c *Client) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	c.cancel()
	var conn *workerman.AsyncConnection
	switch {
	case c.timer != nil:
		if c.timer.Stop() {
			// No attempt will run: nobody else is left to close done.
			c.timer = nil
			close(c.done)
		} // else connect is starting; it sees closed and closes done
	case c.att != nil:
		conn = c.att.conn // nil while TokenFunc runs: connect sees closed
	}
	c.mu.Unlock()
	if conn != nil {
		conn.CloseWebSocket(protocol.CloseNormal, "")
	}
	return nil
}

// Done is closed once the client stopped after Close: its last callback
// returned and it holds no goroutine. (The library's shared client event
// loops stop shortly after the last connection of the process is gone.)
func (c *Client) Done() <-chan struct{} { return c.done }

// ClientID is the client ID of the current connection's welcome, or ""
// while not connected.
func (c *Client) ClientID() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.clientID
}

// UID is the uid of the current connection's welcome ("" when it named
// none, or while not connected).
func (c *Client) UID() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.uid
}

// URL is the URL of the attempt under way or of the last one, without the
// token.
func (c *Client) URL() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.url
}

// Positions returns the client's position in every stream it received
// from or resumed: a copy, that a program may persist and give back as
// Options.Resume. It changes before each OnMessage of a stream's push, so
// that within OnMessage it includes that push.
func (c *Client) Positions() map[string]Position {
	c.mu.Lock()
	defer c.mu.Unlock()
	return maps.Clone(c.positions)
}

// Connected reports whether a connection is up and welcomed.
func (c *Client) Connected() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.att != nil && c.att.welcomed && !c.closed
}

// SendText sends s to the server as a text frame (a push server posts it
// to its webhook). It fails with ErrNotConnected while no connection is
// open (nothing is queued across reconnects), and net.ErrClosed after
// Close.
func (c *Client) SendText(s string) error {
	return c.send(protocol.TextMessage, []byte(s))
}

// SendBinary sends b as a binary frame, as SendText does; b may be reused
// when it returns.
func (c *Client) SendBinary(b []byte) error {
	return c.send(protocol.BinaryMessage, b)
}

func (c *Client) send(typ protocol.MessageType, data []byte) error {
	c.mu.Lock()
	var conn *workerman.AsyncConnection
	switch {
	case c.closed:
		c.mu.Unlock()
		return net.ErrClosed
	case c.att != nil && c.att.opened:
		conn = c.att.conn
	}
	c.mu.Unlock()
	if conn == nil {
		return ErrNotConnected
	}
	if err := conn.SendMessage(typ, data); err != nil {
		if errors.Is(err, workerman.ErrClosed) {
			return ErrNotConnected
		}
		return err
	}
	return nil
}

// ---- one attempt ----

// connect makes an attempt on the current URL; a timer runs it.
func (c *Client) connect() {
	c.mu.Lock()
	c.timer = nil
	if c.closed {
		c.mu.Unlock()
		close(c.done)
		return
	}
	a := &attempt{url: c.urls[c.next]}
	c.att, c.url = a, a.url
	c.mu.Unlock()

	token, err := c.token()

	c.mu.Lock()
	if c.closed {
		c.att = nil
		c.mu.Unlock()
		close(c.done)
		return
	}
	if err == nil {
		err = c.dialLocked(a, token)
	}
	if err != nil {
		a.err = err
	}
	c.mu.Unlock()
	if err != nil {
		c.ended(a) // no connection: no callback of its own will end it
	}
}

func (c *Client) token() (string, error) {
	if c.opt.TokenFunc == nil {
		return c.opt.Token, nil
	}
	t, err := c.opt.TokenFunc(c.ctx)
	if err != nil {
		return "", fmt.Errorf("pushclient: token: %w", err)
	}
	return t, nil
}

// dialLocked starts a's connection. The callbacks of one connection run
// one at a time, in order; a's OnClose starts the next attempt, so those
// of two attempts never overlap either.
func (c *Client) dialLocked(a *attempt, token string) error {
	var resume string
	if len(c.positions) > 0 {
		b, err := json.Marshal(c.positions)
		if err != nil {
			return fmt.Errorf("pushclient: resume: %w", err)
		}
		resume, a.resuming = string(b), true
		a.awaiting = make(map[string]bool, len(c.positions))
		for s := range c.positions {
			a.awaiting[s] = true
		}
	}
	conn := workerman.NewAsyncConnection(attemptURL(a.url, token, resume))
	conn.ConnectTimeout = c.opt.ConnectTimeout
	conn.TLSConfig = c.opt.TLSConfig
	conn.WebSocket.Header = c.opt.Header
	conn.WebSocket.HandshakeTimeout = c.opt.ConnectTimeout
	conn.OnWebSocketConnect = func(*workerman.AsyncConnection, *workerman.WebSocketResponse) { c.opened(a) }
	conn.OnMessage = func(ac *workerman.AsyncConnection, data []byte) {
		c.received(a, data, ac.MessageType() == protocol.BinaryMessage)
	}
	conn.OnWebSocketClose = func(_ *workerman.AsyncConnection, code int, reason string) {
		c.mu.Lock()
		if a.code == 0 {
			a.code, a.reason = code, reason
		}
		c.mu.Unlock()
	}
	conn.OnError = func(_ *workerman.AsyncConnection, err error) {
		if errors.Is(err, workerman.ErrSendBufferFull) || errors.Is(err, workerman.ErrInvalidUTF8) {
			return // a Send's failure: Send returned it, the connection goes on
		}
		if errors.Is(err, protocol.ErrHandshakeTimeout) || errors.Is(err, os.ErrDeadlineExceeded) {
			// The connect's or the handshake's own clock (both
			// ConnectTimeout) ran out before the attempt's: the same
			// failure.
			err = fmt.Errorf("%w: %s within %v (%w)", ErrConnectTimeout, a.url, c.opt.ConnectTimeout, err)
		}
		c.mu.Lock()
		if a.err == nil {
			a.err = err
		}
		c.mu.Unlock()
	}
	conn.OnClose = func(*workerman.AsyncConnection) { c.ended(a) }
	// Connect under c.mu: Close, which takes c.mu first, then finds a
	// connection that is connecting and closes it.
	if err := conn.Connect(); err != nil {
		return fmt.Errorf("pushclient: %s: %w", a.url, err)
	}
	a.conn = conn
	a.timeout = time.AfterFunc(c.opt.ConnectTimeout, func() { c.timedOut(a) })
	return nil
}

// attemptURL is base with the token and the resume JSON as its token and
// resume query parameters, when not empty, added to the query base has, as
// the JS client does.
func attemptURL(base, token, resume string) string {
	var q []string
	if token != "" {
		q = append(q, "token="+url.QueryEscape(token))
	}
	if resume != "" {
		q = append(q, "resume="+url.QueryEscape(resume))
	}
	if len(q) == 0 {
		return base
	}
	sep := "?"
	if strings.Contains(base, "?") {
		sep = "&"
	}
	return base + sep + strings.Join(q, "&")
}

func (c *Client) opened(a *attempt) {
	c.mu.Lock()
	a.opened = true
	closed := c.closed
	c.mu.Unlock()
	if f := c.opt.OnOpen; f != nil && !closed {
		f(c, a.url)
	}
}

// received handles a frame: the first is the welcome, the others pushes.
func (c *Client) received(a *attempt, data []byte, binary bool) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return // after Close, only the last OnClose
	}
	if a.welcomed {
		c.mu.Unlock()
		c.push(a, data, binary)
		return
	}
	a.welcomed = true
	a.timeout.Stop()
	w, ok := parseWelcome(data, binary)
	w.URL = a.url
	c.clientID, c.uid = w.ClientID, w.UID
	c.attempts = 0
	c.welcomedAt = time.Now()
	if !c.everWelcomed {
		c.everWelcomed = true
		close(c.welcomed)
	}
	c.mu.Unlock()
	if !ok {
		// A server without a welcome: its first frame is a push.
		c.push(a, data, binary)
		return
	}
	if f := c.opt.OnWelcome; f != nil {
		f(c, w)
	}
}

func parseWelcome(data []byte, binary bool) (Welcome, bool) {
	var w struct {
		Type     string `json:"type"`
		ClientID string `json:"client_id"`
		UID      string `json:"uid"`
	}
	if binary || json.Unmarshal(data, &w) != nil || w.Type != "welcome" {
		return Welcome{}, false
	}
	return Welcome{ClientID: w.ClientID, UID: w.UID}, true
}

// push handles a frame after the welcome: it unwraps an envelope, tracks
// its stream's position, drops a duplicate, and takes the answer to
// resume.
func (c *Client) push(a *attempt, data []byte, binary bool) {
	var f frame
	if !binary {
		f = parseFrame(data)
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	if f.resumed != nil && (a.resuming || a.awaited(f.resumed)) {
		a.resuming = false
		for s := range f.resumed {
			delete(a.awaiting, s)
		}
		c.history = true
		for s, st := range f.resumed {
			c.positions[s] = Position{Epoch: st.Epoch, Offset: st.Offset}
		}
		c.mu.Unlock()
		if fn := c.opt.OnResumed; fn != nil {
			fn(c, Resumed{Streams: f.resumed, URL: a.url})
		}
		return
	}
	m := Message{Data: data, Binary: binary}
	if f.envelope && (f.msg.Stream != "" || c.history) {
		m = f.msg
	}
	if m.Stream != "" {
		c.history = true
		// At or below the position, same epoch: delivered already (a
		// replay). Above it: new, also when offsets were skipped (pushes
		// this client was left out of).
		if p, ok := c.positions[m.Stream]; ok && p.Epoch != "" && p.Epoch == m.Epoch && m.Offset <= p.Offset {
			c.mu.Unlock()
			return
		}
		c.positions[m.Stream] = Position{Epoch: m.Epoch, Offset: m.Offset}
	}
	c.mu.Unlock()
	if fn := c.opt.OnMessage; fn != nil {
		fn(c, m)
	}
}

// awaited reports whether every stream of a later resumed frame is one
// the attempt resumed and no answer named yet.
func (a *attempt) awaited(streams map[string]StreamResumed) bool {
	if len(streams) == 0 {
		return false
	}
	for s := range streams {
		if !a.awaiting[s] {
			return false
		}
	}
	return true
}

// frame is what parseFrame found in a text frame.
type frame struct {
	// envelope: a push envelope; msg is its push. msg.Stream is "" for
	// one without a stream, taken as an envelope only once the server
	// showed it keeps history.
	envelope bool
	msg      Message
	// resumed: {"type":"resumed","streams":{…}}, taken as such only as
	// the answer to resume.
	resumed map[string]StreamResumed
}

// parseFrame reads a text frame (see "Which frames are envelopes" in the
// package documentation).
func parseFrame(data []byte) frame {
	t := bytes.TrimLeft(data, " \t\r\n")
	if len(t) == 0 || t[0] != '{' || !bytes.Contains(t, []byte(`"type"`)) {
		return frame{}
	}
	var v struct {
		Type       string          `json:"type"`
		Stream     json.RawMessage `json:"stream"`
		Offset     json.RawMessage `json:"offset"`
		Epoch      json.RawMessage `json:"epoch"`
		Data       json.RawMessage `json:"data"`
		DataBase64 json.RawMessage `json:"data_base64"`
		Streams    json.RawMessage `json:"streams"`
	}
	if json.Unmarshal(data, &v) != nil {
		return frame{}
	}
	switch v.Type {
	case "resumed":
		var streams map[string]json.RawMessage
		if len(v.Streams) == 0 || v.Streams[0] != '{' || json.Unmarshal(v.Streams, &streams) != nil {
			return frame{}
		}
		out := make(map[string]StreamResumed, len(streams))
		for s, raw := range streams {
			var st struct {
				Recovered json.RawMessage `json:"recovered"`
				Epoch     json.RawMessage `json:"epoch"`
				Offset    json.RawMessage `json:"offset"`
			}
			if len(raw) == 0 || raw[0] != '{' || json.Unmarshal(raw, &st) != nil {
				continue // not an object
			}
			epoch, _ := jsonString(st.Epoch)
			offset, _ := strconv.ParseUint(string(st.Offset), 10, 64)
			out[s] = StreamResumed{Recovered: string(st.Recovered) == "true", Epoch: epoch, Offset: offset}
		}
		return frame{resumed: out}
	case "message":
		text, isText := jsonString(v.Data)
		b64, isB64 := jsonString(v.DataBase64)
		if isText == isB64 {
			return frame{}
		}
		var m Message
		stream, _ := jsonString(v.Stream)
		offset, err := strconv.ParseUint(string(v.Offset), 10, 64)
		epoch, hasEpoch := jsonString(v.Epoch)
		switch {
		case stream != "" && err == nil && offset >= 1 && hasEpoch:
			m.Stream, m.Offset, m.Epoch = stream, offset, epoch
		case v.Stream != nil || v.Offset != nil:
			return frame{} // a stream, but not a good one: not ours
		}
		if isText {
			m.Data = []byte(text)
		} else {
			b, err := base64.StdEncoding.DecodeString(b64)
			if err != nil {
				return frame{}
			}
			m.Data, m.Binary = b, true
		}
		return frame{envelope: true, msg: m}
	}
	return frame{}
}

// jsonString decodes raw when it is a JSON string.
func jsonString(raw json.RawMessage) (string, bool) {
	var s string
	if len(raw) == 0 || raw[0] != '"' || json.Unmarshal(raw, &s) != nil {
		return "", false
	}
	return s, true
}

// timedOut gives up an attempt that had no welcome in time.
func (c *Client) timedOut(a *attempt) {
	c.mu.Lock()
	if a.welcomed || c.att != a {
		c.mu.Unlock()
		return
	}
	if a.err == nil {
		a.err = fmt.Errorf("%w: %s within %v", ErrConnectTimeout, a.url, c.opt.ConnectTimeout)
	}
	conn := a.conn
	c.mu.Unlock()
	conn.Destroy()
}

// ended runs when attempt a is over: it decides where and when the next
// attempt goes, reports it, then schedules it.
func (c *Client) ended(a *attempt) {
	c.mu.Lock()
	if a.timeout != nil {
		a.timeout.Stop()
	}
	c.att = nil
	e := CloseEvent{URL: a.url, Code: a.code, Reason: a.reason, Err: a.err}
	if a.welcomed {
		e.ClientID = c.clientID
	}
	if e.Code == 0 && a.opened {
		e.Code = CloseAbnormal
	}
	c.clientID, c.uid = "", ""
	if a.err != nil {
		c.lastErr = a.err
	}
	if !c.closed {
		e.Reconnect = true
		e.Delay = c.nextLocked(a.welcomed, e.Code)
	}
	c.mu.Unlock()

	if f := c.opt.OnClose; f != nil {
		f(c, e)
	}

	// Scheduled only now, so that the next attempt's callbacks follow this
	// one's OnClose.
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		close(c.done)
		return
	}
	c.timer = time.AfterFunc(e.Delay, c.connect)
}

// nextLocked moves to the URL of the next attempt and returns the wait
// before it (see "Reconnecting" in the package documentation).
func (c *Client) nextLocked(welcomed bool, code int) time.Duration {
	n := len(c.urls)
	if welcomed && code == protocol.CloseGoingAway {
		c.next = (c.next + 1) % n
		// A connection that lived longer than the longest wait starts a
		// new series of hops: only a whole list going away at once waits.
		if time.Since(c.welcomedAt) > c.opt.MaxReconnectDelay {
			c.hops = 0
		}
		c.hops++
		if c.hops <= n {
			return 0
		}
	} else {
		if !welcomed {
			c.next = (c.next + 1) % n
		}
		c.hops = 0
	}
	c.attempts++
	return backoff(c.opt.MinReconnectDelay, c.opt.MaxReconnectDelay, c.attempts)
}

// backoff is the wait before the n-th attempt in a row (n ≥ 1):
// min(hi, lo·2ⁿ⁻¹), drawn at random between half of it and all of it.
func backoff(lo, hi time.Duration, n int) time.Duration {
	d := lo
	for i := 1; i < n && d < hi; i++ {
		d *= 2
	}
	d = min(d, hi)
	return d/2 + rand.N(d/2+1)
}

// wsURL checks that u is a WebSocket URL, turning http(s):// into ws(s)://.
func wsURL(u string) (string, error) {
	p, err := url.Parse(u)
	if err != nil {
		return "", fmt.Errorf("pushclient: URL %q: %w", u, err)
	}
	switch strings.ToLower(p.Scheme) {
	case "ws", "wss":
	case "http":
		p.Scheme = "ws"
	case "https":
		p.Scheme = "wss"
	default:
		return "", fmt.Errorf("pushclient: URL %q: want ws:// or wss://", u)
	}
	if p.Host == "" {
		return "", fmt.Errorf("pushclient: URL %q: no host", u)
	}
	p.Fragment = ""
	return p.String(), nil
}
