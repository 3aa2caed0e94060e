package main

import (
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
)

var clusterAttr = regexp.MustCompile(`msg="workerman-push started" .* cluster=(\S+)`)

// startCluster runs one push server per id with embedded NATS, the first
// the seed the others join: a cluster of len(ids) nodes.
func startCluster(t *testing.T, ids ...string) []*node {
	t.Helper()
	first := startRun(t, args("-node-id", ids[0], "-cluster", "127.0.0.1:0"), nil)
	seed := first.log.waitLine(t, clusterAttr)[1]
	nodes := []*node{first}
	for _, id := range ids[1:] {
		nodes = append(nodes, startRun(t, args("-node-id", id, "-cluster", "127.0.0.1:0", "-peers", seed), nil))
	}
	return nodes
}

// Three push servers with embedded NATS act as one: each API answers for
// the whole cluster, and a push through any node reaches clients of every
// node.
func TestEmbeddedCluster(t *testing.T) {
	ns := startCluster(t, "a", "b", "c")
	a, b, c := ns[0], ns[1], ns[2]
	ca, cb, cc := dial(t, a, ""), dial(t, b, ""), dial(t, c, "")

	// A uid on two nodes, bound through a third node's API.
	c.mustCall(t, "bindUid", map[string]any{"client_id": ca.id, "uid": "alice"})
	c.mustCall(t, "bindUid", map[string]any{"client_id": cb.id, "uid": "alice"})
	b.mustCall(t, "sendToUid", map[string]any{"uid": "alice", "message": "hi alice"})
	ca.expectText("hi alice")
	cb.expectText("hi alice")
	// Join on one node, push from another at once.
	a.mustCall(t, "joinGroup", map[string]any{"client_id": cc.id, "group": "room"})
	b.mustCall(t, "sendToGroup", map[string]any{"group": "room", "message": "to room"})
	cc.expectText("to room")
	for _, n := range []*node{a, b, c} {
		if out := n.mustCall(t, "getAllClientCount", nil); out["count"] != 3.0 {
			t.Fatalf("getAllClientCount %v", out)
		}
		if out := n.mustCall(t, "getAllUidCount", nil); out["count"] != 1.0 {
			t.Fatalf("getAllUidCount %v", out)
		}
		out := n.mustCall(t, "getClientIdByUid", map[string]any{"uid": "alice"})
		var ids []string
		for _, x := range out["client_ids"].([]any) {
			ids = append(ids, x.(string))
		}
		want := []string{ca.id, cb.id}
		slices.Sort(want)
		if !slices.Equal(ids, want) {
			t.Fatalf("getClientIdByUid %v, want %v", ids, want)
		}
	}
	a.mustCall(t, "sendToAll", map[string]any{"message": "all", "exclude_client_ids": []string{cb.id}})
	ca.expectText("all")
	cc.expectText("all")
	b.mustCall(t, "sendToClient", map[string]any{"client_id": cb.id, "message": "marker"})
	cb.expectText("marker")
	if code, _ := a.call(t, "sendToClient", map[string]any{"client_id": "z.x.1", "message": "x"}); code != http.StatusNotFound {
		t.Fatalf("a client of no node: %d, want 404", code)
	}
	if got := httpGet(t, strings.TrimSuffix(b.api, "/api/")+"/healthz"); got != http.StatusOK {
		t.Fatalf("GET /healthz: %d", got)
	}
}

// -nats joins an existing NATS server; when it goes away, local pushes
// keep working, remote operations answer 503 and /healthz says 503.
func TestExternalNATS(t *testing.T) {
	ns, err := natsserver.NewServer(&natsserver.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server did not start")
	}
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			ns.Shutdown()
		}
		ns.WaitForShutdown()
	})
	url := "nats://" + ns.Addr().String()
	a := startRun(t, args("-node-id", "a", "-nats", url), nil)
	b := startRun(t, args("-node-id", "b", "-nats", url), nil)
	ca, cb := dial(t, a, ""), dial(t, b, "")
	b.mustCall(t, "joinGroup", map[string]any{"client_id": ca.id, "group": "g"})
	a.mustCall(t, "joinGroup", map[string]any{"client_id": cb.id, "group": "g"})
	a.mustCall(t, "sendToGroup", map[string]any{"group": "g", "message": "both"})
	ca.expectText("both")
	cb.expectText("both")

	ns.Shutdown()
	stopped = true
	waitStatus(t, strings.TrimSuffix(a.api, "/api/")+"/healthz", http.StatusServiceUnavailable)
	if got := httpGet(t, strings.TrimSuffix(a.api, "/api/")+"/readyz"); got != http.StatusServiceUnavailable {
		t.Fatalf("GET /readyz without NATS: %d, want 503", got)
	}
	if v := value(t, scrape(t, a), "workerman_push_healthy"); v != 0 {
		t.Fatalf("workerman_push_healthy %v without NATS, want 0", v)
	}
	// The dashboard still has this node's row, and says why the others are missing.
	if out := nodeStatsOf(t, a); len(out.Nodes) != 1 || out.Nodes[0].Node != "a" || out.Nodes[0].Healthy || out.Partial == "" {
		t.Fatalf("getNodeStats without NATS: %+v", out)
	}
	if code, out := a.call(t, "getClientIdListByGroup", map[string]any{"group": "g"}); code != http.StatusServiceUnavailable {
		t.Fatalf("a cluster query without NATS: %d %v, want 503", code, out)
	}
	if code, _ := a.call(t, "bindUid", map[string]any{"client_id": cb.id, "uid": "u"}); code != http.StatusServiceUnavailable {
		t.Fatalf("an operation on another node's client without NATS: %d, want 503", code)
	}
	// This node's own clients are still served.
	a.mustCall(t, "sendToClient", map[string]any{"client_id": ca.id, "message": "local"})
	ca.expectText("local")
}

// waitStatus polls u until it answers want (bounded).
func waitStatus(t *testing.T, u string, want int) {
	t.Helper()
	for range 400 {
		if httpGet(t, u) == want {
			return
		}
		time.Sleep(25 * time.Millisecond) // bounded polling
	}
	t.Fatalf("%s never answered %d", u, want)
}
