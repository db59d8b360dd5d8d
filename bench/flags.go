package bench

import (
	"flag"
	"io"
	"time"

	"github.com/trustline/trustline/internal/cli"
)

// UsageError is a command-line mistake; cmd/ maps it to exit status 2.
type UsageError = cli.UsageError

// loadFlags are the flags every load scenario shares.
type loadFlags struct {
	duration, warmup time.Duration
	concurrency      int
	rate             float64
}

func registerLoadFlags(fs *flag.FlagSet, duration time.Duration, concurrency int) *loadFlags {
	var l loadFlags
	fs.DurationVar(&l.duration, "duration", duration, "measured duration")
	fs.DurationVar(&l.warmup, "warmup", time.Second, "unrecorded warm-up before the measured part")
	fs.IntVar(&l.concurrency, "concurrency", concurrency, "connections (closed loop) or most requests in flight (open loop)")
	fs.Float64Var(&l.rate, "rate", 0, "open loop: fixed arrival rate in requests/s, latency from the scheduled send time (0: closed loop)")
	return &l
}

func (l *loadFlags) config() LoadConfig {
	return LoadConfig{Duration: l.duration, Warmup: l.warmup, Concurrency: l.concurrency, Rate: l.rate}
}

// outputFlags say where a run's results go besides the summary.
type outputFlags struct {
	json, report string
}

func registerOutputFlags(fs *flag.FlagSet) *outputFlags {
	var o outputFlags
	fs.StringVar(&o.json, "json", "", "write the results as JSON to this file")
	fs.StringVar(&o.report, "report", "", "write a Markdown report to this file, with PNG plots beside it")
	return &o
}

// emit prints r's summary and writes the files asked for.
func (o *outputFlags) emit(stdout io.Writer, r *Run) error {
	r.WriteSummary(stdout)
	if o.json != "" {
		if err := writeJSON(o.json, r); err != nil {
			return err
		}
	}
	if o.report != "" {
		s := &Suite{Title: "trustline bench " + r.Scenario, Started: r.Started, Finished: time.Now().UTC(),
			Machine: r.Machine, Runs: []*Run{r}}
		if err := WriteMarkdown(o.report, s); err != nil {
			return err
		}
	}
	return nil
}
