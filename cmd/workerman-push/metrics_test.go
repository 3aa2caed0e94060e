package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gobwas/ws"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// scrape reads GET /metrics of n, with no key, as Prometheus would.
func scrape(t *testing.T, n *node) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := httpc.Get(base(n) + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %d", resp.StatusCode)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Fatalf("GET /metrics: Content-Type %q, want the text format", ct)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("GET /metrics: not the Prometheus text format: %v", err)
	}
	return fams
}

// base is the -api address as a URL, with no path.
func base(n *node) string { return strings.TrimSuffix(n.api, "/api/") }

// value is the value of the series name{labels...} (pairs of label name
// and value); the test fails when there is no such series.
func value(t *testing.T, fams map[string]*dto.MetricFamily, name string, labels ...string) float64 {
	t.Helper()
	f := fams[name]
	if f == nil {
		t.Fatalf("no series %s", name)
	}
next:
	for _, m := range f.Metric {
		have := map[string]string{}
		for _, l := range m.Label {
			have[l.GetName()] = l.GetValue()
		}
		for i := 0; i+1 < len(labels); i += 2 {
			if have[labels[i]] != labels[i+1] {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue()
		case m.Gauge != nil:
			return m.Gauge.GetValue()
		case m.Untyped != nil:
			return m.Untyped.GetValue()
		}
	}
	t.Fatalf("no series %s%v", name, labels)
	return 0
}

// After real traffic (clients connecting, sending, being pushed to, API
// calls good and bad), /metrics says exactly what happened.
func TestMetrics(t *testing.T) {
	sink := newHookSink(t) // what the clients sent has reached OnMessage once its event is here
	n := startCfg(t, args("-webhook", sink.URL, "-node-id", "m1"), nil)

	fams := scrape(t, n)
	for _, name := range []string{"workerman_connections", "workerman_messages_received_total", "workerman_messages_sent_total",
		"workerman_push_clients", "workerman_push_uids", "workerman_push_groups", "workerman_push_deliveries_total",
		"workerman_push_dropped_total", "go_goroutines", "process_resident_memory_bytes"} {
		if fams[name] == nil {
			t.Errorf("no %s before any traffic", name)
		}
	}
	if v := value(t, fams, "workerman_push_clients"); v != 0 {
		t.Fatalf("workerman_push_clients %v with no client", v)
	}

	a, b := dial(t, n, ""), dial(t, n, "")
	for range 2 {
		recv(t, sink.events, "connect event")
	}
	n.mustCall(t, "bindUid", map[string]any{"client_id": a.id, "uid": "alice"})
	n.mustCall(t, "joinGroup", map[string]any{"client_id": a.id, "group": "room"})
	n.mustCall(t, "joinGroup", map[string]any{"client_id": b.id, "group": "room"})
	n.mustCall(t, "joinGroup", map[string]any{"client_id": b.id, "group": "news"})
	n.mustCall(t, "sendToUid", map[string]any{"uid": "alice", "message": "1"})
	n.mustCall(t, "sendToGroup", map[string]any{"group": "room", "message": "2"})
	n.mustCall(t, "sendToUid", map[string]any{"uid": "nobody", "message": "3"})
	a.expectText("1")
	a.expectText("2")
	b.expectText("2")
	for range 3 {
		a.send(ws.OpText, []byte("up"))
	}
	b.send(ws.OpBinary, []byte{1})
	for range 4 {
		recv(t, sink.events, "message event")
	}
	n.callKey(t, "wrong", "sendToAll", map[string]any{"message": "x"})
	n.call(t, "noSuchMethod", nil)
	n.call(t, "sendToClient", map[string]any{"message": "x"}) // 400: no client_id

	fams = scrape(t, n)
	for _, c := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"workerman_connections", nil, 2},
		{"workerman_push_clients", nil, 2},
		{"workerman_push_uids", nil, 1},
		{"workerman_push_groups", nil, 2},
		{"workerman_messages_received_total", nil, 4},
		{"workerman_push_deliveries_total", nil, 3},
		{"workerman_messages_sent_total", nil, 7}, // writes: 2 handshake answers, 2 welcomes, 3 pushes
		{"workerman_push_dropped_total", nil, 0},
		{"workerman_push_healthy", nil, 1},
		{"workerman_push_node_info", []string{"node", "m1"}, 1},
		{"workerman_push_api_requests_total", []string{"method", "bindUid", "code", "200"}, 1},
		{"workerman_push_api_requests_total", []string{"method", "joinGroup", "code", "200"}, 3},
		{"workerman_push_api_requests_total", []string{"method", "sendToUid", "code", "200"}, 2},
		{"workerman_push_api_requests_total", []string{"method", "sendToGroup", "code", "200"}, 1},
		{"workerman_push_api_requests_total", []string{"method", "sendToAll", "code", "401"}, 1},
		{"workerman_push_api_requests_total", []string{"method", "unknown", "code", "404"}, 1},
		{"workerman_push_api_requests_total", []string{"method", "sendToClient", "code", "400"}, 1},
	} {
		if got := value(t, fams, c.name, c.labels...); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	if v := value(t, fams, "go_goroutines"); v < 1 {
		t.Errorf("go_goroutines %v", v)
	}
	if v := value(t, fams, "process_resident_memory_bytes"); v < 1<<20 {
		t.Errorf("process_resident_memory_bytes %v", v)
	}
	// Scrapes are not API calls, and need no key.
	if f := fams["workerman_push_api_requests_total"]; len(f.Metric) != 7 {
		t.Errorf("%d api_requests series, want 7: %v", len(f.Metric), f.Metric)
	}
}

