// Package metrics exports workerman's counters (workerman.Stats) to
// Prometheus. It is a module of its own, so that the library's module does
// not depend on the Prometheus client; a program that wants the series
// adds one line:
//
//	prometheus.MustRegister(metrics.NewCollector(w))
//
// The collector reads Worker.Stats (or workerman.ProcessStats) at every
// scrape and keeps nothing between scrapes: the counting itself is the
// library's, and costs the send path nothing shared (see workerman.Stats).
//
// # Series
//
// With workers given, every series carries the labels worker (the
// worker's Name, "none" when unset) and listen (scheme://host:port, the
// port the worker is bound to when it asked for port 0). With none, the
// series describe the whole process (workerman.ProcessStats: every worker,
// running or stopped, and every AsyncConnection) and carry no label.
//
//	workerman_connections                  gauge    connections open now
//	workerman_connections_total            counter  connections accepted
//	workerman_messages_received_total      counter  messages delivered to the program
//	workerman_messages_sent_total          counter  writes handed to the sockets
//	workerman_bytes_received_total         counter  bytes read from the sockets
//	workerman_bytes_sent_total             counter  bytes written to the sockets
//	workerman_send_buffer_full_total       counter  send queues that reached MaxSendBufferSize
//	workerman_send_dropped_total           counter  sends dropped on a full queue
//	workerman_codec_errors_total{kind}     counter  connections ended by bad input or a timeout
//	workerman_pool_queued                  gauge    connections waiting for a callback goroutine
//	workerman_pool_waits_total             counter  connections that waited for one
//	workerman_pool_wait_seconds_total      counter  the time they waited
//
// kind is one of bad_packet, package_too_large, handshake_failed,
// idle_timeout, handshake_timeout, heartbeat_timeout and
// request_head_timeout (the fields of workerman.CodecErrors); every kind is
// reported, zero or not, so that rate() works from the first error.
package metrics

import (
	"net"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/workerman-go/workerman"
)

// NewCollector returns a collector of the workers' figures, one set of
// series per worker, labelled worker and listen; with no worker, of the
// whole process, unlabelled. Register it once:
//
//	prometheus.MustRegister(metrics.NewCollector(front, inner))
//
// Workers may be given before they start (their figures are zero until
// then) and stay after they stopped (their figures are final). Two workers
// of one collector must differ in name or listen address, or the registry
// refuses the scrape as duplicate series.
func NewCollector(workers ...*workerman.Worker) prometheus.Collector {
	var labels []string
	if len(workers) > 0 {
		labels = []string{"worker", "listen"}
	}
	desc := func(name, help string, extra ...string) *prometheus.Desc {
		return prometheus.NewDesc("workerman_"+name, help, append(append([]string(nil), labels...), extra...), nil)
	}
	return &collector{
		workers: append([]*workerman.Worker(nil), workers...),
		connections: desc("connections",
			"Connections open now: accepted, and whose OnClose has not run yet."),
		connectionsTotal: desc("connections_total",
			"Connections accepted (on udp://, datagrams; on the client side, connection attempts)."),
		messagesReceived: desc("messages_received_total",
			"Messages delivered to the program: OnMessage, HTTP requests, messages a Pipe forwarded."),
		messagesSent: desc("messages_sent_total",
			"Writes handed to the sockets: sends that were not dropped (one per connection for broadcasts), and the protocol's own (handshake responses, pings, pongs, close frames)."),
		bytesReceived: desc("bytes_received_total",
			"Bytes read from the sockets, protocol framing included."),
		bytesSent: desc("bytes_sent_total",
			"Bytes written to the sockets, protocol framing included."),
		bufferFull: desc("send_buffer_full_total",
			"Times a connection's send queue reached MaxSendBufferSize (OnBufferFull)."),
		dropped: desc("send_dropped_total",
			"Sends dropped because the send queue was full (ErrSendBufferFull)."),
		codecErrors: desc("codec_errors_total",
			"Connections ended by bad input or a timeout, by kind.", "kind"),
		poolQueued: desc("pool_queued",
			"Connections with callbacks to run waiting now for a goroutine of the callback pool."),
		poolWaits: desc("pool_waits_total",
			"Connections that waited for a goroutine of the callback pool."),
		poolWait: desc("pool_wait_seconds_total",
			"Time connections waited for a goroutine of the callback pool."),
	}
}

