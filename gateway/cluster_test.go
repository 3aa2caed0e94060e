package gateway

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/workerman-go/workerman"
	"github.com/workerman-go/workerman/internal/leakcheck"
	"github.com/workerman-go/workerman/protocol"
)

// The cluster tests: several gateways of one process on one Hub, each a
// node with its own websocket:// (or text://) worker and real clients.

// ---- a spying broker ----

// spyBroker forwards to a real Broker and records what the gateway asks of
// it (Subscribe, Unsubscribe) and what other nodes push to it (the pushes
// its Handler receives), so tests can see the interest-based routing.
type spyBroker struct {
	Broker

	mu      sync.Mutex
	subs    map[string]bool // the topics subscribed now
	nsub    map[string]int  // Subscribe calls by topic
	nunsub  map[string]int  // Unsubscribe calls by topic
	pushes  map[string]int  // pushes handed to the Handler, by topic
	oddness []string        // a Subscribe of a subscribed topic, an Unsubscribe of one that is not
}

func newSpy(b Broker) *spyBroker {
	return &spyBroker{
		Broker: b,
		subs:   make(map[string]bool),
		nsub:   make(map[string]int),
		nunsub: make(map[string]int),
		pushes: make(map[string]int),
	}
}

func (s *spyBroker) Start(node string, h Handler) error {
	return s.Broker.Start(node, spyHandler{s, h})
}

func (s *spyBroker) Subscribe(topic string) error {
	err := s.Broker.Subscribe(topic)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.subs[topic] {
		s.oddness = append(s.oddness, "subscribe of subscribed "+topic)
	}
	s.subs[topic] = true
	s.nsub[topic]++
	return err
}

func (s *spyBroker) Unsubscribe(topic string) error {
	err := s.Broker.Unsubscribe(topic)
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.subs[topic] {
		s.oddness = append(s.oddness, "unsubscribe of unsubscribed "+topic)
	}
	delete(s.subs, topic)
	s.nunsub[topic]++
	return err
}

// topics is what the node is subscribed to now, sorted.
func (s *spyBroker) topics() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, 0, len(s.subs))
	for k := range s.subs {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// counts is how many times topic was subscribed, unsubscribed and pushed
// to this node.
func (s *spyBroker) counts(topic string) (sub, unsub, pushes int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.nsub[topic], s.nunsub[topic], s.pushes[topic]
}

func (s *spyBroker) odd() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.oddness)
}

type spyHandler struct {
	s *spyBroker
	h Handler
}

func (h spyHandler) HandlePush(topic string, payload []byte) {
	h.s.mu.Lock()
	h.s.pushes[topic]++
	h.s.mu.Unlock()
	h.h.HandlePush(topic, payload)
}

func (h spyHandler) HandleRequest(payload []byte) []byte { return h.h.HandleRequest(payload) }

// ---- helpers ----

func mustOK(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// pushed checks that msg arrived exactly once at each client of want and
// at no other client of all: each client then gets a marker sent through
// via (a node that, for most clients, does not hold them).
func pushed(t *testing.T, via *Gateway, msg string, all []*wsClient, want ...*wsClient) {
	t.Helper()
	for _, c := range all {
		if slices.Contains(want, c) {
			c.expect(t, msg)
		}
		c.expectNothing(t, via)
	}
}

// waitEvent reads n's events until one starts with prefix.
func waitEvent(t *testing.T, n *node, prefix string) string {
	t.Helper()
	for {
		if ev := wait(t, n.events, "event "+prefix); strings.HasPrefix(ev, prefix) {
			return ev
		}
	}
}

// frameLog keeps every frame a client got, for tests with many pushes:
// the client's callback never blocks on it.
type frameLog struct {
	id     string // from the welcome
	mu     sync.Mutex
	frames []frame
	notify chan struct{}
}

func newFrameLog() *frameLog { return &frameLog{notify: make(chan struct{}, 1)} }

func (c *frameLog) add(f frame) {
	c.mu.Lock()
	c.frames = append(c.frames, f)
	c.mu.Unlock()
	select {
	case c.notify <- struct{}{}:
	default:
	}
}

// collector is a WebSocket (AsyncConnection) client with a frameLog.
type collector struct {
	*workerman.AsyncConnection
	*frameLog
	closed chan int
}

func connectCollector(t *testing.T, uri string) *collector {
	t.Helper()
	c := &collector{
		AsyncConnection: workerman.NewAsyncConnection(uri),
		frameLog:        newFrameLog(),
		closed:          make(chan int, 1),
	}
	c.OnMessage = func(a *workerman.AsyncConnection, d []byte) {
		c.add(frame{string(d), a.MessageType() == protocol.BinaryMessage})
	}
	c.OnWebSocketClose = func(_ *workerman.AsyncConnection, code int, _ string) {
		select {
		case c.closed <- code:
		default:
		}
	}
	if err := c.Connect(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Destroy)
	return c
}

// lineClient is a plain TCP client of a text:// worker: every line it
// reads (without its "\n") is a frame. eof is closed when the server
// closed the connection.
type lineClient struct {
	net.Conn
	*frameLog
	eof chan struct{}
}

func dialLines(t *testing.T, addr string) *lineClient {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c := &lineClient{Conn: nc, frameLog: newFrameLog(), eof: make(chan struct{})}
	go func() {
		defer close(c.eof)
		r := bufio.NewReader(nc)
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				if line != "" {
					c.add(frame{data: "unterminated " + line})
				}
				return
			}
			c.add(frame{data: strings.TrimSuffix(line, "\n")})
		}
	}()
	t.Cleanup(func() {
		nc.Close()
		<-c.eof
	})
	return c
}

// waitFrames waits until done holds for the frames received so far, and
// returns them.
func (c *frameLog) waitFrames(t *testing.T, what string, done func([]frame) bool) []frame {
	t.Helper()
	deadline := time.NewTimer(10 * time.Second)
	defer deadline.Stop()
	for {
		c.mu.Lock()
		ok := done(c.frames)
		var fs []frame
		if ok {
			fs = slices.Clone(c.frames)
		}
		c.mu.Unlock()
		if ok {
			return fs
		}
		select {
		case <-c.notify:
		case <-deadline.C:
			c.mu.Lock()
			n := len(c.frames)
			c.mu.Unlock()
			t.Fatalf("client %s: timed out waiting for %s (%d frames so far)", c.id, what, n)
		}
	}
}

// welcome waits for the first frame, checks that it is a welcome and
// records the client ID.
func (c *frameLog) welcome(t *testing.T) string {
	t.Helper()
	fs := c.waitFrames(t, "the welcome", func(f []frame) bool { return len(f) > 0 })
	id, ok := welcomeID(fs[0].data)
	if !ok {
		t.Fatalf("first frame %q is not a welcome", fs[0].data)
	}
	c.id = id
	return id
}

// until waits for a frame equal to s and returns every frame up to it.
func (c *frameLog) until(t *testing.T, s string) []frame {
	t.Helper()
	return c.waitFrames(t, strconv.Quote(s), func(f []frame) bool {
		return slices.ContainsFunc(f, func(x frame) bool { return x.data == s })
	})
}

func welcomeID(s string) (string, bool) {
	var w struct {
		Type     string `json:"type"`
		ClientID string `json:"client_id"`
	}
	if json.Unmarshal([]byte(s), &w) != nil || w.Type != "welcome" || w.ClientID == "" {
		return "", false
	}
	return w.ClientID, true
}

func wsURI(n *node) string { return "ws://" + n.addr + "/" }

// ---- 1. every method from a node that does not hold the client ----

