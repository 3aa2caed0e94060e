package main

import (
	"encoding/json"
	"fmt"
	"image/color"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/workerman-go/workerman/bench/internal/benchproc"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
)

type reportOptions struct {
	Subscribers int      `json:"subscribers"`
	Pushes      int      `json:"pushes"`
	Size        int      `json:"size"`
	UIDCalls    int      `json:"uid_calls"`
	Callers     int      `json:"callers"`
	Rounds      int      `json:"rounds"`
	Children    int      `json:"children"`
	Settle      string   `json:"settle"`
	Servers     []string `json:"servers"`
	Command     string   `json:"command"`
	Smoke       bool     `json:"smoke,omitempty"`
}

func reportOpts(opt options) reportOptions {
	return reportOptions{Subscribers: opt.subscribers, Pushes: opt.pushes, Size: opt.size, UIDCalls: opt.uidCalls,
		Callers: opt.callers, Rounds: opt.rounds, Children: opt.children, Settle: opt.settle.String(), Smoke: opt.smoke,
		Servers: opt.servers, Command: strings.TrimSpace("cd bench && go run ./cmd/pushbench " + strings.Join(os.Args[1:], " "))}
}

type report struct {
	Opt     reportOptions `json:"options"`
	Machine string        `json:"machine"`
	OursRev string        `json:"ours_revision"`
	Started time.Time     `json:"started"`
	Took    string        `json:"took"`
	Samples []sample      `json:"samples"`
}

// metric is one row of the table: a figure per server from its samples.
type metric struct {
	name   string
	unit   string
	format string
	lower  bool                   // lower is better
	value  func([]sample) float64 // over one server's good samples
	budget float64                // ours/centrifugo at most (0: none)
	chart  string                 // label in the chart ("" : not charted)
}

func pooled(ss []sample, f func(sample) []float64, p float64) float64 {
	var v []float64
	for _, s := range ss {
		v = append(v, f(s)...)
	}
	return benchproc.Percentile(v, p)
}

var metrics = []metric{
	{name: "RSS per connected subscriber", unit: "B", format: "%.0f", lower: true, budget: 0.1, chart: "RSS/subscriber",
		value: func(ss []sample) float64 { return benchproc.Median(ss, func(s sample) float64 { return s.RSSPerSub }) }},
	{name: "server CPU per delivered message (sendToGroup)", unit: "µs", format: "%.2f", lower: true, budget: 0.5, chart: "CPU/delivery",
		value: func(ss []sample) float64 {
			return benchproc.Median(ss, func(s sample) float64 { return s.GroupCPUPerMsg })
		}},
	{name: "push call to last delivery, p50", unit: "ms", format: "%.1f", lower: true, chart: "last delivery p50",
		value: func(ss []sample) float64 {
			return pooled(ss, func(s sample) []float64 { return s.GroupLatencies }, 0.5)
		}},
	{name: "push call to last delivery, p99", unit: "ms", format: "%.1f", lower: true, chart: "last delivery p99",
		value: func(ss []sample) float64 {
			return pooled(ss, func(s sample) []float64 { return s.GroupLatencies }, 0.99)
		}},
	{name: "sendToUid calls per second", unit: "calls/s", format: "%.0f", lower: false, chart: "sendToUid calls/s",
		value: func(ss []sample) float64 {
			return benchproc.Median(ss, func(s sample) float64 { return s.UIDCallsPerSec })
		}},
	{name: "server CPU per sendToUid call (API + delivery)", unit: "µs", format: "%.1f", lower: true, chart: "CPU/uid call",
		value: func(ss []sample) float64 {
			return benchproc.Median(ss, func(s sample) float64 { return s.UIDCPUPerCall })
		}},
	{name: "sendToUid call latency p50", unit: "ms", format: "%.2f", lower: true,
		value: func(ss []sample) float64 {
			return benchproc.Median(ss, func(s sample) float64 { return at(s.UIDCallLatency, 0) })
		}},
	{name: "sendToUid call latency p99", unit: "ms", format: "%.2f", lower: true,
		value: func(ss []sample) float64 {
			return benchproc.Median(ss, func(s sample) float64 { return at(s.UIDCallLatency, 1) })
		}},
	{name: "RSS per subscriber with its uid bound too", unit: "B", format: "%.0f", lower: true,
		value: func(ss []sample) float64 {
			return benchproc.Median(ss, func(s sample) float64 { return float64(s.RSSBound-s.RSSIdle) / float64(max(1, subscribersOf(s))) })
		}},
	{name: "idle RSS before any client", unit: "MiB", format: "%.1f", lower: true,
		value: func(ss []sample) float64 {
			return benchproc.Median(ss, func(s sample) float64 { return float64(s.RSSIdle) / (1 << 20) })
		}},
	{name: "time to connect and join all subscribers", unit: "s", format: "%.2f", lower: true,
		value: func(ss []sample) float64 {
			return benchproc.Median(ss, func(s sample) float64 { return s.ConnectSeconds })
		}},
}

