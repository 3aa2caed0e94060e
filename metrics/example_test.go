package metrics_test

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/workerman-go/workerman"
	"github.com/workerman-go/workerman/metrics"
)

// A WebSocket server whose figures Prometheus scrapes on :9100/metrics.
func ExampleNewCollector() {
	w := workerman.NewWorker("websocket://0.0.0.0:8000")
	w.Name = "chat"
	w.OnMessage = func(c *workerman.Connection, data []byte) { c.Send(data) }

	prometheus.MustRegister(metrics.NewCollector(w))

	http.Handle("/metrics", promhttp.Handler())
	go http.ListenAndServe(":9100", nil)
	workerman.RunAll()
}

// The process as a whole: every worker and every AsyncConnection, in
// series without labels.
func ExampleNewCollector_process() {
	prometheus.MustRegister(metrics.NewCollector())
}