func TestClusterEveryMethodRemote(t *testing.T) {
	leakcheck.Check(t)
	ns := hubNodes(t, 3)
	n1, n2, n3 := ns[0], ns[1], ns[2]
	c := ctx(t)
	a1, d := dialWS(t, n1), dialWS(t, n1)
	a2, cc := dialWS(t, n2), dialWS(t, n2)
	b := dialWS(t, n3)
	all := []*wsClient{a1, d, a2, cc, b}
	for cl, want := range map[*wsClient]string{a1: "n1", d: "n1", a2: "n2", cc: "n2", b: "n3"} {
		if NodeOf(cl.id) != want {
			t.Fatalf("client ID %q: NodeOf = %q, want %q", cl.id, NodeOf(cl.id), want)
		}
	}
	nodes := []*node{n1, n2, n3}

	// SendToClient from the other nodes.
	mustOK(t, n2.SendToClient(c, a1.id, Text("to a1")))
	pushed(t, n3.Gateway, "to a1", all, a1)
	mustOK(t, n1.SendToClient(c, b.id, Binary([]byte{1, 2, 0xff})))
	if f := wait(t, b.msgs, "the binary push"); f.data != "\x01\x02\xff" || !f.binary {
		t.Fatalf("binary SendToClient arrived as %+v", f)
	}
	pushed(t, n2.Gateway, "-", all)

	// BindUID of remote clients; alice has connections on n1 and n2.
	mustOK(t, n2.BindUID(c, a1.id, "alice"))
	mustOK(t, n1.BindUID(c, a2.id, "alice"))
	mustOK(t, n1.BindUID(c, b.id, "bob"))
	for _, n := range nodes {
		if uid, err := n.UIDByClientID(c, a1.id); err != nil || uid != "alice" {
			t.Fatalf("%s: UIDByClientID(a1) = %q, %v", n.Node(), uid, err)
		}
		if uid, err := n.UIDByClientID(c, b.id); err != nil || uid != "bob" {
			t.Fatalf("%s: UIDByClientID(b) = %q, %v", n.Node(), uid, err)
		}
		if uid, err := n.UIDByClientID(c, cc.id); err != nil || uid != "" {
			t.Fatalf("%s: UIDByClientID of an unbound client = %q, %v", n.Node(), uid, err)
		}
		if ids, err := n.ClientIDsByUID(c, "alice"); err != nil || !slices.Equal(ids, sorted(a1.id, a2.id)) {
			t.Fatalf("%s: ClientIDsByUID(alice) = %v, %v", n.Node(), ids, err)
		}
		if on, err := n.IsUIDOnline(c, "alice"); err != nil || !on {
			t.Fatalf("%s: IsUIDOnline(alice) = %v, %v", n.Node(), on, err)
		}
		if on, err := n.IsUIDOnline(c, "bob"); err != nil || !on {
			t.Fatalf("%s: IsUIDOnline(bob) = %v, %v", n.Node(), on, err)
		}
		if on, err := n.IsUIDOnline(c, "carol"); err != nil || on {
			t.Fatalf("%s: IsUIDOnline(carol) = %v, %v", n.Node(), on, err)
		}
		if k, err := n.UIDCount(c); err != nil || k != 2 {
			t.Fatalf("%s: UIDCount = %d, %v; want 2 (alice on two nodes counts once, bob)", n.Node(), k, err)
		}
		if k, err := n.ClientCount(c); err != nil || k != 5 {
			t.Fatalf("%s: ClientCount = %d, %v; want 5", n.Node(), k, err)
		}
	}
	// SendToUID from a node with no connection of the uid.
	mustOK(t, n3.SendToUID(c, "alice", Text("hi alice")))
	pushed(t, n3.Gateway, "hi alice", all, a1, a2)
	mustOK(t, n1.SendToUID(c, "bob", Text("hi bob")))
	pushed(t, n2.Gateway, "hi bob", all, b)
	mustOK(t, n1.SendToUID(c, "carol", Text("nobody")))
	pushed(t, n2.Gateway, "nobody", all)

	// Binding again to the same uid changes nothing; to another replaces it.
	mustOK(t, n3.BindUID(c, a2.id, "alice"))
	mustOK(t, n2.BindUID(c, b.id, "robert"))
	if on, err := n1.IsUIDOnline(c, "bob"); err != nil || on {
		t.Fatalf("IsUIDOnline(bob) after rebinding to robert = %v, %v", on, err)
	}
	if ids, err := n1.ClientIDsByUID(c, "robert"); err != nil || !slices.Equal(ids, []string{b.id}) {
		t.Fatalf("ClientIDsByUID(robert) = %v, %v", ids, err)
	}
	if k, err := n2.UIDCount(c); err != nil || k != 2 {
		t.Fatalf("UIDCount = %d, %v; want 2 (alice, robert)", k, err)
	}
	mustOK(t, n1.SendToUID(c, "bob", Text("old uid")))
	mustOK(t, n1.SendToUID(c, "alice", Text("alice again")))
	pushed(t, n1.Gateway, "alice again", all, a1, a2)

	// JoinGroup of remote clients, SendToGroup with remote exclusions.
	mustOK(t, n3.JoinGroup(c, a1.id, "room"))
	mustOK(t, n3.JoinGroup(c, a2.id, "room"))
	mustOK(t, n3.JoinGroup(c, cc.id, "room"))
	mustOK(t, n1.JoinGroup(c, b.id, "room"))
	mustOK(t, n2.JoinGroup(c, b.id, "other"))
	mustOK(t, n1.SendToGroup(c, "room", Text("room minus a2 b"), a2.id, b.id))
	pushed(t, n3.Gateway, "room minus a2 b", all, a1, cc)
	mustOK(t, n3.SendToGroup(c, "room", Text("room minus a1"), a1.id))
	pushed(t, n1.Gateway, "room minus a1", all, a2, cc, b)
	mustOK(t, n2.SendToGroup(c, "room", Text("whole room")))
	pushed(t, n1.Gateway, "whole room", all, a1, a2, cc, b)
	mustOK(t, n1.SendToGroup(c, "other", Text("other")))
	pushed(t, n2.Gateway, "other", all, b)
	for _, n := range nodes {
		if l, err := n.GroupClientIDs(c, "room"); err != nil || !slices.Equal(l, sorted(a1.id, a2.id, cc.id, b.id)) {
			t.Fatalf("%s: GroupClientIDs(room) = %v, %v", n.Node(), l, err)
		}
		if l, err := n.GroupUIDs(c, "room"); err != nil || !slices.Equal(l, []string{"alice", "robert"}) {
			t.Fatalf("%s: GroupUIDs(room) = %v, %v; want [alice robert]", n.Node(), l, err)
		}
		if k, err := n.GroupClientCount(c, "room"); err != nil || k != 4 {
			t.Fatalf("%s: GroupClientCount(room) = %d, %v", n.Node(), k, err)
		}
		if k, err := n.GroupClientCount(c, "none"); err != nil || k != 0 {
			t.Fatalf("%s: GroupClientCount(none) = %d, %v", n.Node(), k, err)
		}
		if l, err := n.Groups(c); err != nil || !slices.Equal(l, []string{"other", "room"}) {
			t.Fatalf("%s: Groups = %v, %v", n.Node(), l, err)
		}
	}

	// SendToAll with exclusions on other nodes.
	mustOK(t, n2.SendToAll(c, Text("all minus a1 b"), a1.id, b.id))
	pushed(t, n3.Gateway, "all minus a1 b", all, d, a2, cc)
	mustOK(t, n3.SendToAll(c, Text("all")))
	pushed(t, n1.Gateway, "all", all, all...)

	// LeaveGroup of a remote client.
	mustOK(t, n1.LeaveGroup(c, cc.id, "room"))
	mustOK(t, n3.LeaveGroup(c, d.id, "room")) // not a member: nothing happens
	if l, err := n3.GroupClientIDs(c, "room"); err != nil || !slices.Equal(l, sorted(a1.id, a2.id, b.id)) {
		t.Fatalf("GroupClientIDs(room) after LeaveGroup = %v, %v", l, err)
	}
	mustOK(t, n2.SendToGroup(c, "room", Text("room after leave")))
	pushed(t, n1.Gateway, "room after leave", all, a1, a2, b)

	// Ungroup from a node, on every node.
	mustOK(t, n2.Ungroup(c, "room"))
	for _, n := range nodes {
		if l, err := n.Groups(c); err != nil || !slices.Equal(l, []string{"other"}) {
			t.Fatalf("%s: Groups after Ungroup = %v, %v", n.Node(), l, err)
		}
		if k, err := n.GroupClientCount(c, "room"); err != nil || k != 0 {
			t.Fatalf("%s: GroupClientCount(room) after Ungroup = %d, %v", n.Node(), k, err)
		}
	}
	mustOK(t, n1.SendToGroup(c, "room", Text("ungrouped")))
	pushed(t, n2.Gateway, "ungrouped", all)
	if l, err := n1.GroupClientIDs(c, "other"); err != nil || !slices.Equal(l, []string{b.id}) {
		t.Fatalf("Ungroup(room) touched group other: %v, %v", l, err)
	}

	// UnbindUID of a remote client: only the uid it has.
	mustOK(t, n3.UnbindUID(c, a2.id, "bob"))
	if uid, err := n1.UIDByClientID(c, a2.id); err != nil || uid != "alice" {
		t.Fatalf("UnbindUID of another uid changed it to %q, %v", uid, err)
	}
	mustOK(t, n3.UnbindUID(c, a2.id, "alice"))
	if uid, err := n1.UIDByClientID(c, a2.id); err != nil || uid != "" {
		t.Fatalf("UIDByClientID after UnbindUID = %q, %v", uid, err)
	}
	if ids, err := n3.ClientIDsByUID(c, "alice"); err != nil || !slices.Equal(ids, []string{a1.id}) {
		t.Fatalf("ClientIDsByUID(alice) after UnbindUID = %v, %v", ids, err)
	}
	mustOK(t, n2.SendToUID(c, "alice", Text("alice after unbind")))
	pushed(t, n3.Gateway, "alice after unbind", all, a1)
	if k, err := n2.UIDCount(c); err != nil || k != 2 {
		t.Fatalf("UIDCount = %d, %v; want 2 (alice, robert)", k, err)
	}

	// Sessions of a remote client: set replaces, update merges.
	mustOK(t, n3.SetSession(c, a1.id, map[string]any{"name": "Alice", "n": 1, "obj": map[string]any{"x": 1}}))
	mustOK(t, n2.UpdateSession(c, a1.id, map[string]any{"n": 2, "room": "x"}))
	for _, n := range nodes {
		s, err := n.Session(c, a1.id)
		mustOK(t, err)
		if len(s) != 4 || s["name"] != "Alice" || s["n"] != 2.0 || s["room"] != "x" || s["obj"].(map[string]any)["x"] != 1.0 {
			t.Fatalf("%s: Session(a1) = %v", n.Node(), s)
		}
	}
	if s, err := n2.Session(c, d.id); err != nil || s == nil || len(s) != 0 {
		t.Fatalf("Session of a client without one = %v, %v; want an empty map", s, err)
	}
	mustOK(t, n2.SetSession(c, a1.id, map[string]any{"only": true}))
	if s, err := n3.Session(c, a1.id); err != nil || len(s) != 1 || s["only"] != true {
		t.Fatalf("Session after SetSession = %v, %v", s, err)
	}
	// A copy: changing it changes nothing.
	s, _ := n3.Session(c, a1.id)
	s["only"] = false
	if s, _ := n1.Session(c, a1.id); s["only"] != true {
		t.Fatalf("Session is not a copy: %v", s)
	}

	// IsOnline of remote, unknown and malformed IDs.
	for _, n := range nodes {
		for _, cl := range all {
			if on, err := n.IsOnline(c, cl.id); err != nil || !on {
				t.Fatalf("%s: IsOnline(%s) = %v, %v", n.Node(), cl.id, on, err)
			}
		}
		for _, id := range []string{"n3.nope.1", "n9.x.1", "garbage", ""} {
			if on, err := n.IsOnline(c, id); err != nil || on {
				t.Fatalf("%s: IsOnline(%q) = %v, %v", n.Node(), id, on, err)
			}
		}
	}
	for _, id := range []string{"n3.nope.1", "n9.x.1"} {
		if err := n1.SendToClient(c, id, Text("x")); !errors.Is(err, ErrClientNotFound) {
			t.Fatalf("SendToClient(%q) = %v, want ErrClientNotFound", id, err)
		}
		if _, err := n1.UIDByClientID(c, id); !errors.Is(err, ErrClientNotFound) {
			t.Fatalf("UIDByClientID(%q) = %v, want ErrClientNotFound", id, err)
		}
	}

	// CloseClient of a remote client with a final message.
	mustOK(t, n1.CloseClient(c, b.id, Text("bye")))
	b.expect(t, "bye")
	if code := wait(t, b.closed, "the close frame"); code != 1000 {
		t.Fatalf("close code %d, want 1000", code)
	}
	if ev := waitEvent(t, n3, "close "); ev != "close "+b.id+" robert [other]" {
		t.Fatalf("OnClose event %q", ev)
	}
	rest := []*wsClient{a1, d, a2, cc}
	for _, n := range nodes {
		if on, err := n.IsOnline(c, b.id); err != nil || on {
			t.Fatalf("%s: IsOnline of a closed client = %v, %v", n.Node(), on, err)
		}
		if k, err := n.ClientCount(c); err != nil || k != 4 {
			t.Fatalf("%s: ClientCount = %d, %v; want 4", n.Node(), k, err)
		}
		if k, err := n.UIDCount(c); err != nil || k != 1 {
			t.Fatalf("%s: UIDCount = %d, %v; want 1 (alice)", n.Node(), k, err)
		}
		if l, err := n.Groups(c); err != nil || len(l) != 0 {
			t.Fatalf("%s: Groups after the last member closed = %v, %v", n.Node(), l, err)
		}
		if err := n.SendToClient(c, b.id, Text("x")); !errors.Is(err, ErrClientNotFound) {
			t.Fatalf("%s: SendToClient of a closed client = %v", n.Node(), err)
		}
	}
	mustOK(t, n3.SendToAll(c, Text("after close")))
	pushed(t, n2.Gateway, "after close", rest, rest...)
}

