package natsbroker

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/workerman-go/workerman/gateway"
)

// Options configure a Broker. Set URLs to join an existing NATS cluster,
// or Cluster (and Peers) to run a nats-server inside this node.
type Options struct {
	// URLs are NATS servers of an existing cluster ("nats://a:4222").
	URLs []string

	// Cluster is the route address (host:port) of the nats-server embedded
	// in this node; Peers are the other nodes' route addresses (listing
	// this node's own is harmless, so every node may get the same list).
	// The embedded server takes no fixed client port (a random loopback
	// one): this node connects to it in-process, so several nodes run on
	// one host.
	Cluster string
	Peers   []string
	// ClusterName names the embedded NATS cluster. Default
	// "workerman-push"; every node of one cluster must use the same.
	ClusterName string

	// Prefix starts every subject, so that several push clusters share a
	// NATS cluster. Default "workerman".
	Prefix string
	// Heartbeat is how often a node says it is alive; a node silent for
	// NodeTimeout is gone from every answer. Defaults 1 s and 3 s.
	Heartbeat   time.Duration
	NodeTimeout time.Duration
	// GatherTimeout bounds how long a cluster-wide query waits for a live
	// node that does not answer; such a node is then taken for dead.
	// Default 2 s.
	GatherTimeout time.Duration
	// PushBuffer is how many incoming pushes may wait for delivery to this
	// node's clients. Default 65536.
	PushBuffer int
	// NATSOptions are passed to nats.Connect (credentials, TLS, a name).
	NATSOptions []nats.Option
	// Logger receives connection changes. Default slog.Default().
	Logger *slog.Logger

	// History, when set, keeps the cluster's history in JetStream (see
	// HistoryOptions); Broker.History is then the gateway's
	// Options.History. The embedded server runs JetStream; an external
	// NATS must have it on (nats-server -js).
	History *HistoryOptions
}

// Broker is gateway.Broker over NATS.
//
// Subjects, under Prefix: u.<uid> and g.<group> (base64url) carry pushes,
// subscribed only while this node holds a member; all carries pushes to
// everyone; n.<node> carries operations on a node's clients; q carries
// cluster-wide queries, answered by every node; hb carries heartbeats;
// sync is the barrier that makes a new subscription known cluster-wide
// before Subscribe returns; id.<node> tells whether a node name is taken.
//
// Liveness: every node publishes a heartbeat every Heartbeat; a node not
// heard from for NodeTimeout (or that said goodbye) leaves the live set
// that queries wait for. Heartbeats need no extra process and no stored
// state, and they work the same on an external and an embedded cluster.
type Broker struct {
	opt Options
	log *slog.Logger

	node, boot string
	h          gateway.Handler
	srv        *server.Server // embedded, or nil
	nc         *nats.Conn
	pushes     chan *nats.Msg
	stop       chan struct{}
	done       sync.WaitGroup

	mu   sync.Mutex
	subs map[string]*nats.Subscription // topic → its subscription
	live map[string]time.Time          // other nodes → last heard

	hist    *jsHistory // nil: no history
	barrier barrier
	closed  atomic.Bool
	ready   atomic.Bool // connected, subscriptions known to the server
	dropped atomic.Uint64
}

