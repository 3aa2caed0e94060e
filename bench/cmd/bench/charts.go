package main

import (
	"fmt"
	"image/color"
	"path/filepath"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
)

var palette = map[string]color.Color{
	"workerman": color.RGBA{R: 0x2f, G: 0x6f, B: 0xdb, A: 0xff},
	uringServer: color.RGBA{R: 0x1b, G: 0x3a, B: 0x7a, A: 0xff},
	"gorilla":   color.RGBA{R: 0x9a, G: 0x9a, B: 0x9a, A: 0xff},
	"gobwas":    color.RGBA{R: 0xe0, G: 0x8a, B: 0x2c, A: 0xff},
	"nbio":      color.RGBA{R: 0x3c, G: 0xa5, B: 0x5c, A: 0xff},
	"netconn":   color.RGBA{R: 0x9a, G: 0x9a, B: 0x9a, A: 0xff},
	"gnet":      color.RGBA{R: 0xb5, G: 0x4b, B: 0xa8, A: 0xff},
}

// charts draws one grouped bar chart per chart key: the ratio metric of each
// scenario, a group per scenario, a bar per server.
func (r *report) charts(dir string) error {
	type chart struct {
		title, unit string
		scs         []*scenario
	}
	order := []string{}
	byKey := map[string]*chart{}
	titles := map[string]string{
		"idle":           "Resident memory per idle WebSocket connection",
		"echo-websocket": "Server CPU per WebSocket echo (lower is better)",
		"echo-tcp":       "Server CPU per TCP echo (lower is better)",
		"echo-wss":       "Server CPU per WebSocket echo over TLS (lower is better)",
		"broadcast":      "Broadcast: time until the last client has it (lower is better)",
		"storm":          "Connect storm: connections accepted and upgraded per second",
	}
	for _, sc := range r.Scenarios {
		if sc.Chart == "" {
			continue
		}
		c := byKey[sc.Chart]
		if c == nil {
			c = &chart{title: titles[sc.Chart], unit: sc.Ratio}
			byKey[sc.Chart] = c
			order = append(order, sc.Chart)
		}
		c.scs = append(c.scs, sc)
	}
	for _, key := range order {
		c := byKey[key]
		p := plot.New()
		p.Title.Text = c.title
		p.Y.Label.Text = c.unit
		var servers []string
		for _, sc := range c.scs {
			for _, s := range sc.Servers {
				if !contains(servers, s) {
					servers = append(servers, s)
				}
			}
		}
		var labels []string
		for _, sc := range c.scs {
			label := sc.Group
			if label == "" {
				label = " "
			}
			labels = append(labels, label)
		}
		top := 0.0
		for _, sc := range c.scs {
			for _, s := range servers {
				if v, ok := sc.value(s, sc.Ratio); ok {
					top = max(top, v)
				}
			}
		}
		p.Y.Min, p.Y.Max = 0, top*1.35 // room for the legend above the bars
		w := vg.Points(60 / float64(len(servers)+1))
		if len(c.scs) == 1 {
			w = vg.Points(40)
		}
		for i, s := range servers {
			vals := make(plotter.Values, len(c.scs))
			for j, sc := range c.scs {
				vals[j], _ = sc.value(s, sc.Ratio)
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
		p.Legend.Top = true
		p.NominalX(labels...)
		width := vg.Length(max(5, 1.6*float64(len(c.scs)))) * vg.Inch
		if err := p.Save(width, 3.5*vg.Inch, filepath.Join(dir, key+".png")); err != nil {
			return fmt.Errorf("%s: %w", key, err)
		}
	}
	return nil
}
