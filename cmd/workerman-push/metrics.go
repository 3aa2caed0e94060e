package main

// What GET /metrics reports, and the same figures as one node's row of the
// dashboard. Everything the push server counts by itself is here, in one
// place: the library has no traffic counters yet, so connections and
// messages are derived from what the server sees (the worker's connection
// count, its OnMessage, the welcomes it sends and the gateway's Stats).
// When the library counts them, nodeStats reads those instead and nothing
// else changes.

import (
	"fmt"
	"net/http"
	"strconv"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/workerman-go/workerman"
)

// counters are the push server's own counts. Their methods are safe from
// any goroutine and never block (they run in callbacks and API requests).
type counters struct {
	received atomic.Uint64 // WebSocket messages from clients
	welcomes atomic.Uint64 // welcome frames sent
	api      *prometheus.CounterVec
}

func newCounters() *counters {
	return &counters{
		api: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "workerman_push_api_requests_total",
			Help: "HTTP API calls by method (\"unknown\" for a name the API does not have) and status code.",
		}, []string{"method", "code"}),
	}
}

// countReceived is the worker's OnMessage, set before the gateway wraps
// it: it sees every message a WebSocket client sends (an http:// worker
// with OnRequest delivers plain HTTP requests elsewhere).
func (m *counters) countReceived(*workerman.Connection, []byte) { m.received.Add(1) }

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
	// MessagesReceived counts the messages clients sent.
	MessagesReceived uint64 `json:"messages_received"`
	// MessagesSent counts the messages handed to clients' connections:
	// welcomes, and the pushes the gateway delivered.
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
	gs := s.g.Stats()
	welcomes := s.counters.welcomes.Load()
	return nodeStats{
		Node:             s.g.Node(),
		Connections:      s.w.ConnectionCount(),
		MessagesReceived: s.counters.received.Load(),
		MessagesSent:     welcomes + gs.Deliveries,
		Clients:          gs.Clients,
		UIDs:             gs.UIDs,
		Groups:           gs.Groups,
		Deliveries:       gs.Deliveries,
		Dropped:          gs.Dropped,
		Healthy:          s.unhealthy() == "",
	}
}

// nodeStatsIfReady is nodeStats once the gateway is made (the cluster may
// ask before New returned).
func (s *server) nodeStatsIfReady() (nodeStats, bool) {
	if !s.ready.Load() {
		return nodeStats{}, false
	}
	return s.nodeStats(), true
}

// unhealthy says why /healthz answers 503, or "" when it answers 200.
func (s *server) unhealthy() string {
	switch {
	case s.draining.Load():
		return "draining"
	case s.broker != nil && !s.broker.Healthy():
		return "cluster broker unreachable"
	}
	return ""
}

// The series of nodeStats. A node reports only its own figures; in a
// cluster, sum them over the nodes (each scraped on its own -api).
var (
	descConnections = prometheus.NewDesc("workerman_connections",
		"Open connections of the client endpoint (WebSocket clients and workerman-push.js downloads).", nil, nil)
	descReceived = prometheus.NewDesc("workerman_messages_received_total",
		"Messages received from WebSocket clients.", nil, nil)
	descSent = prometheus.NewDesc("workerman_messages_sent_total",
		"Messages handed to WebSocket clients' connections: welcomes and delivered pushes.", nil, nil)
	descClients = prometheus.NewDesc("workerman_push_clients",
		"Clients connected to this node.", nil, nil)
	descUIDs = prometheus.NewDesc("workerman_push_uids",
		"Distinct uids bound to this node's clients.", nil, nil)
	descGroups = prometheus.NewDesc("workerman_push_groups",
		"Groups with a member on this node.", nil, nil)
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
	for _, d := range []*prometheus.Desc{descConnections, descReceived, descSent, descClients, descUIDs,
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
	gauge(descConnections, st.Connections)
	counter(descReceived, st.MessagesReceived)
	counter(descSent, st.MessagesSent)
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

// metricsHandler serves GET /metrics: this node's series, the API calls,
// and the Go runtime's and the process's (go_goroutines,
// process_resident_memory_bytes...). It needs no key: put the -api port
// where only the backend and Prometheus reach it.
func (s *server) metricsHandler() http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
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
