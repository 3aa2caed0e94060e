package main

// What GET /metrics reports, and the same figures as one node's row of the
// dashboard, in one place. Connections and messages are the library's
// counters (workerman.Worker.Stats, exported by the metrics module); the
// push layer's are the gateway's (gateway.Stats); API calls are counted
// here.

import (
	"fmt"
	"net/http"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/workerman-go/workerman/metrics"
)

// counters are the push server's own counts. Their methods are safe from
// any goroutine and never block (they run in API requests).
type counters struct {
	api *prometheus.CounterVec
}

func newCounters() *counters {
	return &counters{
		api: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "workerman_push_api_requests_total",
			Help: "HTTP API calls by method (\"unknown\" for a name the API does not have) and status code.",
		}, []string{"method", "code"}),
	}
}

// countAPI is APIOptions.Observe.
func (m *counters) countAPI(method string, status int) {
	m.api.WithLabelValues(method, strconv.Itoa(status)).Inc()
}

// nodeStats are one node's figures: its row on the dashboard, and its
// series on /metrics.
type nodeStats struct {
	Node string `json:"node"`
	// Connections are the open connections of the client endpoint:
	// WebSocket clients, and those fetching workerman-push.js.
	Connections int `json:"connections"`
	// MessagesReceived counts what the client endpoint received: the
	// clients' messages, and HTTP requests (workerman-push.js).
	MessagesReceived uint64 `json:"messages_received"`
	// MessagesSent counts the writes to the client endpoint's sockets:
	// handshakes, welcomes, pushes, heartbeats.
	MessagesSent uint64 `json:"messages_sent"`
	Clients      int    `json:"clients"`
	UIDs         int    `json:"uids"`
	Groups       int    `json:"groups"`
	Deliveries   uint64 `json:"deliveries"`
	Dropped      uint64 `json:"dropped"`
	// Healthy is what /healthz says: serving, and the broker reachable.
	Healthy bool `json:"healthy"`
}

// nodeStats reads this node's figures now.
func (s *server) nodeStats() nodeStats {
	gs, ws := s.g.Stats(), s.w.Stats()
	return nodeStats{
		Node:             s.g.Node(),
		Connections:      ws.Connections,
		MessagesReceived: ws.MessagesReceived,
		MessagesSent:     ws.MessagesSent,
		Clients:          gs.Clients,
		UIDs:             gs.UIDs,
		Groups:           gs.Groups,
		Deliveries:       gs.Deliveries,
		Dropped:          gs.Dropped,
		Healthy:          s.unhealthy() == "",
	}
}

// nodeStatsIfReady is this node's answer to another node's dashboard
// once the gateway is made (the cluster may ask before New returned): its
// figures, and digests of its uids and groups.
func (s *server) nodeStatsIfReady() (nodeStatsReply, bool) {
	if !s.ready.Load() {
		return nodeStatsReply{}, false
	}
	return nodeStatsReply{
		nodeStats:   s.nodeStats(),
		UIDDigest:   digestOf(s.g.LocalUIDs()),
		GroupDigest: digestOf(s.g.LocalGroups()),
	}, true
}

// unhealthy says why /healthz answers 503, or "" when it answers 200.
func (s *server) unhealthy() string {
	switch {
	case s.draining.Load():
		return "draining"
	case s.broker != nil && !s.broker.Healthy():
		return "cluster broker unreachable"
	case s.broker != nil && !s.broker.HistoryReady():
		return "history not ready (JetStream has no majority of its servers yet)"
	}
	return ""
}

// The series of nodeStats. A node reports only its own figures (each node
// is scraped on its own -api), by design: a scrape must not ask the
// cluster. Clients, deliveries and drops add up over the nodes; uids and
// groups do not (a uid bound on two nodes is in both nodes' figures), so
// their help says where the cluster's distinct counts are.
var (
	descClients = prometheus.NewDesc("workerman_push_clients",
		"Clients connected to this node.", nil, nil)
	descUIDs = prometheus.NewDesc("workerman_push_uids",
		"Distinct uids bound to this node's clients. Per node: a uid bound on several nodes counts on each, "+
			"so a sum over nodes overcounts; the cluster's distinct count is the API's getAllUidCount (and the dashboard's uids).", nil, nil)
	descGroups = prometheus.NewDesc("workerman_push_groups",
		"Groups with a member on this node. Per node: a group with members on several nodes counts on each, "+
			"so a sum over nodes overcounts; the cluster's distinct groups are the API's getAllGroupIdList (and the dashboard's groups).", nil, nil)
	descDeliveries = prometheus.NewDesc("workerman_push_deliveries_total",
		"Pushes handed to this node's clients' connections (one per client reached).", nil, nil)
	descDropped = prometheus.NewDesc("workerman_push_dropped_total",
		"Pushes not delivered to a member of this node: its send buffer was full (a client that does not read) or it was closing.", nil, nil)
	descUp = prometheus.NewDesc("workerman_push_healthy",
		"1 while /healthz answers 200; 0 while draining or while the cluster broker is unreachable.", nil, nil)
	descInfo = prometheus.NewDesc("workerman_push_node_info",
		"Always 1; names this node in the cluster.", []string{"node"}, nil)
)

// statsCollector reads nodeStats once per scrape.
type statsCollector struct{ s *server }

func (c statsCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descClients, descUIDs,
		descGroups, descDeliveries, descDropped, descUp, descInfo} {
		ch <- d
	}
}

func (c statsCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.s.nodeStats()
	gauge := func(d *prometheus.Desc, v int) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, float64(v))
	}
	counter := func(d *prometheus.Desc, v uint64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v))
	}
	gauge(descClients, st.Clients)
	gauge(descUIDs, st.UIDs)
	gauge(descGroups, st.Groups)
	counter(descDeliveries, st.Deliveries)
	counter(descDropped, st.Dropped)
	up := 0
	if st.Healthy {
		up = 1
	}
	gauge(descUp, up)
	ch <- prometheus.MustNewConstMetric(descInfo, prometheus.GaugeValue, 1, st.Node)
}

// metricsHandler serves GET /metrics: the client endpoint's traffic
// (workerman_connections, workerman_messages_*, bytes, send buffers, codec
// errors, the callback pool: the library's counters, labelled with the
// worker and its listen address), this node's push series, the API calls,
// and the Go runtime's and the process's (go_goroutines,
// process_resident_memory_bytes...). It needs no key: put the -api port
// where only the backend and Prometheus reach it.
func (s *server) metricsHandler() http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		metrics.NewCollector(s.w),
		statsCollector{s},
		s.counters.api,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		ErrorLog:      promLogger{s},
		ErrorHandling: promhttp.ContinueOnError,
	})
}

// promLogger logs what a scrape could not collect (at most one line per
// scrape).
type promLogger struct{ s *server }

func (l promLogger) Println(v ...any) { l.s.log.Warn("metrics: " + fmt.Sprint(v...)) }
