package main

import (
	"fmt"
	"image/color"
	"math"
	"path/filepath"
	"strconv"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

var (
	krustletColor = color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff}
	kwokColor     = color.RGBA{R: 0xff, G: 0x7f, B: 0x0e, A: 0xff}
	thirdColor    = color.RGBA{R: 0x2c, G: 0xa0, B: 0x2c, A: 0xff}
	dashed        = []vg.Length{vg.Points(4), vg.Points(3)}
)

// writePlots draws the PNGs into dir and returns their file names by key.
func writePlots(dir string, res *Results) (map[string]string, error) {
	out := map[string]string{}
	save := func(key string, p *plot.Plot) error {
		p.X.Tick.Marker = niceTicks{}
		p.Y.Tick.Marker = niceTicks{}
		name := key + ".png"
		if err := p.Save(16*vg.Centimeter, 10*vg.Centimeter, filepath.Join(dir, name)); err != nil {
			return err
		}
		out[key] = name
		return nil
	}
	for _, bp := range res.Latency {
		p := plot.New()
		p.Title.Text = fmt.Sprintf("Pod start latency, burst of %d pods", bp.N)
		p.X.Label.Text = "seconds since creation"
		p.Y.Label.Text = "fraction of pods"
		p.Y.Min, p.Y.Max = 0, 1
		p.Add(plotter.NewGrid())
		for _, l := range []struct {
			name   string
			s      Summary
			c      color.Color
			dashed bool
		}{
			{"krustlet Ready", bp.Krustlet.Ready, krustletColor, false},
			{"krustlet scheduled", bp.Krustlet.Scheduled, krustletColor, true},
			{"kwok Ready", bp.Kwok.Ready, kwokColor, false},
			{"kwok scheduled", bp.Kwok.Scheduled, kwokColor, true},
		} {
			if err := addLine(p, l.name, ecdf(l.s.Samples), l.c, l.dashed); err != nil {
				return nil, err
			}
		}
		// Room on the right for the legend, bottom right.
		p.X.Min = 0
		p.X.Max = 1.45 * max(bp.Krustlet.Ready.Max, bp.Kwok.Ready.Max)
		p.Legend.Top, p.Legend.Left = false, false
		p.Legend.YOffs = vg.Points(10)
		if err := save(fmt.Sprintf("latency-%d", bp.N), p); err != nil {
			return nil, err
		}
	}
	if t := res.Throughput; t != nil {
		p := plot.New()
		p.Title.Text = fmt.Sprintf("%d run-to-completion pods created at once", t.N)
		p.X.Label.Text = "seconds since the first creation"
		p.Y.Label.Text = "pods Succeeded"
		p.Add(plotter.NewGrid())
		p.Legend.Left, p.Legend.Top = true, true
		for _, l := range []struct {
			name string
			r    ThroughputRun
			c    color.Color
		}{{"krustlet", t.Krustlet, krustletColor}, {"kwok", t.Kwok, kwokColor}} {
			xys := make(plotter.XYs, len(l.r.Curve))
			for i, x := range l.r.Curve {
				xys[i] = plotter.XY{X: x, Y: float64(i + 1)}
			}
			if err := addLine(p, l.name, xys, l.c, false); err != nil {
				return nil, err
			}
		}
		if err := save("throughput", p); err != nil {
			return nil, err
		}
	}
	if d := res.Density; d != nil && len(d.Steps) > 1 {
		var rss, threads, extra plotter.XYs
		for _, s := range d.Steps {
			x := float64(s.Pods)
			rss = append(rss, plotter.XY{X: x, Y: s.RSSMiB})
			threads = append(threads, plotter.XY{X: x, Y: float64(s.Threads)})
			extra = append(extra, plotter.XY{X: x, Y: s.ExtraPodReadySeconds})
		}
		p := plot.New()
		p.Title.Text = "krustlet agent: RSS (MiB) and OS threads against sleeping pods"
		p.X.Label.Text = "pods on the node"
		p.Y.Label.Text = "MiB / threads"
		p.Add(plotter.NewGrid())
		p.Legend.Left, p.Legend.Top = true, true
		if err := addLinePoints(p, "RSS (MiB)", rss, krustletColor); err != nil {
			return nil, err
		}
		if err := addLinePoints(p, "threads", threads, thirdColor); err != nil {
			return nil, err
		}
		p.Y.Min = 0
		p.Y.Max *= 1.25 // room for the legend at the top
		if err := save("density", p); err != nil {
			return nil, err
		}
		p = plot.New()
		p.Title.Text = "Creation → Ready of one more pod, against pods already running"
		p.X.Label.Text = "pods on the node"
		p.Y.Label.Text = "milliseconds"
		p.Y.Min = 0
		p.Add(plotter.NewGrid())
		for i := range extra {
			extra[i].Y *= 1000
		}
		if err := addLinePoints(p, "one more pod", extra, krustletColor); err != nil {
			return nil, err
		}
		p.Legend.Left, p.Legend.Top = true, true
		p.Y.Max *= 1.25
		if err := save("density-latency", p); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// niceTicks marks about six round values (1, 2 or 5 times a power of ten
// apart) between an axis' ends, with labels no longer than they need be.
type niceTicks struct{}

func (niceTicks) Ticks(lo, hi float64) []plot.Tick {
	if hi <= lo {
		return plot.DefaultTicks{}.Ticks(lo, hi)
	}
	raw := (hi - lo) / 6
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	step := mag
	for _, m := range []float64{1, 2, 5, 10} {
		if m*mag >= raw {
			step = m * mag
			break
		}
	}
	var ticks []plot.Tick
	for v := math.Ceil(lo/step) * step; v <= hi+step*1e-9; v += step {
		ticks = append(ticks, plot.Tick{Value: v, Label: strconv.FormatFloat(v, 'g', 4, 64)})
		for i := 1; i < 5; i++ {
			if m := v + float64(i)*step/5; m <= hi {
				ticks = append(ticks, plot.Tick{Value: m})
			}
		}
	}
	return ticks
}

// ecdf turns sorted samples into the steps of their cumulative
// distribution.
func ecdf(sorted []float64) plotter.XYs {
	n := float64(len(sorted))
	xys := make(plotter.XYs, 0, 2*len(sorted)+1)
	if len(sorted) > 0 {
		xys = append(xys, plotter.XY{X: 0, Y: 0})
	}
	for i, x := range sorted {
		xys = append(xys, plotter.XY{X: x, Y: float64(i) / n}, plotter.XY{X: x, Y: float64(i+1) / n})
	}
	return xys
}

func addLine(p *plot.Plot, name string, xys plotter.XYs, c color.Color, isDashed bool) error {
	if len(xys) == 0 {
		return nil
	}
	l, err := plotter.NewLine(xys)
	if err != nil {
		return err
	}
	l.Color = c
	l.Width = vg.Points(1.5)
	if isDashed {
		l.Dashes = dashed
	}
	p.Add(l)
	p.Legend.Add(name, l)
	return nil
}

func addLinePoints(p *plot.Plot, name string, xys plotter.XYs, c color.Color) error {
	l, s, err := plotter.NewLinePoints(xys)
	if err != nil {
		return err
	}
	l.Color, s.Color = c, c
	l.Width = vg.Points(1.5)
	s.Shape = draw.CircleGlyph{}
	p.Add(l, s)
	p.Legend.Add(name, l, s)
	return nil
}