type collector struct {
	workers []*workerman.Worker

	mu      sync.Mutex
	listens map[*workerman.Worker]string // once bound: a label never changes

	connections, connectionsTotal    *prometheus.Desc
	messagesReceived, messagesSent   *prometheus.Desc
	bytesReceived, bytesSent         *prometheus.Desc
	bufferFull, dropped, codecErrors *prometheus.Desc
	poolQueued, poolWaits, poolWait  *prometheus.Desc
}

// Describe sends the descriptions of every series.
func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.connections, c.connectionsTotal, c.messagesReceived, c.messagesSent,
		c.bytesReceived, c.bytesSent, c.bufferFull, c.dropped, c.codecErrors, c.poolQueued, c.poolWaits, c.poolWait} {
		ch <- d
	}
}

// Collect reads the figures and sends them.
func (c *collector) Collect(ch chan<- prometheus.Metric) {
	if len(c.workers) == 0 {
		c.collect(ch, workerman.ProcessStats())
		return
	}
	for _, w := range c.workers {
		c.collect(ch, w.Stats(), name(w), c.listen(w))
	}
}

func (c *collector) collect(ch chan<- prometheus.Metric, s workerman.Stats, labels ...string) {
	gauge := func(d *prometheus.Desc, v float64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v float64, extra ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, append(labels[:len(labels):len(labels)], extra...)...)
	}
	gauge(c.connections, float64(s.Connections))
	counter(c.connectionsTotal, float64(s.ConnectionsTotal))
	counter(c.messagesReceived, float64(s.MessagesReceived))
	counter(c.messagesSent, float64(s.MessagesSent))
	counter(c.bytesReceived, float64(s.BytesReceived))
	counter(c.bytesSent, float64(s.BytesSent))
	counter(c.bufferFull, float64(s.SendBufferFull))
	counter(c.dropped, float64(s.SendDropped))
	e := s.CodecErrors
	for _, k := range []struct {
		kind string
		n    uint64
	}{
		{"bad_packet", e.BadPacket},
		{"package_too_large", e.PackageTooLarge},
		{"handshake_failed", e.HandshakeFailed},
		{"idle_timeout", e.IdleTimeout},
		{"handshake_timeout", e.HandshakeTimeout},
		{"heartbeat_timeout", e.HeartbeatTimeout},
		{"request_head_timeout", e.RequestHeadTimeout},
	} {
		counter(c.codecErrors, float64(k.n), k.kind)
	}
	gauge(c.poolQueued, float64(s.PoolQueued))
	counter(c.poolWaits, float64(s.PoolWaitCount))
	counter(c.poolWait, s.PoolWaitDuration.Seconds())
}

// name is the worker's Name as status shows it.
func name(w *workerman.Worker) string {
	if w.Name != "" {
		return w.Name
	}
	return "none"
}

// listen is the worker's URI with the address it is bound to (the port
// chosen for port 0), from the first scrape that finds it bound on: a
// worker keeps its series after Unlisten and after it stopped.
func (c *collector) listen(w *workerman.Worker) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if l, ok := c.listens[w]; ok {
		return l
	}
	a := w.Addr()
	if a == nil {
		return w.URI
	}
	l := boundURI(w.URI, a)
	if c.listens == nil {
		c.listens = make(map[*workerman.Worker]string)
	}
	c.listens[w] = l
	return l
}

func boundURI(uri string, a net.Addr) string {
	scheme, _, ok := strings.Cut(uri, "://")
	if _, isUnix := a.(*net.UnixAddr); isUnix || !ok {
		return uri
	}
	return scheme + "://" + a.String()
}
