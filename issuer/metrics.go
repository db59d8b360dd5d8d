package issuer

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/trustline/trustline/internal/issuerid"
	"github.com/trustline/trustline/internal/reason"
	"github.com/trustline/trustline/internal/store"
	"github.com/trustline/trustline/issuer/profile"
	"github.com/trustline/trustline/issuer/review"
	"github.com/trustline/trustline/issuer/validation"
)

// Order outcomes, for trustline_orders_total.
const (
	outcomeIssued        = "issued"
	outcomePendingReview = "pending_review"
	outcomeRejected      = "rejected"
	outcomeFailed        = "failed"
)

// The review queue depth is counted on scrape: the store has no count of
// orders by status, so the collector lists pending orders, bounded in
// time and number.
const (
	queueScrapeTimeout = 2 * time.Second
	queueScrapeLimit   = 1000
)

// Metrics counts issuance events for Prometheus. One Metrics serves the
// CA, orders, validations and reviews of a process (pass it in each
// Deps); a nil *Metrics counts nothing. Every label takes values from a
// fixed set: profiles, outcomes, validation methods, review decisions,
// RFC 5280 reasons and the PKI's issuer ids.
type Metrics struct {
	orders       *prometheus.CounterVec // profile, outcome
	issued       *prometheus.CounterVec // issuer, profile
	revocations  *prometheus.CounterVec // reason
	valStarted   *prometheus.CounterVec // method
	valCompleted *prometheus.CounterVec // method
	valFailed    *prometheus.CounterVec // method
	decisions    *prometheus.CounterVec // decision
	queue        *queueDepth
}

// The validation service and the review queue count through Metrics.
var (
	_ validation.Metrics = (*Metrics)(nil)
	_ review.Metrics     = (*Metrics)(nil)
)

// NewMetrics builds the issuance metrics and registers them with reg
// (nil: not registered).
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		orders: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "trustline_orders_total",
			Help: "Orders by profile and outcome: pending_review (queued for review), issued, rejected (by the CSR policy, " +
				"the linter or a reviewer), failed (processing ended in an error; the order stays processing and is retried).",
		}, []string{"profile", "outcome"}),
		issued: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "trustline_certificates_issued_total",
			Help: "Certificates signed and stored, by issuer and profile.",
		}, []string{"issuer", "profile"}),
		revocations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "trustline_revocations_total",
			Help: "Certificates revoked, by RFC 5280 reason.",
		}, []string{"reason"}),
		valStarted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "trustline_validations_started_total",
			Help: "Domain validations started, by method.",
		}, []string{"method"}),
		valCompleted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "trustline_validations_completed_total",
			Help: "Domain validations completed (now valid), by method.",
		}, []string{"method"}),
		valFailed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "trustline_validations_failed_total",
			Help: "Domain validations that ended invalid (attempts used up, found expired when confirmed, or the code could not be mailed), by method.",
		}, []string{"method"}),
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "trustline_review_decisions_total",
			Help: "Review decisions recorded, by decision (approve, reject).",
		}, []string{"decision"}),
		queue: newQueueDepth(),
	}
	// Known series start at zero, so that rate() sees the first event.
	for _, p := range []profile.Name{profile.DV, profile.OV, profile.EV} {
		for _, o := range []string{outcomeIssued, outcomePendingReview, outcomeRejected, outcomeFailed} {
			m.orders.WithLabelValues(string(p), o)
		}
	}
	for _, meth := range []string{validation.MethodEmail, validation.MethodDNSTXT, validation.MethodHTTPToken, validation.MethodWhoisEmail} {
		m.valStarted.WithLabelValues(meth)
		m.valCompleted.WithLabelValues(meth)
		m.valFailed.WithLabelValues(meth)
	}
	m.decisions.WithLabelValues(review.DecisionApprove)
	m.decisions.WithLabelValues(review.DecisionReject)
	if reg == nil {
		return m, nil
	}
	var errs []error
	for _, c := range []prometheus.Collector{m.orders, m.issued, m.revocations, m.valStarted, m.valCompleted,
		m.valFailed, m.decisions, m.queue, m.queue.errors} {
		if err := reg.Register(c); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("issuer: registering metrics: %w", err)
	}
	return m, nil
}