// ---- 2. consistency: an operation that returned has taken effect ----

func TestClusterConsistency(t *testing.T) {
	leakcheck.Check(t)
	ns := hubNodes(t, 3)
	n1, n2, n3 := ns[0], ns[1], ns[2]
	c := ctx(t)
	x := dialWS(t, n2)
	other := dialWS(t, n3)
	all := []*wsClient{x, other}
	for i := range 30 {
		grp, uid := fmt.Sprintf("g%d", i), fmt.Sprintf("u%d", i)
		// Join on n1, push at once from n3 (which holds no member).
		mustOK(t, n1.JoinGroup(c, x.id, grp))
		mustOK(t, n3.SendToGroup(c, grp, Text("in "+grp)))
		x.expect(t, "in "+grp)
		// Leave from n3, push at once from n1.
		mustOK(t, n3.LeaveGroup(c, x.id, grp))
		mustOK(t, n1.SendToGroup(c, grp, Text("left "+grp)))
		// Bind from n3, push at once from n1; unbind, push.
		mustOK(t, n3.BindUID(c, x.id, uid))
		mustOK(t, n1.SendToUID(c, uid, Text("to "+uid)))
		x.expect(t, "to "+uid)
		mustOK(t, n1.UnbindUID(c, x.id, uid))
		mustOK(t, n3.SendToUID(c, uid, Text("unbound "+uid)))
		pushed(t, n1.Gateway, "-", all)
	}

	// A client is reachable from its welcome on: a push from another node
	// right after the welcome, and a join right after it.
	for i := range 10 {
		y := dialWS(t, n3)
		mustOK(t, n1.SendToAll(c, Text(fmt.Sprintf("all %d", i)), x.id, other.id))
		y.expect(t, fmt.Sprintf("all %d", i))
		mustOK(t, n2.JoinGroup(c, y.id, "late"))
		mustOK(t, n1.SendToGroup(c, "late", Text("late")))
		y.expect(t, "late")
		mustOK(t, n2.CloseClient(c, y.id))
		wait(t, y.closed, "the close")
	}

	// Nothing pushed after CloseClient returned reaches the client: it
	// gets its final message, then the close.
	z := dialWS(t, n3)
	mustOK(t, n2.JoinGroup(c, z.id, "zg"))
	mustOK(t, n1.BindUID(c, z.id, "zed"))
	mustOK(t, n1.CloseClient(c, z.id, Text("bye")))
	mustOK(t, n2.SendToGroup(c, "zg", Text("late group")))
	mustOK(t, n2.SendToUID(c, "zed", Text("late uid")))
	mustOK(t, n2.SendToAll(c, Text("late all"), x.id, other.id))
	if err := n2.SendToClient(c, z.id, Text("late client")); err != nil && !errors.Is(err, ErrClientNotFound) {
		t.Fatalf("SendToClient after CloseClient: %v", err)
	}
	if code := wait(t, z.closed, "the close"); code != 1000 {
		t.Fatalf("close code %d", code)
	}
	var got []string
	for len(z.msgs) > 0 {
		got = append(got, (<-z.msgs).data)
	}
	if !slices.Equal(got, []string{"bye"}) {
		t.Fatalf("after CloseClient the client got %q, want only the final message", got)
	}
	pushed(t, n3.Gateway, "-", all)
}

