package bench

import (
	"fmt"
	"image/color"
	"math"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
)

var (
	colorMain  = color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff}
	colorOther = color.RGBA{R: 0xff, G: 0x7f, B: 0x0e, A: 0xff}
	colorError = color.RGBA{R: 0xd6, G: 0x27, B: 0x28, A: 0xff}
)

const plotW, plotH = 7 * vg.Inch, 3.5 * vg.Inch

// plotThroughput draws answers (and errors) per second over the run.
func plotThroughput(path string, r *Run) error {
	p := plot.New()
	p.Title.Text = r.Name + ": throughput over time"
	p.X.Label.Text = "second of the measured run"
	p.Y.Label.Text = "answers per second"
	p.Y.Min = 0
	ok := make(plotter.XYs, 0, len(r.Timeline))
	bad := make(plotter.XYs, 0, len(r.Timeline))
	anyErr := false
	// The last second is usually partial (answers arriving after the
	// end): drawn, it would look like a collapse.
	full := int(r.DurationSec)
	for _, s := range r.Timeline {
		if s.Second >= full && full > 0 {
			break
		}
		ok = append(ok, plotter.XY{X: float64(s.Second) + 0.5, Y: float64(s.Requests - s.Errors)})
		bad = append(bad, plotter.XY{X: float64(s.Second) + 0.5, Y: float64(s.Errors)})
		anyErr = anyErr || s.Errors > 0
	}
	if len(ok) == 0 {
		ok = append(ok, plotter.XY{})
	}
	top := 1.0
	for _, v := range ok {
		top = max(top, v.Y)
	}
	p.Y.Max = top * 1.25 // room for the legend above the line
	if err := addLine(p, ok, colorMain, "correct answers"); err != nil {
		return err
	}
	if anyErr {
		if err := addLine(p, bad, colorError, "errors"); err != nil {
			return err
		}
	}
	p.Legend.Top = true
	return save(p, path)
}

// plotSpectrum draws the latency percentile spectrum the way HdrHistogram
// does: percentiles on a log scale of 1/(1−p), so the tail is as wide as
// the body. Open-loop runs get the service time as a second line.
func plotSpectrum(path string, r *Run) error {
	p := plot.New()
	p.Title.Text = r.Name + ": latency by percentile"
	p.X.Label.Text = "percentile"
	p.Y.Label.Text = "latency (ms)"
	p.X.Scale = plot.LogScale{}
	p.Y.Min = 0
	label := "latency"
	if r.Mode == "open" {
		label = "from scheduled send"
	}
	maxX := 10.0
	add := func(ps []Percentile, c color.Color, name string) error {
		xy := spectrumXY(ps)
		if len(xy) == 0 {
			return nil
		}
		maxX = max(maxX, xy[len(xy)-1].X)
		return addLine(p, xy, c, name)
	}
	if err := add(r.LatencySpectrum, colorMain, label); err != nil {
		return err
	}
	if r.Mode == "open" {
		if err := add(r.ServiceSpectrum, colorOther, "service time"); err != nil {
			return err
		}
	}
	p.X.Min, p.X.Max = 1, maxX
	p.X.Tick.Marker = percentileTicks{}
	p.Legend.Top, p.Legend.Left = true, true
	return save(p, path)
}

// spectrumXY maps percentiles to x = 1/(1−p); the 100th percentile, at
// infinity, is drawn one decade past the last finite point.
func spectrumXY(ps []Percentile) plotter.XYs {
	var xy plotter.XYs
	for _, q := range ps {
		if q.Percentile >= 100 {
			if len(xy) > 0 {
				xy = append(xy, plotter.XY{X: xy[len(xy)-1].X * 10, Y: q.Ms})
			}
			continue
		}
		xy = append(xy, plotter.XY{X: 1 / (1 - q.Percentile/100), Y: q.Ms})
	}
	return xy
}

// percentileTicks labels decades of 1/(1−p) as percentiles.
type percentileTicks struct{}

func (percentileTicks) Ticks(lo, hi float64) []plot.Tick {
	var ts []plot.Tick
	for e := 0; math.Pow(10, float64(e)) <= hi*1.0001; e++ {
		v := math.Pow(10, float64(e))
		if v < lo {
			continue
		}
		ts = append(ts, plot.Tick{Value: v, Label: nines(e)})
	}
	return ts
}

