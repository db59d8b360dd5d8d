// Package fault names the ways a request to the issuance core can fail
// that its callers answer differently: the caller's input is wrong, the
// request clashes with the current state, the account may not do it, the
// object is not there for the caller, a service the request needs did
// not answer, or the caller asked too often. The issuance packages (issuer, issuer/validation,
// issuer/review) return these errors with a Detail meant for the
// subscriber or reviewer; the edges (issuer/api, issuer/portal) turn them
// into HTTP answers (RFC 9457 problem details, error pages). Any other
// error is the CA's own and is not shown.
//
// It imports only the standard library, so every issuance package and
// edge may import it.
package fault

import "time"

// InputError is a request the caller must fix (HTTP 400/422).
type InputError struct{ Detail string }

func (e *InputError) Error() string { return e.Detail }

// ConflictError is a request that clashes with the current state (409).
type ConflictError struct{ Detail string }

func (e *ConflictError) Error() string { return e.Detail }

// ForbiddenError: authenticated, but not allowed (403). Cause, if set, is
// the rule that refused (a sentinel error of the package that holds the
// rule), for callers that answer each rule in its own terms (an ACME
// problem type); errors.Is reaches it.
type ForbiddenError struct {
	Detail string
	Cause  error
}

func (e *ForbiddenError) Error() string { return e.Detail }

func (e *ForbiddenError) Unwrap() error { return e.Cause }

// NotFoundError: no such object visible to the caller (404).
type NotFoundError struct{ Detail string }

func (e *NotFoundError) Error() string { return e.Detail }

// UnavailableError: a service the request needs (the CA's resolver, a
// WHOIS server) did not answer; the request may be retried (HTTP 503).
type UnavailableError struct{ Detail string }

func (e *UnavailableError) Error() string { return e.Detail }

// RateLimitedError: too many requests of one kind from one account,
// address or domain; retry after RetryAfter (HTTP 429 with Retry-After).
type RateLimitedError struct {
	Detail     string
	RetryAfter time.Duration
}

func (e *RateLimitedError) Error() string { return e.Detail }
