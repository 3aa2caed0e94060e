package natsbroker

import (
	"errors"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/workerman-go/workerman"
	"github.com/workerman-go/workerman/gateway"
)

func TestEmbeddedClusterActsAsOne(t *testing.T) {
	ns := embeddedCluster(t, "a", "b", "c")
	a, b, c := ns[0], ns[1], ns[2]
	x := ctx(t)
	ca, cb, cc := dial(t, a), dial(t, b), dial(t, c)

	// A uid with connections on two nodes, bound from a third.
	must(t, c.BindUID(x, ca.id, "alice"))
	must(t, c.BindUID(x, cb.id, "alice"))
	must(t, a.BindUID(x, cc.id, "carol"))
	must(t, b.SendToUID(x, "alice", gateway.Text("hi alice")))
	ca.expect(t, "hi alice")
	cb.expect(t, "hi alice")
	cc.expectNothing(t, c.Gateway)
	if n, _ := c.UIDCount(x); n != 2 {
		t.Fatalf("UIDCount %d, want 2 (alice on two nodes counts once)", n)
	}
	if ids, _ := c.ClientIDsByUID(x, "alice"); !slices.Equal(ids, sorted(ca.id, cb.id)) {
		t.Fatalf("ClientIDsByUID %v", ids)
	}
	if uid, _ := b.UIDByClientID(x, cc.id); uid != "carol" {
		t.Fatalf("UIDByClientID %q", uid)
	}
	// Join on another node; a push right after, from a third, reaches it.
	for i := range 20 {
		g := "room" + string(rune('a'+i))
		must(t, a.JoinGroup(x, cc.id, g))
		must(t, b.SendToGroup(x, g, gateway.Text("to "+g)))
		cc.expect(t, "to "+g)
	}
	must(t, b.JoinGroup(x, ca.id, "roomz"))
	must(t, a.JoinGroup(x, cc.id, "roomz"))
	must(t, c.SendToGroup(x, "roomz", gateway.Binary([]byte{1, 2}), cc.id))
	ca.expect(t, "binary:\x01\x02")
	cc.expectNothing(t, c.Gateway)
	if l, _ := a.GroupClientIDs(x, "roomz"); !slices.Equal(l, sorted(ca.id, cc.id)) {
		t.Fatalf("GroupClientIDs %v", l)
	}
	if l, _ := a.GroupUIDs(x, "roomz"); !slices.Equal(l, []string{"alice", "carol"}) {
		t.Fatalf("GroupUIDs %v", l)
	}
	if n, _ := b.GroupClientCount(x, "roomz"); n != 2 {
		t.Fatalf("GroupClientCount %d", n)
	}
	if l, _ := b.Groups(x); len(l) != 21 {
		t.Fatalf("Groups %v", l)
	}
	// Interest: only nodes with a member subscribe.
	if !a.b.subscribed("group:roomz") || b.b.subscribed("group:roomz") || !c.b.subscribed("group:roomz") {
		t.Fatal("group:roomz: subscribed on a node without a member, or not on one with a member")
	}
	must(t, c.LeaveGroup(x, ca.id, "roomz"))
	if a.b.subscribed("group:roomz") {
		t.Fatal("still subscribed after the last member left")
	}
	must(t, a.SendToGroup(x, "roomz", gateway.Text("after leave")))
	cc.expect(t, "after leave")
	ca.expectNothing(t, a.Gateway)
	must(t, a.Ungroup(x, "rooma"))
	if l, _ := c.GroupClientIDs(x, "rooma"); len(l) != 0 {
		t.Fatalf("rooma after Ungroup %v", l)
	}
	// Everyone, with an exclusion on another node.
	must(t, a.SendToAll(x, gateway.Text("all"), cb.id))
	ca.expect(t, "all")
	cc.expect(t, "all")
	cb.expectNothing(t, b.Gateway)
	if n, _ := b.ClientCount(x); n != 3 {
		t.Fatalf("ClientCount %d", n)
	}
	// Sessions on a remote client.
	must(t, a.SetSession(x, cb.id, map[string]any{"k": "v", "n": 1}))
	must(t, c.UpdateSession(x, cb.id, map[string]any{"n": 2}))
	if s, _ := b.Session(x, cb.id); s["k"] != "v" || s["n"] != 2.0 {
		t.Fatalf("session %v", s)
	}
	if on, _ := a.IsOnline(x, cc.id); !on {
		t.Fatal("IsOnline of a remote client")
	}
	if on, _ := a.IsUIDOnline(x, "carol"); !on {
		t.Fatal("IsUIDOnline of a remote uid")
	}
	must(t, b.SendToClient(x, cc.id, gateway.Text("direct")))
	cc.expect(t, "direct")
	// CloseClient of a remote client: gone from every answer.
	must(t, b.CloseClient(x, cc.id, gateway.Text("bye")))
	cc.expect(t, "bye")
	eventually(t, "the closed client leaves the answers", 5*time.Second, func() bool {
		n, _ := a.ClientCount(x)
		return n == 2
	})
	if on, _ := a.IsOnline(x, cc.id); on {
		t.Fatal("closed client online")
	}
	if err := a.JoinGroup(x, cc.id, "g"); !errors.Is(err, gateway.ErrClientNotFound) {
		t.Fatalf("JoinGroup of a closed remote client: %v", err)
	}
	if err := a.SendToClient(x, "nosuchnode.x.1", gateway.Text("x")); !errors.Is(err, gateway.ErrClientNotFound) {
		t.Fatalf("client of an unknown node: %v", err)
	}
}

