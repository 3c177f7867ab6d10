package main

import (
	"fmt"
	"image/color"
	"os"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgsvg"
)

var sans = font.Font{Typeface: "Liberation", Variant: "Sans"}

// writeChart draws one panel per throughput row of the report: a horizontal
// bar a peer, each panel on its own scale (the peers differ by up to two
// orders of magnitude, and a shared or log scale hides that or the bars).
func (r *runner) writeChart(path string) error {
	plot.DefaultFont = sans
	var panels []*plot.Plot
	for _, rw := range r.rows() {
		if rw.chart == "" || !r.selected(rw.workload) {
			continue
		}
		p, err := r.panel(rw)
		if err != nil {
			return err
		}
		panels = append(panels, p)
	}
	if len(panels) == 0 {
		return nil
	}
	const cols = 2
	rows := (len(panels) + cols - 1) / cols
	grid := make([][]*plot.Plot, rows)
	for i := range grid {
		grid[i] = make([]*plot.Plot, cols)
	}
	for i, p := range panels {
		grid[i/cols][i%cols] = p
	}
	img := vgsvg.New(vg.Length(cols)*9*vg.Centimeter, vg.Length(rows)*4.2*vg.Centimeter+vg.Centimeter)
	dc := draw.New(img)
	title := fmt.Sprintf("diskcache and peers: throughput (scale %g, higher is better)", r.cfg.scale)
	dc.FillText(draw.TextStyle{
		Color:   color.Black,
		Font:    font.From(plot.DefaultFont, 11),
		XAlign:  draw.XCenter,
		Handler: plot.DefaultTextHandler,
	}, vg.Point{X: dc.Center().X, Y: dc.Max.Y - 0.5*vg.Centimeter}, title)
	dc.Max.Y -= vg.Centimeter
	canvases := plot.Align(grid, draw.Tiles{
		Rows: rows, Cols: cols,
		PadX: vg.Centimeter, PadY: 0.3 * vg.Centimeter,
		PadLeft: 0.2 * vg.Centimeter, PadRight: 0.5 * vg.Centimeter,
	}, dc)
	for j := range grid {
		for i, p := range grid[j] {
			if p != nil {
				p.Draw(canvases[j][i])
			}
		}
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := img.WriteTo(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// panel is one row's chart: the first peer on top.
func (r *runner) panel(rw row) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = rw.chart
	p.Title.TextStyle.Font.Size = 9
	p.X.Min = 0
	p.X.Tick.Marker = rateTicks{}
	p.X.Tick.Label.Font.Size = 7
	p.Y.Tick.Label.Font.Size = 8
	n := len(r.cfg.peers)
	names := make([]string, n)
	var labels plotter.XYLabels
	for i, name := range r.cfg.peers {
		y := float64(n - 1 - i)
		names[n-1-i] = name
		v, ok := r.value(name, rw)
		if !ok {
			labels.XYs = append(labels.XYs, plotter.XY{X: 0, Y: y})
			labels.Labels = append(labels.Labels, " "+r.cell(name, rw))
			continue
		}
		bar, err := plotter.NewBarChart(plotter.Values{v}, 0.35*vg.Centimeter)
		if err != nil {
			return nil, err
		}
		bar.Horizontal = true
		bar.XMin = y
		bar.Color = plotutil.Color(i)
		bar.LineStyle.Width = 0
		p.Add(bar)
		labels.XYs = append(labels.XYs, plotter.XY{X: v, Y: y})
		labels.Labels = append(labels.Labels, " "+perSecond(v))
	}
	l, err := plotter.NewLabels(labels)
	if err != nil {
		return nil, err
	}
	for i := range l.TextStyle {
		l.TextStyle[i].Font = font.From(sans, 7)
		l.TextStyle[i].YAlign = draw.YCenter
	}
	p.Add(l)
	p.NominalY(names...)
	// Room for the label after the longest bar.
	_, xmax, _, _ := plotter.XYRange(labels)
	p.X.Max = xmax * 1.3
	if p.X.Max == 0 {
		p.X.Max = 1
	}
	return p, nil
}

// value is the number a peer's bar shows for a row, if it has one.
func (r *runner) value(peer string, rw row) (float64, bool) {
	if _, skip := r.skipped[peer]; skip {
		return 0, false
	}
	res, ok := r.results[peer][rw.workload]
	if !ok || res.Error != "" || res.Skipped != "" {
		return 0, false
	}
	return rw.value(res)
}

// rateTicks labels a rate axis 0, 250k, 500k, ...
type rateTicks struct{}

func (rateTicks) Ticks(min, max float64) []plot.Tick {
	var ts []plot.Tick
	for _, t := range (plot.DefaultTicks{}).Ticks(min, max) {
		if t.Label != "" {
			t.Label = compact(t.Value)
		}
		ts = append(ts, t)
	}
	return ts
}

func compact(v float64) string {
	switch {
	case v >= 1e6:
		return fmt.Sprintf("%gM", v/1e6)
	case v >= 1e3:
		return fmt.Sprintf("%gk", v/1e3)
	}
	return fmt.Sprintf("%g", v)
}