// TestClusterCloseClientTakesEffect: once CloseClient returned, the client
// is gone from every node's answers (push.md, "Consistency": an API call
// that answered has taken effect cluster-wide).
func TestClusterCloseClientTakesEffect(t *testing.T) {
	leakcheck.Check(t)
	ns := hubNodes(t, 2)
	n1, n2 := ns[0], ns[1]
	c := ctx(t)
	stay := dialWS(t, n1)
	mustOK(t, n1.JoinGroup(c, stay.id, "room"))
	var failures []string
	for i := range 10 {
		z := dialWS(t, n2)
		mustOK(t, n1.JoinGroup(c, z.id, "room"))
		mustOK(t, n1.BindUID(c, z.id, "zed"))
		mustOK(t, n1.CloseClient(c, z.id))
		// Asked at once, from the other node.
		if on, err := n1.IsOnline(c, z.id); err != nil || on {
			failures = append(failures, fmt.Sprintf("#%d IsOnline = %v, %v", i, on, err))
		}
		if k, err := n1.ClientCount(c); err != nil || k != 1 {
			failures = append(failures, fmt.Sprintf("#%d ClientCount = %d, %v", i, k, err))
		}
		if l, err := n1.GroupClientIDs(c, "room"); err != nil || !slices.Equal(l, []string{stay.id}) {
			failures = append(failures, fmt.Sprintf("#%d GroupClientIDs = %v, %v", i, l, err))
		}
		if on, err := n1.IsUIDOnline(c, "zed"); err != nil || on {
			failures = append(failures, fmt.Sprintf("#%d IsUIDOnline = %v, %v", i, on, err))
		}
		if err := n1.JoinGroup(c, z.id, "after"); !errors.Is(err, ErrClientNotFound) {
			failures = append(failures, fmt.Sprintf("#%d JoinGroup after CloseClient = %v", i, err))
		}
		wait(t, z.closed, "the close")
		waitEvent(t, n2, "close "+z.id)
	}
	if len(failures) > 0 {
		t.Fatalf("right after CloseClient returned, the closed client is still in the answers: %d stale answers, e.g. %s", len(failures), strings.Join(failures[:min(4, len(failures))], "; "))
	}
}

// ---- 3. interest: pushes travel only to the nodes that hold a member ----

func TestClusterInterest(t *testing.T) {
	leakcheck.Check(t)
	hub := NewHub()
	s1, s2, s3 := newSpy(hub.Broker()), newSpy(hub.Broker()), newSpy(hub.Broker())
	n1 := newNode(t, "n1", s1, "websocket://127.0.0.1:0")
	n2 := newNode(t, "n2", s2, "websocket://127.0.0.1:0")
	n3 := newNode(t, "n3", s3, "websocket://127.0.0.1:0")
	c := ctx(t)
	z := dialWS(t, n1) // n1 holds a client, never a member
	x, x2 := dialWS(t, n2), dialWS(t, n2)
	y := dialWS(t, n3)
	all := []*wsClient{z, x, x2, y}
	spies := []*spyBroker{s1, s2, s3}
	wantTopics := func(want ...[]string) {
		t.Helper()
		for i, s := range spies {
			if got := s.topics(); !slices.Equal(got, want[i]) {
				t.Fatalf("n%d is subscribed to %v, want %v", i+1, got, want[i])
			}
		}
	}
	wantCounts := func(s *spyBroker, topic string, sub, unsub, pushes int) {
		t.Helper()
		if a, b, p := s.counts(topic); a != sub || b != unsub || p != pushes {
			t.Fatalf("%s: %d subscribe, %d unsubscribe, %d pushes; want %d, %d, %d", topic, a, b, p, sub, unsub, pushes)
		}
	}
	none := []string{}
	wantTopics(none, none, none)

	// The first member subscribes its node, and only its node.
	mustOK(t, n1.JoinGroup(c, x.id, "g"))
	wantTopics(none, []string{"group:g"}, none)
	mustOK(t, n1.SendToGroup(c, "g", Text("g1")))
	pushed(t, n3.Gateway, "g1", all, x)
	wantCounts(s2, "group:g", 1, 0, 1)
	wantCounts(s3, "group:g", 0, 0, 0)
	wantCounts(s1, "group:g", 0, 0, 0)
	// A second member on the same node does not subscribe again.
	mustOK(t, n3.JoinGroup(c, x2.id, "g"))
	mustOK(t, n1.JoinGroup(c, y.id, "g"))
	wantTopics(none, []string{"group:g"}, []string{"group:g"})
	mustOK(t, n3.SendToGroup(c, "g", Text("g2")))
	pushed(t, n1.Gateway, "g2", all, x, x2, y)
	wantCounts(s2, "group:g", 1, 0, 2)
	wantCounts(s3, "group:g", 1, 0, 0) // n3 published: its members got it locally
	wantCounts(s1, "group:g", 0, 0, 0)
	mustOK(t, n2.SendToGroup(c, "g", Text("g3")))
	pushed(t, n1.Gateway, "g3", all, x, x2, y)
	wantCounts(s2, "group:g", 1, 0, 2)
	wantCounts(s3, "group:g", 1, 0, 1)
	wantCounts(s1, "group:g", 0, 0, 0)

	// The last member leaving unsubscribes (leave).
	mustOK(t, n1.LeaveGroup(c, x.id, "g"))
	wantTopics(none, []string{"group:g"}, []string{"group:g"})
	mustOK(t, n3.LeaveGroup(c, x2.id, "g"))
	wantTopics(none, none, []string{"group:g"})
	wantCounts(s2, "group:g", 1, 1, 2)
	mustOK(t, n1.SendToGroup(c, "g", Text("g4")))
	pushed(t, n2.Gateway, "g4", all, y)
	wantCounts(s2, "group:g", 1, 1, 2)
	wantCounts(s3, "group:g", 1, 0, 2)

	// Uids: bind subscribes, rebinding moves the interest, unbind drops it.
	mustOK(t, n1.BindUID(c, x.id, "u"))
	mustOK(t, n3.BindUID(c, x2.id, "u"))
	wantTopics(none, []string{"uid:u"}, []string{"group:g"})
	mustOK(t, n3.SendToUID(c, "u", Text("u1")))
	pushed(t, n1.Gateway, "u1", all, x, x2)
	wantCounts(s2, "uid:u", 1, 0, 1)
	wantCounts(s1, "uid:u", 0, 0, 0)
	wantCounts(s3, "uid:u", 0, 0, 0)
	mustOK(t, n1.UnbindUID(c, x.id, "u"))
	wantTopics(none, []string{"uid:u"}, []string{"group:g"})
	mustOK(t, n1.BindUID(c, x2.id, "v")) // replaces u: the last member of u
	wantTopics(none, []string{"uid:v"}, []string{"group:g"})
	wantCounts(s2, "uid:u", 1, 1, 1)
	mustOK(t, n1.SendToUID(c, "u", Text("u2")))
	pushed(t, n1.Gateway, "u2", all)
	wantCounts(s2, "uid:u", 1, 1, 1)
	mustOK(t, n3.UnbindUID(c, x2.id, "v"))
	wantTopics(none, none, []string{"group:g"})
	wantCounts(s2, "uid:v", 1, 1, 0)

	// Ungroup unsubscribes every node.
	mustOK(t, n2.JoinGroup(c, x.id, "g"))
	wantTopics(none, []string{"group:g"}, []string{"group:g"})
	mustOK(t, n1.Ungroup(c, "g"))
	wantTopics(none, none, none)

	// Close: the last member's close unsubscribes its node.
	mustOK(t, n2.JoinGroup(c, y.id, "h"))
	mustOK(t, n2.BindUID(c, y.id, "w"))
	wantTopics(none, none, []string{"group:h", "uid:w"})
	mustOK(t, n1.CloseClient(c, y.id))
	wait(t, y.closed, "the close")
	waitEvent(t, n3, "close "+y.id)
	wantTopics(none, none, none)
	wantCounts(s3, "group:h", 1, 1, 0)
	wantCounts(s3, "uid:w", 1, 1, 0)
	rest := []*wsClient{z, x, x2}
	mustOK(t, n1.SendToGroup(c, "h", Text("h")))
	mustOK(t, n2.SendToUID(c, "w", Text("w")))
	pushed(t, n1.Gateway, "-", rest)
	wantCounts(s3, "group:h", 1, 1, 0)
	wantCounts(s3, "uid:w", 1, 1, 0)

	// "all" reaches every node without a subscription.
	mustOK(t, n2.SendToAll(c, Text("everyone")))
	pushed(t, n3.Gateway, "everyone", rest, rest...)
	wantCounts(s1, "all", 0, 0, 1)
	wantCounts(s3, "all", 0, 0, 1)
	wantCounts(s2, "all", 0, 0, 0)
	for i, s := range spies {
		if o := s.odd(); len(o) > 0 {
			t.Fatalf("n%d: %v", i+1, o)
		}
	}
}

