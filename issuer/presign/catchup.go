package presign

import (
	"context"
	"errors"
	"fmt"

	"github.com/trustline/trustline/internal/follow"
	"github.com/trustline/trustline/internal/ocspcache"
	"github.com/trustline/trustline/internal/ocspcodec"
	"github.com/trustline/trustline/internal/serial"
	"github.com/trustline/trustline/internal/status"
	"github.com/trustline/trustline/internal/store"
)

// eventPage is how many events one catch-up read returns.
const eventPage = follow.DefaultPage

// CatchUp applies the status-change events the cache has not seen (its
// State's Seq onwards): certificates issued or revoked without this
// process's sink. A certificate whose cached response already has its
// status is skipped. It returns how many certificates were signed.
func (p *Pipeline) CatchUp(ctx context.Context) (int64, error) {
	apply := &catchUp{p: p}
	f := follow.Follower{Events: countedEvents{p}, Cursor: &stateCursor{cache: p.cache}, Consumer: apply, Page: eventPage}
	if _, err := f.Step(ctx); err != nil {
		if errors.Is(err, ErrCacheLost) {
			return apply.signed, err
		}
		return apply.signed, fmt.Errorf("presign: catch-up: %w", err)
	}
	return apply.signed, nil
}

// countedEvents reads the event log, counting failed reads.
type countedEvents struct{ p *Pipeline }

func (e countedEvents) EventsAfter(ctx context.Context, seq int64, limit int) ([]store.Event, error) {
	evs, err := e.p.store.EventsAfter(ctx, seq, limit)
	if err != nil {
		e.p.m.failures[stageRead].Inc()
	}
	return evs, err
}

// stateCursor keeps the catch-up position in the cache's State, moved by
// compare-and-swap: a cache flushed or rebuilt underneath stops the
// catch-up with ErrCacheLost.
type stateCursor struct {
	cache Cache
	st    ocspcache.State
}

func (c *stateCursor) Load(ctx context.Context) (int64, error) {
	st, err := c.cache.State(ctx)
	if err != nil {
		return 0, err
	}
	if st.Epoch == "" {
		return 0, ErrCacheLost
	}
	c.st = st
	return st.Seq, nil
}

func (c *stateCursor) Save(ctx context.Context, seq int64) error {
	next := c.st
	next.Seq = seq
	if err := c.cache.SwapState(ctx, c.st, next); err != nil {
		if errors.Is(err, ocspcache.ErrStateChanged) {
			return ErrCacheLost
		}
		return err
	}
	c.st = next
	return nil
}

// catchUp is the work one page of events asks for: re-sign the responses
// of the certificates they name whose cached status is not theirs.
type catchUp struct {
	p      *Pipeline
	signed int64
}

func (c *catchUp) Apply(ctx context.Context, evs []store.Event) error {
	cs, err := c.p.certsOf(ctx, evs)
	if err != nil {
		return err
	}
	good, revoked, err := c.p.stale(ctx, cs)
	if err != nil {
		return err
	}
	for _, part := range []struct {
		cs    []cert
		algs  []ocspcodec.HashAlg
		evict bool
	}{{good, c.p.cfg.HashAlgs, false}, {revoked, allAlgs, true}} {
		if len(part.cs) == 0 {
			continue
		}
		n, err := c.p.process(ctx, triggerEvent, part.algs, part.evict,
			func(_ context.Context, emit emitFunc) error { return c.p.emitBatches(part.cs, emit) }, nil)
		c.signed += n
		if err != nil {
			return err
		}
	}
	return nil
}

// certsOf reads the certificates the events name, each once.
func (p *Pipeline) certsOf(ctx context.Context, evs []store.Event) ([]cert, error) {
	seen := map[serial.Serial]bool{}
	var cs []cert
	for _, e := range evs {
		if seen[e.Serial] {
			continue
		}
		seen[e.Serial] = true
		c, err := p.store.Certificate(ctx, e.Serial)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			p.m.failures[stageRead].Inc()
			return nil, err
		}
		cs = append(cs, fromCertificate(c))
	}
	return cs, nil
}

// stale keeps the certificates whose cached primary response lacks their
// status or is due for refresh, split by status.
func (p *Pipeline) stale(ctx context.Context, cs []cert) (good, revoked []cert, err error) {
	primary := p.cfg.HashAlgs[0]
	keys := make([]string, len(cs))
	for i, c := range cs {
		keys[i] = ocspcache.Key(c.IssuerID, string(c.Serial), primary)
	}
	cached := make([]ocspcache.Entry, len(keys))
	if err := p.cache.Get(ctx, keys, cached); err != nil {
		return nil, nil, err
	}
	now := p.now()
	for i, c := range cs {
		if e := cached[i]; e.Found() && e.Status == c.Status && now.Before(e.RefreshAt) {
			continue
		}
		if c.Status == status.Revoked {
			revoked = append(revoked, c)
		} else {
			good = append(good, c)
		}
	}
	return good, revoked, nil
}
