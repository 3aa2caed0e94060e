package main

import (
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/workerman-go/workerman/bench/internal/benchproc"
	"github.com/workerman-go/workerman/bench/internal/pushsub"
)

// system is one configuration measured: a server kind on a number of nodes.
type system struct {
	Kind  string `json:"kind"`
	Nodes int    `json:"nodes"`
}

func (s system) String() string {
	if s.Nodes == 1 {
		return s.Kind + ", 1 node"
	}
	return fmt.Sprintf("%s, %d nodes", s.Kind, s.Nodes)
}

// oursHistory is ours with -history-size: the cluster's history in the
// nats-server's JetStream, pushes as envelopes.
const oursHistory = "ours+history"

// kindOf is the kind of server a system's kind runs: ours or centrifugo.
func kindOf(kind string) string { return strings.TrimSuffix(kind, "+history") }

// pushSubject is the NATS subject that carries a push to the group.
func pushSubject(kind string) string {
	if kindOf(kind) == pushsub.Centrifugo {
		return "centrifugo.client." + group // its broker's prefix + ".client." + channel
	}
	return "workerman.g." + base64.RawURLEncoding.EncodeToString([]byte(group)) // natsbroker: u.<b64>, g.<b64>
}

// sample is what one system measured in one round.
type sample struct {
	System system `json:"system"`
	Round  int    `json:"round"`
	Error  string `json:"error,omitempty"`

	NodeMembers    []int     `json:"node_members"`
	ConnectSeconds float64   `json:"connect_s"`
	Latencies      []float64 `json:"latency_ms"` // push call to last delivery, per push
	CPUPerDelivery float64   `json:"cpu_us"`     // servers' µs per delivered message, pushes one at a time
	Seq            natsDelta `json:"nats_seq"`   // over the pushes one at a time

	BurstSeconds   float64   `json:"burst_s"` // first call to last delivery
	BurstRate      float64   `json:"burst_deliveries_per_s"`
	BurstCalls     float64   `json:"burst_calls_per_s"`
	BurstCPU       float64   `json:"burst_cpu_us"`
	Burst          natsDelta `json:"nats_burst"`
	NatsdCPUShare  float64   `json:"natsd_cpu_share"` // of the servers' CPU in the burst
	RSS            int64     `json:"rss"`             // nodes + nats-server, members connected
	Lost           int64     `json:"lost"`
	LoadBefore     string    `json:"load_before"`
	LoadAfter      string    `json:"load_after"`
	PushesMeasured int       `json:"pushes"`
}

// run measures every system, rounds interleaved, and writes the report.
func run(opt options) error {
	tmp, err := os.MkdirTemp("", "clusterbench")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	start := time.Now()
	bin, err := prepare(opt, tmp)
	if err != nil {
		return err
	}
	var systems []system
	for _, k := range opt.kinds {
		systems = append(systems, system{k, opt.nodes}, system{k, 1})
	}
	rep := &report{Opt: reportOpts(opt), Systems: systems, OursRev: bin.oursRev, Started: start.UTC(), Machine: machine(), LoadStart: loadavg()}
	for round := 1; round <= opt.rounds; round++ {
		for _, sys := range systems {
			logf("round %d/%d: %s", round, opt.rounds, sys)
			smp := measure(opt, bin, tmp, sys)
			smp.Round = round
			if smp.Error != "" {
				logf("  %s failed: %s", sys, smp.Error)
			} else {
				logf("  last delivery p50 %.1f ms p90 %.1f ms, burst %.0f deliveries/s, cpu %.2f µs/delivery, NATS per push: %.2f published, %.2f delivered to nodes (%d subscribed)",
					benchproc.Percentile(smp.Latencies, 0.5), benchproc.Percentile(smp.Latencies, 0.9), smp.BurstRate, smp.CPUPerDelivery,
					perPush(smp.Seq.PushIn, smp.PushesMeasured), perPush(smp.Seq.PushOut, smp.PushesMeasured), smp.Seq.PushSubs)
			}
			rep.Samples = append(rep.Samples, smp)
		}
	}
	rep.LoadEnd = loadavg()
	rep.Took = time.Since(start).Round(time.Second).String()
	if err := rep.write(opt); err != nil {
		return err
	}
	// A failed measurement, or more NATS messages per push than interested
	// nodes, fails the run (after its report), so that -smoke in CI notices.
	failed := 0
	for _, s := range rep.Samples {
		if s.Error != "" {
			failed++
		}
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d measurements failed", failed, len(rep.Samples))
	}
	for _, sys := range systems {
		if v := rep.natsVerdict(sys); !strings.HasPrefix(v, "yes") {
			return fmt.Errorf("%s: NATS messages per sendToGroup over the interested nodes: %s", sys, v)
		}
	}
	return nil
}