// ---- 4. a node leaves; its name comes back ----

func TestClusterNodeLeaves(t *testing.T) {
	leakcheck.Check(t)
	hub := NewHub()
	n1 := newNode(t, "n1", hub.Broker(), "websocket://127.0.0.1:0")
	n2 := newNode(t, "n2", hub.Broker(), "websocket://127.0.0.1:0")
	n3 := newNode(t, "n3", hub.Broker(), "websocket://127.0.0.1:0")
	c := ctx(t)
	a, b := dialWS(t, n1), dialWS(t, n2)
	c1, c2 := dialWS(t, n3), dialWS(t, n3)
	mustOK(t, n2.BindUID(c, a.id, "alice"))
	mustOK(t, n1.BindUID(c, c2.id, "alice"))
	mustOK(t, n1.BindUID(c, c1.id, "carol"))
	for _, cl := range []*wsClient{a, b, c1} {
		mustOK(t, n2.JoinGroup(c, cl.id, "room"))
	}
	mustOK(t, n1.JoinGroup(c, c2.id, "n3only"))
	if k, err := n1.ClientCount(c); err != nil || k != 4 {
		t.Fatalf("ClientCount = %d, %v", k, err)
	}

	// n3 leaves the cluster: its gateway first (as if it died), then its
	// worker.
	mustOK(t, n3.Close())
	check := func(when string) {
		t.Helper()
		for _, n := range []*node{n1, n2} {
			if k, err := n.ClientCount(c); err != nil || k != 2 {
				t.Fatalf("%s: %s: ClientCount = %d, %v; want 2", when, n.Node(), k, err)
			}
			if l, err := n.GroupClientIDs(c, "room"); err != nil || !slices.Equal(l, sorted(a.id, b.id)) {
				t.Fatalf("%s: %s: GroupClientIDs(room) = %v, %v", when, n.Node(), l, err)
			}
			if l, err := n.Groups(c); err != nil || !slices.Equal(l, []string{"room"}) {
				t.Fatalf("%s: %s: Groups = %v, %v", when, n.Node(), l, err)
			}
			if l, err := n.ClientIDsByUID(c, "alice"); err != nil || !slices.Equal(l, []string{a.id}) {
				t.Fatalf("%s: %s: ClientIDsByUID(alice) = %v, %v", when, n.Node(), l, err)
			}
			if k, err := n.UIDCount(c); err != nil || k != 1 {
				t.Fatalf("%s: %s: UIDCount = %d, %v; want 1", when, n.Node(), k, err)
			}
			if on, err := n.IsUIDOnline(c, "carol"); err != nil || on {
				t.Fatalf("%s: %s: IsUIDOnline(carol) = %v, %v", when, n.Node(), on, err)
			}
			if l, err := n.GroupUIDs(c, "room"); err != nil || !slices.Equal(l, []string{"alice"}) {
				t.Fatalf("%s: %s: GroupUIDs(room) = %v, %v", when, n.Node(), l, err)
			}
			for _, gone := range []*wsClient{c1, c2} {
				if on, err := n.IsOnline(c, gone.id); err != nil || on {
					t.Fatalf("%s: %s: IsOnline of a client of the gone node = %v, %v", when, n.Node(), on, err)
				}
				for what, err := range map[string]error{
					"SendToClient":  n.SendToClient(c, gone.id, Text("x")),
					"BindUID":       n.BindUID(c, gone.id, "x"),
					"UnbindUID":     n.UnbindUID(c, gone.id, "carol"),
					"JoinGroup":     n.JoinGroup(c, gone.id, "x"),
					"LeaveGroup":    n.LeaveGroup(c, gone.id, "room"),
					"CloseClient":   n.CloseClient(c, gone.id),
					"SetSession":    n.SetSession(c, gone.id, map[string]any{"a": 1}),
					"UpdateSession": n.UpdateSession(c, gone.id, map[string]any{"a": 1}),
				} {
					if !errors.Is(err, ErrClientNotFound) {
						t.Fatalf("%s: %s: %s of a client of the gone node = %v, want ErrClientNotFound", when, n.Node(), what, err)
					}
				}
				if _, err := n.UIDByClientID(c, gone.id); !errors.Is(err, ErrClientNotFound) {
					t.Fatalf("%s: %s: UIDByClientID = %v, want ErrClientNotFound", when, n.Node(), err)
				}
				if _, err := n.Session(c, gone.id); !errors.Is(err, ErrClientNotFound) {
					t.Fatalf("%s: %s: Session = %v, want ErrClientNotFound", when, n.Node(), err)
				}
			}
		}
		// The others keep pushing.
		live := []*wsClient{a, b}
		mustOK(t, n1.SendToGroup(c, "room", Text("room "+when)))
		pushed(t, n2.Gateway, "room "+when, live, a, b)
		mustOK(t, n2.SendToAll(c, Text("all "+when)))
		pushed(t, n1.Gateway, "all "+when, live, a, b)
		mustOK(t, n1.SendToUID(c, "alice", Text("alice "+when)))
		pushed(t, n2.Gateway, "alice "+when, live, a)
	}
	check("gateway closed")
	// The closed gateway refuses what needs the cluster.
	if err := n3.SendToAll(c, Text("x")); !errors.Is(err, ErrClosed) {
		t.Fatalf("SendToAll on a closed gateway = %v, want ErrClosed", err)
	}
	if _, err := n3.ClientCount(c); !errors.Is(err, ErrClosed) {
		t.Fatalf("ClientCount on a closed gateway = %v, want ErrClosed", err)
	}
	if err := n3.SendToClient(c, a.id, Text("x")); !errors.Is(err, ErrClosed) {
		t.Fatalf("SendToClient on a closed gateway = %v, want ErrClosed", err)
	}
	// A push from the others does not reach the gone node's clients.
	mustOK(t, n1.SendToAll(c, Text("not to n3")))
	mustOK(t, n1.SendToGroup(c, "room", Text("not to n3")))
	mustOK(t, n1.SendToUID(c, "alice", Text("not to n3")))
	mustOK(t, n1.SendToGroup(c, "n3only", Text("not to n3")))
	a.expect(t, "not to n3")
	a.expect(t, "not to n3")
	a.expect(t, "not to n3")
	b.expect(t, "not to n3")
	b.expect(t, "not to n3")
	pushed(t, n2.Gateway, "-", []*wsClient{a, b})
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	mustOK(t, n3.Worker().Shutdown(sctx))
	for _, gone := range []*wsClient{c1, c2} {
		wait(t, gone.closed, "the close of a client of the stopped node")
		for len(gone.msgs) > 0 {
			if f := <-gone.msgs; f.data == "not to n3" {
				t.Fatalf("a client of the gone node got a push sent after it left")
			}
		}
	}
	check("worker stopped")

	// A live name cannot start twice.
	for _, name := range []string{"n1", "n2"} {
		w := &workerman.Worker{URI: "websocket://127.0.0.1:0"}
		if g, err := New(w, Options{Node: name, Broker: hub.Broker()}); !errors.Is(err, ErrNodeExists) {
			if g != nil {
				g.Close()
			}
			t.Fatalf("New with the live name %q = %v, want ErrNodeExists", name, err)
		}
	}
	// After it left, the name starts again, with new client IDs.
	n3b := newNode(t, "n3", hub.Broker(), "websocket://127.0.0.1:0")
	old := []string{c1.id, c2.id}
	d1, d2, d3 := dialWS(t, n3b), dialWS(t, n3b), dialWS(t, n3b)
	for _, d := range []*wsClient{d1, d2, d3} {
		if slices.Contains(old, d.id) {
			t.Fatalf("the restarted node reused client ID %s", d.id)
		}
		if NodeOf(d.id) != "n3" {
			t.Fatalf("client ID %q of the restarted node", d.id)
		}
	}
	for _, id := range old {
		if on, err := n1.IsOnline(c, id); err != nil || on {
			t.Fatalf("an old client ID of n3 is online again on the restarted node: %v, %v", on, err)
		}
		if err := n1.SendToClient(c, id, Text("x")); !errors.Is(err, ErrClientNotFound) {
			t.Fatalf("SendToClient of an old ID of n3 = %v, want ErrClientNotFound", err)
		}
		if err := n3b.SendToClient(c, id, Text("x")); !errors.Is(err, ErrClientNotFound) {
			t.Fatalf("SendToClient of an old ID on the restarted n3 = %v, want ErrClientNotFound", err)
		}
	}
	live := []*wsClient{a, b, d1, d2, d3}
	if k, err := n1.ClientCount(c); err != nil || k != 5 {
		t.Fatalf("ClientCount with the restarted node = %d, %v", k, err)
	}
	mustOK(t, n1.JoinGroup(c, d2.id, "room"))
	mustOK(t, n2.SendToGroup(c, "room", Text("room again")))
	pushed(t, n1.Gateway, "room again", live, a, b, d2)
	mustOK(t, n1.SendToAll(c, Text("all again")))
	pushed(t, n3b.Gateway, "all again", live, live...)
}

