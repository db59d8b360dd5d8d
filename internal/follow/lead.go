package follow

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// Leader is the run loop of a part that works alone: whoever holds Lease
// runs Round every Poll; the others wait, renewing in case the holder goes
// away.
type Leader struct {
	Lease *Lease
	// RenewEvery is how often the lease is written (a third of its ttl
	// leaves two tries before it lapses); Poll is how often a round runs.
	RenewEvery, Poll time.Duration
	// Round does one pass of the work. Its context is cancelled when the
	// lease is lost, so a holder that lost it stops soon.
	Round func(ctx context.Context)
	// Changed, if set, is told each time the lease is taken or lost.
	Changed func(held bool)
	Log     *slog.Logger
}

// releaseTimeout bounds giving the lease back after ctx ended.
const releaseTimeout = 5 * time.Second

// Run renews the lease at once and every RenewEvery in the background,
// runs Round at once and every Poll while the lease is held, and returns
// nil when ctx ends, after giving the lease back.
func (ld Leader) Run(ctx context.Context) error {
	r := &leading{Leader: ld}
	r.renew(ctx)
	renewDone := make(chan struct{})
	go func() {
		defer close(renewDone)
		r.renewEvery(ctx)
	}()
	t := time.NewTicker(ld.Poll)
	defer t.Stop()
	for {
		if ld.Lease.Held() {
			r.round(ctx)
		}
		select {
		case <-ctx.Done():
			<-renewDone
			r.release(ctx)
			return nil
		case <-t.C:
		}
	}
}

// leading is one Run: the round under way, which losing the lease cancels.
type leading struct {
	Leader
	mu   sync.Mutex
	stop context.CancelFunc
}

func (r *leading) renewEvery(ctx context.Context) {
	t := time.NewTicker(r.RenewEvery)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			r.renew(ctx)
		case <-ctx.Done():
			return
		}
	}
}

func (r *leading) renew(ctx context.Context) {
	ch, err := r.Lease.Renew(ctx)
	if err != nil && ctx.Err() == nil {
		r.Log.Warn("renewing a lease failed", "lease", r.Lease.Name(), "err", err)
	}
	if ch == Lost {
		r.mu.Lock()
		if r.stop != nil {
			r.stop()
		}
		r.mu.Unlock()
	}
	if ch != Kept && r.Changed != nil {
		r.Changed(ch == Taken)
	}
}

func (r *leading) round(ctx context.Context) {
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	r.mu.Lock()
	r.stop = cancel
	r.mu.Unlock()
	r.Round(rctx)
	r.mu.Lock()
	r.stop = nil
	r.mu.Unlock()
}

// release gives the lease back; ctx has ended, so it gets a short one of
// its own.
func (r *leading) release(ctx context.Context) {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), releaseTimeout)
	defer cancel()
	if err := r.Lease.Release(rctx); err != nil {
		r.Log.Warn("releasing a lease failed", "lease", r.Lease.Name(), "err", err)
	}
}
