package main

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
)

// GET / on the -api address is the dashboard, with no key; it reads and
// pushes through the API (the browser test drives it: e2e/dashboard_test.go).
func TestDashboardPage(t *testing.T) {
	n := startCfg(t, args(), nil)
	resp, err := httpc.Get(base(n) + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/html; charset=utf-8" ||
		!bytes.Equal(body, dashboardHTML) {
		t.Fatalf("GET /: %d %q, %d bytes", resp.StatusCode, resp.Header.Get("Content-Type"), len(body))
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "frame-ancestors 'none'") || !strings.Contains(csp, "connect-src 'self'") {
		t.Fatalf("GET /: Content-Security-Policy %q", csp)
	}
	if !bytes.Contains(body, []byte(`"api/" + method`)) || bytes.Contains(body, []byte(n.key)) {
		t.Fatal("the page does not call the API, or carries the key")
	}
	for path, want := range map[string]int{"/other": http.StatusNotFound, "/index.html": http.StatusNotFound} {
		if got := httpGet(t, base(n)+path); got != want {
			t.Errorf("GET %s: %d, want %d", path, got, want)
		}
	}
}

// In a cluster, the dashboard's uid and group figures are distinct counts
// across the nodes, as getAllUidCount and getAllGroupIdList answer: alice
// has a phone on a and a laptop on b, and counts once; room has members on
// a and b, and counts once. Each node's row keeps its own figures, and so
// does each node's /metrics.
func TestDashboardClusterDistinct(t *testing.T) {
	ns := startCluster(t, "a", "b", "c")
	a, b, c := ns[0], ns[1], ns[2]
	phone, laptop, other := dial(t, a, ""), dial(t, b, ""), dial(t, c, "")
	c.mustCall(t, "bindUid", map[string]any{"client_id": phone.id, "uid": "alice"})
	c.mustCall(t, "bindUid", map[string]any{"client_id": laptop.id, "uid": "alice"})
	c.mustCall(t, "bindUid", map[string]any{"client_id": other.id, "uid": "bob"})
	a.mustCall(t, "joinGroup", map[string]any{"client_id": phone.id, "group": "room"})
	a.mustCall(t, "joinGroup", map[string]any{"client_id": laptop.id, "group": "room"})
	a.mustCall(t, "joinGroup", map[string]any{"client_id": other.id, "group": "news"})

	want := clusterStats{Clients: 3, UIDs: 2, Groups: 2, Connections: 3}
	for _, n := range []*node{a, b, c} {
		uids := n.mustCall(t, "getAllUidCount", nil)["count"]
		groups := len(n.mustCall(t, "getAllGroupIdList", nil)["groups"].([]any))
		if uids != 2.0 || groups != 2 {
			t.Fatalf("getAllUidCount %v, getAllGroupIdList %d groups; want 2 and 2", uids, groups)
		}
		out := nodeStatsOf(t, n)
		if len(out.Nodes) != 3 || out.Partial != "" {
			t.Fatalf("getNodeStats: %+v", out)
		}
		if out.Cluster != want {
			t.Errorf("%s's dashboard: %+v; want %+v (getAllUidCount and getAllGroupIdList say 2 and 2)",
				out.Nodes[0].Node, out.Cluster, want)
		}
		for _, row := range out.Nodes {
			if row.Clients != 1 || row.UIDs != 1 || row.Groups != 1 {
				t.Errorf("%s's dashboard, row %s: %+v; want its own 1 client, 1 uid, 1 group", out.Nodes[0].Node, row.Node, row)
			}
		}
		// workerman_push_uids and _groups are per node by design, and say so.
		fams := scrape(t, n)
		for _, name := range []string{"workerman_push_uids", "workerman_push_groups"} {
			if v := value(t, fams, name); v != 1 {
				t.Errorf("%s's %s %v, want its own 1", out.Nodes[0].Node, name, v)
			}
			if help := fams[name].GetHelp(); !strings.Contains(help, "this node") || !strings.Contains(help, "getAll") {
				t.Errorf("%s's help %q does not say it is per node and where the cluster's count is", name, help)
			}
		}
	}
	// The page's cards are these figures, not sums of the rows.
	for _, s := range []string{`num(cluster.uids || 0)`, `num(cluster.groups || 0)`, `cluster.uids_estimated`} {
		if !bytes.Contains(dashboardHTML, []byte(s)) {
			t.Errorf("the page does not show %s", s)
		}
	}
}

// Past exactDigestLimit names a node sends a sketch instead of its hashes;
// the cluster's figures are then estimates, and say so.
func TestDashboardClusterEstimated(t *testing.T) {
	limit := exactDigestLimit
	exactDigestLimit = 1 // set before the nodes start, restored after they stop
	t.Cleanup(func() { exactDigestLimit = limit })
	ns := startCluster(t, "a", "b")
	a, b := ns[0], ns[1]
	a1, a2, b1, b2 := dial(t, a, ""), dial(t, a, ""), dial(t, b, ""), dial(t, b, "")
	for id, uid := range map[string]string{a1.id: "alice", a2.id: "bob", b1.id: "alice", b2.id: "carol"} {
		a.mustCall(t, "bindUid", map[string]any{"client_id": id, "uid": uid})
		a.mustCall(t, "joinGroup", map[string]any{"client_id": id, "group": "g-" + uid})
	}
	for _, n := range []*node{a, b} {
		if got := n.mustCall(t, "getAllUidCount", nil)["count"]; got != 3.0 {
			t.Fatalf("getAllUidCount %v, want 3", got)
		}
		want := clusterStats{Clients: 4, UIDs: 3, Groups: 3, Connections: 4, UIDsEstimated: true, GroupsEstimated: true}
		if out := nodeStatsOf(t, n); out.Cluster != want {
			t.Errorf("getNodeStats on %s: %+v, want %+v", out.Nodes[0].Node, out.Cluster, want)
		}
	}
}

// distinctCount merges the nodes' digests: exact from their hashes,
// estimated within a few percent from sketches (and never below the
// largest node's count nor above their sum).
func TestDistinctCount(t *testing.T) {
	names := func(from, to int) []string {
		var out []string
		for i := from; i < to; i++ {
			out = append(out, fmt.Sprintf("user-%d", i))
		}
		return out
	}
	for _, tc := range []struct {
		name      string
		digests   []distinctDigest
		want      int
		estimated bool
		tolerance float64
	}{
		{"no node", nil, 0, false, 0},
		{"empty nodes", []distinctDigest{digestOf(nil), digestOf(nil)}, 0, false, 0},
		{"one node", []distinctDigest{digestOf(names(0, 3))}, 3, false, 0},
		{"overlap", []distinctDigest{digestOf(names(0, 3)), digestOf(names(2, 5)), digestOf(nil)}, 5, false, 0},
		{"exact at the limit", []distinctDigest{digestOf(names(0, exactDigestLimit)), digestOf(names(1, exactDigestLimit+1))},
			exactDigestLimit + 1, false, 0},
		{"a node without a digest counts as disjoint", []distinctDigest{digestOf(names(0, 3)), distinctDigest{}.orCount(2)}, 5, true, 0},
		{"a digest of the wrong size counts as disjoint",
			[]distinctDigest{digestOf(names(0, 3)), {N: 2, Registers: make([]byte, 10)}}, 5, true, 0},
		{"a count without a digest is never above the sum", []distinctDigest{{N: 1}, {N: 1, Hashes: []byte{1}}}, 2, true, 0},
		{"one sketch", []distinctDigest{digestOf(names(0, 5000))}, 5000, true, 0.02},
		{"sketches overlapping", []distinctDigest{digestOf(names(0, 100_000)), digestOf(names(50_000, 150_000))}, 150_000, true, 0.02},
		{"the same names on three nodes", []distinctDigest{digestOf(names(0, 20_000)), digestOf(names(0, 20_000)), digestOf(names(0, 20_000))},
			20_000, true, 0.02},
		{"sketch and hashes", []distinctDigest{digestOf(names(0, 10_000)), digestOf(names(9_000, 10_100))}, 10_100, true, 0.02},
		{"a million", []distinctDigest{digestOf(names(0, 600_000)), digestOf(names(400_000, 1_000_000))}, 1_000_000, true, 0.02},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, estimated := distinctCount(tc.digests)
			lo, hi := float64(tc.want)*(1-tc.tolerance), float64(tc.want)*(1+tc.tolerance)
			if estimated != tc.estimated || float64(got) < lo || float64(got) > hi {
				t.Fatalf("distinctCount = %d (estimated %v), want %d (estimated %v, within %v)", got, estimated, tc.want, tc.estimated, tc.tolerance)
			}
			upper, lower := 0, 0
			for _, d := range tc.digests {
				upper += d.N
				lower = max(lower, d.N)
			}
			if got < lower || got > upper {
				t.Fatalf("distinctCount = %d, outside [%d, %d]", got, lower, upper)
			}
		})
	}
}

// A sketch is 16 KiB whatever the node holds, and a register no node
// could have set does not break the estimate.
func TestDigestSize(t *testing.T) {
	var many []string
	for i := range 100_000 {
		many = append(many, fmt.Sprint(i))
	}
	if d := digestOf(many); len(d.Registers) != hllRegisters || d.Hashes != nil || d.N != 100_000 {
		t.Fatalf("digest of 100,000 names: %d hashes bytes, %d registers", len(d.Hashes), len(d.Registers))
	}
	if d := digestOf(many[:exactDigestLimit]); len(d.Hashes) != 8*exactDigestLimit || d.Registers != nil {
		t.Fatalf("digest at the limit: %d hashes bytes, %d registers", len(d.Hashes), len(d.Registers))
	}
	bad := make([]byte, hllRegisters)
	for i := range bad {
		bad[i] = 255
	}
	if n, est := distinctCount([]distinctDigest{{N: 7, Registers: bad}}); n != 7 || !est {
		t.Fatalf("a sketch of impossible registers: %d %v, want 7 (its node's count)", n, est)
	}
}
