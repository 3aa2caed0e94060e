package main

import (
	"errors"
	"fmt"
	"io"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/workerman-go/workerman/bench/internal/benchproc"
	"github.com/workerman-go/workerman/bench/internal/pushsub"
)

func logf(format string, a ...any) { log.Printf(format, a...) }

// sample is what one server measured in one round.
type sample struct {
	Server string `json:"server"`
	Round  int    `json:"round"`
	Error  string `json:"error,omitempty"`

	ConnectSeconds float64   `json:"connect_s"`        // N clients connected and joined
	RSSIdle        int64     `json:"rss_idle"`         // before any client
	RSSConnected   int64     `json:"rss_connected"`    // N group members, after settling
	RSSPerSub      float64   `json:"rss_per_sub"`      // (connected-idle)/N
	RSSBound       int64     `json:"rss_bound"`        // after each got its uid too
	GroupCPUPerMsg float64   `json:"group_cpu_us"`     // server µs per delivered message
	GroupLatencies []float64 `json:"group_latency_ms"` // push call to last delivery, per push
	GroupDelivered int64     `json:"group_delivered"`
	UIDCallsPerSec float64   `json:"uid_calls_per_s"`     // calls answered per second
	UIDDeliverSecs float64   `json:"uid_deliver_s"`       // first call to last delivery
	UIDCPUPerCall  float64   `json:"uid_cpu_us"`          // server µs per call (API + delivery)
	UIDCallLatency []float64 `json:"uid_call_latency_ms"` // p50, p99 of the calls
	UIDDelivered   int64     `json:"uid_delivered"`
	Lost           int64     `json:"lost"` // connections lost during the round
}

// run measures every server, rounds interleaved, and writes the report.
func run(opt options) error {
	tmp, err := os.MkdirTemp("", "pushbench")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	start := time.Now()
	bin, err := prepare(opt, tmp)
	if err != nil {
		return err
	}
	rep := &report{Opt: reportOpts(opt), OursRev: bin.oursRev, Started: start.UTC()}
	rep.Machine = machine()
	for round := 1; round <= opt.rounds; round++ {
		for _, name := range opt.servers {
			logf("round %d/%d: %s", round, opt.rounds, name)
			smp := measure(opt, bin, tmp, name, round)
			smp.Round = round
			if smp.Error != "" {
				logf("  %s failed: %s", name, smp.Error)
			} else {
				logf("  rss/sub %.0f B, group cpu %.2f µs/msg, last delivery p50 %.1f ms, uid %.0f calls/s (%.2f µs CPU/call)",
					smp.RSSPerSub, smp.GroupCPUPerMsg, benchproc.Percentile(smp.GroupLatencies, 0.5), smp.UIDCallsPerSec, smp.UIDCPUPerCall)
			}
			rep.Samples = append(rep.Samples, smp)
		}
	}
	rep.Took = time.Since(start).Round(time.Second).String()
	return rep.write(opt)
}

// startChildren starts opt.children subscriber processes for s, their
// clients split evenly, each dialing from its own 127.x addresses.
func startChildren(opt options, bin binaries, s *server, got chan<- pushsub.Got) ([]*pushsub.Proc, error) {
	var kids []*pushsub.Proc
	per := opt.subscribers / opt.children
	base := 0
	for i := range opt.children {
		n := per
		if i == opt.children-1 {
			n = opt.subscribers - base
		}
		var srcs []string
		for j := range 4 {
			srcs = append(srcs, fmt.Sprintf("127.0.%d.%d", 10+i, 1+j))
		}
		c, err := pushsub.Start(got, bin.self, "-child", "-kind", kindOf(s.name), "-ws", s.ws, "-api", s.api, "-key", apiKey,
			"-n", strconv.Itoa(n), "-base", strconv.Itoa(base), "-sources", strings.Join(srcs, ","),
			"-parallel", strconv.Itoa(opt.parallel))
		if err != nil {
			return kids, err
		}
		kids = append(kids, c)
		base += n
	}
	return kids, nil
}

