package acme

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"time"

	"github.com/trustline/trustline/internal/reason"
	"github.com/trustline/trustline/internal/serial"
	"github.com/trustline/trustline/internal/store"
	"github.com/trustline/trustline/issuer/fault"
)

// Planned revocations: when the CA must revoke many certificates by a
// deadline (an incident; BR 4.9.1.1 gives 24 hours or 5 days), an
// administrator records the plan first. Nothing is revoked by it; the
// certificates' renewal windows (renewalInfo) move before the deadline, so
// that ACME clients that ask replace them in time, and the revocation
// itself is then done as any other.

// MaxPlanSerials is the most certificates one plan request names; larger
// incidents are recorded in several requests.
const MaxPlanSerials = 1000

// MaxPlanHorizon is how far ahead a deadline may be: the BR's longest
// revocation delay is 5 days, and a plan longer than a month ahead is a
// mistake more likely than a plan.
const MaxPlanHorizon = 31 * 24 * time.Hour

// PlanStore is the subset of the store plans are kept in.
type PlanStore interface {
	PlanRevocations(ctx context.Context, ps []store.PlannedRevocation) error
	PlannedRevocations(ctx context.Context, after store.PlannedRevocationCursor, limit int) ([]store.PlannedRevocation, error)
	CancelPlannedRevocation(ctx context.Context, s serial.Serial) error
	Certificate(ctx context.Context, s serial.Serial) (store.Certificate, error)
	AppendAudit(ctx context.Context, e store.AuditEntry) (store.AuditEntry, error)
}

// RevocationPlans records, lists and cancels planned revocations, each
// change audited.
type RevocationPlans struct {
	st  PlanStore
	now func() time.Time
}

// NewRevocationPlans builds the service; nil now means time.Now.
func NewRevocationPlans(st PlanStore, now func() time.Time) *RevocationPlans {
	if now == nil {
		now = time.Now
	}
	return &RevocationPlans{st: st, now: now}
}

// PlanRequest asks that certificates be revoked by a deadline.
type PlanRequest struct {
	Serials  []string  `json:"serials"`
	RevokeBy time.Time `json:"revoke_by"`
	// Reason is the CRL reason the revocation will carry ("" is
	// unspecified); one the CA may use for a subscriber certificate.
	Reason string `json:"reason"`
	// ExplanationURL, optional, is an https page about the incident that
	// ACME clients show their operators.
	ExplanationURL string `json:"explanation_url"`
}

// Plan records req at the request of actor: every serial must name a
// certificate of this CA, or nothing is recorded. A serial planned already
// gets the new deadline.
func (p *RevocationPlans) Plan(ctx context.Context, actor store.Account, req PlanRequest) ([]store.PlannedRevocation, error) {
	now := p.now().UTC()
	switch {
	case len(req.Serials) == 0:
		return nil, &fault.InputError{Detail: "serials: name at least one certificate"}
	case len(req.Serials) > MaxPlanSerials:
		return nil, &fault.InputError{Detail: fmt.Sprintf("serials: at most %d in one request; send the rest in others", MaxPlanSerials)}
	case req.RevokeBy.IsZero():
		return nil, &fault.InputError{Detail: "revoke_by: the deadline (RFC 3339) is required"}
	case !req.RevokeBy.After(now):
		return nil, &fault.InputError{Detail: "revoke_by must be in the future"}
	case req.RevokeBy.Sub(now) > MaxPlanHorizon:
		return nil, &fault.InputError{Detail: fmt.Sprintf("revoke_by is more than %d days ahead", MaxPlanHorizon/(24*time.Hour))}
	}
	rs := reason.Unspecified
	if req.Reason != "" {
		var err error
		if rs, err = reason.Parse(req.Reason); err != nil {
			return nil, &fault.InputError{Detail: fmt.Sprintf("reason: unknown reason %q", truncate(req.Reason, 40))}
		}
	}
	if !rs.AllowedForSubscriber() {
		return nil, &fault.InputError{Detail: fmt.Sprintf("reason %s is not allowed for subscriber certificates (BR 7.2.2)", rs)}
	}
	if req.ExplanationURL != "" {
		u, err := url.Parse(req.ExplanationURL)
		if err != nil || u.Scheme != "https" || u.Host == "" || len(req.ExplanationURL) > 2000 {
			return nil, &fault.InputError{Detail: "explanation_url must be an https URL of at most 2000 characters"}
		}
	}
	var serials []serial.Serial
	for _, s := range req.Serials {
		sn, err := serial.Parse(s)
		if err != nil {
			return nil, &fault.InputError{Detail: fmt.Sprintf("serials: %q is not a serial number", truncate(s, 60))}
		}
		if !slices.Contains(serials, sn) {
			serials = append(serials, sn)
		}
	}
	plans := make([]store.PlannedRevocation, len(serials))
	for i, sn := range serials {
		plans[i] = store.PlannedRevocation{
			Serial: sn, RevokeBy: req.RevokeBy.UTC().Truncate(time.Microsecond), Reason: rs,
			ExplanationURL: req.ExplanationURL, CreatedBy: actor.ID, CreatedAt: now.Truncate(time.Microsecond),
		}
	}
	if err := p.st.PlanRevocations(ctx, plans); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return nil, p.unknownSerial(ctx, serials)
		}
		return nil, fmt.Errorf("acme: recording planned revocations: %w", err)
	}
	payload, _ := json.Marshal(map[string]any{
		"serials": serials, "revoke_by": plans[0].RevokeBy, "reason": rs.String(), "explanation_url": req.ExplanationURL,
	})
	if _, err := p.st.AppendAudit(ctx, store.AuditEntry{At: now, Kind: "revocation.planned", Actor: actor.ID, Subject: serials[0].String(), Payload: payload}); err != nil {
		return nil, fmt.Errorf("acme: auditing planned revocations: %w", err)
	}
	return plans, nil
}

// unknownSerial names the first serial of serials with no certificate.
func (p *RevocationPlans) unknownSerial(ctx context.Context, serials []serial.Serial) error {
	for _, sn := range serials {
		_, err := p.st.Certificate(ctx, sn)
		if errors.Is(err, store.ErrNotFound) {
			return &fault.NotFoundError{Detail: fmt.Sprintf("serials: this CA issued no certificate %s; nothing was planned", sn)}
		}
		if err != nil {
			return err
		}
	}
	return &fault.NotFoundError{Detail: "a serial names no certificate of this CA; nothing was planned"}
}

// List returns plans in deadline order after the cursor, at most limit.
func (p *RevocationPlans) List(ctx context.Context, after store.PlannedRevocationCursor, limit int) ([]store.PlannedRevocation, error) {
	return p.st.PlannedRevocations(ctx, after, limit)
}

// Cancel deletes the plan of s at the request of actor.
func (p *RevocationPlans) Cancel(ctx context.Context, actor store.Account, s serial.Serial) error {
	if err := p.st.CancelPlannedRevocation(ctx, s); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return &fault.NotFoundError{Detail: "no revocation is planned for that certificate"}
		}
		return fmt.Errorf("acme: cancelling a planned revocation: %w", err)
	}
	payload, _ := json.Marshal(map[string]any{"serial": s})
	if _, err := p.st.AppendAudit(ctx, store.AuditEntry{At: p.now().UTC(), Kind: "revocation.plan_cancelled", Actor: actor.ID, Subject: s.String(), Payload: payload}); err != nil {
		return fmt.Errorf("acme: auditing a cancelled plan: %w", err)
	}
	return nil
}