// ---- 5. the welcome comes first, and nothing after it is missed ----

func TestClusterWelcomeOrderingUnderLoad(t *testing.T) {
	leakcheck.Check(t)
	nodes := hubNodes(t, 3)
	c := ctx(t)
	// The pusher runs until target (set once every client was welcomed)
	// is reached.
	var target, last atomic.Int64
	pusherDone := make(chan error, 1)
	go func() {
		for i := int64(1); ; i++ {
			if tg := target.Load(); tg > 0 && i > tg {
				pusherDone <- nil
				return
			}
			if err := nodes[0].SendToAll(c, Text(strconv.FormatInt(i, 10))); err != nil {
				pusherDone <- err
				return
			}
			last.Store(i)
		}
	}()
	const clients = 50
	cs := make([]*collector, clients)
	for i := range cs {
		cs[i] = connectCollector(t, wsURI(nodes[i%len(nodes)]))
	}
	for _, cl := range cs {
		cl.welcome(t)
	}
	// Let the pushes run on a little after the last welcome.
	start := last.Load()
	target.Store(start + 50)
	mustOK(t, wait(t, pusherDone, "the pusher"))
	final := last.Load()
	mustOK(t, nodes[1].SendToAll(c, Text("end")))
	for _, cl := range cs {
		fs := cl.until(t, "end")
		if fs[len(fs)-1].data != "end" {
			t.Fatalf("client %s: frames after end: %q", cl.id, fs[len(fs)-1].data)
		}
		nums := fs[1 : len(fs)-1]
		if len(nums) == 0 {
			t.Fatalf("client %s got no numbered push, though it was welcomed before the last %d", cl.id, final-start)
		}
		first, err := strconv.ParseInt(nums[0].data, 10, 64)
		if err != nil {
			t.Fatalf("client %s: frame %q after the welcome", cl.id, nums[0].data)
		}
		for k, f := range nums {
			if f.data != strconv.FormatInt(first+int64(k), 10) {
				t.Fatalf("client %s (node %s): push #%d after the welcome is %q, want %d (first %d, last %d)",
					cl.id, NodeOf(cl.id), k, f.data, first+int64(k), first, final)
			}
		}
		if got := first + int64(len(nums)) - 1; got != final {
			t.Fatalf("client %s: last numbered push %d, want %d", cl.id, got, final)
		}
		if _, isWelcome := welcomeID(fs[0].data); !isWelcome {
			t.Fatalf("client %s: first frame %q", cl.id, fs[0].data)
		}
	}
}

// ---- 6. concurrency ----

// clusterModel is what the tests of concurrent operations expect: each
// client's uid and groups.
type clusterModel struct {
	uid    map[string]string
	groups map[string]map[string]bool
}

// checkAgainst compares every query on every node, and every node's
// subscriptions, with the final membership m.
func checkAgainst(t *testing.T, nodes []*node, spies []*spyBroker, m clusterModel, groups, uids []string) {
	t.Helper()
	c := ctx(t)
	ids := make([]string, 0, len(m.uid))
	for id := range m.uid {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	wantTopics := make(map[string][]string) // by node
	var wantGroups []string
	distinctUIDs := map[string]bool{}
	for _, grp := range groups {
		var members, muids []string
		for _, id := range ids {
			if m.groups[id][grp] {
				members = append(members, id)
				if u := m.uid[id]; u != "" && !slices.Contains(muids, u) {
					muids = append(muids, u)
				}
				if !slices.Contains(wantTopics[NodeOf(id)], "group:"+grp) {
					wantTopics[NodeOf(id)] = append(wantTopics[NodeOf(id)], "group:"+grp)
				}
			}
		}
		slices.Sort(muids)
		if len(members) > 0 {
			wantGroups = append(wantGroups, grp)
		}
		for _, n := range nodes {
			if l, err := n.GroupClientIDs(c, grp); err != nil || !slices.Equal(l, members) {
				t.Errorf("%s: GroupClientIDs(%s) = %v, %v; want %v", n.Node(), grp, l, err, members)
			}
			if l, err := n.GroupUIDs(c, grp); err != nil || !slices.Equal(l, muids) {
				t.Errorf("%s: GroupUIDs(%s) = %v, %v; want %v", n.Node(), grp, l, err, muids)
			}
			if k, err := n.GroupClientCount(c, grp); err != nil || k != len(members) {
				t.Errorf("%s: GroupClientCount(%s) = %d, %v; want %d", n.Node(), grp, k, err, len(members))
			}
		}
	}
	slices.Sort(wantGroups)
	for _, u := range uids {
		var members []string
		for _, id := range ids {
			if m.uid[id] == u {
				members = append(members, id)
				distinctUIDs[u] = true
				if !slices.Contains(wantTopics[NodeOf(id)], "uid:"+u) {
					wantTopics[NodeOf(id)] = append(wantTopics[NodeOf(id)], "uid:"+u)
				}
			}
		}
		for _, n := range nodes {
			if l, err := n.ClientIDsByUID(c, u); err != nil || !slices.Equal(l, members) {
				t.Errorf("%s: ClientIDsByUID(%s) = %v, %v; want %v", n.Node(), u, l, err, members)
			}
			if on, err := n.IsUIDOnline(c, u); err != nil || on != (len(members) > 0) {
				t.Errorf("%s: IsUIDOnline(%s) = %v, %v", n.Node(), u, on, err)
			}
		}
	}
	for _, n := range nodes {
		if l, err := n.Groups(c); err != nil || !slices.Equal(l, wantGroups) {
			t.Errorf("%s: Groups = %v, %v; want %v", n.Node(), l, err, wantGroups)
		}
		if k, err := n.UIDCount(c); err != nil || k != len(distinctUIDs) {
			t.Errorf("%s: UIDCount = %d, %v; want %d", n.Node(), k, err, len(distinctUIDs))
		}
		for _, id := range ids {
			if u, err := n.UIDByClientID(c, id); err != nil || u != m.uid[id] {
				t.Errorf("%s: UIDByClientID(%s) = %q, %v; want %q", n.Node(), id, u, err, m.uid[id])
			}
		}
	}
	for i, s := range spies {
		want := wantTopics[nodes[i].Node()]
		slices.Sort(want)
		if want == nil {
			want = []string{}
		}
		if got := s.topics(); !slices.Equal(got, want) {
			t.Errorf("%s is subscribed to %v; its members make %v", nodes[i].Node(), got, want)
		}
		if o := s.odd(); len(o) > 0 {
			t.Errorf("%s: %v", nodes[i].Node(), o)
		}
	}
}

// concurrentCluster starts three nodes with spies and k collectors on each.
func concurrentCluster(t *testing.T, k int) ([]*node, []*spyBroker, []*collector) {
	hub := NewHub()
	var nodes []*node
	var spies []*spyBroker
	for i := range 3 {
		s := newSpy(hub.Broker())
		spies = append(spies, s)
		nodes = append(nodes, newNode(t, fmt.Sprintf("n%d", i+1), s, "websocket://127.0.0.1:0"))
	}
	var cs []*collector
	for i := range 3 * k {
		cs = append(cs, connectCollector(t, wsURI(nodes[i%3])))
	}
	for _, cl := range cs {
		cl.welcome(t)
	}
	return nodes, spies, cs
}

// pushLoop pushes to the groups, uids and everyone from every node until
// stop is closed.
func pushLoop(c context.Context, nodes []*node, groups, uids []string, stop <-chan struct{}, errs chan<- error) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := 0; ; i++ {
		select {
		case <-stop:
			errs <- nil
			return
		default:
		}
		n := nodes[r.IntN(len(nodes))]
		msg := Text("p" + strconv.Itoa(i))
		var err error
		switch r.IntN(3) {
		case 0:
			err = n.SendToGroup(c, groups[r.IntN(len(groups))], msg)
		case 1:
			err = n.SendToUID(c, uids[r.IntN(len(uids))], msg)
		default:
			err = n.SendToAll(c, msg)
		}
		if err != nil {
			errs <- err
			return
		}
	}
}

