package issuer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/trustline/trustline/internal/store"
	"github.com/trustline/trustline/issuer/fault"
	"github.com/trustline/trustline/issuer/people"
)

// Dual control (docs/security.md): making an account a reviewer or an
// admin takes two admins, one who asks and another who approves; and no
// one decides on an order of an account linked to them (people.Linked), nor
// gives an EV order its second approval when linked to the first approver.

// StaffStore is the subset of the store dual control uses.
type StaffStore interface {
	Account(ctx context.Context, id string) (store.Account, error)
	SetAccountPerson(ctx context.Context, accountID, person string) error
	CreateRoleGrant(ctx context.Context, g store.RoleGrant) error
	RoleGrant(ctx context.Context, id string) (store.RoleGrant, error)
	RoleGrants(ctx context.Context, status store.GrantStatus) ([]store.RoleGrant, error)
	DecideRoleGrant(ctx context.Context, id string, status store.GrantStatus, by string, at time.Time) (store.RoleGrant, error)
	AppendAudit(ctx context.Context, e store.AuditEntry) (store.AuditEntry, error)
}

// Staff grants the reviewer and admin roles.
type Staff struct {
	store StaffStore
	now   func() time.Time
	dual  bool
}

// NewStaff builds the service. dualControl off lets one admin grant a role
// alone (for a one-person trial such as `trustline dev`; audited as such).
func NewStaff(st StaffStore, now func() time.Time, dualControl bool) *Staff {
	if now == nil {
		now = time.Now
	}
	return &Staff{store: st, now: now, dual: dualControl}
}

// DualControl reports whether a second admin must approve.
func (s *Staff) DualControl() bool { return s.dual }

// Request asks for accountID to get role (reviewer or admin). Under dual
// control the grant waits for another admin; otherwise it is approved at
// once by the same admin.
func (s *Staff) Request(ctx context.Context, admin store.Account, accountID string, role store.Role) (store.RoleGrant, error) {
	if role != store.RoleReviewer && role != store.RoleAdmin {
		return store.RoleGrant{}, &fault.InputError{Detail: fmt.Sprintf("role %q: a grant gives reviewer or admin", truncate(string(role), 32))}
	}
	if accountID == admin.ID {
		return store.RoleGrant{}, &fault.ForbiddenError{Detail: "an admin may not ask for a role for their own account"}
	}
	acct, err := s.account(ctx, accountID)
	if err != nil {
		return store.RoleGrant{}, err
	}
	if acct.Role == role {
		return store.RoleGrant{}, &fault.ConflictError{Detail: "the account has that role already"}
	}
	pending, err := s.store.RoleGrants(ctx, store.GrantPending)
	if err != nil {
		return store.RoleGrant{}, fmt.Errorf("issuer: listing role grants: %w", err)
	}
	for _, g := range pending {
		if g.AccountID == accountID {
			return store.RoleGrant{}, &fault.ConflictError{Detail: "a grant for this account is already waiting for approval: " + g.ID}
		}
	}
	g := store.RoleGrant{ID: NewID("grant_"), AccountID: accountID, Role: role, RequestedBy: admin.ID, RequestedAt: s.now(), Status: store.GrantPending}
	if err := s.store.CreateRoleGrant(ctx, g); err != nil {
		return store.RoleGrant{}, fmt.Errorf("issuer: creating role grant: %w", err)
	}
	if err := s.audit(ctx, "role.requested", admin, g, nil); err != nil {
		return store.RoleGrant{}, err
	}
	if s.dual {
		return g, nil
	}
	return s.decide(ctx, admin, g, store.GrantApproved, map[string]any{"dual_control": false})
}

// Decide approves or rejects a pending grant. Under dual control the admin
// who asked, the account itself and anyone linked to either cannot.
func (s *Staff) Decide(ctx context.Context, admin store.Account, grantID string, approve bool) (store.RoleGrant, error) {
	g, err := s.store.RoleGrant(ctx, grantID)
	if errors.Is(err, store.ErrNotFound) {
		return store.RoleGrant{}, &fault.NotFoundError{Detail: "no such role grant"}
	}
	if err != nil {
		return store.RoleGrant{}, fmt.Errorf("issuer: reading role grant: %w", err)
	}
	if g.Status != store.GrantPending {
		return store.RoleGrant{}, &fault.ConflictError{Detail: fmt.Sprintf("the grant is %s already", g.Status)}
	}
	status := store.GrantRejected
	if approve {
		status = store.GrantApproved
		if err := s.mayApprove(ctx, admin, g); err != nil {
			return store.RoleGrant{}, err
		}
	}
	return s.decide(ctx, admin, g, status, nil)
}