// plotPropagation draws the storm: the share of (edge, CRL) pairs that
// hold CRLs listing every revoked certificate, by time since the last
// revocation.
func plotPropagation(path string, r *Run) error {
	p := plot.New()
	p.Title.Text = r.Name + ": edges holding the new CRLs"
	p.X.Label.Text = "seconds after the last revocation"
	p.Y.Label.Text = "share of (edge, CRL) pairs"
	p.Y.Min, p.Y.Max = 0, 1.05
	xy := plotter.XYs{{X: 0, Y: 0}}
	for _, c := range r.StormConvergence {
		xy = append(xy, plotter.XY{X: c.Sec, Y: c.Share})
	}
	if err := addLine(p, xy, colorMain, "converged"); err != nil {
		return err
	}
	p.Legend.Top, p.Legend.Left = true, true
	return save(p, path)
}

// nines labels 1/(1−p) = 10^e as a percentile: 0%, 90%, 99%, 99.9%, …
func nines(e int) string {
	switch e {
	case 0:
		return "0%"
	case 1:
		return "90%"
	}
	return "99" + strings.TrimSuffix("."+strings.Repeat("9", e-2), ".") + "%"
}

// plotPeers draws each server's throughput as a bar.
func plotPeers(path string, peers []PeerResult) error {
	p := plot.New()
	p.Title.Text = "OCSP answers per second, same load and pinning"
	p.Y.Label.Text = "requests per second"
	vals := make(plotter.Values, len(peers))
	names := make([]string, len(peers))
	for i, pr := range peers {
		vals[i] = pr.RequestsPerSec
		names[i] = pr.Name
	}
	bars, err := plotter.NewBarChart(vals, vg.Points(30))
	if err != nil {
		return fmt.Errorf("bench: plotting peers: %w", err)
	}
	bars.Color = colorMain
	p.Add(bars)
	p.NominalX(names...)
	return save(p, path)
}

func addLine(p *plot.Plot, xy plotter.XYs, c color.Color, name string) error {
	l, err := plotter.NewLine(xy)
	if err != nil {
		return fmt.Errorf("bench: plotting %s: %w", name, err)
	}
	l.Color = c
	l.Width = vg.Points(1.5)
	p.Add(l)
	p.Legend.Add(name, l)
	return nil
}

func save(p *plot.Plot, path string) error {
	if err := p.Save(plotW, plotH, path); err != nil {
		return fmt.Errorf("bench: writing plot %s: %w", path, err)
	}
	return nil
}

// plotLatencyOverTime draws, per second of an open-loop run, the p99 and
// the largest latency from the scheduled send (log scale), with the
// run's events as vertical lines: a stall and its queue show in full.
func plotLatencyOverTime(path string, r *Run) error {
	p := plot.New()
	p.Title.Text = r.Name + ": latency from the scheduled send, per second"
	p.X.Label.Text = "second of the measured run"
	p.Y.Label.Text = "ms (log scale)"
	p.Y.Scale = plot.LogScale{}
	p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
	p99 := make(plotter.XYs, 0, len(r.Timeline))
	top := make(plotter.XYs, 0, len(r.Timeline))
	hi := 1.0
	full := int(r.DurationSec)
	for _, s := range r.Timeline {
		if s.Second >= full && full > 0 {
			break
		}
		if s.Requests == 0 {
			continue
		}
		x := float64(s.Second) + 0.5
		// Log scale: nothing below 0.01 ms.
		p99 = append(p99, plotter.XY{X: x, Y: max(s.P99Ms, 0.01)})
		top = append(top, plotter.XY{X: x, Y: max(s.MaxMs, 0.01)})
		hi = max(hi, s.MaxMs)
	}
	if len(p99) == 0 {
		p99 = append(p99, plotter.XY{X: 0, Y: 1})
		top = append(top, plotter.XY{X: 0, Y: 1})
	}
	p.Y.Min, p.Y.Max = 0.01, hi*4
	if err := addLine(p, p99, colorMain, "p99"); err != nil {
		return err
	}
	if err := addLine(p, top, colorOther, "max"); err != nil {
		return err
	}
	for i, e := range r.Events {
		l, err := plotter.NewLine(plotter.XYs{{X: e.Sec, Y: 0.01}, {X: e.Sec, Y: hi * 4}})
		if err != nil {
			return fmt.Errorf("bench: plotting event: %w", err)
		}
		l.Color = colorError
		l.Dashes = []vg.Length{vg.Points(3), vg.Points(3)}
		p.Add(l)
		if i == 0 {
			p.Legend.Add("events (see the table)", l)
		}
	}
	p.Legend.Top = true
	return save(p, path)
}
