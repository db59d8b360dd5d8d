package follow

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// Leaser takes and gives back named leases: the subset of store.Store a
// Lease uses. AcquireLease succeeds when the lease is free, expired at now,
// or already the holder's, and then holds it until until.
type Leaser interface {
	AcquireLease(ctx context.Context, name, holder string, now, until time.Time) (bool, error)
	ReleaseLease(ctx context.Context, name, holder string) error
}

// Lease is one named store lease as seen by one holder. It is safe for
// concurrent use.
type Lease struct {
	st     Leaser
	name   string
	holder string
	ttl    time.Duration
	now    func() time.Time

	mu    sync.Mutex
	held  bool
	tried bool      // Renew was called: the store may hold it for us, held or not
	at    time.Time // when it was last taken or renewed, by now
}

// NewLease describes the lease name held by holder for ttl at a time. now
// defaults to time.Now. Nothing is written until Renew.
func NewLease(st Leaser, name, holder string, ttl time.Duration, now func() time.Time) (*Lease, error) {
	var errs []error
	if st == nil {
		errs = append(errs, errors.New("follow: lease: no store"))
	}
	if name == "" || holder == "" {
		errs = append(errs, errors.New("follow: lease: a name and a holder are required"))
	}
	if ttl <= 0 {
		errs = append(errs, fmt.Errorf("follow: lease %s: ttl %v must be positive", name, ttl))
	}
	if now == nil {
		now = time.Now
	}
	return &Lease{st: st, name: name, holder: holder, ttl: ttl, now: now}, errors.Join(errs...)
}

// Name is the lease's name in the store.
func (l *Lease) Name() string { return l.name }

// Held reports whether the last Renew took or kept the lease (and nothing
// dropped it since).
func (l *Lease) Held() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.held
}

// Fresh reports whether the lease is held and was written less than half
// its ttl ago: a holder that renews only when it is not Fresh keeps it with
// half a ttl to spare. After the clock steps back it is not Fresh, so the
// next renewal rewrites it.
func (l *Lease) Fresh() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	return l.held && !now.Before(l.at) && now.Sub(l.at) < l.ttl/2
}

// Change is what a Renew did to the holder's standing.
type Change int

const (
	// Kept: held before and after, or free before and after.
	Kept Change = iota
	// Taken: not held before, held now.
	Taken
	// Lost: held before, not now (another holder has it, or the store
	// failed and it is no longer known to be ours).
	Lost
)

// Renew takes the lease or extends it by ttl from now. A store error
// leaves it not held — unsure whether it is still ours, the holder must
// stop acting on it — and is returned.
func (l *Lease) Renew(ctx context.Context) (Change, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	l.tried = true
	ok, err := l.st.AcquireLease(ctx, l.name, l.holder, now, now.Add(l.ttl))
	if err != nil {
		ok = false
		err = fmt.Errorf("follow: renewing lease %s: %w", l.name, err)
	}
	was := l.held
	l.held = ok
	if ok {
		l.at = now
	}
	switch {
	case ok && !was:
		return Taken, err
	case !ok && was:
		return Lost, err
	default:
		return Kept, err
	}
}

// Drop forgets the lease without giving it back (it lapses after its
// ttl); the next Renew may take it again.
func (l *Lease) Drop() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.held = false
}

// Release gives the lease back, so another holder need not wait for it to
// lapse: if held, and also if dropped, or if the last Renew failed or was
// cut short, since the store may hold it for this holder all the same (a
// renewal that committed as its context ended; a take-over abandoned at
// shutdown). The store releases only this holder's lease.
func (l *Lease) Release(ctx context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.tried {
		return nil
	}
	l.held, l.tried = false, false
	if err := l.st.ReleaseLease(ctx, l.name, l.holder); err != nil {
		return fmt.Errorf("follow: releasing lease %s: %w", l.name, err)
	}
	return nil
}
