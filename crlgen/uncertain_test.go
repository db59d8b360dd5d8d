package crlgen

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/trustline/trustline/internal/issuerid"
	"github.com/trustline/trustline/internal/reason"
	"github.com/trustline/trustline/internal/store"
)

// lateCommit is a store whose next PublishCRL answers with an error while
// the server goes on to commit it only after the caller has looked (a
// connection lost at commit): the outcome is unknown to the generator.
type lateCommit struct {
	Store
	mu      sync.Mutex
	armed   bool
	pending *store.CRL
	prev    int64
	audit   store.AuditEntry
}

func (l *lateCommit) PublishCRL(ctx context.Context, c store.CRL, prev int64, audit store.AuditEntry) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.armed {
		l.armed = false
		l.pending, l.prev, l.audit = &c, prev, audit
		return errors.New("connection lost while committing")
	}
	return l.Store.PublishCRL(ctx, c, prev, audit)
}

// CRL answers from the store, then lets a pending commit land: the read
// right after the failed swap sees the old CRL.
func (l *lateCommit) CRL(ctx context.Context, id issuerid.ID, shard int) (store.CRL, error) {
	c, err := l.Store.CRL(ctx, id, shard)
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.pending != nil {
		if perr := l.Store.PublishCRL(ctx, *l.pending, l.prev, l.audit); perr != nil {
			return c, perr
		}
		l.pending = nil
	}
	return c, err
}

// TestUncertainSwapAnnouncedWhenItLanded: a CRL stored by a swap that
// reported failure is announced (and audited) on the next round, so the
// origin never lags behind the store.
func TestUncertainSwapAnnouncedWhenItLanded(t *testing.T) {
	e := newEnv(t, 1)
	base := e.st
	lc := &lateCommit{Store: base}
	e.st = lc
	c := cert(t, "int-p256", 0)
	insert(t, base, c)
	g := e.generator(t, e.cfg)
	cycle(t, g)
	e.rec.take()

	e.clock.Advance(10 * time.Second)
	revoke(t, base, c.Serial, reason.KeyCompromise, e.clock.Now())
	lc.mu.Lock()
	lc.armed = true
	lc.mu.Unlock()
	e.clock.Advance(time.Second)
	if err := g.Cycle(context.Background()); err == nil {
		t.Fatal("Cycle reported no error for a failed swap")
	}
	if got := e.rec.take(); len(got) != 0 {
		t.Fatalf("announced %v after a swap that reported failure", summarize(got))
	}
	stored, _ := storedCRLOf(t, base, "int-p256", 0)

	e.clock.Advance(time.Second)
	cycle(t, g)
	// The landed CRL is announced first; the shard, still marked changed,
	// may be republished after it.
	got := e.rec.take()
	if len(got) == 0 || got[0].Number != stored.Number {
		t.Fatalf("next round announced %v, want first the stored CRL number %d", summarize(got), stored.Number)
	}
	for i := 1; i < len(got); i++ {
		if got[i].Number <= got[i-1].Number {
			t.Errorf("announced numbers do not rise: %d then %d", got[i-1].Number, got[i].Number)
		}
	}
	if !got[0].ThisUpdate.Equal(stored.ThisUpdate) || got[0].Entries != 1 {
		t.Errorf("announcement %+v does not describe the stored CRL", got[0])
	}
}
