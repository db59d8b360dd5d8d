package watch

import (
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the watch's Prometheus series.
type metrics struct {
	checks    *prometheus.CounterVec // object
	found     *prometheus.CounterVec // object, kind
	lastRound *prometheus.GaugeVec   // object, kind: findings of the last round
	roundAt   prometheus.Gauge
	oldest    *prometheus.GaugeVec // object: the oldest thisUpdate seen in the last round, as an age

	mu       sync.Mutex
	roundOld map[string]float64 // object → the largest age this round
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
		oldest: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "trustline_watch_oldest_seconds",
			Help: "Age (fetch time minus thisUpdate) of the oldest OCSP response or CRL served at any URL in the last round, by object: " +
				"how stale what relying parties get is. OCSP should stay under half the responses' validity, a CRL under crl.period plus the CDN's TTL.",
		}, []string{"object"}),
	}
	for _, o := range []string{"ocsp", "crl"} {
		m.checks.WithLabelValues(o)
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.checks, m.found, m.lastRound, m.roundAt, m.oldest} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("watch: registering metrics: %w", err)
		}
	}
	return m, nil
}

// startRound begins a round's ages.
func (m *metrics) startRound() {
	m.mu.Lock()
	m.roundOld = map[string]float64{}
	m.mu.Unlock()
}

// observe keeps the largest age of the round per object.
func (m *metrics) observe(o Observation) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if age := o.At.Sub(o.ThisUpdate).Seconds(); m.roundOld != nil && age > m.roundOld[o.Object] {
		m.roundOld[o.Object] = age
	}
}

// round counts a round's findings and publishes its ages.
func (m *metrics) round(fs []Finding) {
	m.mu.Lock()
	for o, age := range m.roundOld {
		m.oldest.WithLabelValues(o).Set(age)
	}
	m.mu.Unlock()
	m.lastRound.Reset()
	for _, f := range fs {
		m.found.WithLabelValues(f.Object, string(f.Kind)).Inc()
		m.lastRound.WithLabelValues(f.Object, string(f.Kind)).Inc()
	}
	m.roundAt.Set(float64(time.Now().Unix()))
}