var subscribersN int

func subscribersOf(sample) int { return subscribersN }

func at(v []float64, i int) float64 {
	if i < len(v) {
		return v[i]
	}
	return math.NaN()
}

// historyPairs are the servers run both with and without history.
func historyPairs(servers []string) []string {
	var out []string
	for _, s := range servers {
		if !withHistory(s) && slices.Contains(servers, s+"+history") {
			out = append(out, s)
		}
	}
	return out
}

func (r *report) good(server string) []sample {
	var out []sample
	for _, s := range r.Samples {
		if s.Server == server && s.Error == "" {
			out = append(out, s)
		}
	}
	return out
}

func (r *report) markdown() string {
	subscribersN = r.Opt.Subscribers
	var b strings.Builder
	o := r.Opt
	fmt.Fprintf(&b, "# Push benchmark: workerman-push vs Centrifugo v6 vs a gorilla hub\n\n")
	fmt.Fprintf(&b, "Run %s, took %s. Command:\n\n```sh\n%s\n```\n\n", r.Started.Format("2006-01-02 15:04 MST"), r.Took, o.Command)
	fmt.Fprintf(&b, "Machine: %s. ours = cmd/workerman-push at %s; Centrifugo %s built from the module proxy; gorilla-hub = bench/cmd/pushbench/hub.go.\n\n",
		r.Machine, r.OursRev, benchproc.CentrifugoVersion)
	fmt.Fprintf(&b, "%s subscribers over %d processes; %d group pushes of %d B per round (after a warm-up), each waiting for its last delivery; "+
		"%s sendToUid calls per round from %d keep-alive callers; %d rounds, servers interleaved. Figures: medians of the rounds; "+
		"latency percentiles pooled over all pushes of all rounds.\n\n",
		benchproc.Thousands(o.Subscribers), o.Children, o.Pushes, o.Size, benchproc.Thousands(o.UIDCalls), o.Callers, o.Rounds)
	servers := o.Servers
	fmt.Fprintf(&b, "| measure |")
	for _, s := range servers {
		fmt.Fprintf(&b, " %s |", s)
	}
	hasC := slices.Contains(servers, "centrifugo")
	if hasC {
		for _, s := range servers {
			if s != "centrifugo" {
				fmt.Fprintf(&b, " %s / centrifugo |", s)
			}
		}
		fmt.Fprintf(&b, " budget (ours / centrifugo) |")
	}
	hist := historyPairs(servers)
	for _, base := range hist {
		fmt.Fprintf(&b, " %s: history on / off |", base)
	}
	fmt.Fprintf(&b, "\n|---|")
	for range servers {
		fmt.Fprintf(&b, "---:|")
	}
	if hasC {
		for _, s := range servers {
			if s != "centrifugo" {
				fmt.Fprintf(&b, "---:|")
			}
		}
		fmt.Fprintf(&b, "---|")
	}
	for range hist {
		fmt.Fprintf(&b, "---:|")
	}
	fmt.Fprintln(&b)
	for _, m := range metrics {
		fmt.Fprintf(&b, "| %s (%s) |", m.name, m.unit)
		vals := map[string]float64{}
		for _, s := range servers {
			g := r.good(s)
			if len(g) == 0 {
				fmt.Fprintf(&b, " failed |")
				continue
			}
			v := m.value(g)
			vals[s] = v
			fmt.Fprintf(&b, " %s |", benchproc.Group(fmt.Sprintf(m.format, v)))
		}
		if hasC {
			c, ok := vals["centrifugo"]
			for _, s := range servers {
				if s == "centrifugo" {
					continue
				}
				v, ok2 := vals[s]
				if !ok || !ok2 || c == 0 {
					fmt.Fprintf(&b, " – |")
					continue
				}
				fmt.Fprintf(&b, " %.2f× |", v/c)
			}
			if m.budget > 0 {
				verdict := "–"
				if r.Opt.Smoke {
					verdict = "not judged at smoke sizes"
				} else if v, ok2 := vals["ours"]; ok && ok2 && c > 0 {
					if v/c <= m.budget {
						verdict = "met"
					} else {
						verdict = "**missed**"
					}
				}
				fmt.Fprintf(&b, " ≤ %.1f×: %s |", m.budget, verdict)
			} else {
				fmt.Fprintf(&b, " |")
			}
		}
		for _, base := range hist {
			off, ok1 := vals[base]
			on, ok2 := vals[base+"+history"]
			if !ok1 || !ok2 || off == 0 {
				fmt.Fprintf(&b, " – |")
				continue
			}
			fmt.Fprintf(&b, " %.2f× |", on/off)
		}
		fmt.Fprintln(&b)
	}
	if len(hist) > 0 {
		fmt.Fprintf(&b, "\nHistory on / off: the server with history (%d messages kept per uid and group, pushes as envelopes; Centrifugo: history and recovery on every channel) over the same server without, same run. Budget: ours ≤ 1.5× in server CPU per delivered message.\n", historySize)
	}
	fmt.Fprintln(&b)
	var fails []string
	for _, s := range r.Samples {
		if s.Error != "" {
			fails = append(fails, fmt.Sprintf("- round %d, %s: %s", s.Round, s.Server, benchproc.FirstLine(s.Error)))
		}
	}
	if len(fails) > 0 {
		fmt.Fprintf(&b, "Failed measurements:\n\n%s\n\n", strings.Join(fails, "\n"))
	}
	fmt.Fprintf(&b, "Per round (RSS/subscriber B, CPU µs/delivery, last delivery p50 ms, sendToUid calls/s):\n\n")
	for _, s := range servers {
		fmt.Fprintf(&b, "- %s:", s)
		for _, x := range r.Samples {
			if x.Server == s && x.Error == "" {
				fmt.Fprintf(&b, " [%.0f, %.2f, %.1f, %.0f]", x.RSSPerSub, x.GroupCPUPerMsg, benchproc.Percentile(x.GroupLatencies, 0.5), x.UIDCallsPerSec)
			}
		}
		fmt.Fprintln(&b)
	}
	return b.String()
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
	base := filepath.Join(opt.out, "push-"+r.Started.Format("2006-01-02"))
	js, _ := json.MarshalIndent(r, "", " ")
	if err := os.WriteFile(base+".json", js, 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(base+".md", []byte(md+fmt.Sprintf("\n![ratios to Centrifugo](%s)\n", filepath.Base(base)+".png")), 0o644); err != nil {
		return err
	}
	if err := r.chart(base + ".png"); err != nil {
		return fmt.Errorf("chart: %w", err)
	}
	logf("wrote %s.md, .json and .png", base)
	return nil
}

var palette = map[string]color.Color{
	"ours":        color.RGBA{R: 0x2f, G: 0x6f, B: 0xdb, A: 0xff},
	"gorilla-hub": color.RGBA{R: 0x9a, G: 0x9a, B: 0x9a, A: 0xff},
	"centrifugo":  color.RGBA{R: 0xe0, G: 0x5a, B: 0x4a, A: 0xff},
}

// chart draws each charted figure as a ratio to Centrifugo's (1.0), one
// group of bars per figure.
func (r *report) chart(path string) error {
	subscribersN = r.Opt.Subscribers
	if !slices.Contains(r.Opt.Servers, "centrifugo") || len(r.good("centrifugo")) == 0 {
		return nil
	}
	var ms []metric
	for _, m := range metrics {
		if m.chart != "" {
			ms = append(ms, m)
		}
	}
	p := plot.New()
	p.Title.Text = fmt.Sprintf("Push, %s subscribers: each figure as a ratio to Centrifugo v6's", benchproc.Thousands(r.Opt.Subscribers))
	p.Y.Label.Text = "× Centrifugo (calls/s: higher is better, others: lower)"
	var labels []string
	for _, m := range ms {
		labels = append(labels, m.chart)
	}
	servers := r.Opt.Servers
	w := vg.Points(60 / float64(len(servers)+1))
	top := 1.0
	for i, s := range servers {
		vals := make(plotter.Values, len(ms))
		g := r.good(s)
		for j, m := range ms {
			if len(g) == 0 {
				continue
			}
			c := m.value(r.good("centrifugo"))
			if c > 0 {
				vals[j] = m.value(g) / c
			}
			top = max(top, vals[j])
		}
		bars, err := plotter.NewBarChart(vals, w)
		if err != nil {
			return err
		}
		bars.LineStyle.Width = 0
		bars.Color = palette[s]
		bars.Offset = vg.Length(float64(i)-float64(len(servers)-1)/2) * w
		p.Add(bars)
		p.Legend.Add(s, bars)
	}
	p.Y.Min, p.Y.Max = 0, top*1.3
	p.Legend.Top = true
	p.NominalX(labels...)
	return p.Save(10*vg.Inch, 4*vg.Inch, path)
}

func machine() string {
	return benchproc.Machine(pinning.NumCPU()) + "; server pinned to CPU 0, subscribers and callers to CPU 1"
}