// TestClusterConcurrentMembership: every client is changed by one
// goroutine (so its final state is known), from random nodes, on the same
// few groups and uids as every other goroutine, while pushes flow.
func TestClusterConcurrentMembership(t *testing.T) {
	leakcheck.Check(t)
	nodes, spies, cs := concurrentCluster(t, 4)
	c := ctx(t)
	groups := []string{"g0", "g1", "g2"}
	uids := []string{"u0", "u1", "u2"}
	stop := make(chan struct{})
	pushErr := make(chan error, 1)
	go pushLoop(c, nodes, groups, uids, stop, pushErr)

	m := clusterModel{uid: map[string]string{}, groups: map[string]map[string]bool{}}
	var mu sync.Mutex
	var wg sync.WaitGroup
	errs := make(chan error, len(cs))
	for i, cl := range cs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(i), 7))
			uid, in := "", map[string]bool{}
			for range 150 {
				n := nodes[r.IntN(len(nodes))]
				var err error
				switch op := r.IntN(4); op {
				case 0:
					g := groups[r.IntN(len(groups))]
					err, in[g] = n.JoinGroup(c, cl.id, g), true
				case 1:
					g := groups[r.IntN(len(groups))]
					err, in[g] = n.LeaveGroup(c, cl.id, g), false
				case 2:
					u := uids[r.IntN(len(uids))]
					err, uid = n.BindUID(c, cl.id, u), u
				case 3:
					if uid != "" {
						err, uid = n.UnbindUID(c, cl.id, uid), ""
					}
				}
				if err != nil {
					errs <- err
					return
				}
			}
			mu.Lock()
			m.uid[cl.id] = uid
			m.groups[cl.id] = in
			mu.Unlock()
		}()
	}
	wg.Wait()
	close(stop)
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	mustOK(t, wait(t, pushErr, "the pusher"))
	checkAgainst(t, nodes, spies, m, groups, uids)
	if t.Failed() {
		return
	}

	// The final membership routes the pushes exactly.
	for _, g := range groups {
		mustOK(t, nodes[0].SendToGroup(c, g, Text("final group:"+g)))
	}
	for _, u := range uids {
		mustOK(t, nodes[1].SendToUID(c, u, Text("final uid:"+u)))
	}
	for _, cl := range cs {
		mustOK(t, nodes[2].SendToClient(c, cl.id, Text("end")))
	}
	for _, cl := range cs {
		var got, want []string
		for _, f := range cl.until(t, "end") {
			if strings.HasPrefix(f.data, "final ") {
				got = append(got, f.data)
			}
		}
		for _, g := range groups {
			if m.groups[cl.id][g] {
				want = append(want, "final group:"+g)
			}
		}
		if u := m.uid[cl.id]; u != "" {
			want = append(want, "final uid:"+u)
		}
		if !slices.Equal(got, want) {
			t.Errorf("client %s got %q, want %q", cl.id, got, want)
		}
	}
}

// TestClusterConcurrentBindSameClient: several goroutines bind and unbind
// the same clients from different nodes; whatever uid each client ends
// with, every answer and every subscription must agree with it.
func TestClusterConcurrentBindSameClient(t *testing.T) {
	leakcheck.Check(t)
	nodes, spies, cs := concurrentCluster(t, 1)
	c := ctx(t)
	uids := []string{"u0", "u1", "u2", "u3"}
	groups := []string{"g0", "g1"}
	stop := make(chan struct{})
	pushErr := make(chan error, 1)
	go pushLoop(c, nodes, groups, uids, stop, pushErr)
	var wg sync.WaitGroup
	errs := make(chan error, 12)
	for i := range 12 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(i), 11))
			for range 200 {
				n := nodes[r.IntN(len(nodes))]
				cl := cs[r.IntN(len(cs))]
				var err error
				switch r.IntN(4) {
				case 0, 1:
					err = n.BindUID(c, cl.id, uids[r.IntN(len(uids))])
				case 2:
					err = n.UnbindUID(c, cl.id, uids[r.IntN(len(uids))])
				case 3:
					if r.IntN(2) == 0 {
						err = n.JoinGroup(c, cl.id, groups[r.IntN(len(groups))])
					} else {
						err = n.LeaveGroup(c, cl.id, groups[r.IntN(len(groups))])
					}
				}
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(stop)
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	mustOK(t, wait(t, pushErr, "the pusher"))
	// The final state, as each client's own node tells it.
	m := clusterModel{uid: map[string]string{}, groups: map[string]map[string]bool{}}
	for _, cl := range cs {
		u, err := nodes[0].UIDByClientID(c, cl.id)
		mustOK(t, err)
		m.uid[cl.id] = u
		m.groups[cl.id] = map[string]bool{}
	}
	for _, g := range groups {
		l, err := nodes[0].GroupClientIDs(c, g)
		mustOK(t, err)
		for _, id := range l {
			m.groups[id][g] = true
		}
	}
	var stale []string
	for _, u := range uids {
		l, err := nodes[0].ClientIDsByUID(c, u)
		mustOK(t, err)
		for _, id := range l {
			if m.uid[id] != u {
				stale = append(stale, fmt.Sprintf("%s is in ClientIDsByUID(%s) but UIDByClientID says %q", id, u, m.uid[id]))
			}
		}
	}
	if len(stale) > 0 {
		t.Fatalf("concurrent BindUID of one client left it in two uids' indexes: %s", strings.Join(stale, "; "))
	}
	checkAgainst(t, nodes, spies, m, groups, uids)
}

