package ct

import (
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sony/gobreaker/v2"
)

// metrics are the submitter's Prometheus series, per log.
type metrics struct {
	submissions  *prometheus.CounterVec   // log, kind, outcome
	latency      *prometheus.HistogramVec // log, kind
	breaker      *prometheus.GaugeVec     // log
	policyUnmet  prometheus.Counter
	finalDropped prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		submissions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "trustline_ct_submissions_total",
			Help: "Submissions to CT logs, by log, kind (precertificate, final) and outcome: ok, error, timeout, " +
				"breaker_open (skipped while the log's circuit breaker is open), cancelled.",
		}, []string{"log", "kind", "outcome"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "trustline_ct_submission_seconds",
			Help:    "Time a submission to a CT log took, retries included, by log and kind.",
			Buckets: []float64{.05, .1, .25, .5, 1, 2, 4, 8, 16},
		}, []string{"log", "kind"}),
		breaker: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "trustline_ct_breaker_state",
			Help: "Each CT log's circuit breaker: 0 closed (submitting), 1 half-open (one trial submission), 2 open (skipped).",
		}, []string{"log"}),
		policyUnmet: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "trustline_ct_policy_unmet_total",
			Help: "Precertificates for which the logs did not return enough SCTs to meet the CT policy (nothing more was signed).",
		}),
		finalDropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "trustline_ct_final_dropped_total",
			Help: "Final certificates not submitted to the logs because too many submissions were under way.",
		}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.submissions, m.latency, m.breaker, m.policyUnmet, m.finalDropped} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("ct: registering metrics: %w", err)
		}
	}
	return m, nil
}

func (m *metrics) submission(log, kind, outcome string, took time.Duration) {
	m.submissions.WithLabelValues(log, kind, outcome).Inc()
	if outcome == "ok" || outcome == "error" || outcome == "timeout" {
		m.latency.WithLabelValues(log, kind).Observe(took.Seconds())
	}
}

func (m *metrics) breakerState(log string, s gobreaker.State) {
	m.breaker.WithLabelValues(log).Set(float64(s))
}
