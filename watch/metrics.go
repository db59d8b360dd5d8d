package watch

import (
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the watch's Prometheus series.
type metrics struct {
	checks    *prometheus.CounterVec // object
	found     *prometheus.CounterVec // object, kind
	lastRound *prometheus.GaugeVec   // object, kind: findings of the last round
	roundAt   prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		checks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "trustline_watch_checks_total",
			Help: "Objects fetched and checked by the watch, by object (ocsp: one certificate at one URL; crl: one shard at one URL).",
		}, []string{"object"}),
		found: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "trustline_watch_findings_total",
			Help: "Disagreements found between what relying parties receive and the CA's records or the BR, by object and kind (docs/operations.md).",
		}, []string{"object", "kind"}),
		lastRound: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "trustline_watch_last_round_findings",
			Help: "Disagreements of the last round, by object and kind: 0 when the plant agrees with itself.",
		}, []string{"object", "kind"}),
		roundAt: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "trustline_watch_last_round_timestamp_seconds",
			Help: "When the last round ended (Unix seconds): alert if it stops moving.",
		}),
	}
	for _, o := range []string{"ocsp", "crl"} {
		m.checks.WithLabelValues(o)
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.checks, m.found, m.lastRound, m.roundAt} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("watch: registering metrics: %w", err)
		}
	}
	return m, nil
}

// round counts a round's findings.
func (m *metrics) round(fs []Finding) {
	m.lastRound.Reset()
	for _, f := range fs {
		m.found.WithLabelValues(f.Object, string(f.Kind)).Inc()
		m.lastRound.WithLabelValues(f.Object, string(f.Kind)).Inc()
	}
	m.roundAt.Set(float64(time.Now().Unix()))
}
