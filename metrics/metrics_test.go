package metrics_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"go.uber.org/goleak"

	"github.com/workerman-go/workerman"
	"github.com/workerman-go/workerman/metrics"
)

func TestMain(m *testing.M) {
	// What runs before the tests (the ants pool the library starts at
	// init) is not a leak; whatever a test leaves behind is.
	before := goleak.IgnoreCurrent()
	code := m.Run()
	if code == 0 {
		if err := goleak.Find(before); err != nil {
			fmt.Fprintln(os.Stderr, "goroutines left behind:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// serve starts w and stops it when the test ends.
func serve(t *testing.T, w *workerman.Worker) string {
	t.Helper()
	if err := w.Listen(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := w.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	})
	return w.Addr().String()
}

func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	return c
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

// A worker's series after real traffic, exactly: two connections (one
// echoing two messages, one ended by a packet over MaxPackageSize), then
// both closed, so that every figure is final.
func TestCollectorWorker(t *testing.T) {
	w := &workerman.Worker{URI: "text://127.0.0.1:0", Name: "echo", MaxPackageSize: 16}
	w.OnMessage = func(c *workerman.Connection, data []byte) { c.Send(data) }
	closed := make(chan struct{}, 2)
	w.OnClose = func(*workerman.Connection) { closed <- struct{}{} }
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(metrics.NewCollector(w)) // before Listen: zero until then
	addr := serve(t, w)

	c := dial(t, addr)
	r := bufio.NewReader(c)
	for _, m := range []string{"hello\n", "ab\n"} {
		io.WriteString(c, m)
		if got, err := r.ReadString('\n'); got != m {
			t.Fatalf("echo %q, %v; want %q", got, err, m)
		}
	}
	c.Close()
	big := dial(t, addr)
	io.WriteString(big, strings.Repeat("x", 32))
	if _, err := io.ReadAll(big); err != nil {
		t.Fatalf("waiting for the server to close: %v", err)
	}
	wait(t, closed, "OnClose")
	wait(t, closed, "OnClose")

	labels := fmt.Sprintf(`listen="text://%s",worker="echo"`, addr)
	want := strings.NewReplacer("LABELS", labels).Replace(`
# HELP workerman_bytes_received_total Bytes read from the sockets, protocol framing included.
# TYPE workerman_bytes_received_total counter
workerman_bytes_received_total{LABELS} 41
# HELP workerman_bytes_sent_total Bytes written to the sockets, protocol framing included.
# TYPE workerman_bytes_sent_total counter
workerman_bytes_sent_total{LABELS} 9
# HELP workerman_codec_errors_total Connections ended by bad input or a timeout, by kind.
# TYPE workerman_codec_errors_total counter
workerman_codec_errors_total{kind="bad_packet",LABELS} 0
workerman_codec_errors_total{kind="handshake_failed",LABELS} 0
workerman_codec_errors_total{kind="handshake_timeout",LABELS} 0
workerman_codec_errors_total{kind="heartbeat_timeout",LABELS} 0
workerman_codec_errors_total{kind="idle_timeout",LABELS} 0
workerman_codec_errors_total{kind="package_too_large",LABELS} 1
workerman_codec_errors_total{kind="request_head_timeout",LABELS} 0
# HELP workerman_connections Connections open now: accepted, and whose OnClose has not run yet.
# TYPE workerman_connections gauge
workerman_connections{LABELS} 0
# HELP workerman_connections_total Connections accepted (on udp://, datagrams; on the client side, connection attempts).
# TYPE workerman_connections_total counter
workerman_connections_total{LABELS} 2
# HELP workerman_messages_received_total Messages delivered to the program: OnMessage, HTTP requests, messages a Pipe forwarded.
# TYPE workerman_messages_received_total counter
workerman_messages_received_total{LABELS} 2
# HELP workerman_messages_sent_total Writes handed to the sockets: sends that were not dropped (one per connection for broadcasts), and the protocol's own (handshake responses, pings, pongs, close frames).
# TYPE workerman_messages_sent_total counter
workerman_messages_sent_total{LABELS} 2
# HELP workerman_pool_queued Connections with callbacks to run waiting now for a goroutine of the callback pool.
# TYPE workerman_pool_queued gauge
workerman_pool_queued{LABELS} 0
# HELP workerman_pool_wait_seconds_total Time connections waited for a goroutine of the callback pool.
# TYPE workerman_pool_wait_seconds_total counter
workerman_pool_wait_seconds_total{LABELS} 0
# HELP workerman_pool_waits_total Connections that waited for a goroutine of the callback pool.
# TYPE workerman_pool_waits_total counter
workerman_pool_waits_total{LABELS} 0
# HELP workerman_send_buffer_full_total Times a connection's send queue reached MaxSendBufferSize (OnBufferFull).
# TYPE workerman_send_buffer_full_total counter
workerman_send_buffer_full_total{LABELS} 0
# HELP workerman_send_dropped_total Sends dropped because the send queue was full (ErrSendBufferFull).
# TYPE workerman_send_dropped_total counter
workerman_send_dropped_total{LABELS} 0
`)
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want)); err != nil {
		t.Fatal(err)
	}
	if problems, err := testutil.GatherAndLint(reg); err != nil || len(problems) > 0 {
		t.Fatalf("lint: %v %v", problems, err)
	}
}

// Several workers: one set of series each, told apart by their labels,
// and a full send buffer counted on the worker it happened on.
func TestCollectorWorkers(t *testing.T) {
	quiet := &workerman.Worker{URI: "text://127.0.0.1:0", Name: "quiet"}
	flood := &workerman.Worker{URI: "text://127.0.0.1:0", Name: "flood", MaxSendBufferSize: 64 << 10}
	chunk := strings.Repeat("x", 16<<10)
	refused := make(chan int, 1)
	flood.OnMessage = func(c *workerman.Connection, data []byte) {
		n := 0
		for ; n < 100000 && c.SendString(chunk) == nil; n++ {
		}
		refused <- n
	}
	c := metrics.NewCollector(quiet, flood)
	serve(t, quiet)
	conn := dial(t, serve(t, flood))
	conn.(*net.TCPConn).SetReadBuffer(4 << 10)
	io.WriteString(conn, "go\n")
	if n := wait(t, refused, "a refused send"); n == 100000 {
		t.Fatal("the send buffer never filled")
	}
	got := collect(t, c)
	if got[`workerman_send_dropped_total{listen="text://`+flood.Addr().String()+`",worker="flood"}`] != 1 ||
		got[`workerman_send_dropped_total{listen="text://`+quiet.Addr().String()+`",worker="quiet"}`] != 0 {
		t.Fatalf("send_dropped_total: %v", got)
	}
	if full := got[`workerman_send_buffer_full_total{listen="text://`+flood.Addr().String()+`",worker="flood"}`]; full < 1 {
		t.Fatalf("send_buffer_full_total %v, want at least 1", full)
	}
	if n := testutil.CollectAndCount(c, "workerman_connections"); n != 2 {
		t.Fatalf("%d workerman_connections series, want one per worker", n)
	}
}

// With no worker, the collector reports the whole process: every worker,
// running or stopped, and the client side (AsyncConnection).
func TestCollectorProcess(t *testing.T) {
	c := metrics.NewCollector()
	before := collect(t, c)

	w := &workerman.Worker{URI: "text://127.0.0.1:0"}
	w.OnMessage = func(c *workerman.Connection, data []byte) { c.Send(data) }
	if err := w.Listen(); err != nil {
		t.Fatal(err)
	}
	a := workerman.NewAsyncConnection("text://" + w.Addr().String())
	replies, closed := make(chan string, 2), make(chan struct{})
	a.OnConnect = func(a *workerman.AsyncConnection) { a.SendString("a"); a.SendString("bc") }
	a.OnMessage = func(_ *workerman.AsyncConnection, data []byte) { replies <- string(data) }
	a.OnClose = func(*workerman.AsyncConnection) { close(closed) }
	if err := a.Connect(); err != nil {
		t.Fatal(err)
	}
	wait(t, replies, "a reply")
	wait(t, replies, "a reply")
	a.Close()
	wait(t, closed, "the client's OnClose")
	if err := w.Close(); err != nil { // its figures stay in the process's
		t.Fatal(err)
	}

	after := collect(t, c)
	// Each side received and sent 2 messages, "a\n" and "bc\n".
	for name, want := range map[string]float64{
		"workerman_connections_total":       2,
		"workerman_messages_received_total": 4,
		"workerman_messages_sent_total":     4,
		"workerman_bytes_received_total":    10,
		"workerman_bytes_sent_total":        10,
		"workerman_send_dropped_total":      0,
	} {
		if got := after[name] - before[name]; got != want {
			t.Errorf("%s went up by %v, want %v", name, got, want)
		}
	}
	if after["workerman_connections"] != before["workerman_connections"] {
		t.Errorf("workerman_connections %v, was %v", after["workerman_connections"], before["workerman_connections"])
	}
	if problems, err := testutil.CollectAndLint(c); err != nil || len(problems) > 0 {
		t.Fatalf("lint: %v %v", problems, err)
	}
}

// collect returns every series of c by name and labels.
func collect(t *testing.T, c prometheus.Collector) map[string]float64 {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			out[mf.GetName()+labelString(m)] = value(m)
		}
	}
	return out
}

func labelString(m *dto.Metric) string {
	var ls []string
	for _, l := range m.GetLabel() {
		ls = append(ls, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
	}
	if len(ls) == 0 {
		return ""
	}
	sort.Strings(ls)
	return "{" + strings.Join(ls, ",") + "}"
}

func value(m *dto.Metric) float64 {
	if m.GetCounter() != nil {
		return m.GetCounter().GetValue()
	}
	return m.GetGauge().GetValue()
}