// New checks the options; Start (called by gateway.New) connects.
func New(opt Options) (*Broker, error) {
	if len(opt.URLs) == 0 && opt.Cluster == "" {
		return nil, errors.New("natsbroker: set URLs (an existing NATS cluster) or Cluster (an embedded server)")
	}
	if len(opt.URLs) > 0 && opt.Cluster != "" {
		return nil, errors.New("natsbroker: set URLs or Cluster, not both")
	}
	if opt.Cluster != "" {
		if _, _, err := splitHostPort(opt.Cluster); err != nil {
			return nil, fmt.Errorf("natsbroker: Cluster %q: %w", opt.Cluster, err)
		}
		for _, p := range opt.Peers {
			if _, _, err := splitHostPort(p); err != nil {
				return nil, fmt.Errorf("natsbroker: peer %q: %w", p, err)
			}
		}
	}
	if opt.ClusterName == "" {
		opt.ClusterName = "workerman-push"
	}
	if opt.Prefix == "" {
		opt.Prefix = "workerman"
	}
	if opt.Heartbeat <= 0 {
		opt.Heartbeat = time.Second
	}
	if opt.NodeTimeout <= 0 {
		opt.NodeTimeout = 3 * opt.Heartbeat
	}
	if opt.GatherTimeout <= 0 {
		opt.GatherTimeout = 2 * time.Second
	}
	if opt.PushBuffer <= 0 {
		opt.PushBuffer = 1 << 16
	}
	if opt.Logger == nil {
		opt.Logger = slog.Default()
	}
	b := &Broker{
		opt:  opt,
		log:  opt.Logger,
		subs: make(map[string]*nats.Subscription),
		live: make(map[string]time.Time),
		stop: make(chan struct{}),
	}
	if opt.History != nil {
		ho := *opt.History
		if ho.Replicas < 0 || ho.Replicas > 5 {
			return nil, fmt.Errorf("natsbroker: History.Replicas %d: 1 to 5", ho.Replicas)
		}
		if opt.Cluster != "" && len(otherPeers(opt.Cluster, opt.Peers)) == 0 {
			// JetStream clusters its servers by the routes they are given.
			return nil, errors.New("natsbroker: History with an embedded server needs Peers: every node's route address, the same list on every node (a single node keeps its history in memory: gateway.NewMemoryHistory)")
		}
		if ho.Replicas == 0 {
			ho.Replicas = 1
			if opt.Cluster != "" {
				ho.Replicas = min(3, 1+len(otherPeers(opt.Cluster, opt.Peers)))
			}
		}
		b.hist = newJSHistory(b, ho)
	}
	return b, nil
}

// otherPeers are the peers that are not cluster itself.
func otherPeers(cluster string, peers []string) []string {
	var out []string
	for _, p := range peers {
		if p != cluster && !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	return out
}

func splitHostPort(hp string) (string, int, error) {
	host, port, err := net.SplitHostPort(hp)
	if err != nil {
		return "", 0, err
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 0 || n > 65535 {
		return "", 0, fmt.Errorf("bad port %q", port)
	}
	return host, n, nil
}

func (b *Broker) subject(parts ...string) string {
	return b.opt.Prefix + "." + strings.Join(parts, ".")
}

// topicSubject maps a gateway topic to its subject: keys are base64url,
// so any uid or group is one valid subject token.
func (b *Broker) topicSubject(topic string) (string, error) {
	if topic == "all" {
		return b.subject("all"), nil
	}
	kind, key, _ := strings.Cut(topic, ":")
	enc := base64.RawURLEncoding.EncodeToString([]byte(key))
	switch kind {
	case "uid":
		return b.subject("u", enc), nil
	case "group":
		return b.subject("g", enc), nil
	}
	return "", fmt.Errorf("natsbroker: unknown topic %q", topic)
}

func (b *Broker) subjectTopic(subj string) (string, bool) {
	rest, ok := strings.CutPrefix(subj, b.opt.Prefix+".")
	if !ok {
		return "", false
	}
	if rest == "all" {
		return "all", true
	}
	kind, enc, _ := strings.Cut(rest, ".")
	key, err := base64.RawURLEncoding.DecodeString(enc)
	if err != nil {
		return "", false
	}
	switch kind {
	case "u":
		return "uid:" + string(key), true
	case "g":
		return "group:" + string(key), true
	}
	return "", false
}

const hdrNode = "Workerman-Node"

// Start starts the embedded server (when Cluster is set), connects, and
// joins the cluster as node: it fails with gateway.ErrNodeExists when a
// live node has that name.
func (b *Broker) Start(node string, h gateway.Handler) error {
	b.node, b.h = node, h
	b.boot = strconv.FormatInt(time.Now().UnixNano(), 36)
	opts := append([]nats.Option{
		nats.Name("workerman-push " + node),
		nats.NoEcho(), // the gateway delivers its own pushes locally
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			b.ready.Store(false)
			if !b.closed.Load() {
				b.log.Warn("natsbroker: disconnected from NATS; remote operations fail until it is back", "node", b.node, "err", err)
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			// The subscriptions were sent again on reconnect: usable once the
			// server has them and the cluster knows them.
			ctx, cancel := context.WithTimeout(context.Background(), b.opt.GatherTimeout)
			defer cancel()
			if err := nc.FlushWithContext(ctx); err != nil {
				b.log.Warn("natsbroker: reconnected, but the flush failed", "node", b.node, "err", err)
				return
			}
			b.sync(ctx)
			b.ready.Store(true)
			b.log.Info("natsbroker: reconnected to NATS", "node", b.node, "server", nc.ConnectedUrlRedacted())
		}),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			if errors.Is(err, nats.ErrSlowConsumer) {
				b.dropped.Add(1)
			}
			b.log.Warn("natsbroker: NATS error", "node", b.node, "err", err)
		}),
	}, b.opt.NATSOptions...)
	var err error
	if b.opt.Cluster != "" {
		if b.srv, err = b.startServer(); err != nil {
			return err
		}
		opts = append(opts, nats.InProcessServer(b.srv))
		b.nc, err = nats.Connect("", opts...)
	} else {
		b.nc, err = nats.Connect(strings.Join(b.opt.URLs, ","), opts...)
	}
	if err != nil {
		b.shutdownServer()
		return fmt.Errorf("%w: connecting to NATS: %v", gateway.ErrBrokerUnavailable, err)
	}
	if err := b.join(); err != nil {
		b.nc.Close()
		b.shutdownServer()
		return err
	}
	if b.hist != nil {
		b.done.Add(1)
		go b.hist.start(b.nc)
	}
	return nil
}