// measure runs both scenarios against a fresh server.
func measure(opt options, bin binaries, tmp, name string, round int) (smp sample) {
	smp.Server = name
	fail := func(err error) sample {
		smp.Error = err.Error()
		return smp
	}
	s, err := startServer(name, bin, tmp)
	if err != nil {
		return fail(err)
	}
	defer s.Stop()
	time.Sleep(time.Second) // let start-up settle
	smp.RSSIdle = s.RSS()

	got := make(chan pushsub.Got, 1024)
	kids, err := startChildren(opt, bin, s, got)
	defer pushsub.Stop(kids)
	if err != nil {
		return fail(err)
	}
	t0 := time.Now()
	if _, err := pushsub.All(kids, "CONNECT", "CONNECTED", 5*time.Minute); err != nil {
		return fail(fmt.Errorf("%w\n%s", err, s.LogTail()))
	}
	smp.ConnectSeconds = time.Since(t0).Seconds()
	time.Sleep(opt.settle)
	smp.RSSConnected = s.RSS()
	smp.RSSPerSub = float64(smp.RSSConnected-smp.RSSIdle) / float64(opt.subscribers)

	// Scenario 1: group pushes, one at a time.
	hc := pushsub.NewHTTPClient(opt.callers)
	var cpu0 time.Duration
	for k := 0; k <= opt.pushes; k++ { // push 0 warms up
		if k == 1 {
			if opt.perf != "" {
				stop := startPerf(opt.perf, s, round)
				defer stop()
			}
			cpu0 = s.CPU()
		}
		method, body := pushsub.GroupPush(kindOf(name), "bench", pushsub.Message(kindOf(name), k, opt.size))
		start := time.Now().UnixNano()
		if err := pushsub.Call(hc, s.api, apiKey, kindOf(name), method, body); err != nil {
			return fail(fmt.Errorf("push %d: %w", k, err))
		}
		last, counts, err := pushsub.WaitGot(got, kids, k, 30*time.Second)
		if errors.Is(err, pushsub.ErrNotAll) {
			return fail(fmt.Errorf("push %d: not every subscriber had it after 30 s (%v)", k, counts))
		} else if err != nil {
			return fail(fmt.Errorf("push %d: %w", k, err))
		}
		if k > 0 {
			smp.GroupLatencies = append(smp.GroupLatencies, float64(last-start)/1e6)
		}
	}
	cpu := s.CPU() - cpu0
	stopPerf()
	smp.GroupDelivered = int64(opt.pushes) * int64(opt.subscribers)
	smp.GroupCPUPerMsg = float64(cpu.Microseconds()) / float64(smp.GroupDelivered)

	// Scenario 2: sendToUid from several keep-alive callers.
	if _, err := pushsub.All(kids, "BIND", "BOUND", 5*time.Minute); err != nil {
		return fail(err)
	}
	time.Sleep(opt.settle / 3)
	smp.RSSBound = s.RSS()
	var (
		next   atomic.Int64
		wg     sync.WaitGroup
		errMu  sync.Mutex
		errAny error
		lat    = make([][]float64, opt.callers)
	)
	msg := pushsub.Message(kindOf(name), -1, opt.size)
	cpu1 := s.CPU()
	t1 := time.Now()
	for c := range opt.callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= int64(opt.uidCalls) {
					return
				}
				method, body := pushsub.UIDPush(kindOf(name), "u"+strconv.Itoa(int(i%int64(opt.subscribers))), msg)
				cs := time.Now()
				if err := pushsub.Call(hc, s.api, apiKey, kindOf(name), method, body); err != nil {
					errMu.Lock()
					errAny = err
					errMu.Unlock()
					return
				}
				lat[c] = append(lat[c], float64(time.Since(cs).Microseconds())/1000)
			}
		}()
	}
	wg.Wait()
	callsTook := time.Since(t1)
	if errAny != nil {
		return fail(fmt.Errorf("sendToUid: %w", errAny))
	}
	// every message counted where it arrived
	deadline := time.Now().Add(30 * time.Second)
	for {
		counts, err := pushsub.All(kids, "COUNT", "COUNT", 10*time.Second)
		if err != nil {
			return fail(err)
		}
		var n, lost int64
		for _, c := range counts {
			var a, b int64
			fmt.Sscan(c, &a, &b)
			n, lost = n+a, lost+b
		}
		smp.UIDDelivered, smp.Lost = n, lost
		if n >= int64(opt.uidCalls) {
			break
		}
		if time.Now().After(deadline) {
			return fail(fmt.Errorf("sendToUid: %d of %d messages arrived after 30 s (%d connections lost)", n, opt.uidCalls, lost))
		}
		time.Sleep(10 * time.Millisecond)
	}
	smp.UIDDeliverSecs = time.Since(t1).Seconds()
	smp.UIDCPUPerCall = float64((s.CPU() - cpu1).Microseconds()) / float64(opt.uidCalls)
	smp.UIDCallsPerSec = float64(opt.uidCalls) / callsTook.Seconds()
	var all []float64
	for _, l := range lat {
		all = append(all, l...)
	}
	smp.UIDCallLatency = []float64{benchproc.Percentile(all, 0.5), benchproc.Percentile(all, 0.99)}
	if smp.UIDDelivered != int64(opt.uidCalls) {
		return fail(fmt.Errorf("sendToUid: %d calls, %d deliveries", opt.uidCalls, smp.UIDDelivered))
	}
	if smp.Lost > 0 {
		return fail(fmt.Errorf("%d connections lost during the round", smp.Lost))
	}
	return smp
}

var perfStop func()

// startPerf records the server's CPU with perf (call graphs from frame
// pointers) until stopPerf.
func startPerf(dir string, s *server, round int) func() {
	os.MkdirAll(dir, 0o755)
	out := filepath.Join(dir, fmt.Sprintf("perf-%s-%d.data", s.name, round))
	cmd := exec.Command("perf", "record", "-F", "999", "-g", "-p", strconv.Itoa(s.Pid()), "-o", out)
	cmd.Stdout, cmd.Stderr = io.Discard, os.Stderr
	if err := cmd.Start(); err != nil {
		logf("perf: %v", err)
		return func() {}
	}
	time.Sleep(300 * time.Millisecond) // perf attaches
	perfStop = func() {
		cmd.Process.Signal(os.Interrupt)
		cmd.Wait()
		logf("  perf profile: %s", out)
	}
	return stopPerf
}

func stopPerf() {
	if perfStop != nil {
		perfStop()
		perfStop = nil
	}
}
