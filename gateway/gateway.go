package gateway

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/workerman-go/workerman"
	"github.com/workerman-go/workerman/protocol"
)

// Message is what a push carries: text (a WebSocket text frame; Data must
// be valid UTF-8) or, with Binary, a binary frame. Codecs without message
// types (text://, frame://) send Data as it is.
type Message struct {
	Data   []byte
	Binary bool
}

// Text is a text message.
func Text(s string) Message { return Message{Data: []byte(s)} }

// Binary is a binary message.
func Binary(b []byte) Message { return Message{Data: b, Binary: true} }

func (m Message) typ() protocol.MessageType {
	if m.Binary {
		return protocol.BinaryMessage
	}
	return protocol.TextMessage
}

// ClientInfo is what the gateway knows of a client at one moment.
type ClientInfo struct {
	ID     string   // the client ID
	UID    string   // the bound uid, "" when none
	Groups []string // the groups it is in, sorted
}

// Options configure a Gateway. The zero value is a single node with a
// generated name.
type Options struct {
	// Node names this node in the cluster and in its client IDs: letters,
	// digits, '-' and '_', at most 64. Default: host-pid-random.
	Node string
	// Broker carries operations between nodes. Default: a hub of one
	// (NewHub().Broker()), for a gateway that is the whole system.
	Broker Broker
	// Logger receives what no caller hears about (a broker that failed to
	// subscribe). Default slog.Default().
	Logger *slog.Logger
	// History, when set, turns on history mode: every push to a uid, a
	// group or everyone is kept in its stream and sent as a JSON envelope
	// with its stream, offset and epoch, and a WebSocket client that
	// connects with a resume query parameter gets what it missed (see
	// "History and recovery" in the package documentation). Nil: no
	// history, and the frames are the messages as sent. NewMemoryHistory
	// serves a single node.
	History History
}

var (
	// ErrClientNotFound: no live client has this ID (it closed, never
	// existed, or its node is gone). The HTTP API answers 404.
	ErrClientNotFound = errors.New("gateway: no such client")
	// ErrInvalidUTF8: a text message that is not valid UTF-8 (send it as
	// Binary). The HTTP API answers 400.
	ErrInvalidUTF8 = workerman.ErrInvalidUTF8
	// ErrInvalidArgument: an empty uid or group (or one over MaxKeyLen), a
	// session value that is not JSON. The HTTP API answers 400.
	ErrInvalidArgument = errors.New("gateway: invalid argument")
	// ErrClosed: the gateway was closed.
	ErrClosed = errors.New("gateway: closed")
)

// Gateway is GatewayWorker in one value: it gives every connection of a
// worker a client ID, keeps uids, groups and sessions, and pushes to any
// of them from any goroutine, on this node or, through its Broker, on any
// node of a cluster (GatewayWorker's Gateway::sendToUid and friends, as
// methods). Make it with New before the worker starts.
//
// Methods that may ask other nodes take a context and return an error;
// every method is safe from any goroutine, including the event callbacks.
// An operation that returned has taken effect on every node: a push sent
// right after JoinGroup returned reaches the new member.
type Gateway struct {
	// OnConnect runs when a connection became a client (for WebSocket,
	// after the handshake), before it is reachable by pushes: bind its
	// uid and join its groups here. Nothing pushed reaches the client
	// before OnConnect returned and the Welcome message was sent.
	OnConnect func(clientID string)
	// OnMessage runs for every message the client sends, in order. The
	// message's Data is only valid until OnMessage returns.
	OnMessage func(clientID string, msg Message)
	// OnClose runs once when a client is gone, after its last OnMessage,
	// with what the gateway knew of it (it is no longer in any answer).
	OnClose func(clientID string, last ClientInfo)
	// Welcome, when set, is the first message of every client, sent when
	// it becomes reachable (after OnConnect, with its uid and groups as
	// OnConnect left them).
	Welcome func(c ClientInfo) Message

	// The callbacks run on the worker's callback goroutines (its pool), in
	// order per client; they may block that client only. Set them before
	// the worker starts.

	w      *workerman.Worker
	node   string
	prefix string // node + "." + boot + "."
	seq    atomic.Uint64
	broker Broker
	log    *slog.Logger
	closed atomic.Bool

	mu      sync.RWMutex
	clients map[string]*client
	byConn  map[*workerman.Connection]*client
	ready   map[*client]struct{} // clients reachable by pushes
	uids    map[string]map[*client]struct{}
	groups  map[string]map[*client]struct{}

	seed    maphash.Seed
	topics  [64]sync.Mutex // serialise subscribe/unsubscribe per topic
	hist    History        // nil: no history
	streams [64]stripe     // history mode: each stream's appends, deliveries and resumes, one at a time, and its position (streams.go)
	in      inbox          // history mode: other nodes' pushes, on their way to arrive

	deliveries, dropped atomic.Uint64
}

