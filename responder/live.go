package responder

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/trustline/trustline/internal/ocspcache"
	"github.com/trustline/trustline/internal/serial"
)

// The live signing tiers, outermost first: liveOutcomes, coalescer,
// budget, liveSource (doc.go says why in this order).

// liveOutcomes counts each request's live signing outcome
// (trustline_ocsp_live_signing_total: signed, unknown, failed; the budget
// counts its own rejections) and logs failures. It sits above the
// coalescer so that requests sharing a signature are each counted, as
// the metric has always done.
type liveOutcomes struct {
	next source
	m    *metrics
	log  *slog.Logger
}

func (o *liveOutcomes) Response(ctx context.Context, l lookup) (*rendered, error) {
	rd, err := o.next.Response(ctx, l)
	switch {
	case err == nil:
		o.m.live[liveSigned].Inc()
	case errors.Is(err, ocspcache.ErrUnknown):
		o.m.live[liveUnknown].Inc()
	case errors.Is(err, errBudget):
		// counted by the budget, once per rejected signature
	default:
		o.m.live[liveFailed].Inc()
		o.log.Warn("live signing failed", "key", l.keyString(), "err", err)
	}
	return rd, err
}

// coalescer shares one answer from next among the concurrent requests
// for the same key, so that a burst for one certificate costs one
// signature and one budget slot.
type coalescer struct {
	next   source
	flight singleflight.Group
}

func (c *coalescer) Response(ctx context.Context, l lookup) (*rendered, error) {
	v, err, _ := c.flight.Do(l.keyString(), func() (any, error) {
		return c.next.Response(ctx, l)
	})
	rd, _ := v.(*rendered)
	return rd, err
}

// errBudget: the live signing budget is exhausted.
var errBudget = errors.New("responder: live signing budget exhausted")

// budget bounds the signatures in progress (Config.LiveSigning). A request
// beyond it gets errBudget at once, answered tryLater: a stalled HSM must
// not pile up waiting requests.
type budget struct {
	next source
	sem  chan struct{}
	m    *metrics
}

func newBudget(n int, m *metrics, next source) *budget {
	return &budget{next: next, sem: make(chan struct{}, n), m: m}
}

func (b *budget) Response(ctx context.Context, l lookup) (*rendered, error) {
	select {
	case b.sem <- struct{}{}:
	default:
		b.m.live[liveRejected].Inc()
		return nil, errBudget
	}
	b.m.liveInflight.Inc()
	defer func() { b.m.liveInflight.Dec(); <-b.sem }()
	return b.next.Response(ctx, l)
}

// cacheWriter is the subset of Cache live signing uses.
type cacheWriter interface {
	Put(ctx context.Context, items []ocspcache.Item) error
}

// liveSource signs the response through a LiveSigner, within SignTimeout,
// and writes it to the cache (unless the breaker keeps the responder off
// it) so that the next request, here or in another responder, finds it.
type liveSource struct {
	signer      LiveSigner
	cache       cacheWriter
	brk         *breakers
	rr          renderer
	signTimeout time.Duration
	putTimeout  time.Duration
}

func (s *liveSource) Response(ctx context.Context, l lookup) (*rendered, error) {
	l.withKeyString()
	sn, err := serial.Parse(l.serialHex())
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ocspcache.ErrUnknown, err)
	}
	sctx, cancel := context.WithTimeout(ctx, s.signTimeout)
	e, err := s.signer.SignLive(sctx, l.is.id, l.h, sn)
	cancel()
	if err != nil {
		return nil, err
	}
	if !e.Found() || !l.now.Before(e.NextUpdate) {
		return nil, errors.New("responder: live signer returned no usable response")
	}
	rd := s.rr.render(&l, &e)
	if b := s.brk.of(l.str); b.closed() {
		s.put(ctx, b, l.now, ocspcache.Item{Key: l.str, Entry: e})
	}
	return rd, nil
}

// put writes it to the cache; a failure trips the breaker.
func (s *liveSource) put(ctx context.Context, b *breaker, now time.Time, it ocspcache.Item) {
	pctx, cancel := context.WithTimeout(ctx, s.putTimeout)
	defer cancel()
	if err := s.cache.Put(pctx, []ocspcache.Item{it}); err != nil {
		b.fail(now, err)
	}
}
