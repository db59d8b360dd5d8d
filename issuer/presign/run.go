package presign

import (
	"context"
	"errors"
	"fmt"

	"github.com/trustline/trustline/internal/follow"
)

// leaseName is the store lease the leader holds.
const leaseName = "ocsp-presigner"

// pageSize is how many certificates one rebuild read returns (a variable
// for tests).
var pageSize = 1000

// ErrCacheLost: the cache's State changed under a rebuild or a catch-up
// (the cache was flushed or restarted, or another instance rebuilt it).
// Run rebuilds on its next round.
var ErrCacheLost = errors.New("presign: response cache state changed underneath")

// Run is the leader loop: while this instance holds the lease it rebuilds
// a lost or unfinished cache, follows events and refreshes due responses,
// every Poll. It returns when ctx is done, releasing the lease.
func (p *Pipeline) Run(ctx context.Context) error {
	lease, err := follow.NewLease(p.store, leaseName, p.cfg.Instance, p.cfg.Lease, p.now)
	if err != nil {
		return fmt.Errorf("presign: %w", err)
	}
	return follow.Leader{
		Lease: lease, RenewEvery: p.cfg.Lease / 3, Poll: p.cfg.Poll, Round: p.round, Log: p.log,
		Changed: func(held bool) {
			p.log.Info("pre-signer leadership changed", "leader", held, "instance", p.cfg.Instance)
			p.m.leader.Set(map[bool]float64{true: 1}[held])
		},
	}.Run(ctx)
}

// round is one pass of the leader loop. Errors are logged: the next round
// retries.
func (p *Pipeline) round(ctx context.Context) {
	st, err := p.cache.State(ctx)
	if err != nil {
		p.log.Warn("reading the response cache state", "err", err)
		return
	}
	if st.Epoch == "" || !st.Complete {
		reason := "cache lost or new"
		if st.Epoch != "" {
			reason = "previous rebuild unfinished"
		}
		p.log.Info("OCSP response cache needs a rebuild", "reason", reason)
		if _, err := p.Rebuild(ctx); err != nil && ctx.Err() == nil {
			p.log.Warn("rebuilding the response cache", "err", err)
			return
		}
	}
	if n, err := p.CatchUp(ctx); err != nil && ctx.Err() == nil {
		p.log.Warn("following status-change events", "err", err, "signed", n)
		return
	} else if n > 0 {
		p.log.Info("applied status-change events", "certificates", n)
	}
	if n, err := p.Refresh(ctx); err != nil && ctx.Err() == nil {
		p.log.Warn("refreshing OCSP responses", "err", err, "signed", n)
	} else if n > 0 {
		p.log.Info("refreshed OCSP responses", "certificates", n)
	}
}