// TestClusterConcurrentBindOneClient: two BindUIDs of one client, from two
// nodes at once: the client ends with one of the two uids, and only that
// uid's answers and its node's subscriptions hold it.
func TestClusterConcurrentBindOneClient(t *testing.T) {
	leakcheck.Check(t)
	nodes, spies, cs := concurrentCluster(t, 1)
	c := ctx(t)
	x := cs[1] // on n2
	var bad []string
	for round := range 2000 {
		ua, ub := fmt.Sprintf("a%d", round), fmt.Sprintf("b%d", round)
		start := make(chan struct{})
		errs := make(chan error, 2)
		for i, u := range []string{ua, ub} {
			go func() {
				<-start
				errs <- nodes[i*2].BindUID(c, x.id, u)
			}()
		}
		close(start)
		mustOK(t, wait(t, errs, "BindUID"))
		mustOK(t, wait(t, errs, "BindUID"))
		uid, err := nodes[0].UIDByClientID(c, x.id)
		mustOK(t, err)
		if uid != ua && uid != ub {
			t.Fatalf("round %d: uid %q after binding %s and %s", round, uid, ua, ub)
		}
		for _, u := range []string{ua, ub} {
			l, err := nodes[2].ClientIDsByUID(c, u)
			mustOK(t, err)
			if want := u == uid; slices.Contains(l, x.id) != want {
				bad = append(bad, fmt.Sprintf("round %d: UIDByClientID = %q but ClientIDsByUID(%s) = %v", round, uid, u, l))
			}
		}
		if got := spies[1].topics(); !slices.Equal(got, []string{"uid:" + uid}) && len(bad) == 0 {
			bad = append(bad, fmt.Sprintf("round %d: n2 subscribed to %v, its client has uid %q", round, got, uid))
		}
		if len(bad) > 0 {
			// Stale: the client is in two uids' indexes; one push to the
			// uid it no longer has still reaches it.
			stale := ua
			if uid == ua {
				stale = ub
			}
			mustOK(t, nodes[0].SendToUID(c, stale, Text("to the stale uid")))
			mustOK(t, nodes[0].SendToClient(c, x.id, Text("end")))
			for _, f := range x.until(t, "end") {
				if f.data == "to the stale uid" {
					bad = append(bad, fmt.Sprintf("SendToUID(%s) reached %s whose uid is %s", stale, x.id, uid))
				}
			}
			break
		}
	}
	if len(bad) > 0 {
		t.Fatalf("concurrent BindUID of one client left it in two uids' indexes: %s", strings.Join(bad, "; "))
	}
}

// TestClusterJoinWhileClosing: joins racing with the client's close leave
// nothing behind: after OnClose, no group, uid or subscription holds it.
func TestClusterJoinWhileClosing(t *testing.T) {
	leakcheck.Check(t)
	hub := NewHub()
	s2 := newSpy(hub.Broker())
	n1 := newNode(t, "n1", hub.Broker(), "websocket://127.0.0.1:0")
	n2 := newNode(t, "n2", s2, "websocket://127.0.0.1:0")
	c := ctx(t)
	var leftovers []string
	uidsBefore := 0
	for i := range 60 {
		if len(leftovers) > 0 {
			break
		}
		x := dialWS(t, n2)
		waitEvent(t, n2, "connect "+x.id)
		started := make(chan struct{})
		done := make(chan error, 1)
		go func() {
			for k := 0; ; k++ {
				grp := fmt.Sprintf("c%d-%d", i, k)
				err := n1.JoinGroup(c, x.id, grp)
				if err == nil && k%2 == 0 {
					err = n1.BindUID(c, x.id, grp)
				}
				if errors.Is(err, ErrClientNotFound) {
					done <- nil
					return
				}
				if err != nil {
					done <- err
					return
				}
				if k == 150 {
					close(started)
				}
			}
		}()
		wait(t, started, "the joins")
		mustOK(t, n1.CloseClient(c, x.id))
		mustOK(t, wait(t, done, "the joiner"))
		wait(t, x.closed, "the close")
		waitEvent(t, n2, "close "+x.id)
		prefix := fmt.Sprintf("c%d-", i)
		l, err := n1.Groups(c)
		mustOK(t, err)
		l = slices.DeleteFunc(l, func(g string) bool { return !strings.HasPrefix(g, prefix) })
		k, err := n1.UIDCount(c)
		mustOK(t, err)
		k -= uidsBefore
		uidsBefore += k
		var subs []string
		for _, topic := range s2.topics() {
			if strings.Contains(topic, ":"+prefix) {
				subs = append(subs, topic)
			}
		}
		if len(l) > 0 || k > 0 || len(subs) > 0 {
			leftovers = append(leftovers, fmt.Sprintf("#%d: %d groups (e.g. %v), %d uids, %d subscriptions (e.g. %v) of the closed client", i, len(l), l[:min(2, len(l))], k, len(subs), subs[:min(2, len(subs))]))
		}
	}
	if len(leftovers) > 0 {
		t.Fatalf("a JoinGroup/BindUID racing the close left the closed client in the index: %s", strings.Join(leftovers, "; "))
	}
}

// ---- 7. a gateway on a text:// worker ----

func TestClusterTextWorker(t *testing.T) {
	leakcheck.Check(t)
	hub := NewHub()
	nw := newNode(t, "ws", hub.Broker(), "websocket://127.0.0.1:0")
	nt := newNode(t, "txt", hub.Broker(), "text://127.0.0.1:0")
	c := ctx(t)
	t1 := dialLines(t, nt.addr)
	t2 := dialLines(t, nt.addr)
	id1, id2 := t1.welcome(t), t2.welcome(t)
	if NodeOf(id1) != "txt" || NodeOf(id2) != "txt" || id1 == id2 {
		t.Fatalf("text client IDs %q, %q", id1, id2)
	}
	waitEvent(t, nt, "connect "+id1)
	w := dialWS(t, nw)
	if k, err := nw.ClientCount(c); err != nil || k != 3 {
		t.Fatalf("ClientCount = %d, %v", k, err)
	}
	mustOK(t, nw.SendToClient(c, id1, Text("to t1")))
	mustOK(t, nw.BindUID(c, id2, "bob"))
	mustOK(t, nw.SendToUID(c, "bob", Text("to bob")))
	mustOK(t, nw.JoinGroup(c, id1, "room"))
	mustOK(t, nw.JoinGroup(c, w.id, "room"))
	mustOK(t, nw.SendToGroup(c, "room", Text("room"), w.id))
	mustOK(t, nw.SendToAll(c, Binary([]byte("bin all"))))
	mustOK(t, nt.SendToAll(c, Text("from txt")))
	mustOK(t, nw.SendToClient(c, id1, Text("end")))
	mustOK(t, nw.SendToClient(c, id2, Text("end")))
	lines := func(fs []frame) []string {
		var out []string
		for _, f := range fs[1:] {
			out = append(out, f.data)
		}
		return out
	}
	if got := lines(t1.until(t, "end")); !slices.Equal(got, []string{"to t1", "room", "bin all", "from txt", "end"}) {
		t.Fatalf("text client 1 got lines %q", got)
	}
	if got := lines(t2.until(t, "end")); !slices.Equal(got, []string{"to bob", "bin all", "from txt", "end"}) {
		t.Fatalf("text client 2 got lines %q", got)
	}
	if f := wait(t, w.msgs, "bin all"); f.data != "bin all" || !f.binary {
		t.Fatalf("WebSocket client got %+v", f)
	}
	w.expect(t, "from txt")
	w.expectNothing(t, nt.Gateway)
	// What a text client sends reaches OnMessage line by line.
	if _, err := t1.Write([]byte("hello\n")); err != nil {
		t.Fatal(err)
	}
	if ev := waitEvent(t, nt, "message "); ev != "message "+id1+" text hello" {
		t.Fatalf("event %q", ev)
	}
	// CloseClient from the other node, with a final line.
	mustOK(t, nw.CloseClient(c, id1, Text("bye")))
	t1.until(t, "bye")
	wait(t, t1.eof, "the server closing the text connection")
	if ev := waitEvent(t, nt, "close "); ev != "close "+id1+"  [room]" {
		t.Fatalf("event %q", ev)
	}
	if on, err := nw.IsOnline(c, id1); err != nil || on {
		t.Fatalf("IsOnline of the closed text client = %v, %v", on, err)
	}
	if l, err := nw.GroupClientIDs(c, "room"); err != nil || !slices.Equal(l, []string{w.id}) {
		t.Fatalf("GroupClientIDs = %v, %v", l, err)
	}
}