// Stats are this node's figures, for metrics and status pages.
type Stats struct {
	Clients int // clients connected to this node
	UIDs    int // distinct uids bound on this node
	Groups  int // groups with a member on this node
	// Deliveries counts the messages handed to this node's clients'
	// connections (pushes and SendToClient).
	Deliveries uint64
	// Dropped counts the messages this node did not deliver to a member:
	// its send buffer was full (a client that does not read) or it was
	// closing.
	Dropped uint64
}

// Stats returns this node's figures (not the cluster's: ask each node, or
// use the cluster-wide queries).
func (g *Gateway) Stats() Stats {
	g.mu.RLock()
	s := Stats{Clients: len(g.clients), UIDs: len(g.uids), Groups: len(g.groups)}
	g.mu.RUnlock()
	s.Deliveries = g.deliveries.Load()
	s.Dropped = g.dropped.Load()
	return s
}

// client is one connection's state; its fields change under Gateway.mu.
// Its membership changes (bind, join, leave, detach) also hold mu, one at
// a time, so that each reads and changes uid and groups as one step. Lock
// order: client.mu, then a topic lock, then stream locks (in index order),
// then Gateway.mu.
type client struct {
	id      string
	conn    *workerman.Connection
	uid     string
	groups  map[string]struct{}
	session map[string]json.RawMessage
	gone    bool       // detached: in no index, found by no operation
	last    ClientInfo // what it was when detached
	// History mode: the positions of the streams the client resumed but
	// could not read yet (a uid or group the backend binds it to after
	// connect); guarded by mu. The bind replays from there.
	pending map[string]Position

	mu sync.Mutex
}

var nodeName = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// New attaches a gateway to w, which must not have started. The gateway
// takes over w's OnConnect, OnWebSocketConnected, OnMessage and OnClose
// (and, with History, OnWebSocketConnect, to check the resume parameter);
// callbacks set there before New still run first (last, for OnClose).
// Everything else on w (OnWebSocketConnect to check a token, OnError,
// heartbeats, buffer limits) stays the program's. New joins the cluster
// through the broker: it fails when the node's name is taken.
//
// A connection becomes a client when its WebSocket handshake completed
// (websocket://, or an http:// worker's upgraded connections), or when it
// connects, for other codecs (text://, frame://, tcp://).
func New(w *workerman.Worker, opt Options) (*Gateway, error) {
	g := &Gateway{
		w:       w,
		node:    opt.Node,
		broker:  opt.Broker,
		log:     opt.Logger,
		hist:    opt.History,
		clients: make(map[string]*client),
		byConn:  make(map[*workerman.Connection]*client),
		ready:   make(map[*client]struct{}),
		uids:    make(map[string]map[*client]struct{}),
		groups:  make(map[string]map[*client]struct{}),
		seed:    maphash.MakeSeed(),
	}
	for i := range g.streams {
		g.streams[i].pos = make(map[string]Position)
	}
	if w == nil {
		return nil, errors.New("gateway: New needs a worker")
	}
	if g.node == "" {
		g.node = defaultNode()
	}
	if !nodeName.MatchString(g.node) {
		return nil, fmt.Errorf("gateway: node name %q: use letters, digits, '-' and '_' (at most 64)", g.node)
	}
	if g.broker == nil {
		g.broker = NewHub().Broker()
	}
	if g.log == nil {
		g.log = slog.Default()
	}
	g.prefix = g.node + "." + bootID() + "."
	if g.hist != nil {
		g.startInbox()
	}
	if err := g.broker.Start(g.node, (*handler)(g)); err != nil {
		g.stopInbox()
		return nil, err
	}
	g.attach(w)
	return g, nil
}

// Node is this node's name.
func (g *Gateway) Node() string { return g.node }

// Worker is the worker the gateway is attached to.
func (g *Gateway) Worker() *workerman.Worker { return g.w }

