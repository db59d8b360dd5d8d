package responder

import (
	"context"
	"log/slog"
	"slices"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/trustline/trustline/internal/ocspcache"
	"github.com/trustline/trustline/internal/ocspcodec"
)

// cacheReader is the subset of Cache the lookup tier uses.
type cacheReader interface {
	Get(ctx context.Context, keys []string, out []ocspcache.Entry) error
	State(ctx context.Context) (ocspcache.State, error)
}

// breaker keeps the responder off a failing cache. Closed, every request
// may use the cache. After a failure it opens: the cache is left alone for
// a cooldown (the L1 and live signing answer meanwhile), so that no
// request waits for a dial or a lookup timeout of a server known to be
// down. Then it is half-open: one request at a time probes the cache
// while the others still keep off it; the probe's success closes the
// breaker, its failure opens it for another cooldown. A failure is logged
// at most once per cooldown, and the recovery once. The lookup tier and
// live signing's write-back share one per part of the cache (breakers).
type breaker struct {
	*breakerLog
	downUntil atomic.Int64 // Unix nanoseconds; 0 while closed
	probing   atomic.Bool  // half-open: a probe is under way
}

// breakerLog is what the breakers of one responder share: their settings,
// the error counter, and the times of the last logs, so that a Redis
// Cluster master lost with its thousands of slots logs once per cooldown,
// not once per slot.
type breakerLog struct {
	cooldown time.Duration
	log      *slog.Logger
	errors   prometheus.Counter
	failAt   atomic.Int64 // Unix nanoseconds of the last failure logged
	okAt     atomic.Int64 // Unix nanoseconds of the last recovery logged
}

// breakers are a responder's cache breakers: one per part of a
// partitioned cache (ocspcache.Partitioned: a Redis Cluster's hash
// slots), so that a master lost until its replica is promoted keeps the
// responder off that master's slots only; else one.
type breakers struct {
	parts []breaker
	part  func(key string) int // nil: one part
}

// newBreakers returns the breakers for cache.
func newBreakers(cache any, cooldown time.Duration, log *slog.Logger, errors prometheus.Counter) *breakers {
	bl := &breakerLog{cooldown: cooldown, log: log, errors: errors}
	bs := &breakers{parts: make([]breaker, 1)}
	if p, ok := cache.(ocspcache.Partitioned); ok && p.Partitions() > 1 {
		bs.parts, bs.part = make([]breaker, p.Partitions()), p.Partition
	}
	for i := range bs.parts {
		bs.parts[i].breakerLog = bl
	}
	return bs
}

// of returns the breaker of the part key lives in.
func (bs *breakers) of(key string) *breaker {
	if bs.part == nil {
		return &bs.parts[0]
	}
	return &bs.parts[bs.part(key)]
}

// allow reports whether a request at now may use the cache: always while
// the breaker is closed (one atomic load), never while it cools down, and
// for one request at a time once the cooldown is over (the probe, which
// must end in ok or fail).
func (b *breaker) allow(now time.Time) bool {
	until := b.downUntil.Load()
	if until == 0 {
		return true
	}
	if now.UnixNano() < until {
		return false
	}
	return b.probing.CompareAndSwap(false, true)
}

// closed reports whether the cache is known to work: not failing, not
// being probed. Live signing writes back only then.
func (b *breaker) closed() bool { return b.downUntil.Load() == 0 }

// ok records a successful use of the cache: a probe's success closes the
// breaker.
func (b *breaker) ok() {
	if b.downUntil.Load() == 0 {
		return
	}
	if b.downUntil.Swap(0) != 0 {
		now := time.Now().UnixNano()
		if last := b.okAt.Load(); now-last >= int64(b.cooldown) && b.okAt.CompareAndSwap(last, now) {
			b.log.Info("response cache answers again; breaker closed")
		}
	}
	b.probing.Store(false)
}

// fail records a cache failure at now: the breaker opens for a cooldown.
func (b *breaker) fail(now time.Time, err error) {
	b.errors.Inc()
	b.downUntil.Store(now.Add(b.cooldown).UnixNano())
	b.probing.Store(false)
	if last := b.failAt.Load(); now.UnixNano()-last >= int64(b.cooldown) && b.failAt.CompareAndSwap(last, now.UnixNano()) {
		b.log.Warn("response cache lookup failed; serving from L1 and live signing", "err", err, "cooldown", b.cooldown)
	}
}

