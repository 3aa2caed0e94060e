package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/workerman-go/workerman"
	"github.com/workerman-go/workerman/internal/leakcheck"
	"github.com/workerman-go/workerman/protocol"
)

func TestMain(m *testing.M) { leakcheck.Main(m) }

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return c
}

// node is one gateway on a websocket:// worker on 127.0.0.1, stopped when
// the test ends. Every client gets a welcome with its ID.
type node struct {
	*Gateway
	addr   string
	events chan string // "connect <id>", "message <id> <text|binary> <data>", "close <id> <uid> <groups>"
}

// hubNodes starts n WebSocket nodes, n1 to nN, on one in-process Hub.
func hubNodes(t *testing.T, n int) []*node {
	t.Helper()
	hub := NewHub()
	var nodes []*node
	for i := 1; i <= n; i++ {
		nodes = append(nodes, newNode(t, "n"+strconv.Itoa(i), hub.Broker(), "websocket://127.0.0.1:0"))
	}
	return nodes
}

func newNode(t *testing.T, name string, b Broker, uri string) *node {
	t.Helper()
	return newNodeOpts(t, &workerman.Worker{URI: uri}, Options{Node: name, Broker: b}, nil)
}

// newNodeOpts is newNode with a worker and options of the test's own;
// setup, when set, runs before the worker listens.
func newNodeOpts(t *testing.T, w *workerman.Worker, opt Options, setup func(*node)) *node {
	t.Helper()
	g, err := New(w, opt)
	if err != nil {
		t.Fatal(err)
	}
	n := &node{Gateway: g, events: make(chan string, 1000)}
	g.OnConnect = func(id string) { n.events <- "connect " + id }
	g.OnMessage = func(id string, m Message) {
		typ := "text"
		if m.Binary {
			typ = "binary"
		}
		n.events <- fmt.Sprintf("message %s %s %s", id, typ, m.Data)
	}
	g.OnClose = func(id string, last ClientInfo) {
		n.events <- fmt.Sprintf("close %s %s %v", id, last.UID, last.Groups)
	}
	g.Welcome = func(c ClientInfo) Message {
		b, _ := json.Marshal(map[string]string{"type": "welcome", "client_id": c.ID, "uid": c.UID})
		return Message{Data: b}
	}
	if setup != nil {
		setup(n)
	}
	if err := w.Listen(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := w.Shutdown(sctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		g.Close()
	})
	n.addr = w.Addr().String()
	return n
}

// wsClient is a WebSocket client of a node.
type wsClient struct {
	*workerman.AsyncConnection
	id     string
	msgs   chan frame
	closed chan int // the close code it got
}

type frame struct {
	data   string
	binary bool
}

func dialWS(t *testing.T, n *node) *wsClient {
	t.Helper()
	c := &wsClient{
		AsyncConnection: workerman.NewAsyncConnection("ws://" + n.addr + "/"),
		msgs:            make(chan frame, 1000),
		closed:          make(chan int, 1),
	}
	c.OnMessage = func(a *workerman.AsyncConnection, d []byte) {
		c.msgs <- frame{string(d), a.MessageType() == protocol.BinaryMessage}
	}
	c.OnWebSocketClose = func(_ *workerman.AsyncConnection, code int, _ string) { c.closed <- code }
	if err := c.Connect(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Destroy)
	var w struct {
		Type     string `json:"type"`
		ClientID string `json:"client_id"`
	}
	f := wait(t, c.msgs, "the welcome")
	if json.Unmarshal([]byte(f.data), &w) != nil || w.ClientID == "" {
		t.Fatalf("first frame %q is not a welcome", f.data)
	}
	c.id = w.ClientID
	return c
}

func (c *wsClient) expect(t *testing.T, want string) {
	t.Helper()
	if got := wait(t, c.msgs, "message "+want); got.data != want {
		t.Fatalf("client %s got %q, want %q", c.id, got.data, want)
	}
}

// expectNothing: the next message is the marker sent to check that nothing
// came before it.
func (c *wsClient) expectNothing(t *testing.T, g *Gateway) {
	t.Helper()
	if err := g.SendToClient(ctx(t), c.id, Text("marker")); err != nil {
		t.Fatal(err)
	}
	c.expect(t, "marker")
}

func wait[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(10 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}
