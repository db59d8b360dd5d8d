package store

import (
	"context"
	"sync/atomic"
	"time"
)

type opBoundKey struct{}

// RequestOpTimeout is the bound the API and the portal put on each store
// operation of a request (WithOpTimeout): a hung database is answered 503
// with Retry-After within it, inside the 2 s a client is promised an
// answer in (docs/operations.md).
const RequestOpTimeout = 1500 * time.Millisecond

// OpBound is the bound WithOpTimeout puts on a context: how long each
// store operation under it may take, and whether one already timed out.
type OpBound struct {
	// Timeout bounds each operation; zero or negative means no bound.
	Timeout time.Duration
	expired atomic.Bool
}

// Expire records that an operation under this bound timed out: the
// database is hung, and later operations under the same context fail at
// once instead of waiting out their own Timeout.
func (b *OpBound) Expire() { b.expired.Store(true) }

// Expired reports whether an operation under this bound timed out.
func (b *OpBound) Expired() bool { return b.expired.Load() }

// WithOpTimeout asks the store to bound each operation made under ctx (a
// statement, a query with its rows, a transaction) by d, or by ctx's own
// deadline if that comes first; once one has timed out, the following
// ones fail with ErrUnavailable at once. A request handler sets it so that
// a database that hangs instead of refusing costs the request at most d,
// however many operations it makes, while the rest of the request (a
// mail, a DNS lookup, an HTTP fetch for a validation) keeps the time it
// needs. Adapters whose operations cannot hang (SQLite, a local file) may
// ignore it.
func WithOpTimeout(ctx context.Context, d time.Duration) context.Context {
	return context.WithValue(ctx, opBoundKey{}, &OpBound{Timeout: d})
}

// OpBoundOf returns the bound WithOpTimeout put on ctx, or nil.
func OpBoundOf(ctx context.Context) *OpBound {
	b, _ := ctx.Value(opBoundKey{}).(*OpBound)
	return b
}
