package presign

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// What made a response be signed, for trustline_presign_responses_total.
const (
	triggerIssue = iota
	triggerRevoke
	triggerRefresh
	triggerRebuild
	triggerEvent
	triggerLive
	numTriggers
)

var triggerNames = [numTriggers]string{"issue", "revoke", "refresh", "rebuild", "event", "live"}

// Where the pipeline failed, for trustline_presign_failures_total.
const (
	stageSign = iota
	stageWrite
	stageSchedule
	stageRead
	numStages
)

var stageNames = [numStages]string{"sign", "write", "schedule", "read"}

type metrics struct {
	signed   [numTriggers]prometheus.Counter
	failures [numStages]prometheus.Counter
	leader   prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer, p *Pipeline) (*metrics, error) {
	signed := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "trustline_presign_responses_total",
		Help: "OCSP responses signed and written to the cache, by trigger (issue, revoke, refresh, rebuild, event, live).",
	}, []string{"trigger"})
	failures := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "trustline_presign_failures_total",
		Help: "Pre-signing failures by stage (sign, write to the cache, schedule in the store, read from the store).",
	}, []string{"stage"})
	leader := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "trustline_presign_leader",
		Help: "1 while this instance holds the pre-signer lease (refreshes, follows events, rebuilds).",
	})
	rebuild := func(kind string, f func(Progress) int64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name:        "trustline_presign_rebuild_certificates",
			Help:        "Progress of the current or last cache rebuild: certificates done, and the store's count when it started.",
			ConstLabels: prometheus.Labels{"kind": kind},
		}, func() float64 { return float64(f(p.Progress())) })
	}
	m := &metrics{leader: leader}
	for i := range m.signed {
		m.signed[i] = signed.WithLabelValues(triggerNames[i])
	}
	for i := range m.failures {
		m.failures[i] = failures.WithLabelValues(stageNames[i])
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{signed, failures, leader,
		rebuild("done", func(pr Progress) int64 { return pr.Done }),
		rebuild("total", func(pr Progress) int64 { return pr.Total })} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("presign: registering metrics: %w", err)
		}
	}
	return m, nil
}
