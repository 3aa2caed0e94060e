package main

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/workerman-go/workerman/bench/internal/benchproc"
	"github.com/workerman-go/workerman/bench/internal/pushsub"
)

type reportOptions struct {
	Members  int      `json:"members"`
	Nodes    int      `json:"nodes"`
	Pushes   int      `json:"pushes"`
	Burst    int      `json:"burst"`
	Size     int      `json:"size"`
	Rounds   int      `json:"rounds"`
	Children int      `json:"children"`
	Settle   string   `json:"settle"`
	Servers  []string `json:"servers"`
	Command  string   `json:"command"`
	Smoke    bool     `json:"smoke,omitempty"`
}

func reportOpts(opt options) reportOptions {
	return reportOptions{Members: opt.members, Nodes: opt.nodes, Pushes: opt.pushes, Burst: opt.burst, Size: opt.size,
		Rounds: opt.rounds, Children: opt.children, Settle: opt.settle.String(), Servers: opt.kinds, Smoke: opt.smoke,
		Command: strings.TrimSpace("cd bench && go run ./cmd/clusterbench " + shellJoin(os.Args[1:]))}
}

// shellJoin quotes the arguments that need it for a shell.
func shellJoin(args []string) string {
	var out []string
	for _, a := range args {
		if a == "" || strings.ContainsAny(a, " \t'\"$`\\()&;|<>*?") {
			a = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
		out = append(out, a)
	}
	return strings.Join(out, " ")
}

type report struct {
	Opt       reportOptions `json:"options"`
	Systems   []system      `json:"systems"`
	Machine   string        `json:"machine"`
	OursRev   string        `json:"ours_revision"`
	Started   time.Time     `json:"started"`
	Took      string        `json:"took"`
	LoadStart string        `json:"load_start"`
	LoadEnd   string        `json:"load_end"`
	Samples   []sample      `json:"samples"`
}

// metric is one row of the table: a figure per system from its samples.
type metric struct {
	name   string
	unit   string
	format string
	higher bool                   // higher is better
	value  func([]sample) float64 // over one system's good samples
}

func pooled(ss []sample, p float64) float64 {
	var v []float64
	for _, s := range ss {
		v = append(v, s.Latencies...)
	}
	return benchproc.Percentile(v, p)
}

var metrics = []metric{
	{name: "push call to last delivery, p50", unit: "ms", format: "%.1f",
		value: func(ss []sample) float64 { return pooled(ss, 0.5) }},
	{name: "push call to last delivery, p90", unit: "ms", format: "%.1f",
		value: func(ss []sample) float64 { return pooled(ss, 0.9) }},
	{name: "deliveries per second, burst (first call to last delivery)", unit: "/s", format: "%.0f", higher: true,
		value: func(ss []sample) float64 { return benchproc.Median(ss, func(s sample) float64 { return s.BurstRate }) }},
	{name: "sendToGroup calls answered per second during the burst", unit: "/s", format: "%.0f", higher: true,
		value: func(ss []sample) float64 { return benchproc.Median(ss, func(s sample) float64 { return s.BurstCalls }) }},
	{name: "server CPU per delivered message, one at a time (nodes + nats-server)", unit: "µs", format: "%.2f",
		value: func(ss []sample) float64 {
			return benchproc.Median(ss, func(s sample) float64 { return s.CPUPerDelivery })
		}},
	{name: "server CPU per delivered message, burst (nodes + nats-server)", unit: "µs", format: "%.2f",
		value: func(ss []sample) float64 { return benchproc.Median(ss, func(s sample) float64 { return s.BurstCPU }) }},
	{name: "NATS messages published per sendToGroup (push subject)", unit: "msgs", format: "%.2f",
		value: func(ss []sample) float64 {
			return benchproc.Median(ss, func(s sample) float64 { return perPush(s.Seq.PushIn, s.PushesMeasured) })
		}},
	{name: "NATS deliveries to nodes per sendToGroup (push subject)", unit: "msgs", format: "%.2f",
		value: func(ss []sample) float64 {
			return benchproc.Median(ss, func(s sample) float64 { return perPush(s.Seq.PushOut, s.PushesMeasured) })
		}},
	{name: "nodes subscribed to the push subject", unit: "nodes", format: "%.0f",
		value: func(ss []sample) float64 {
			return benchproc.Median(ss, func(s sample) float64 { return float64(s.Seq.PushSubs) })
		}},
	{name: "NATS in_msgs per sendToGroup, all subjects (/varz)", unit: "msgs", format: "%.2f",
		value: func(ss []sample) float64 {
			return benchproc.Median(ss, func(s sample) float64 { return perPush(s.Seq.In, s.PushesMeasured) })
		}},
	{name: "NATS out_msgs per sendToGroup, all subjects (/varz, tap excluded)", unit: "msgs", format: "%.2f",
		value: func(ss []sample) float64 {
			return benchproc.Median(ss, func(s sample) float64 { return perPush(s.Seq.Out, s.PushesMeasured) })
		}},
	{name: "NATS messages per sendToGroup in the burst, published / delivered", unit: "msgs", format: "",
		value: nil},
	{name: "RSS, nodes + nats-server, members connected", unit: "MiB", format: "%.1f",
		value: func(ss []sample) float64 {
			return benchproc.Median(ss, func(s sample) float64 { return float64(s.RSS) / (1 << 20) })
		}},
	{name: "time to connect and join all members", unit: "s", format: "%.2f",
		value: func(ss []sample) float64 {
			return benchproc.Median(ss, func(s sample) float64 { return s.ConnectSeconds })
		}},
}

func (r *report) good(sys system) []sample {
	var out []sample
	for _, s := range r.Samples {
		if s.System == sys && s.Error == "" {
			out = append(out, s)
		}
	}
	return out
}

// ratio is a column of ratios a/b.
type ratio struct {
	label string
	a, b  system
}

func (r *report) ratios() []ratio {
	var out []ratio
	n := r.Opt.Nodes
	if slices.Contains(r.Opt.Servers, pushsub.Ours) && slices.Contains(r.Opt.Servers, pushsub.Centrifugo) {
		out = append(out,
			ratio{fmt.Sprintf("ours / centrifugo, %d nodes", n), system{pushsub.Ours, n}, system{pushsub.Centrifugo, n}},
			ratio{"ours / centrifugo, 1 node", system{pushsub.Ours, 1}, system{pushsub.Centrifugo, 1}})
	}
	if slices.Contains(r.Opt.Servers, pushsub.Ours) && slices.Contains(r.Opt.Servers, oursHistory) {
		out = append(out,
			ratio{fmt.Sprintf("ours: history on / off, %d nodes", n), system{oursHistory, n}, system{pushsub.Ours, n}},
			ratio{"ours: history on / off, 1 node", system{oursHistory, 1}, system{pushsub.Ours, 1}})
	}
	for _, k := range r.Opt.Servers {
		out = append(out, ratio{fmt.Sprintf("%s: %d nodes / 1 node", k, n), system{k, n}, system{k, 1}})
	}
	return out
}

func (r *report) markdown() string {
	var b strings.Builder
	o := r.Opt
	fmt.Fprintf(&b, "# Cluster benchmark: cross-node sendToGroup, workerman-push vs Centrifugo v6, both on NATS\n\n")
	fmt.Fprintf(&b, "Run %s, took %s. Command:\n\n```sh\n%s\n```\n\n", r.Started.Format("2006-01-02 15:04 MST"), r.Took, o.Command)
	fmt.Fprintf(&b, "Machine: %s. Load average (1, 5, 15 min) at the start %s, at the end %s. "+
		"ours = cmd/workerman-push at %s with -nats; Centrifugo %s (module proxy build) with its NATS broker (`broker.type: nats`); "+
		"nats-server %s, one, run by the benchmark.\n\n",
		r.Machine, r.LoadStart, r.LoadEnd, r.OursRev, benchproc.CentrifugoVersion, natsServerVersion())
	fmt.Fprintf(&b, "%s WebSocket members of one group (ours: joinGroup through the API of the node that holds the client; "+
		"Centrifugo: a subscribe to one channel) over %d subscriber processes, spread evenly over %d nodes, against the same members "+
		"on 1 node of the same setup (still joined to the nats-server). Each push (%d B) goes through node 0's API. "+
		"Per round: one warm-up, %d pushes one at a time (each waits for its last delivery on any node), then a burst of %d pushes "+
		"sent back to back by one keep-alive caller. %d rounds, systems interleaved; figures are medians of the rounds, latency "+
		"percentiles pooled over all pushes of all rounds. NATS figures are over the pushes one at a time, divided by their number.\n\n",
		benchproc.Thousands(o.Members), o.Children, o.Nodes, o.Size, o.Pushes, o.Burst, o.Rounds)

	rs := r.ratios()
	fmt.Fprintf(&b, "| measure |")
	for _, s := range r.Systems {
		fmt.Fprintf(&b, " %s |", s)
	}
	for _, q := range rs {
		fmt.Fprintf(&b, " %s |", q.label)
	}
	fmt.Fprintf(&b, "\n|---|%s%s\n", strings.Repeat("---:|", len(r.Systems)), strings.Repeat("---:|", len(rs)))
	for _, m := range metrics {
		fmt.Fprintf(&b, "| %s (%s) |", m.name, m.unit)
		if m.value == nil { // the burst's NATS counts
			for _, s := range r.Systems {
				g := r.good(s)
				if len(g) == 0 {
					fmt.Fprintf(&b, " failed |")
					continue
				}
				in := benchproc.Median(g, func(x sample) float64 { return perPush(x.Burst.PushIn, o.Burst) })
				out := benchproc.Median(g, func(x sample) float64 { return perPush(x.Burst.PushOut, o.Burst) })
				fmt.Fprintf(&b, " %.2f / %.2f |", in, out)
			}
			fmt.Fprintf(&b, "%s\n", strings.Repeat(" |", len(rs)))
			continue
		}
		vals := map[system]float64{}
		for _, s := range r.Systems {
			g := r.good(s)
			if len(g) == 0 {
				fmt.Fprintf(&b, " failed |")
				continue
			}
			v := m.value(g)
			vals[s] = v
			fmt.Fprintf(&b, " %s |", benchproc.Group(fmt.Sprintf(m.format, v)))
		}
		for _, q := range rs {
			a, ok1 := vals[q.a]
			c, ok2 := vals[q.b]
			if !ok1 || !ok2 || c == 0 || math.IsNaN(a) || math.IsNaN(c) {
				fmt.Fprintf(&b, " – |")
				continue
			}
			fmt.Fprintf(&b, " %.2f× |", a/c)
		}
		fmt.Fprintln(&b)
	}
	fmt.Fprintln(&b)
	fmt.Fprintf(&b, "Ratios are a / b of the figures; for latency and CPU lower is better, for the rates higher is better.\n\n")
	fmt.Fprintf(&b, "NATS messages per sendToGroup at most the interested nodes (published and delivered, every push of every round, "+
		"from the server's counters):")
	for _, sys := range r.Systems {
		fmt.Fprintf(&b, " %s: %s;", sys, r.natsVerdict(sys))
	}
	fmt.Fprintf(&b, "\n\n")

	var fails []string
	for _, s := range r.Samples {
		if s.Error != "" {
			fails = append(fails, fmt.Sprintf("- round %d, %s: %s", s.Round, s.System, benchproc.FirstLine(s.Error)))
		}
	}
	if len(fails) > 0 {
		fmt.Fprintf(&b, "Failed measurements:\n\n%s\n\n", strings.Join(fails, "\n"))
	}
	fmt.Fprintf(&b, "Per round (members per node; last delivery p50 / p90 ms; burst deliveries/s; CPU µs per delivery one at a time / burst; "+
		"nats-server's share of the servers' CPU in the burst; other NATS publications during the pushes one at a time; load average before):\n\n")
	for _, sys := range r.Systems {
		fmt.Fprintf(&b, "- %s:\n", sys)
		for _, x := range r.Samples {
			if x.System != sys {
				continue
			}
			if x.Error != "" {
				fmt.Fprintf(&b, "  - round %d: failed\n", x.Round)
				continue
			}
			fmt.Fprintf(&b, "  - round %d: %v; %.1f / %.1f; %.0f; %.2f / %.2f; %.0f%%; %s; load %s\n", x.Round, x.NodeMembers,
				benchproc.Percentile(x.Latencies, 0.5), benchproc.Percentile(x.Latencies, 0.9), x.BurstRate, x.CPUPerDelivery, x.BurstCPU,
				100*x.NatsdCPUShare, others(x.Seq.Other), x.LoadBefore)
		}
	}
	return b.String()
}

// natsVerdict checks, over every good sample of sys, that the messages
// published on the push subject and those delivered to the nodes are at
// most the interested nodes, per push.
func (r *report) natsVerdict(sys system) string {
	g := r.good(sys)
	if len(g) == 0 {
		return "not measured"
	}
	worst := 0.0
	subs := 0
	for _, s := range g {
		for _, d := range []struct {
			n      natsDelta
			pushes int
		}{{s.Seq, s.PushesMeasured}, {s.Burst, r.Opt.Burst}} {
			worst = max(worst, perPush(d.n.PushIn, d.pushes), perPush(d.n.PushOut, d.pushes))
			subs = max(subs, d.n.PushSubs)
		}
	}
	verdict := "yes"
	if worst > float64(subs) {
		verdict = "**no**"
	}
	return fmt.Sprintf("%s (at most %.2f for %d interested)", verdict, worst, subs)
}

func others(m map[string]int64) string {
	if len(m) == 0 {
		return "none"
	}
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
	}
	return strings.Join(parts, ", ")
}

func (r *report) write(opt options) error {
	md := r.markdown()
	fmt.Print(md)
	if opt.out == "" {
		return nil
	}
	if err := os.MkdirAll(opt.out, 0o755); err != nil {
		return err
	}
	path := filepath.Join(opt.out, "cluster-"+r.Started.Format("2006-01-02")+".md")
	if err := os.WriteFile(path, []byte(md), 0o644); err != nil {
		return err
	}
	logf("wrote %s", path)
	return nil
}

// natsServerVersion is the nats-server module this program embeds.
func natsServerVersion() string {
	return natsVersion
}

func machine() string {
	pin := "nothing pinned"
	if pinning.On() {
		pin = "servers (every node and the nats-server) pinned to CPU 0, subscriber processes and the orchestrator to CPU 1"
	}
	return benchproc.Machine(pinning.NumCPU()) + "; " + pin
}