// startServer runs the embedded nats-server: routes on Cluster, no client
// port, and waits (briefly) for a route to a peer.
func (b *Broker) startServer() (*server.Server, error) {
	host, port, _ := splitHostPort(b.opt.Cluster)
	so := &server.Options{
		ServerName: b.node + "-" + b.boot, // unique even when the node name is taken, so that the check below sees it
		// A client port on loopback, chosen at random: nats-server starts
		// its routes only once the client listener is up (DontListen would
		// keep them down). This node itself connects in-process.
		Host:   "127.0.0.1",
		Port:   -1,
		NoSigs: true,
		NoLog:  true,
		Cluster: server.ClusterOpts{
			Name:     b.opt.ClusterName,
			Host:     host,
			Port:     port,
			PoolSize: -1, // one route per peer: subscriptions and messages stay in order
		},
	}
	if port == 0 {
		so.Cluster.Port = -1 // a random port (tests)
	}
	if b.hist != nil {
		// JetStream's servers are known by name across restarts: the node's.
		so.ServerName = b.node
		so.JetStream = true
		so.StoreDir = b.hist.opt.StoreDir
		if so.StoreDir == "" {
			so.StoreDir = filepath.Join(os.TempDir(), "workerman-push", b.opt.ClusterName, b.node)
		}
	}
	for _, p := range b.opt.Peers {
		u, err := url.Parse("nats-route://" + p)
		if err != nil {
			return nil, fmt.Errorf("natsbroker: peer %q: %w", p, err)
		}
		so.Routes = append(so.Routes, u)
	}
	s, err := server.NewServer(so)
	if err != nil {
		return nil, fmt.Errorf("natsbroker: embedded NATS server: %w", err)
	}
	s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		s.Shutdown()
		return nil, fmt.Errorf("natsbroker: embedded NATS server did not start (route address %s)", b.opt.Cluster)
	}
	if len(b.opt.Peers) > 0 {
		// Let the routes to the peers that are up form, and the full mesh
		// the cluster gossips after them (a server forwards nothing between
		// its routes: this node reaches only the servers it has a route
		// to), so that its name check and its hello reach every live node.
		// Peers that are down join later.
		waitRoutes(s, 5*time.Second, 300*time.Millisecond)
	}
	return s, nil
}

// waitRoutes waits, at most max, for s to have a route and for the number
// of its routes to stay the same for quiet.
func waitRoutes(s *server.Server, max, quiet time.Duration) {
	deadline := time.Now().Add(max)
	n, since := s.NumRoutes(), time.Now()
	for time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
		if m := s.NumRoutes(); m != n {
			n, since = m, time.Now()
		}
		if n > 0 && time.Since(since) >= quiet {
			return
		}
	}
}

func (b *Broker) shutdownServer() {
	if b.srv != nil {
		b.srv.Shutdown()
		b.srv.WaitForShutdown()
	}
}