func perPush(n int64, pushes int) float64 { return float64(n) / float64(max(1, pushes)) }

// loadavg is the first three fields of /proc/loadavg.
func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// measure runs the pushes against a fresh nats-server and fresh nodes.
func measure(opt options, bin binaries, tmp string, sys system) (smp sample) {
	smp.System = sys
	smp.LoadBefore = loadavg()
	defer func() { smp.LoadAfter = loadavg() }()
	fail := func(err error) sample {
		smp.Error = err.Error()
		return smp
	}
	nd, err := startNatsd(bin.self)
	if err != nil {
		return fail(err)
	}
	defer nd.stop()
	var nodes []*node
	defer func() {
		for _, n := range nodes {
			n.Stop()
		}
	}()
	for i := range sys.Nodes {
		n, err := startNode(sys.Kind, i, bin, tmp, nd.url)
		if err != nil {
			return fail(err)
		}
		nodes = append(nodes, n)
	}
	time.Sleep(500 * time.Millisecond) // let start-up settle
	serverCPU := func() time.Duration {
		t := nd.cpu()
		for _, n := range nodes {
			t += n.CPU()
		}
		return t
	}

	// Subscriber processes: child i uses node i mod nodes, from its own
	// 127.x source addresses.
	got := make(chan pushsub.Got, 4096)
	var kids []*pushsub.Proc
	defer func() { pushsub.Stop(kids) }()
	smp.NodeMembers = make([]int, sys.Nodes)
	per := opt.members / opt.children
	for i := range opt.children {
		cnt := per
		if i == opt.children-1 {
			cnt = opt.members - per*(opt.children-1)
		}
		n := nodes[i%sys.Nodes]
		smp.NodeMembers[i%sys.Nodes] += cnt
		var srcs []string
		for j := range 4 {
			srcs = append(srcs, fmt.Sprintf("127.0.%d.%d", 10+i, 1+j))
		}
		p, err := pushsub.Start(got, bin.self, "-child", "-kind", kindOf(sys.Kind), "-ws", n.ws, "-api", n.api,
			"-n", strconv.Itoa(cnt), "-sources", strings.Join(srcs, ","), "-parallel", strconv.Itoa(opt.parallel))
		if err != nil {
			return fail(err)
		}
		kids = append(kids, p)
	}
	t0 := time.Now()
	if _, err := pushsub.All(kids, "CONNECT", "CONNECTED", 5*time.Minute); err != nil {
		return fail(fmt.Errorf("%w\n%s", err, nodes[0].LogTail()))
	}
	smp.ConnectSeconds = time.Since(t0).Seconds()
	time.Sleep(opt.settle)
	smp.RSS = nd.rss()
	for _, n := range nodes {
		smp.RSS += n.RSS()
	}

	// Pushes one at a time, all through node 0's API.
	hc := pushsub.NewHTTPClient(4)
	api := nodes[0].api
	subj := pushSubject(sys.Kind)
	push := func(k int) error {
		method, body := pushsub.GroupPush(kindOf(sys.Kind), group, pushsub.Message(kindOf(sys.Kind), k, opt.size))
		return pushsub.Call(hc, api, apiKey, kindOf(sys.Kind), method, body)
	}
	var c0 natsCounts
	var cpu0 time.Duration
	for k := 0; k <= opt.pushes; k++ { // push 0 warms up
		if k == 1 {
			if c0, err = nd.counts(subj); err != nil {
				return fail(fmt.Errorf("nats-server counters: %w", err))
			}
			cpu0 = serverCPU()
		}
		start := time.Now().UnixNano()
		if err := push(k); err != nil {
			return fail(fmt.Errorf("push %d: %w", k, err))
		}
		last, counts, err := pushsub.WaitGot(got, kids, k, 30*time.Second)
		if errors.Is(err, pushsub.ErrNotAll) {
			return fail(fmt.Errorf("push %d: not every member had it after 30 s (lost connections per process: %v)", k, counts))
		} else if err != nil {
			return fail(fmt.Errorf("push %d: %w", k, err))
		}
		if k > 0 {
			smp.Latencies = append(smp.Latencies, float64(last-start)/1e6)
		}
	}
	cpu := serverCPU() - cpu0
	c1, err := nd.counts(subj)
	if err != nil {
		return fail(fmt.Errorf("nats-server counters: %w", err))
	}
	smp.PushesMeasured = opt.pushes
	smp.Seq = c0.delta(c1, subj)
	deliveries := float64(opt.pushes) * float64(opt.members)
	smp.CPUPerDelivery = float64(cpu.Microseconds()) / deliveries

	// A burst: pushes sent back to back by one caller (each call waits
	// for its answer, not for the deliveries); deliveries per second from
	// the first call to the last delivery.
	first := opt.pushes + 1
	ncpu0, cpu0 := nd.cpu(), serverCPU()
	var sendErr atomic.Value
	t1 := time.Now()
	callsDone := make(chan time.Duration, 1)
	go func() {
		for k := first; k < first+opt.burst; k++ {
			if err := push(k); err != nil {
				sendErr.Store(fmt.Errorf("burst push %d: %w", k, err))
				break
			}
		}
		callsDone <- time.Since(t1)
	}()
	remaining := make(map[int]int, opt.burst)
	for k := first; k < first+opt.burst; k++ {
		remaining[k] = len(kids)
	}
	last := int64(0)
	timeout := time.After(2 * time.Minute)
	for len(remaining) > 0 {
		select {
		case g := <-got:
			if _, ok := remaining[g.K]; !ok {
				return fail(fmt.Errorf("burst: a subscriber process reported push %d", g.K))
			}
			if remaining[g.K]--; remaining[g.K] == 0 {
				delete(remaining, g.K)
			}
			last = max(last, g.T)
		case <-timeout:
			if err, _ := sendErr.Load().(error); err != nil {
				return fail(err)
			}
			counts, _ := pushsub.All(kids, "COUNT", "COUNT", 5*time.Second)
			return fail(fmt.Errorf("burst: %d of %d pushes not at every member after 2 min (lost connections per process: %v)", len(remaining), opt.burst, counts))
		}
	}
	callsTook := <-callsDone
	if err, _ := sendErr.Load().(error); err != nil {
		return fail(err)
	}
	burstCPU := serverCPU() - cpu0
	c2, err := nd.counts(subj)
	if err != nil {
		return fail(fmt.Errorf("nats-server counters: %w", err))
	}
	smp.Burst = c1.delta(c2, subj)
	smp.BurstSeconds = float64(last-t1.UnixNano()) / 1e9
	smp.BurstRate = float64(opt.burst) * float64(opt.members) / smp.BurstSeconds
	smp.BurstCalls = float64(opt.burst) / callsTook.Seconds()
	smp.BurstCPU = float64(burstCPU.Microseconds()) / (float64(opt.burst) * float64(opt.members))
	if burstCPU > 0 {
		smp.NatsdCPUShare = float64(nd.cpu()-ncpu0) / float64(burstCPU)
	}

	counts, err := pushsub.All(kids, "COUNT", "COUNT", 10*time.Second)
	if err != nil {
		return fail(err)
	}
	for _, c := range counts {
		l, _ := strconv.ParseInt(c, 10, 64)
		smp.Lost += l
	}
	if smp.Lost > 0 {
		return fail(fmt.Errorf("%d connections lost during the round", smp.Lost))
	}
	if smp.Seq.PushIn == 0 {
		return fail(fmt.Errorf("no message on %s seen by the tap: the push subject is not what the benchmark expects", subj))
	}
	return smp
}