// Close leaves the cluster. It does not close the worker or its clients.
func (g *Gateway) Close() error {
	if g.closed.Swap(true) {
		return nil
	}
	err := g.broker.Close()
	g.stopInbox()
	return err
}

func defaultNode() string {
	host, _ := os.Hostname()
	host = strings.Map(func(r rune) rune {
		if r < utf8.RuneSelf && nodeName.MatchString(string(r)) {
			return r
		}
		return '_'
	}, host)
	if len(host) > 32 {
		host = host[:32]
	}
	if host == "" {
		host = "node"
	}
	return fmt.Sprintf("%s-%d-%s", host, os.Getpid(), randomHex(3))
}

// bootID tells this run of a node from its earlier ones, so that client IDs
// are never reused across restarts: the start time, with random bits.
func bootID() string {
	return strconv.FormatInt(time.Now().UnixMilli(), 36) + randomHex(2)
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// NodeOf is the node that holds the client with this ID ("" when the ID is
// not one of a gateway's).
func NodeOf(clientID string) string {
	node, rest, ok := strings.Cut(clientID, ".")
	if !ok || rest == "" || !nodeName.MatchString(node) {
		return ""
	}
	return node
}

func (g *Gateway) newID() string {
	return g.prefix + strconv.FormatUint(g.seq.Add(1), 36)
}

// attach wires the gateway into the worker's callbacks.
func (g *Gateway) attach(w *workerman.Worker) {
	prevConnect, prevConnected, prevMessage, prevClose := w.OnConnect, w.OnWebSocketConnected, w.OnMessage, w.OnClose
	w.OnConnect = func(c *workerman.Connection) {
		if prevConnect != nil {
			prevConnect(c)
		}
		if p := c.Protocol(); p != "websocket" && p != "http" {
			g.register(c, nil)
		}
	}
	w.OnWebSocketConnected = func(c *workerman.Connection, r *workerman.WebSocketRequest) {
		if prevConnected != nil {
			prevConnected(c, r)
		}
		var resume map[string]Position
		if g.hist != nil {
			if q := r.Query(); q.Has("resume") {
				// Checked before the upgrade: it parses.
				resume, _ = ParseResume(q.Get("resume"))
				if resume == nil {
					resume = map[string]Position{}
				}
			}
		}
		g.register(c, resume)
	}
	if g.hist != nil {
		prevHandshake := w.OnWebSocketConnect
		w.OnWebSocketConnect = func(c *workerman.Connection, r *workerman.WebSocketRequest) error {
			if prevHandshake != nil {
				if err := prevHandshake(c, r); err != nil {
					return err
				}
			}
			if q := r.Query(); q.Has("resume") {
				if _, err := ParseResume(q.Get("resume")); err != nil {
					return workerman.RejectWebSocket(400, err.Error())
				}
			}
			return nil
		}
	}
	w.OnMessage = func(c *workerman.Connection, data []byte) {
		if prevMessage != nil {
			prevMessage(c, data)
		}
		f := g.OnMessage
		if f == nil {
			return
		}
		g.mu.RLock()
		cl := g.byConn[c]
		g.mu.RUnlock()
		if cl != nil {
			f(cl.id, Message{Data: data, Binary: c.MessageType() == protocol.BinaryMessage})
		}
	}
	w.OnClose = func(c *workerman.Connection) {
		g.unregister(c)
		if prevClose != nil {
			prevClose(c)
		}
	}
}

// register makes c a client: it gets an ID, OnConnect runs, then under the
// lock pushes take their member lists under, it becomes reachable and its
// welcome is sent, so that no push precedes the welcome and none that
// started after it misses the client.
//
// With resume (history mode, a client that gave positions), the streams
// it resumes are locked from before their histories are read until it is
// reachable: a push to one of them is either in the replay (it was
// appended before) or delivered live (after), never both, never neither.
func (g *Gateway) register(c *workerman.Connection, resume map[string]Position) {
	if g.hist != nil {
		c.CloseWhenBufferFull() // a push dropped unnoticed would be a gap
	}
	cl := &client{id: g.newID(), conn: c}
	g.mu.Lock()
	g.clients[cl.id] = cl
	g.byConn[c] = cl
	g.mu.Unlock()
	if f := g.OnConnect; f != nil {
		f(cl.id)
	}
	if g.hist != nil {
		g.joined("all")
	}
	if resume != nil {
		g.registerResuming(cl, resume)
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if cl.gone {
		return
	}
	g.welcomeLocked(cl)
	g.ready[cl] = struct{}{}
}

func (g *Gateway) welcomeLocked(cl *client) {
	if f := g.Welcome; f != nil {
		m := f(g.infoLocked(cl))
		cl.conn.SendMessage(m.typ(), m.Data)
	}
}

// registerResuming makes cl reachable after its welcome, the replay of
// the streams it resumes and the resumed frame.
func (g *Gateway) registerResuming(cl *client, resume map[string]Position) {
	// cl's membership holds still: the streams it may read are the
	// streams it reads when it becomes reachable.
	cl.mu.Lock()
	defer cl.mu.Unlock()
	g.mu.RLock()
	readable := func(s string) bool {
		switch kind, key, _ := strings.Cut(s, ":"); {
		case s == "all":
			return true
		case kind == "uid":
			return key != "" && key == cl.uid
		case kind == "group":
			_, ok := cl.groups[key]
			return ok
		}
		return false
	}
	streams := make([]string, 0, len(resume))
	for s, pos := range resume {
		switch {
		case readable(s):
			streams = append(streams, s)
		case (strings.HasPrefix(s, "uid:") || strings.HasPrefix(s, "group:")) && checkKey("stream", s[strings.IndexByte(s, ':')+1:]) == nil &&
			len(cl.pending) < MaxPendingStreams:
			if cl.pending == nil {
				cl.pending = make(map[string]Position)
			}
			cl.pending[s] = pos
		}
	}
	g.mu.RUnlock()
	slices.Sort(streams)
	locks := make([]int, 0, len(streams))
	for _, s := range streams {
		locks = append(locks, g.streamIndex(s))
	}
	slices.Sort(locks)
	locks = slices.Compact(locks)
	for _, i := range locks {
		g.streams[i].Lock()
	}
	defer func() {
		for _, i := range locks {
			g.streams[i].Unlock()
		}
	}()

	// The replay, encoded before Gateway.mu is taken: a history may be
	// slow (a network away), pushes to other streams go on meanwhile.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var replay []Message
	res := resumedFrame{Type: "resumed", Streams: make(map[string]resumedStream, len(streams))}
	for _, s := range streams {
		msgs, cur, ok, err := g.hist.Since(ctx, s, resume[s])
		if err != nil {
			g.log.Warn("gateway: reading a stream's history failed; the client resumes it as lost", "stream", s, "err", err)
			ok, msgs = false, nil
		}
		for _, e := range msgs {
			replay = append(replay, envelope(s, Position{Epoch: cur.Epoch, Offset: e.Offset}, e.Message))
		}
		res.Streams[s] = resumedStream{Recovered: ok, Epoch: cur.Epoch, Offset: cur.Offset}
		if err == nil {
			g.resumedLocked(ctx, &g.streams[g.streamIndex(s)], s, cur)
		}
	}
	resumed, _ := json.Marshal(res)

	g.mu.Lock()
	if cl.gone {
		g.mu.Unlock()
		return
	}
	g.welcomeLocked(cl)
	g.mu.Unlock()
	// The replay without Gateway.mu: other clients' resumes and pushes go
	// on meanwhile. The client is not reachable by pushes yet, and those
	// of the streams it resumes wait for their locks.
	failed := g.sendReplay(cl, replay, resumed)
	g.mu.Lock()
	if !failed && !cl.gone {
		g.ready[cl] = struct{}{}
	}
	g.mu.Unlock()
	if failed {
		// The replay did not fit the send buffer: the client's position
		// is what it got, and its next connection resumes from there.
		cl.conn.Close()
	}
}

func (g *Gateway) streamIndex(stream string) int {
	return int(maphash.String(g.seed, stream) % uint64(len(g.streams)))
}

// unregister runs OnClose for c's client, after removing it from every
// index (unless CloseClient did already).
func (g *Gateway) unregister(c *workerman.Connection) {
	g.mu.Lock()
	cl := g.byConn[c]
	delete(g.byConn, c)
	g.mu.Unlock()
	if cl == nil {
		return
	}
	last := g.detach(cl)
	if f := g.OnClose; f != nil {
		f(cl.id, last)
	}
}

// detach makes cl gone: no operation finds it any more, and it leaves
// every index topic by topic, each under its topic's lock, so that the
// broker's interest follows the membership exactly. It holds cl's
// membership lock, so a bind or join in flight finishes first and one
// that comes later finds the client gone. It returns what cl was.
func (g *Gateway) detach(cl *client) ClientInfo {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	g.mu.Lock()
	if cl.gone {
		g.mu.Unlock()
		return cl.last
	}
	cl.gone = true
	delete(g.clients, cl.id)
	delete(g.ready, cl)
	cl.last = g.infoLocked(cl)
	g.mu.Unlock()
	if uid := cl.last.UID; uid != "" {
		g.removeMember("uid:", uid, cl, func() { cl.uid = "" })
	}
	for _, grp := range cl.last.Groups {
		g.removeMember("group:", grp, cl, func() { delete(cl.groups, grp) })
	}
	return cl.last
}

func (g *Gateway) infoLocked(cl *client) ClientInfo {
	return ClientInfo{ID: cl.id, UID: cl.uid, Groups: sortedKeys(cl.groups)}
}

// index is the uid or the group index.
func (g *Gateway) index(kind string) map[string]map[*client]struct{} {
	if kind == "uid:" {
		return g.uids
	}
	return g.groups
}

func (g *Gateway) topicLock(topic string) *sync.Mutex {
	return &g.topics[maphash.String(g.seed, topic)%uint64(len(g.topics))]
}

// addMember adds cl to the index under key; change, run under the lock,
// updates cl's own fields. The first member subscribes the node to the
// topic before addMember returns, so a push from any node that starts
// after it reaches cl. false: cl is gone.
func (g *Gateway) addMember(kind, key string, cl *client, change func()) bool {
	topic := kind + key
	if from, ok := cl.pending[topic]; ok && g.hist != nil {
		delete(cl.pending, topic)
		return g.addMemberResuming(kind, key, cl, change, from)
	}
	l := g.topicLock(topic)
	l.Lock()
	defer l.Unlock()
	g.mu.Lock()
	if cl.gone {
		g.mu.Unlock()
		return false
	}
	idx := g.index(kind)
	m := idx[key]
	first := m == nil
	if first {
		m = make(map[*client]struct{})
		idx[key] = m
	}
	m[cl] = struct{}{}
	change()
	g.mu.Unlock()
	if first {
		if err := g.broker.Subscribe(topic); err != nil {
			g.log.Warn("gateway: subscribe failed; the broker restores it when it reconnects", "topic", topic, "err", err)
		}
		if g.hist != nil {
			g.joined(topic)
		}
	}
	return true
}

// removeMember is addMember's reverse: the last member unsubscribes.
func (g *Gateway) removeMember(kind, key string, cl *client, change func()) {
	topic := kind + key
	l := g.topicLock(topic)
	l.Lock()
	defer l.Unlock()
	g.mu.Lock()
	idx := g.index(kind)
	m := idx[key]
	_, member := m[cl]
	if member {
		delete(m, cl)
	}
	change()
	last := member && len(m) == 0
	if last {
		delete(idx, key)
	}
	g.mu.Unlock()
	if last {
		if err := g.broker.Unsubscribe(topic); err != nil {
			g.log.Warn("gateway: unsubscribe failed", "topic", topic, "err", err)
		}
		if g.hist != nil {
			g.left(topic)
		}
	}
}

func sortedKeys(m map[string]struct{}) []string {
	if len(m) == 0 {
		return nil
	}
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slicesSort(out)
	return out
}

// local is the client with this ID when this node holds it; remote is
// true when another node does.
func (g *Gateway) local(clientID string) (cl *client, remote bool, err error) {
	node := NodeOf(clientID)
	if node == "" {
		return nil, false, ErrClientNotFound
	}
	if node != g.node {
		return nil, true, nil
	}
	g.mu.RLock()
	cl = g.clients[clientID]
	g.mu.RUnlock()
	if cl == nil {
		return nil, false, ErrClientNotFound
	}
	return cl, false, nil
}

// Connection is the connection of a client this node holds (nil for
// others): its request, addresses, Value. Sending on it directly bypasses
// the gateway's ordering of welcome and pushes.
func (g *Gateway) Connection(clientID string) *workerman.Connection {
	g.mu.RLock()
	defer g.mu.RUnlock()
	if cl := g.clients[clientID]; cl != nil {
		return cl.conn
	}
	return nil
}

var _ = context.Background

func slicesSort(s []string) { slices.Sort(s) }