// ClusterAddr is the embedded server's route address (its port when
// Cluster asked for port 0), or nil.
func (b *Broker) ClusterAddr() net.Addr {
	if b.srv == nil {
		return nil
	}
	return b.srv.ClusterAddr()
}

// join checks the name, subscribes the node's subjects, and tells every
// live node it is here before returning.
func (b *Broker) join() error {
	nc := b.nc
	ctx, cancel := context.WithTimeout(context.Background(), b.opt.GatherTimeout)
	defer cancel()
	if _, err := nc.RequestWithContext(ctx, b.subject("id", b.node), nil); err == nil {
		return fmt.Errorf("%w: %q", gateway.ErrNodeExists, b.node)
	} else if !errors.Is(err, nats.ErrNoResponders) && !errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%w: %v", gateway.ErrBrokerUnavailable, err)
	}
	b.pushes = make(chan *nats.Msg, b.opt.PushBuffer)
	subs := []struct {
		subj string
		f    nats.MsgHandler
	}{
		{b.subject("id", b.node), func(m *nats.Msg) { m.Respond([]byte(b.boot)) }},
		{b.subject("n", b.node), b.onRequest},
		{b.subject("q"), b.onRequest},
		{b.subject("sync"), b.onSync},
		{b.subject("hb"), b.onHeartbeat},
	}
	for _, s := range subs {
		if _, err := nc.Subscribe(s.subj, s.f); err != nil {
			return fmt.Errorf("%w: %v", gateway.ErrBrokerUnavailable, err)
		}
	}
	if _, err := nc.ChanSubscribe(b.subject("all"), b.pushes); err != nil {
		return fmt.Errorf("%w: %v", gateway.ErrBrokerUnavailable, err)
	}
	b.done.Add(2)
	go b.deliver()
	go b.beat()
	// The first barrier is the hello: every live node records this one
	// before Start returns.
	if err := b.sync(ctx); err != nil {
		return err
	}
	b.ready.Store(true)
	return nil
}

// deliver hands incoming pushes to the gateway, in arrival order.
func (b *Broker) deliver() {
	defer b.done.Done()
	for {
		select {
		case m := <-b.pushes:
			if topic, ok := b.subjectTopic(m.Subject); ok {
				b.h.HandlePush(topic, m.Data)
			}
		case <-b.stop:
			return
		}
	}
}

type heartbeat struct {
	Node string `json:"node"`
	Boot string `json:"boot"`
	Bye  bool   `json:"bye,omitempty"`
}

func (b *Broker) beat() {
	defer b.done.Done()
	t := time.NewTicker(b.opt.Heartbeat)
	defer t.Stop()
	hb, _ := json.Marshal(heartbeat{Node: b.node, Boot: b.boot})
	for {
		select {
		case <-t.C:
			b.nc.Publish(b.subject("hb"), hb)
			b.expire()
		case <-b.stop:
			return
		}
	}
}

func (b *Broker) onHeartbeat(m *nats.Msg) {
	var hb heartbeat
	if json.Unmarshal(m.Data, &hb) != nil || hb.Node == b.node {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if hb.Bye {
		delete(b.live, hb.Node)
	} else {
		b.live[hb.Node] = time.Now()
	}
}

// alive records a node heard from just now.
func (b *Broker) alive(node string) {
	if node == "" || node == b.node {
		return
	}
	b.mu.Lock()
	b.live[node] = time.Now()
	b.mu.Unlock()
}

// expire forgets nodes not heard from for NodeTimeout.
func (b *Broker) expire() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for n, t := range b.live {
		if time.Since(t) > b.opt.NodeTimeout {
			delete(b.live, n)
			b.log.Warn("natsbroker: node gone (no heartbeat)", "node", n, "silent", time.Since(t).Round(time.Millisecond))
		}
	}
}

func (b *Broker) liveNodes() map[string]bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make(map[string]bool, len(b.live))
	for n := range b.live {
		out[n] = true
	}
	return out
}

// Nodes lists the other live nodes, as this node knows them.
func (b *Broker) Nodes() []string {
	var out []string
	for n := range b.liveNodes() {
		out = append(out, n)
	}
	return out
}