// cacheSource is the response cache tier: it answers what the cache holds
// (and has not expired), proves a certificate unknown by its absence once
// the cache is complete, and otherwise asks next: on a miss the cache
// cannot vouch for, and while the breaker keeps it off the cache.
type cacheSource struct {
	next    source
	cache   cacheReader
	brk     *breakers
	m       *metrics
	rr      renderer
	timeout time.Duration // per Get or State
	// stateTTL is how long the completeness flag is trusted.
	stateTTL  time.Duration
	presigned [ocspcodec.SHA512 + 1]bool
	// primary is the algorithm whose response proves the certificate
	// known when the requested one is signed live.
	primary ocspcodec.HashAlg

	// lossy, when the cache implements ocspcache.Lossy, says a miss may
	// be an entry the cache dropped.
	lossy ocspcache.Lossy

	complete  atomic.Bool
	checkedAt atomic.Int64 // Unix nanoseconds of the last State read
}

// newCacheSource returns the tier over cache for responses pre-signed with
// presigned (non-empty, valid) algorithms.
func newCacheSource(cache cacheReader, presigned []ocspcodec.HashAlg, lookupTimeout, stateTTL time.Duration, brk *breakers, rr renderer, m *metrics, next source) *cacheSource {
	c := &cacheSource{next: next, cache: cache, brk: brk, m: m, rr: rr, timeout: lookupTimeout, stateTTL: stateTTL}
	for _, h := range presigned {
		c.presigned[h] = true
	}
	c.lossy, _ = cache.(ocspcache.Lossy)
	// SHA-256 if pre-signed, else the first pre-signed one.
	c.primary = presigned[0]
	if slices.Contains(presigned, ocspcodec.SHA256) {
		c.primary = ocspcodec.SHA256
	}
	return c
}

func (c *cacheSource) Response(ctx context.Context, l lookup) (*rendered, error) {
	l.withKeyString()
	if b := c.brk.of(l.str); b.allow(l.now) {
		if rd, err := c.get(ctx, &l, b); rd != nil || err != nil {
			return rd, err
		}
	}
	return c.next.Response(ctx, l)
}

// get looks l up. It returns the response, or ocspcache.ErrUnknown when
// the miss proves the certificate unknown, or neither when next must be
// asked.
func (c *cacheSource) get(ctx context.Context, l *lookup, b *breaker) (*rendered, error) {
	keys := []string{l.str}
	if !c.presigned[l.h] {
		// The pre-signed response tells a known certificate from an
		// unknown one when this algorithm's must be signed live.
		keys = append(keys, ocspcache.Key(l.is.id, l.serialHex(), c.primary))
	}
	out := make([]ocspcache.Entry, len(keys))
	lctx, cancel := context.WithTimeout(ctx, c.timeout)
	err := c.cache.Get(lctx, keys, out)
	cancel()
	if err != nil {
		b.fail(l.now, err)
		return nil, nil
	}
	b.ok()
	if e := &out[0]; e.Found() && l.now.Before(e.NextUpdate) {
		c.m.cacheHits.Inc()
		return c.rr.render(l, e), nil
	}
	c.m.cacheMisses.Inc()
	if known := len(out) > 1 && out[1].Found(); !known && c.isComplete(ctx, l.now) {
		return nil, ocspcache.ErrUnknown
	}
	return nil, nil
}

// isComplete reports whether the pipeline's last rebuild finished and
// the cache has dropped nothing since, so that a miss means an unknown
// certificate. The flag is re-read at most
// once per stateTTL; a failed read counts as incomplete.
func (c *cacheSource) isComplete(ctx context.Context, now time.Time) bool {
	last := c.checkedAt.Load()
	if now.UnixNano()-last < int64(c.stateTTL) {
		return c.complete.Load()
	}
	lctx, cancel := context.WithTimeout(ctx, c.timeout)
	st, err := c.cache.State(lctx)
	cancel()
	ok := err == nil && st.Complete && (c.lossy == nil || !c.lossy.Dropped())
	c.complete.Store(ok)
	c.checkedAt.Store(now.UnixNano())
	if err != nil && c.brk.part == nil {
		// On a partitioned cache the state key lives in one part among
		// many: its failure says nothing of the others, and lookups trip
		// the parts they touch by themselves.
		c.brk.of("").fail(now, err)
	}
	return ok
}
