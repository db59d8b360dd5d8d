package caa

import (
	"context"
	"fmt"

	"github.com/trustline/trustline/issuer/mpic"
)

// ErrNotCorroborated: the primary perspective found that CAA permits
// issuance but too few remote perspectives did (BR §3.2.2.9).
var ErrNotCorroborated = fmt.Errorf("%w: not corroborated from enough network perspectives", ErrForbidden)

// CheckFunc is a CAA check from one network perspective (*Checker.Check).
type CheckFunc func(ctx context.Context, r Request) (Result, error)

// Corroborated wraps the primary perspective's check: when it permits a
// name, the remote perspectives repeat it, and the name is permitted only
// if the quorum is met. The outcome is kept in the Result.
func Corroborated(primary CheckFunc, remote mpic.Corroborator) CheckFunc {
	return func(ctx context.Context, r Request) (Result, error) {
		res, err := primary(ctx, r)
		if err != nil {
			return res, err
		}
		o := remote.Corroborate(ctx, mpic.Check{Kind: mpic.KindCAA, Domain: r.Name, AccountURI: r.AccountURI, Method: r.Method})
		res.Corroboration = &o
		switch {
		case ctx.Err() != nil:
			return res, ctx.Err()
		case o.Proceed:
			return res, nil
		}
		res.Permitted, res.Reason = false, o.Reason
		if o.Unavailable() {
			return res, fmt.Errorf("%w: too few remote perspectives answered: %s", ErrResolver, o.Reason)
		}
		return res, fmt.Errorf("%w: %s", ErrNotCorroborated, o.Reason)
	}
}

// Check calls f (so a CheckFunc is an issuer.CAAChecker).
func (f CheckFunc) Check(ctx context.Context, r Request) (Result, error) { return f(ctx, r) }
