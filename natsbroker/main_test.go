package natsbroker

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/workerman-go/workerman"
	"github.com/workerman-go/workerman/gateway"
	"github.com/workerman-go/workerman/protocol"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	// What runs before the tests (the ants pool the library starts at
	// init) is not a leak; whatever a test leaves behind is.
	before := goleak.IgnoreCurrent()
	code := m.Run()
	if code == 0 {
		if err := goleak.Find(before); err != nil {
			fmt.Fprintln(os.Stderr, "goroutines left behind:", err)
			code = 1
		}
	}
	os.Exit(code)
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	t.Cleanup(cancel)
	return c
}

// fast liveness for tests.
func testOptions(o Options) Options {
	o.Heartbeat = 100 * time.Millisecond
	o.NodeTimeout = 500 * time.Millisecond
	o.GatherTimeout = 2 * time.Second
	return o
}

// node is a gateway on a websocket:// worker with a NATS broker.
type node struct {
	*gateway.Gateway
	b    *Broker
	w    *workerman.Worker
	addr string
}

// newNode starts a node; with o.History its gateway keeps the cluster's
// history in JetStream. A client that connects with ?uid= is bound to it
// before it is reachable.
func newNode(t *testing.T, name string, o Options) *node {
	t.Helper()
	b, err := New(testOptions(o))
	if err != nil {
		t.Fatal(err)
	}
	w := &workerman.Worker{URI: "websocket://127.0.0.1:0"}
	w.OnWebSocketConnect = func(c *workerman.Connection, r *workerman.WebSocketRequest) error {
		c.SetValue(r.Query().Get("uid"))
		return nil
	}
	g, err := gateway.New(w, gateway.Options{Node: name, Broker: b, History: b.History()})
	if err != nil {
		t.Fatal(err)
	}
	g.Welcome = func(c gateway.ClientInfo) gateway.Message {
		out, _ := json.Marshal(map[string]string{"type": "welcome", "client_id": c.ID})
		return gateway.Message{Data: out}
	}
	g.OnConnect = func(id string) {
		if uid, _ := g.Connection(id).Value().(string); uid != "" {
			g.BindUID(context.Background(), id, uid)
		}
	}
	if err := w.Listen(); err != nil {
		t.Fatal(err)
	}
	n := &node{Gateway: g, b: b, w: w, addr: w.Addr().String()}
	t.Cleanup(n.stop)
	return n
}

func (n *node) stop() {
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	n.w.Shutdown(sctx)
	n.Gateway.Close()
}

// kill stops a node as SIGKILL would: no goodbye, its connections cut.
func (n *node) kill() {
	n.b.closed.Store(true)
	close(n.b.stop)
	n.b.nc.Close()
	n.b.done.Wait()
	n.b.shutdownServer()
	n.w.Close()
}

type client struct {
	*workerman.AsyncConnection
	id   string
	msgs chan string
}

func dial(t *testing.T, n *node) *client {
	t.Helper()
	c := &client{AsyncConnection: workerman.NewAsyncConnection("ws://" + n.addr + "/"), msgs: make(chan string, 1000)}
	c.OnMessage = func(a *workerman.AsyncConnection, d []byte) {
		if a.MessageType() == protocol.BinaryMessage {
			d = append([]byte("binary:"), d...)
		}
		c.msgs <- string(d)
	}
	if err := c.Connect(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Destroy)
	var w struct {
		ClientID string `json:"client_id"`
	}
	f := wait(t, c.msgs, "the welcome")
	if json.Unmarshal([]byte(f), &w) != nil || w.ClientID == "" {
		t.Fatalf("first frame %q", f)
	}
	c.id = w.ClientID
	return c
}

func (c *client) expect(t *testing.T, want string) {
	t.Helper()
	if got := wait(t, c.msgs, want); got != want {
		t.Fatalf("client %s got %q, want %q", c.id, got, want)
	}
}

// expectNothing proves nothing arrived before a marker sent now.
func (c *client) expectNothing(t *testing.T, g *gateway.Gateway) {
	t.Helper()
	if err := g.SendToClient(ctx(t), c.id, gateway.Text("marker")); err != nil {
		t.Fatal(err)
	}
	c.expect(t, "marker")
}

func wait[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(15 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}

// eventually polls cond with a bound.
func eventually(t *testing.T, what string, within time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %s", within, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// embeddedCluster starts n nodes with embedded servers routed to the first.
func embeddedCluster(t *testing.T, names ...string) []*node {
	first := newNode(t, names[0], Options{Cluster: "127.0.0.1:0"})
	nodes := []*node{first}
	seed := first.b.ClusterAddr().String()
	for _, name := range names[1:] {
		nodes = append(nodes, newNode(t, name, Options{Cluster: "127.0.0.1:0", Peers: []string{seed}}))
	}
	// Every node knows every other before the test goes on.
	for _, n := range nodes {
		eventually(t, n.Node()+" sees the others", 10*time.Second, func() bool { return len(n.b.Nodes()) == len(nodes)-1 })
	}
	return nodes
}

// natsServer runs a standalone nats-server on a random loopback port.
func natsServer(t *testing.T, port int) *server.Server {
	t.Helper()
	s, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: port, NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server did not start")
	}
	t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
	return s
}

func clientURL(s *server.Server) string {
	u := url.URL{Scheme: "nats", Host: s.Addr().String()}
	return u.String()
}