func (b *Broker) onSync(m *nats.Msg) {
	b.alive(m.Header.Get(hdrNode))
	r := nats.NewMsg(m.Reply)
	r.Header.Set(hdrNode, b.node)
	m.RespondMsg(r)
}

// onRequest runs a gateway request on its own goroutine: a request may
// itself wait on the cluster (a first subscription's barrier), and must
// not hold up the next one.
func (b *Broker) onRequest(m *nats.Msg) {
	if m.Reply == "" {
		return
	}
	b.alive(m.Header.Get(hdrNode))
	go func() {
		out := b.h.HandleRequest(m.Data)
		r := nats.NewMsg(m.Reply)
		r.Header.Set(hdrNode, b.node)
		r.Data = out
		m.RespondMsg(r)
	}()
}

func (b *Broker) usable() error {
	if b.closed.Load() {
		return fmt.Errorf("%w: closed", gateway.ErrBrokerUnavailable)
	}
	if !b.nc.IsConnected() || !b.ready.Load() {
		return fmt.Errorf("%w: not connected to NATS (%s)", gateway.ErrBrokerUnavailable, b.nc.Status())
	}
	return nil
}

// Subscribe subscribes to topic's subject and, before returning, makes
// sure every live node's server knows it: a barrier request to every
// node travels the same routes as the subscription, behind it.
func (b *Broker) Subscribe(topic string) error {
	subj, err := b.topicSubject(topic)
	if err != nil {
		return err
	}
	b.mu.Lock()
	if _, ok := b.subs[topic]; ok {
		b.mu.Unlock()
		return nil
	}
	sub, err := b.nc.ChanSubscribe(subj, b.pushes)
	if err != nil {
		b.mu.Unlock()
		return fmt.Errorf("%w: %v", gateway.ErrBrokerUnavailable, err)
	}
	sub.SetPendingLimits(-1, -1)
	b.subs[topic] = sub
	b.mu.Unlock()
	if err := b.usable(); err != nil {
		return err // kept: restored on reconnect
	}
	ctx, cancel := context.WithTimeout(context.Background(), b.opt.GatherTimeout)
	defer cancel()
	return b.barrier.wait(ctx, b.sync)
}

// Unsubscribe drops topic's subscription.
func (b *Broker) Unsubscribe(topic string) error {
	b.mu.Lock()
	sub := b.subs[topic]
	delete(b.subs, topic)
	b.mu.Unlock()
	if sub == nil {
		return nil
	}
	return sub.Unsubscribe()
}

// Publish sends a push to the nodes subscribed to topic.
func (b *Broker) Publish(ctx context.Context, topic string, payload []byte) error {
	subj, err := b.topicSubject(topic)
	if err != nil {
		return err
	}
	if err := b.usable(); err != nil {
		return err
	}
	if err := b.nc.Publish(subj, payload); err != nil {
		return fmt.Errorf("%w: %v", gateway.ErrBrokerUnavailable, err)
	}
	return nil
}

// Request sends an operation to node and returns its answer.
func (b *Broker) Request(ctx context.Context, node string, payload []byte) ([]byte, error) {
	if err := b.usable(); err != nil {
		return nil, err
	}
	m := nats.NewMsg(b.subject("n", node))
	m.Header.Set(hdrNode, b.node)
	m.Data = payload
	r, err := b.nc.RequestMsgWithContext(ctx, m)
	switch {
	case errors.Is(err, nats.ErrNoResponders):
		return nil, fmt.Errorf("%w: %q", gateway.ErrNodeNotFound, node)
	case err != nil:
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("%w: request to node %q: %v", gateway.ErrBrokerUnavailable, node, err)
	}
	return r.Data, nil
}

// Gather asks every other live node and returns their answers. It waits
// for every node in the live set and for any other that answers meanwhile;
// a live node silent for GatherTimeout is taken for dead and left out.
func (b *Broker) Gather(ctx context.Context, payload []byte) ([][]byte, error) {
	answers, err := b.scatter(ctx, b.subject("q"), payload)
	if err != nil {
		return nil, err
	}
	out := make([][]byte, 0, len(answers))
	for _, a := range answers {
		out = append(out, a)
	}
	return out, nil
}

