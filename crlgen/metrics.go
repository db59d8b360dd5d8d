package crlgen

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the generator's Prometheus series. The shard gauge has one
// series per shard (at most 4096 per issuer).
type metrics struct {
	published    *prometheus.CounterVec // issuer
	failures     *prometheus.CounterVec // issuer, check: build, parse, signature, lint, number, times, entries, idp
	conflicts    *prometheus.CounterVec // issuer
	lastPublish  *prometheus.GaugeVec   // issuer
	entries      *prometheus.GaugeVec   // issuer, shard
	hookFailures prometheus.Counter
	errors       *prometheus.CounterVec // op: events, lease, takeover, store, audit, cursor
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		published: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "trustline_crlgen_publications_total",
			Help: "CRLs published (stored by compare-and-swap), by issuer.",
		}, []string{"issuer"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "trustline_crlgen_check_failures_total",
			Help: "CRLs not published because building or a publication check failed, by issuer and check.",
		}, []string{"issuer", "check"}),
		conflicts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "trustline_crlgen_publish_conflicts_total",
			Help: "Compare-and-swaps lost to another generator, by issuer.",
		}, []string{"issuer"}),
		lastPublish: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "trustline_crlgen_last_publish_timestamp_seconds",
			Help: "Unix time of the issuer's latest CRL publication by this generator.",
		}, []string{"issuer"}),
		entries: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "trustline_crlgen_shard_entries",
			Help: "Entries on the latest CRL this generator published, by issuer and shard (\"full\" for a full CRL).",
		}, []string{"issuer", "shard"}),
		hookFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "trustline_crlgen_publisher_failures_total",
			Help: "Publisher hooks (origin, purgers, directory writer) that returned an error.",
		}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "trustline_crlgen_errors_total",
			Help: "Store and bookkeeping errors, by operation.",
		}, []string{"op"}),
	}
	if reg == nil {
		return m, nil
	}
	var errs []error
	for _, c := range []prometheus.Collector{m.published, m.failures, m.conflicts, m.lastPublish, m.entries, m.hookFailures, m.errors} {
		if err := reg.Register(c); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("crlgen: registering metrics: %w", err)
	}
	return m, nil
}
