package crlgen

import (
	"context"
	"errors"
	"time"

	"github.com/trustline/trustline/internal/shard"
	"github.com/trustline/trustline/internal/store"
)

// Run announces the stored CRLs to the publishers (so a fresh origin has
// them), then runs a round every PollInterval until ctx ends, when it
// releases its leases and returns nil. A failed round is logged and the
// next one retries.
func (g *Generator) Run(ctx context.Context) error {
	g.log.Info("crl generator starting", "holder", g.cfg.Holder, "shards", g.cfg.Shards,
		"period", g.cfg.Period, "revocation_delay", g.cfg.RevocationDelay, "poll", g.cfg.PollInterval)
	if err := g.Replay(ctx); err != nil && ctx.Err() == nil {
		g.log.Warn("announcing stored CRLs failed", "err", err)
	}
	t := time.NewTimer(0)
	defer t.Stop()
	var offlineChecked time.Time
	for {
		select {
		case <-ctx.Done():
			g.release()
			g.log.Info("crl generator stopped", "holder", g.cfg.Holder)
			return nil
		case <-t.C:
		}
		// Nothing renews an offline root's CRL while the plant runs: say
		// so at start and once a day, louder as its expiry nears.
		if now := g.now(); g.offline != "" && (offlineChecked.IsZero() || now.Sub(offlineChecked) >= offlineCheckEvery) {
			g.checkOffline(ctx)
			offlineChecked = now
		}
		if err := g.Cycle(ctx); err != nil && ctx.Err() == nil {
			g.log.Warn("crl round failed", "err", err)
		}
		t.Reset(g.cfg.PollInterval)
	}
}

// release gives up the leases so another generator need not wait for them
// to lapse. ctx has ended by then, so it gets a short one of its own.
func (g *Generator) release() {
	g.mu.Lock()
	defer g.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, is := range g.issuers {
		// Not only the leases held: one taken by a round that shutdown
		// cut short may be this generator's in the store all the same.
		if err := is.lease.Release(ctx); err != nil {
			g.log.Warn("releasing CRL lease failed", "issuer", is.ID, "err", err)
		}
		is.drop()
	}
}

// checkOffline warns when the offline root's CRL, which no running
// generator renews, is missing or within offlineWarning of its nextUpdate.
func (g *Generator) checkOffline(ctx context.Context) {
	c, err := g.st.CRL(ctx, g.offline, shard.Full)
	switch {
	case errors.Is(err, store.ErrNotFound):
		g.log.Error("the root is offline and has no CRL: sign one in a ceremony (trustline ca root-crl)", "issuer", g.offline)
	case err != nil:
		g.log.Warn("reading the offline root's CRL", "issuer", g.offline, "err", err)
	case g.now().Add(offlineWarning).After(c.NextUpdate):
		g.log.Error("the offline root's CRL expires soon: sign the next one in a ceremony (trustline ca root-crl)",
			"issuer", g.offline, "number", c.Number, "next_update", c.NextUpdate)
	default:
		g.log.Info("the root is offline; its CRL is signed in ceremonies", "issuer", g.offline,
			"number", c.Number, "next_update", c.NextUpdate)
	}
}

// offlineWarning is how long before the offline root's CRL expires the
// generator starts saying so.
const offlineWarning = 30 * 24 * time.Hour

// offlineCheckEvery is how often a running generator looks at the offline
// root's CRL.
const offlineCheckEvery = 24 * time.Hour
