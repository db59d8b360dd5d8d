package responder

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Outcomes of live signing, for trustline_ocsp_live_signing_total.
const (
	liveSigned = iota
	liveUnknown
	liveRejected
	liveFailed
	numLive
)

var liveNames = [numLive]string{"signed", "unknown", "rejected", "failed"}

// metrics are resolved to plain counters once, so that the hot path only
// increments atomics.
type metrics struct {
	answers                             [numKinds]prometheus.Counter
	l1Hits, l1Misses, l1Unconfirmed     prometheus.Counter
	cacheHits, cacheMisses, cacheErrors prometheus.Counter
	age                                 prometheus.Histogram
	live                                [numLive]prometheus.Counter
	liveInflight                        prometheus.Gauge
}

// newMetrics registers the responder's metrics with reg (nil: nowhere);
// c is the L1 whose size is reported, nil if disabled.
func newMetrics(reg prometheus.Registerer, c *l1) (*metrics, error) {
	answers := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "trustline_ocsp_answers_total",
		Help: "OCSP answers by kind: certificate status of successful responses, or the error response status.",
	}, []string{"kind"})
	lookups := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "trustline_ocsp_lookups_total",
		Help: "Response lookups by tier (l1, cache) and result (hit, miss, error; l1 unconfirmed: a copy held from before the eviction feed broke, served because no tier below could answer); the hit ratio is hit/(hit+miss).",
	}, []string{"tier", "result"})
	age := prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "trustline_ocsp_response_age_seconds",
		Help:    "Age (now - thisUpdate) of the responses served.",
		Buckets: []float64{60, 600, 3600, 4 * 3600, 12 * 3600, 24 * 3600, 36 * 3600, 48 * 3600, 72 * 3600, 96 * 3600, 240 * 3600},
	})
	live := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "trustline_ocsp_live_signing_total",
		Help: "Live signing attempts by outcome: signed, unknown (no such certificate), rejected (budget full), failed.",
	}, []string{"result"})
	inflight := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "trustline_ocsp_live_signing_inflight",
		Help: "Live signatures in progress (the signing queue).",
	})
	l1Size := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "trustline_ocsp_l1_entries",
		Help: "Responses held in the in-process L1.",
	}, func() float64 { return float64(c.len()) })
	m := &metrics{
		l1Hits: lookups.WithLabelValues("l1", "hit"), l1Misses: lookups.WithLabelValues("l1", "miss"),
		l1Unconfirmed: lookups.WithLabelValues("l1", "unconfirmed"),
		cacheHits:     lookups.WithLabelValues("cache", "hit"), cacheMisses: lookups.WithLabelValues("cache", "miss"),
		cacheErrors: lookups.WithLabelValues("cache", "error"), age: age, liveInflight: inflight,
	}
	for k := range m.answers {
		m.answers[k] = answers.WithLabelValues(Kind(k).String())
	}
	for i := range m.live {
		m.live[i] = live.WithLabelValues(liveNames[i])
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{answers, lookups, age, live, inflight, l1Size} {
			if err := reg.Register(c); err != nil {
				var are prometheus.AlreadyRegisteredError
				if errors.As(err, &are) {
					return nil, fmt.Errorf("responder: registering metrics: %w (one Responder per registry)", err)
				}
				return nil, fmt.Errorf("responder: registering metrics: %w", err)
			}
		}
	}
	return m, nil
}
