package main

import (
	"fmt"
	"sort"
	"strings"
)

// report collects samples per scenario, server and metric.
type report struct {
	opt       options
	scenarios []string
	samples   map[string]map[string]map[string][]float64 // scenario -> impl -> metric
	metrics   map[string][]string                        // scenario -> metric order
	failures  map[string]map[string]string
}

func newReport(opt options) *report {
	return &report{
		opt:      opt,
		samples:  map[string]map[string]map[string][]float64{},
		metrics:  map[string][]string{},
		failures: map[string]map[string]string{},
	}
}

func (r *report) scenario(name string) map[string]map[string][]float64 {
	if r.samples[name] == nil {
		r.samples[name] = map[string]map[string][]float64{}
		r.scenarios = append(r.scenarios, name)
	}
	return r.samples[name]
}

func (r *report) add(name, impl, metric string, v float64) {
	sc := r.scenario(name)
	if sc[impl] == nil {
		sc[impl] = map[string][]float64{}
	}
	if sc[impl][metric] == nil && !contains(r.metrics[name], metric) {
		r.metrics[name] = append(r.metrics[name], metric)
	}
	sc[impl][metric] = append(sc[impl][metric], v)
}

func (r *report) fail(name, impl string, err error) {
	r.scenario(name)
	if r.failures[name] == nil {
		r.failures[name] = map[string]string{}
	}
	r.failures[name][impl] = err.Error()
}

func (r *report) median(name, impl, metric string) (float64, bool) {
	s := r.samples[name][impl][metric]
	if len(s) == 0 {
		return 0, false
	}
	c := append([]float64(nil), s...)
	sort.Float64s(c)
	if len(c)%2 == 1 {
		return c[len(c)/2], true
	}
	return (c[len(c)/2-1] + c[len(c)/2]) / 2, true
}

// markdown renders one table per scenario: medians, and for the first metric
// the ratio to the baseline server.
func (r *report) markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "Medians of %d round(s); servers pinned to CPU 0, load generator to CPU 1.\n\n", r.opt.rounds)
	for _, name := range r.scenarios {
		metrics := r.metrics[name]
		fmt.Fprintf(&b, "### %s\n\n| server |", name)
		for _, m := range metrics {
			fmt.Fprintf(&b, " %s |", m)
		}
		ratioMetric := ""
		if len(metrics) > 0 {
			ratioMetric = metrics[len(metrics)-1]
			if strings.HasPrefix(metrics[0], "bytes") {
				ratioMetric = metrics[0]
			}
			fmt.Fprintf(&b, " %s vs %s |", ratioMetric, r.opt.baseline)
		}
		b.WriteString("\n|---|")
		for range metrics {
			b.WriteString("---:|")
		}
		if ratioMetric != "" {
			b.WriteString("---:|")
		}
		b.WriteString("\n")
		base, haveBase := r.median(name, r.opt.baseline, ratioMetric)
		for _, impl := range r.opt.impls {
			if msg, failed := r.failures[name][impl]; failed && r.samples[name][impl] == nil {
				fmt.Fprintf(&b, "| %s | failed: %s |\n", impl, msg)
				continue
			}
			fmt.Fprintf(&b, "| %s |", impl)
			for _, m := range metrics {
				if v, ok := r.median(name, impl, m); ok {
					fmt.Fprintf(&b, " %s |", format(v))
				} else {
					b.WriteString(" – |")
				}
			}
			if ratioMetric != "" {
				if v, ok := r.median(name, impl, ratioMetric); ok && haveBase && base > 0 {
					fmt.Fprintf(&b, " %.2f× |", v/base)
				} else {
					b.WriteString(" – |")
				}
			}
			b.WriteString("\n")
		}
		b.WriteString("\n")
	}
	return b.String()
}

func format(v float64) string {
	switch {
	case v >= 100000:
		return fmt.Sprintf("%.0f", v)
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
