package main

import (
	"encoding/json"
	"fmt"
	"os"
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
	Name       string                          `json:"name"`
	Baseline   string                          `json:"baseline"`
	Ratio      string                          `json:"ratio"` // the metric compared to the baseline
	Better     direction                       `json:"higher_is_better"`
	Metrics    []string                        `json:"metrics"`
	Samples    map[string]map[string][]float64 `json:"samples"` // server -> metric -> samples
	Failures   map[string]string               `json:"failures,omitempty"`
	Servers    []string                        `json:"servers"`
	Chart      string                          `json:"chart,omitempty"` // charts group scenarios by this key
	Group      string                          `json:"group,omitempty"` // and label each by this
	Percentile map[string]float64              `json:"percentile,omitempty"`
}

type report struct {
	opt       options
	Rounds    int           `json:"rounds"`
	Settle    time.Duration `json:"settle"`
	Warm      int           `json:"warm,omitempty"` // warm-up connections before an idle baseline
	Took      time.Duration `json:"took"`
	Scenarios []*scenario   `json:"scenarios"`
}

func newReport(opt options) *report {
	return &report{opt: opt, Rounds: opt.rounds, Settle: opt.settle, Warm: warmConns}
}

// save writes the raw samples, so that the tables and charts can be made
// again without measuring (-replot).
func (r *report) save(path string) error {
	b, err := json.MarshalIndent(r, "", " ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o644)
}

func loadReport(path string) (*report, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	r := new(report)
	return r, json.Unmarshal(b, r)
}

func (r *report) scenario(name, baseline, ratio string, better direction) *scenario {
	sc := &scenario{Name: name, Baseline: baseline, Ratio: ratio, Better: better,
		Samples: map[string]map[string][]float64{}, Failures: map[string]string{}, Percentile: map[string]float64{}}
	r.Scenarios = append(r.Scenarios, sc)
	return sc
}

func (r *report) add(sc *scenario, impl, metric string, v float64) {
	if sc.Samples[impl] == nil {
		sc.Samples[impl] = map[string][]float64{}
		sc.Servers = append(sc.Servers, impl)
	}
	if !contains(sc.Metrics, metric) {
		sc.Metrics = append(sc.Metrics, metric)
	}
	sc.Samples[impl][metric] = append(sc.Samples[impl][metric], v)
}

func (r *report) fail(sc *scenario, impl string, err error) {
	if _, ok := sc.Failures[impl]; !ok {
		sc.Failures[impl] = err.Error()
	}
	if !contains(sc.Servers, impl) {
		sc.Servers = append(sc.Servers, impl)
	}
}

// value is the median of a metric's samples (or another percentile).
func (sc *scenario) value(impl, metric string) (float64, bool) {
	s := sc.Samples[impl][metric]
	if len(s) == 0 {
		return 0, false
	}
	c := append([]float64(nil), s...)
	sort.Float64s(c)
	if p, ok := sc.Percentile[metric]; ok {
		return c[min(len(c)-1, int(p*float64(len(c))))], true
	}
	if len(c)%2 == 1 {
		return c[len(c)/2], true
	}
	return (c[len(c)/2-1] + c[len(c)/2]) / 2, true
}

func (sc *scenario) ratioTo(impl, other string) (float64, bool) {
	v, ok1 := sc.value(impl, sc.Ratio)
	b, ok2 := sc.value(other, sc.Ratio)
	if !ok1 || !ok2 || b == 0 {
		return 0, false
	}
	return v / b, true
}

func (r *report) markdown() string {
	var b strings.Builder
	warmText := ""
	if r.Warm > 0 {
		warmText = fmt.Sprintf(" over its size once it has served and closed %d warm-up connections", r.Warm)
	}
	fmt.Fprintf(&b, "# Benchmark results\n\nMedians of %d round(s), servers interleaved; every server in its own process pinned to CPU 0, the load generator pinned to CPU 1 (2-core machine). Ratios compare with the baseline of the same run. Memory is the growth of the server's resident set per connection%s, read after the connections were idle for %s and the server collected garbage; \"before GC\" is read right after connecting. Suite time: %s.\n\n", r.Rounds, warmText, r.Settle, r.Took.Round(time.Second))
	b.WriteString(r.budgets())
	for _, sc := range r.Scenarios {
		fmt.Fprintf(&b, "### %s\n\n| server |", sc.Name)
		for _, m := range sc.Metrics {
			fmt.Fprintf(&b, " %s |", m)
		}
		fmt.Fprintf(&b, " %s vs %s |\n|---|", sc.Ratio, sc.Baseline)
		for range sc.Metrics {
			b.WriteString("---:|")
		}
		b.WriteString("---:|\n")
		for _, impl := range sc.Servers {
			if msg, failed := sc.Failures[impl]; failed && sc.Samples[impl] == nil {
				fmt.Fprintf(&b, "| %s | failed: %s |\n", impl, msg)
				continue
			}
			fmt.Fprintf(&b, "| %s |", impl)
			for _, m := range sc.Metrics {
				if v, ok := sc.value(impl, m); ok {
					fmt.Fprintf(&b, " %s |", format(v))
				} else {
					b.WriteString(" – |")
				}
			}
			if rt, ok := sc.ratioTo(impl, sc.Baseline); ok {
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
	for _, sc := range r.Scenarios {
		switch {
		case strings.HasPrefix(sc.Name, "idle tcp"):
			if v, ok := sc.value("workerman", "bytes/conn"); ok {
				check(v <= 1024, fmt.Sprintf("%s: %s B per idle connection (budget ≤ 1 KiB)", sc.Name, format(v)))
			}
		case strings.HasPrefix(sc.Name, "echo tcp 64 B, 100 connections, 1 in flight"):
			if rt, ok := sc.ratioTo("workerman", "netconn"); ok {
				check(rt <= 0.9, fmt.Sprintf("%s: server CPU/msg %.2f× a goroutine-per-connection net.Conn server's (budget ≤ 0.9×)", sc.Name, rt))
			}
		case strings.HasPrefix(sc.Name, "idle websocket"):
			v, ok := sc.value("workerman", "bytes/conn")
			nb, ok2 := sc.value("nbio", "bytes/conn")
			if ok {
				check(v <= 1024, fmt.Sprintf("%s: %s B per idle connection (budget ≤ 1 KiB)", sc.Name, format(v)))
			}
			if ok && ok2 {
				check(v < nb, fmt.Sprintf("%s: below nbio's %s B (%.2f×)", sc.Name, format(nb), v/nb))
			}
		case strings.HasPrefix(sc.Name, "echo websocket"):
			if rt, ok := sc.ratioTo("workerman", "gorilla"); ok {
				check(rt <= 0.85, fmt.Sprintf("%s: server CPU/msg %.2f× gorilla's (budget ≤ 0.85×)", sc.Name, rt))
			}
			if rt, ok := sc.ratioTo("workerman", "nbio"); ok {
				check(rt <= 1, fmt.Sprintf("%s: server CPU/msg %.2f× nbio's (budget ≤ 1×)", sc.Name, rt))
			}
		case strings.HasPrefix(sc.Name, "broadcast"):
			for _, other := range sc.Servers {
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