func TestNodeKilledAndNameTaken(t *testing.T) {
	ns := embeddedCluster(t, "a", "b", "c")
	a, b, c := ns[0], ns[1], ns[2]
	x := ctx(t)
	ca, cb, cc := dial(t, a), dial(t, b), dial(t, c)
	must(t, a.JoinGroup(x, ca.id, "g"))
	must(t, b.JoinGroup(x, cb.id, "g"))
	must(t, c.JoinGroup(x, cc.id, "g"))
	must(t, a.BindUID(x, cc.id, "carol"))

	// A node with a live name refuses to start.
	bb, _ := New(testOptions(Options{Cluster: "127.0.0.1:0", Peers: []string{a.b.ClusterAddr().String()}}))
	if _, err := gateway.New(&workerman.Worker{URI: "websocket://127.0.0.1:0"}, gateway.Options{Node: "b", Broker: bb}); !errors.Is(err, gateway.ErrNodeExists) {
		t.Fatalf("second node b: %v, want ErrNodeExists", err)
	}

	killed := time.Now()
	c.kill()
	eventually(t, "the killed node leaves every answer", 10*time.Second, func() bool {
		l, err := a.GroupClientIDs(x, "g")
		return err == nil && slices.Equal(l, sorted(ca.id, cb.id))
	})
	t.Logf("the killed node left the answers after %v", time.Since(killed).Round(time.Millisecond))
	if on, _ := b.IsUIDOnline(x, "carol"); on {
		t.Fatal("carol (on the killed node) still online")
	}
	if n, _ := b.ClientCount(x); n != 2 {
		t.Fatalf("ClientCount %d", n)
	}
	if err := a.SendToClient(x, cc.id, gateway.Text("x")); !errors.Is(err, gateway.ErrClientNotFound) {
		t.Fatalf("client of the killed node: %v", err)
	}
	must(t, b.SendToGroup(x, "g", gateway.Text("still here")))
	ca.expect(t, "still here")
	cb.expect(t, "still here")
}

func sorted(s ...string) []string {
	slices.Sort(s)
	return s
}

// An external nats-server restarted: while it is down, local pushes go on
// and remote operations fail with ErrBrokerUnavailable; once it is back,
// the subscriptions are restored and pushes cross nodes again. A node
// that joins late is in every answer at once.
func TestExternalNATSRestartAndLateNode(t *testing.T) {
	ns := natsServer(t, -1)
	port := ns.Addr().(*net.TCPAddr).Port
	url := clientURL(ns)
	a := newNode(t, "a", Options{URLs: []string{url}})
	b := newNode(t, "b", Options{URLs: []string{url}})
	x := ctx(t)
	ca, cb := dial(t, a), dial(t, b)
	must(t, b.JoinGroup(x, ca.id, "g"))
	must(t, a.BindUID(x, cb.id, "bob"))
	must(t, b.SendToGroup(x, "g", gateway.Text("before")))
	ca.expect(t, "before")

	ns.Shutdown()
	ns.WaitForShutdown()
	eventually(t, "a notices NATS is gone", 10*time.Second, func() bool { return !a.b.Healthy() })
	if err := a.SendToUID(x, "bob", gateway.Text("x")); !errors.Is(err, gateway.ErrBrokerUnavailable) {
		t.Fatalf("a remote push without NATS: %v, want ErrBrokerUnavailable", err)
	}
	if _, err := a.ClientCount(x); !errors.Is(err, gateway.ErrBrokerUnavailable) {
		t.Fatalf("a cluster query without NATS: %v, want ErrBrokerUnavailable", err)
	}
	must(t, a.SendToClient(x, ca.id, gateway.Text("local"))) // its own clients: served
	ca.expect(t, "local")

	natsServer(t, port) // back, on the same address
	eventually(t, "both nodes reconnect", 15*time.Second, func() bool { return a.b.Healthy() && b.b.Healthy() })
	eventually(t, "both see each other again", 10*time.Second, func() bool {
		return len(a.b.Nodes()) == 1 && len(b.b.Nodes()) == 1
	})
	must(t, b.SendToGroup(x, "g", gateway.Text("after")))
	ca.expect(t, "after")
	must(t, a.SendToUID(x, "bob", gateway.Text("after, bob")))
	cb.expect(t, "after, bob")

	c := newNode(t, "c", Options{URLs: []string{url}})
	cc := dial(t, c)
	must(t, a.JoinGroup(x, cc.id, "g"))
	if l, _ := b.GroupClientIDs(x, "g"); !slices.Equal(l, sorted(ca.id, cc.id)) {
		t.Fatalf("GroupClientIDs with the late node %v", l)
	}
	if n, _ := a.ClientCount(x); n != 3 {
		t.Fatalf("ClientCount with the late node %d", n)
	}
	must(t, b.SendToGroup(x, "g", gateway.Text("all three")))
	ca.expect(t, "all three")
	cc.expect(t, "all three")
}