// sync is one barrier round: every live node answers a sync request.
func (b *Broker) sync(ctx context.Context) error {
	_, err := b.scatter(ctx, b.subject("sync"), nil)
	return err
}

// scatter publishes a request on subj and collects one answer per node.
func (b *Broker) scatter(ctx context.Context, subj string, payload []byte) (map[string][]byte, error) {
	if b.closed.Load() || !b.nc.IsConnected() {
		return nil, fmt.Errorf("%w: not connected to NATS (%s)", gateway.ErrBrokerUnavailable, b.nc.Status())
	}
	if subj != b.subject("sync") {
		if err := b.usable(); err != nil {
			return nil, err
		}
	}
	want := b.liveNodes()
	inbox := b.nc.NewRespInbox()
	replies := make(chan *nats.Msg, 64)
	sub, err := b.nc.ChanSubscribe(inbox, replies)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", gateway.ErrBrokerUnavailable, err)
	}
	defer sub.Unsubscribe()
	sub.SetPendingLimits(-1, -1)
	m := nats.NewMsg(subj)
	m.Reply = inbox
	m.Header.Set(hdrNode, b.node)
	m.Data = payload
	if err := b.nc.PublishMsg(m); err != nil {
		return nil, fmt.Errorf("%w: %v", gateway.ErrBrokerUnavailable, err)
	}
	got := make(map[string][]byte, len(want))
	timer := time.NewTimer(b.opt.GatherTimeout)
	defer timer.Stop()
	for missing := len(want); missing > 0; {
		select {
		case r := <-replies:
			n := r.Header.Get(hdrNode)
			if n == "" || n == b.node {
				continue
			}
			if _, dup := got[n]; dup {
				continue
			}
			got[n] = r.Data
			b.alive(n)
			if want[n] {
				missing--
			}
		case <-timer.C:
			for n := range want {
				if _, ok := got[n]; !ok {
					b.forget(n)
				}
			}
			missing = 0
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return got, nil
}

// forget drops a node that did not answer in time.
func (b *Broker) forget(node string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.live[node]; ok {
		delete(b.live, node)
		b.log.Warn("natsbroker: node did not answer; left out until it is heard again", "node", node)
	}
}

// Dropped counts pushes from other nodes lost because this node's
// PushBuffer was full (NATS slow-consumer events).
func (b *Broker) Dropped() uint64 { return b.dropped.Load() }

// Healthy tells whether the broker is connected to NATS.
func (b *Broker) Healthy() bool {
	return !b.closed.Load() && b.nc != nil && b.nc.IsConnected() && b.ready.Load()
}

// Close says goodbye, disconnects and stops the embedded server.
func (b *Broker) Close() error {
	if b.closed.Swap(true) {
		return nil
	}
	if b.nc != nil {
		if b.nc.IsConnected() {
			bye, _ := json.Marshal(heartbeat{Node: b.node, Boot: b.boot, Bye: true})
			b.nc.Publish(b.subject("hb"), bye)
			b.nc.FlushTimeout(time.Second)
		}
		close(b.stop)
		b.nc.Close()
		b.done.Wait()
	}
	b.shutdownServer()
	return nil
}

// barrier coalesces sync rounds: a caller waits for a round that started
// after it asked, and concurrent callers share one.
type barrier struct {
	mu      sync.Mutex
	running bool
	next    *round // the round the next callers wait for
}

type round struct {
	done chan struct{}
	err  error
}

func (br *barrier) wait(ctx context.Context, run func(context.Context) error) error {
	br.mu.Lock()
	if br.next == nil {
		br.next = &round{done: make(chan struct{})}
	}
	r := br.next
	if !br.running {
		br.start(run)
	}
	br.mu.Unlock()
	select {
	case <-r.done:
		return r.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// start runs rounds until nobody waits (br.mu held).
func (br *barrier) start(run func(context.Context) error) {
	br.running = true
	r := br.next
	br.next = nil
	go func() {
		for r != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			r.err = run(ctx)
			cancel()
			close(r.done)
			br.mu.Lock()
			r = br.next
			br.next = nil
			if r == nil {
				br.running = false
			}
			br.mu.Unlock()
		}
	}()
}

// subscribed tells whether this node holds a subscription to topic.
func (b *Broker) subscribed(topic string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	_, ok := b.subs[topic]
	return ok
}
