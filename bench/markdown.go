package bench

import (
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strings"
)

// WriteMarkdown writes s as a Markdown report to path, and its plots as
// PNG files beside it named <report>-<run>-throughput.png and
// <report>-<run>-latency.png (and <report>-<run>-propagation.png for a
// storm, <report>-by-server.png for peers), linked relatively
// so the report renders where it lies (GitHub, an editor's preview).
func WriteMarkdown(path string, s *Suite) error {
	dir := filepath.Dir(path)
	base := strings.TrimSuffix(filepath.Base(path), filepath.Ext(path))
	var b strings.Builder
	fmt.Fprintf(&b, "# %s\n\n", s.Title)
	fmt.Fprintf(&b, "Started %s, finished %s (UTC). Written by `trustline bench`; docs/bench.md says how to read it.\n\n",
		s.Started.UTC().Format("2006-01-02 15:04:05"), s.Finished.UTC().Format("2006-01-02 15:04:05"))
	writeMachine(&b, s.Machine)
	if len(s.Setup) > 0 {
		b.WriteString("## Setup\n\n")
		for _, k := range slices.Sorted(maps.Keys(s.Setup)) {
			fmt.Fprintf(&b, "- %s: %s\n", k, s.Setup[k])
		}
		b.WriteString("\n")
	}
	for _, n := range s.Notes {
		fmt.Fprintf(&b, "> %s\n\n", n)
	}
	if len(s.Phases) > 0 {
		b.WriteString("## Phases\n\n| phase | figure | value |\n| --- | --- | ---: |\n")
		for _, ph := range s.Phases {
			for _, k := range slices.Sorted(maps.Keys(ph.Figures)) {
				fmt.Fprintf(&b, "| %s | %s | %s |\n", ph.Name, k, fmtFigure(ph.Figures[k]))
			}
		}
		b.WriteString("\n")
	}
	if len(s.Peers) > 0 {
		img := base + "-by-server.png"
		if err := plotPeers(filepath.Join(dir, img), s.Peers); err != nil {
			return err
		}
		writePeers(&b, s.Peers, img)
	}
	if len(s.Runs) > 0 {
		b.WriteString("## Summary\n\n")
		b.WriteString("| run | mode | load | req/s | errors | verified | p50 ms | p90 ms | p99 ms | p99.9 ms | max ms |\n")
		b.WriteString("| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n")
		for _, r := range s.Runs {
			fmt.Fprintf(&b, "| %s | %s | %s | %.1f | %d | %d | %s | %s | %s | %s | %s |\n", r.Name, r.Mode, loadOf(r),
				r.RequestsPerSec, r.Errors, r.Verified, fmtMs(r.LatencyP50Ms), fmtMs(r.LatencyP90Ms),
				fmtMs(r.LatencyP99Ms), fmtMs(r.LatencyP999Ms), fmtMs(r.LatencyMaxMs))
		}
		b.WriteString("\n")
	}
	for _, r := range s.Runs {
		tp := fmt.Sprintf("%s-%s-throughput.png", base, r.Name)
		lat := fmt.Sprintf("%s-%s-latency.png", base, r.Name)
		if err := plotThroughput(filepath.Join(dir, tp), r); err != nil {
			return err
		}
		if err := plotSpectrum(filepath.Join(dir, lat), r); err != nil {
			return err
		}
		var prop, overTime string
		if r.Mode == "open" {
			overTime = fmt.Sprintf("%s-%s-over-time.png", base, r.Name)
			if err := plotLatencyOverTime(filepath.Join(dir, overTime), r); err != nil {
				return err
			}
		}
		if len(r.StormConvergence) > 0 {
			prop = fmt.Sprintf("%s-%s-propagation.png", base, r.Name)
			if err := plotPropagation(filepath.Join(dir, prop), r); err != nil {
				return err
			}
		}
		writeRun(&b, r, tp, lat, prop, overTime)
	}
	return writeFileAtomic(path, []byte(b.String()))
}

func loadOf(r *Run) string {
	if r.Scenario == "presign" {
		return fmt.Sprintf("%d signing goroutines", r.Concurrency)
	}
	if r.Mode == "open" {
		return fmt.Sprintf("%.0f/s scheduled, ≤ %d in flight", r.RateTarget, r.Concurrency)
	}
	return fmt.Sprintf("%d connections", r.Concurrency)
}