func (m *Metrics) orderOutcome(prof, outcome string) {
	if m != nil {
		m.orders.WithLabelValues(prof, outcome).Inc()
	}
}

// orderProcessed counts what Orders.Process made of an order.
func (m *Metrics) orderProcessed(prof string, out store.Order, err error) {
	switch {
	case err != nil:
		m.orderOutcome(prof, outcomeFailed)
	case out.Status == store.OrderIssued:
		m.orderOutcome(prof, outcomeIssued)
	case out.Status == store.OrderRejected:
		m.orderOutcome(prof, outcomeRejected)
	}
}

func (m *Metrics) certificateIssued(is issuerid.ID, prof profile.Name) {
	if m != nil {
		m.issued.WithLabelValues(string(is), string(prof)).Inc()
	}
}

func (m *Metrics) revoked(r reason.Reason) {
	if m != nil {
		m.revocations.WithLabelValues(r.String()).Inc()
	}
}

// ValidationStarted counts a validation started by method (for
// issuer/validation).
func (m *Metrics) ValidationStarted(method string) {
	if m != nil {
		m.valStarted.WithLabelValues(method).Inc()
	}
}

// ValidationCompleted counts a validation that became valid.
func (m *Metrics) ValidationCompleted(method string) {
	if m != nil {
		m.valCompleted.WithLabelValues(method).Inc()
	}
}

// ValidationFailed counts a validation that ended invalid.
func (m *Metrics) ValidationFailed(method string) {
	if m != nil {
		m.valFailed.WithLabelValues(method).Inc()
	}
}

// ReviewDecided counts a reviewer's decision (for issuer/review).
func (m *Metrics) ReviewDecided(decision string) {
	if m != nil {
		m.decisions.WithLabelValues(decision).Inc()
	}
}

// OrderRejected counts an order a reviewer rejected.
func (m *Metrics) OrderRejected(prof string) { m.orderOutcome(prof, outcomeRejected) }

// WatchQueue makes the queue depth count the orders that list (the review
// queue's store) returns pending review.
func (m *Metrics) WatchQueue(list func(context.Context, store.OrderFilter) ([]store.Order, error)) {
	if m != nil {
		m.queue.src.Store(&queueSource{list: list})
	}
}

type queueSource struct {
	list func(context.Context, store.OrderFilter) ([]store.Order, error)
}

// queueDepth counts the orders pending review on each scrape. Until a
// store is watched, or when listing fails, it reports nothing rather than
// a wrong number; a failure counts in its errors counter.
type queueDepth struct {
	desc    *prometheus.Desc
	src     atomic.Pointer[queueSource]
	timeout time.Duration
	limit   int
	errors  prometheus.Counter
}

func newQueueDepth() *queueDepth {
	return &queueDepth{
		desc: prometheus.NewDesc("trustline_review_queue_depth",
			fmt.Sprintf("Orders pending review, by profile, counted on scrape (at most %d in all).", queueScrapeLimit),
			[]string{"profile"}, nil),
		timeout: queueScrapeTimeout,
		limit:   queueScrapeLimit,
		errors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "trustline_review_queue_depth_errors_total",
			Help: "Scrapes of trustline_review_queue_depth that could not list pending orders (the store failed or was slower than the bound).",
		}),
	}
}

func (q *queueDepth) Describe(ch chan<- *prometheus.Desc) { ch <- q.desc }

func (q *queueDepth) Collect(ch chan<- prometheus.Metric) {
	src := q.src.Load()
	if src == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), q.timeout)
	defer cancel()
	ords, err := src.list(ctx, store.OrderFilter{Status: store.OrderPendingReview, Limit: q.limit})
	if err != nil {
		q.errors.Inc()
		return
	}
	n := map[profile.Name]int{profile.DV: 0, profile.OV: 0, profile.EV: 0}
	for _, o := range ords {
		if _, ok := n[profile.Name(o.Profile)]; ok {
			n[profile.Name(o.Profile)]++
		}
	}
	for p, c := range n {
		ch <- prometheus.MustNewConstMetric(q.desc, prometheus.GaugeValue, float64(c), string(p))
	}
}