// getNodeStats: this node's figures, with the key only.
func TestNodeStats(t *testing.T) {
	n := startCfg(t, args("-node-id", "solo"), nil)
	c := dial(t, n, "")
	n.mustCall(t, "bindUid", map[string]any{"client_id": c.id, "uid": "u"})
	out := nodeStatsOf(t, n)
	if len(out.Nodes) != 1 || out.Partial != "" {
		t.Fatalf("getNodeStats: %+v", out)
	}
	// Sent: the handshake's answer and the welcome.
	want := nodeStats{Node: "solo", Connections: 1, MessagesSent: 2, Clients: 1, UIDs: 1, Healthy: true}
	if out.Nodes[0] != want {
		t.Fatalf("getNodeStats: %+v, want %+v", out.Nodes[0], want)
	}
	if code, _ := n.callKey(t, "wrong", nodeStatsMethod, nil); code != http.StatusUnauthorized {
		t.Fatalf("getNodeStats with a wrong key: %d", code)
	}
	if code, _ := n.callKey(t, "", nodeStatsMethod, nil); code != http.StatusUnauthorized {
		t.Fatalf("getNodeStats with no key: %d", code)
	}
	req, _ := http.NewRequest(http.MethodGet, n.api+nodeStatsMethod, nil)
	req.Header.Set("Authorization", "Bearer "+n.key)
	resp, err := httpc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("GET getNodeStats: %d, want 405", resp.StatusCode)
	}
	if c := n.log.count(`msg="API error" method=getNodeStats`); c != 3 {
		t.Fatalf("%d log lines for the refused calls, want 3:\n%s", c, n.log.String())
	}
}

func nodeStatsOf(t *testing.T, n *node) nodeStatsAnswer {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, n.api+nodeStatsMethod, bytes.NewReader([]byte("{}")))
	req.Header.Set("Authorization", "Bearer "+n.key)
	resp, err := httpc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var out nodeStatsAnswer
	if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &out) != nil {
		t.Fatalf("getNodeStats: %d %s", resp.StatusCode, body)
	}
	return out
}

// In a cluster, any node's getNodeStats has every node's row, its own
// first; each node's /metrics has its own figures only.
func TestNodeStatsCluster(t *testing.T) {
	ns := startCluster(t, "a", "b", "c")
	a, b, c := ns[0], ns[1], ns[2]
	dial(t, b, "")
	dial(t, b, "")
	cc := dial(t, c, "")
	a.mustCall(t, "joinGroup", map[string]any{"client_id": cc.id, "group": "g"})
	a.mustCall(t, "sendToGroup", map[string]any{"group": "g", "message": "hi"})
	cc.expectText("hi")

	want := []nodeStats{
		{Node: "a", Healthy: true},
		// Sent: each client's handshake answer and welcome, and c's push.
		{Node: "b", Connections: 2, Clients: 2, MessagesSent: 4, Healthy: true},
		{Node: "c", Connections: 1, Clients: 1, Groups: 1, MessagesSent: 3, Deliveries: 1, Healthy: true},
	}
	// The counters move just after the bytes are written: the client may
	// read the push first. Asked again, with a bound.
	var out nodeStatsAnswer
	for deadline := time.Now().Add(5 * time.Second); ; {
		out = nodeStatsOf(t, a)
		if out.Partial != "" || len(out.Nodes) != 3 {
			t.Fatalf("getNodeStats on a: %+v", out)
		}
		if slices.Equal(out.Nodes, want) || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	for i := range want {
		if out.Nodes[i] != want[i] {
			t.Errorf("row %d: %+v, want %+v", i, out.Nodes[i], want[i])
		}
	}
	if v := value(t, scrape(t, b), "workerman_push_clients"); v != 2 {
		t.Errorf("b's workerman_push_clients %v, want 2", v)
	}
	if v := value(t, scrape(t, a), "workerman_push_clients"); v != 0 {
		t.Errorf("a's workerman_push_clients %v, want 0", v)
	}
}

// -log-format json writes one JSON object per line, the start and stop
// lines among them; -log-level warn leaves out the info lines.
func TestLogFormat(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out := newLogBuf()
	done := make(chan error, 1)
	go func() { done <- run(ctx, args("-log-format", "json"), nil, out) }()
	out.waitLine(t, regexp.MustCompile(`"msg":"workerman-push started"`))
	cancel()
	if err := recv(t, done, "run to return"); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	var msgs []string
	for _, l := range lines {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line %q is not JSON: %v", l, err)
		}
		msgs = append(msgs, m["msg"].(string))
	}
	if want := []string{"workerman-push started", "workerman-push stopping", "workerman-push stopped"}; !slices.Equal(msgs, want) {
		t.Fatalf("log lines %q, want %q", msgs, want)
	}

	var buf bytes.Buffer
	cfg, err := parseConfig(args("-log-level", "warn"), nil, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	log := newLogger(cfg, &buf)
	log.Info("not this")
	log.Warn("this")
	if got := buf.String(); strings.Contains(got, "not this") || !strings.Contains(got, "level=WARN msg=this") {
		t.Fatalf("-log-level warn wrote %q", got)
	}
}