func writeMachine(b *strings.Builder, m Machine) {
	b.WriteString("## Machine\n\n")
	b.WriteString("| CPU | cores | affinity | GOMAXPROCS | Go | OS | kernel | load average (start → end) |\n")
	b.WriteString("| --- | ---: | --- | ---: | --- | --- | --- | --- |\n")
	fmt.Fprintf(b, "| %s | %d | %s | %d | %s | %s | %s | %s → %s |\n\n", m.CPUModel, m.Cores, m.Affinity, m.GOMAXPROCS,
		m.GoVersion, m.OS, m.Kernel, m.LoadAvg, m.LoadAvgEnd)
}

func writeRun(b *strings.Builder, r *Run, tp, lat, prop, overTime string) {
	fmt.Fprintf(b, "## %s\n\n", r.Name)
	fmt.Fprintf(b, "%s: %s, %.0f s measured.\n\n", r.Scenario, r.describe(), r.DurationSec)
	fmt.Fprintf(b, "%d requests, %.1f/s, %d errors, %d answers verified in full.\n\n", r.Requests, r.RequestsPerSec, r.Errors, r.Verified)
	if len(r.Figures) > 0 {
		b.WriteString("| figure | value |\n| --- | ---: |\n")
		for _, k := range slices.Sorted(maps.Keys(r.Figures)) {
			fmt.Fprintf(b, "| %s | %s |\n", k, fmtFigure(r.Figures[k]))
		}
		b.WriteString("\n")
	}
	if len(r.ErrorsByKind) > 0 {
		b.WriteString("| error kind | count | example |\n| --- | ---: | --- |\n")
		for _, k := range slices.Sorted(maps.Keys(r.ErrorsByKind)) {
			fmt.Fprintf(b, "| %s | %d | %s |\n", k, r.ErrorsByKind[k], mdEscape(clip(r.FirstErrors[k], 160)))
		}
		b.WriteString("\n")
	}
	if len(r.Events) > 0 {
		b.WriteString("| second | event | error |\n| ---: | --- | --- |\n")
		for _, e := range r.Events {
			fmt.Fprintf(b, "| %.2f | %s %s | %s |\n", e.Sec, e.Action, e.Target, mdEscape(clip(e.Err, 160)))
		}
		b.WriteString("\n")
	}
	for _, n := range r.Notes {
		fmt.Fprintf(b, "- %s\n", n)
	}
	if len(r.Notes) > 0 {
		b.WriteString("\n")
	}
	fmt.Fprintf(b, "![throughput over time](%s)\n![latency percentile spectrum](%s)\n", tp, lat)
	if prop != "" {
		fmt.Fprintf(b, "![storm propagation](%s)\n", prop)
	}
	if overTime != "" {
		fmt.Fprintf(b, "![latency over time](%s)\n", overTime)
	}
	b.WriteString("\n")
	if r.Mode == "open" {
		b.WriteString("| percentile | latency from scheduled send, ms | service time, ms |\n| ---: | ---: | ---: |\n")
		for i, p := range r.LatencyPercentiles {
			svc := ""
			if i < len(r.ServicePercentiles) {
				svc = fmtMs(r.ServicePercentiles[i].Ms)
			}
			fmt.Fprintf(b, "| %g | %s | %s |\n", p.Percentile, fmtMs(p.Ms), svc)
		}
	} else {
		b.WriteString("| percentile | latency, ms |\n| ---: | ---: |\n")
		for _, p := range r.LatencyPercentiles {
			fmt.Fprintf(b, "| %g | %s |\n", p.Percentile, fmtMs(p.Ms))
		}
	}
	b.WriteString("\n")
}

func writePeers(b *strings.Builder, peers []PeerResult, img string) {
	b.WriteString("## Peers\n\n")
	b.WriteString("Same certificates, same load, same pinning; ratios are the result, absolute figures only say what this machine did.\n\n")
	b.WriteString("| server | req/s | × floor | × trustline | errors | p50 ms | p99 ms | version | notes |\n")
	b.WriteString("| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |\n")
	for _, p := range peers {
		fmt.Fprintf(b, "| %s | %.0f | %s | %s | %d | %s | %s | %s | %s |\n", p.Name, p.RequestsPerSec, ratio(p.VsFloor),
			ratio(p.VsTrustline), p.Errors, fmtMs(p.LatencyP50Ms), fmtMs(p.LatencyP99Ms), mdEscape(p.Version),
			mdEscape(strings.Join(p.Notes, "; ")))
	}
	fmt.Fprintf(b, "\n![throughput by server](%s)\n\n", img)
}

func ratio(v float64) string {
	if v == 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f", v)
}

func mdEscape(s string) string { return strings.ReplaceAll(s, "|", `\|`) }