// mayApprove applies the second-admin rule.
func (s *Staff) mayApprove(ctx context.Context, admin store.Account, g store.RoleGrant) error {
	if !s.dual {
		return nil
	}
	switch {
	case admin.ID == g.RequestedBy:
		return &fault.ForbiddenError{Detail: "dual control: the admin who asked for a role may not approve it; another admin must"}
	case admin.ID == g.AccountID:
		return &fault.ForbiddenError{Detail: "an admin may not approve a role for their own account"}
	}
	for _, id := range []string{g.RequestedBy, g.AccountID} {
		other, err := s.account(ctx, id)
		if err != nil {
			return err
		}
		if linked, why := people.Linked(admin, other); linked {
			return &fault.ForbiddenError{Detail: "dual control: you are linked to account " + id + " (" + why + "); another admin must approve"}
		}
	}
	return nil
}

func (s *Staff) decide(ctx context.Context, admin store.Account, g store.RoleGrant, status store.GrantStatus, extra map[string]any) (store.RoleGrant, error) {
	d, err := s.store.DecideRoleGrant(ctx, g.ID, status, admin.ID, s.now())
	if errors.Is(err, store.ErrConflict) {
		return store.RoleGrant{}, &fault.ConflictError{Detail: "the grant was decided by someone else meanwhile"}
	}
	if err != nil {
		return store.RoleGrant{}, fmt.Errorf("issuer: deciding role grant: %w", err)
	}
	kind := "role.approved"
	if status == store.GrantRejected {
		kind = "role.rejected"
	}
	return d, s.audit(ctx, kind, admin, d, extra)
}

// List returns grants in status (all when empty).
func (s *Staff) List(ctx context.Context, status store.GrantStatus) ([]store.RoleGrant, error) {
	gs, err := s.store.RoleGrants(ctx, status)
	if err != nil {
		return nil, fmt.Errorf("issuer: listing role grants: %w", err)
	}
	return gs, nil
}

// SetPerson records the natural person behind an account (a staff
// member's employee number, say), so that their accounts are linked.
func (s *Staff) SetPerson(ctx context.Context, admin store.Account, accountID, person string) error {
	person = strings.TrimSpace(person)
	if len(person) > 128 || strings.ContainsFunc(person, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return &fault.InputError{Detail: "person: at most 128 printable characters"}
	}
	if err := s.store.SetAccountPerson(ctx, accountID, person); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return &fault.NotFoundError{Detail: "no such account"}
		}
		return fmt.Errorf("issuer: setting person: %w", err)
	}
	payload, _ := json.Marshal(map[string]string{"account": accountID, "person": person})
	if _, err := s.store.AppendAudit(ctx, store.AuditEntry{At: s.now(), Kind: "account.person_set", Actor: admin.ID, Subject: accountID, Payload: payload}); err != nil {
		return fmt.Errorf("issuer: auditing account.person_set: %w", err)
	}
	return nil
}

func (s *Staff) account(ctx context.Context, id string) (store.Account, error) {
	a, err := s.store.Account(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return store.Account{}, &fault.NotFoundError{Detail: "no such account: " + truncate(id, 64)}
	}
	if err != nil {
		return store.Account{}, fmt.Errorf("issuer: reading account: %w", err)
	}
	return a, nil
}

func (s *Staff) audit(ctx context.Context, kind string, actor store.Account, g store.RoleGrant, extra map[string]any) error {
	p := map[string]any{"grant": g.ID, "account": g.AccountID, "role": g.Role, "requested_by": g.RequestedBy, "status": g.Status}
	for k, v := range extra {
		p[k] = v
	}
	payload, _ := json.Marshal(p)
	if _, err := s.store.AppendAudit(ctx, store.AuditEntry{At: s.now(), Kind: kind, Actor: actor.ID, Subject: g.AccountID, Payload: payload}); err != nil {
		return fmt.Errorf("issuer: auditing %s: %w", kind, err)
	}
	return nil
}

// CreateFor makes a subscriber account on behalf of an admin, recorded as
// its creator, and returns its API key (shown once). Staff roles come only
// through Staff.Request.
func (a *Accounts) CreateFor(ctx context.Context, admin store.Account, email string) (store.Account, string, error) {
	return a.create(ctx, email, store.RoleSubscriber, admin.ID)
}
