package main

import (
	"fmt"
	"sort"
	"strings"
	"time"
)

type direction bool

const (
	lower  direction = false // smaller is better
	higher direction = true
)

// scenario is one measured situation: samples per server and metric.
type scenario struct {
	name       string
	baseline   string
	ratio      string // the metric compared to the baseline
	better     direction
	metrics    []string
	samples    map[string]map[string][]float64 // impl -> metric -> samples
	failures   map[string]string
	servers    []string
	chart      string // charts group scenarios by this key
	group      string // and label each by this
	percentile map[string]float64
}

type report struct {
	opt       options
	scenarios []*scenario
}

func newReport(opt options) *report { return &report{opt: opt} }

func (r *report) scenario(name, baseline, ratio string, better direction) *scenario {
	sc := &scenario{name: name, baseline: baseline, ratio: ratio, better: better,
		samples: map[string]map[string][]float64{}, failures: map[string]string{}, percentile: map[string]float64{}}
	r.scenarios = append(r.scenarios, sc)
	return sc
}

func (r *report) add(sc *scenario, impl, metric string, v float64) {
	if sc.samples[impl] == nil {
		sc.samples[impl] = map[string][]float64{}
		sc.servers = append(sc.servers, impl)
	}
	if !contains(sc.metrics, metric) {
		sc.metrics = append(sc.metrics, metric)
	}
	sc.samples[impl][metric] = append(sc.samples[impl][metric], v)
}

func (r *report) fail(sc *scenario, impl string, err error) {
	if _, ok := sc.failures[impl]; !ok {
		sc.failures[impl] = err.Error()
	}
	if !contains(sc.servers, impl) {
		sc.servers = append(sc.servers, impl)
	}
}

// value is the median of a metric's samples (or another percentile).
func (sc *scenario) value(impl, metric string) (float64, bool) {
	s := sc.samples[impl][metric]
	if len(s) == 0 {
		return 0, false
	}
	c := append([]float64(nil), s...)
	sort.Float64s(c)
	if p, ok := sc.percentile[metric]; ok {
		return c[min(len(c)-1, int(p*float64(len(c))))], true
	}
	if len(c)%2 == 1 {
		return c[len(c)/2], true
	}
	return (c[len(c)/2-1] + c[len(c)/2]) / 2, true
}

func (sc *scenario) ratioTo(impl, other string) (float64, bool) {
	v, ok1 := sc.value(impl, sc.ratio)
	b, ok2 := sc.value(other, sc.ratio)
	if !ok1 || !ok2 || b == 0 {
		return 0, false
	}
	return v / b, true
}

func (r *report) markdown(took time.Duration) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# Benchmark results\n\nMedians of %d round(s), servers interleaved; every server in its own process pinned to CPU 0, the load generator pinned to CPU 1 (2-core machine). Ratios compare with the baseline of the same run. Memory is the growth of the server's resident set per connection, read after the connections were idle for %s and the server collected garbage; \"before GC\" is read right after connecting. Suite time: %s.\n\n", r.opt.rounds, r.opt.settle, took.Round(time.Second))
	b.WriteString(r.budgets())
	for _, sc := range r.scenarios {
		fmt.Fprintf(&b, "### %s\n\n| server |", sc.name)
		for _, m := range sc.metrics {
			fmt.Fprintf(&b, " %s |", m)
		}
		fmt.Fprintf(&b, " %s vs %s |\n|---|", sc.ratio, sc.baseline)
		for range sc.metrics {
			b.WriteString("---:|")
		}
		b.WriteString("---:|\n")
		for _, impl := range sc.servers {
			if msg, failed := sc.failures[impl]; failed && sc.samples[impl] == nil {
				fmt.Fprintf(&b, "| %s | failed: %s |\n", impl, msg)
				continue
			}
			fmt.Fprintf(&b, "| %s |", impl)
			for _, m := range sc.metrics {
				if v, ok := sc.value(impl, m); ok {
					fmt.Fprintf(&b, " %s |", format(v))
				} else {
					b.WriteString(" – |")
				}
			}
			if rt, ok := sc.ratioTo(impl, sc.baseline); ok {
				fmt.Fprintf(&b, " %.2f× |", rt)
			} else {
				b.WriteString(" – |")
			}
			b.WriteString("\n")
		}
		b.WriteString("\n")
	}
	return b.String()
}

// budgets checks the project's performance budgets against this run.
func (r *report) budgets() string {
	var lines []string
	check := func(ok bool, text string) {
		mark := "MISS"
		if ok {
			mark = "ok"
		}
		lines = append(lines, fmt.Sprintf("- %s: %s", mark, text))
	}
	for _, sc := range r.scenarios {
		switch {
		case strings.HasPrefix(sc.name, "idle tcp"):
			if v, ok := sc.value("workerman", "bytes/conn"); ok {
				check(v <= 1024, fmt.Sprintf("%s: %s B per idle connection (budget ≤ 1 KiB)", sc.name, format(v)))
			}
		case strings.HasPrefix(sc.name, "echo tcp 64 B, 100 connections, 1 in flight"):
			if rt, ok := sc.ratioTo("workerman", "netconn"); ok {
				check(rt <= 0.9, fmt.Sprintf("%s: server CPU/msg %.2f× a goroutine-per-connection net.Conn server's (budget ≤ 0.9×)", sc.name, rt))
			}
		case strings.HasPrefix(sc.name, "idle websocket"):
			v, ok := sc.value("workerman", "bytes/conn")
			nb, ok2 := sc.value("nbio", "bytes/conn")
			if ok {
				check(v <= 1024, fmt.Sprintf("%s: %s B per idle connection (budget ≤ 1 KiB)", sc.name, format(v)))
			}
			if ok && ok2 {
				check(v < nb, fmt.Sprintf("%s: below nbio's %s B (%.2f×)", sc.name, format(nb), v/nb))
			}
		case strings.HasPrefix(sc.name, "echo websocket"):
			if rt, ok := sc.ratioTo("workerman", "gorilla"); ok {
				check(rt <= 0.85, fmt.Sprintf("%s: server CPU/msg %.2f× gorilla's (budget ≤ 0.85×)", sc.name, rt))
			}
			if rt, ok := sc.ratioTo("workerman", "nbio"); ok {
				check(rt <= 1, fmt.Sprintf("%s: server CPU/msg %.2f× nbio's (budget ≤ 1×)", sc.name, rt))
			}
		case strings.HasPrefix(sc.name, "broadcast"):
			for _, other := range sc.servers {
				if other == "workerman" {
					continue
				}
				if rt, ok := sc.ratioTo("workerman", other); ok {
					check(rt < 1, fmt.Sprintf("broadcast: p50 time to the last client %.2f× %s's (budget: faster than every competitor)", rt, other))
				}
			}
		}
	}
	if len(lines) == 0 {
		return ""
	}
	return "## Budgets\n\n" + strings.Join(lines, "\n") + "\n\n"
}

func format(v float64) string {
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.2f", v)
	}
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}
