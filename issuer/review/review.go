// Package review is the CMS manual review queue (seed steps 6–7): OV, EV
// and Manual-Review-Listed DV orders wait in state pending_review until
// reviewers decide. An order needs profile.Name.Approvals() approvals from
// different reviewers — two-person approval for EV, one for OV and listed
// DV — and one rejection ends it.
// Reviewers may not decide on orders their own account placed. Every
// decision is stored as a store.Review and appended to the audit log
// ("review.approved", "review.rejected").
//
// Races: the store offers no transaction spanning an order and its
// reviews, so an approval is recorded first and the order then moves to
// processing by compare-and-swap on its Version. Of any number of
// concurrent approvals that complete the count, exactly one wins the swap
// and signs; at least one of them sees the complete count, because each
// reads the reviews after writing its own. A rejection swaps the order to
// rejected first and records the review after, so a rejection that lost a
// race leaves no trace. A crash between an approval and the swap leaves a
// fully approved order pending; any later approve call by one of its
// approvers finishes it.
//
// Signing an approved order and mailing the subscriber are the order
// service's (*issuer.Orders), which the queue reaches through its Orders
// interface; which names an order's validations cover it asks through
// Coverage (*validation.Service). Its errors for the reviewer are
// issuer/fault's.
//
// Who may import it: the edges (issuer/api, issuer/portal), cmd/trustline,
// and the base package issuer (for the decision names its metrics count).
// It imports neither the base package issuer nor the edges, and signs
// nothing itself.
package review

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/trustline/trustline/internal/store"
	"github.com/trustline/trustline/issuer/fault"
	"github.com/trustline/trustline/issuer/people"
	"github.com/trustline/trustline/issuer/profile"
)

// Store is the subset of the store the queue uses: orders and their
// accounts, reviews, and the audit log.
type Store interface {
	Order(ctx context.Context, id string) (store.Order, error)
	UpdateOrder(ctx context.Context, o store.Order) (store.Order, error)
	ListOrders(ctx context.Context, f store.OrderFilter) ([]store.Order, error)
	Account(ctx context.Context, id string) (store.Account, error)
	AddReview(ctx context.Context, r store.Review) error
	Reviews(ctx context.Context, orderID string) ([]store.Review, error)
	AppendAudit(ctx context.Context, e store.AuditEntry) (store.AuditEntry, error)
}

// Orders is what the queue needs of the order service (*issuer.Orders):
// signing an approved order (which mails the subscriber), the Manual
// Review List pattern an order matches, and mailing a rejection.
type Orders interface {
	Process(ctx context.Context, ord store.Order, actor string) (store.Order, error)
	ReviewListPattern(ctx context.Context, names []string) (string, error)
	NotifyRejected(ctx context.Context, ord store.Order)
}

// Coverage is what the queue needs of domain validation
// (*validation.Service): the validations that cover an order's names.
type Coverage interface {
	Covering(ctx context.Context, accountID string, names []string) ([]*store.Validation, error)
	Uncovered(ctx context.Context, accountID string, names []string) ([]string, error)
}

// Metrics counts decisions and rejected orders and reports the queue
// depth; *issuer.Metrics is one.
type Metrics interface {
	ReviewDecided(decision string)
	OrderRejected(profile string)
	// WatchQueue tells the metrics where to count the orders pending
	// review.
	WatchQueue(list func(context.Context, store.OrderFilter) ([]store.Order, error))
}

// uncounted is the Metrics of a queue given none.
type uncounted struct{}

func (uncounted) ReviewDecided(string) {}
func (uncounted) OrderRejected(string) {}
func (uncounted) WatchQueue(func(context.Context, store.OrderFilter) ([]store.Order, error)) {
}

// Decisions as stored.
const (
	DecisionApprove = "approve"
	DecisionReject  = "reject"
)

// Bounds on what reviewers write and read.
const (
	MaxNotes    = 4000
	MaxEvidence = 16 << 10
	MaxQueue    = 100
)

// Service is the CMS review queue.
type Service struct {
	store  Store
	orders Orders
	vals   Coverage
	now    func() time.Time
	log    *slog.Logger

	metrics Metrics
}

// Deps are the queue's collaborators.
type Deps struct {
	Store       Store
	Orders      Orders
	Validations Coverage
	Log         *slog.Logger
	Now         func() time.Time
	// Metrics, optional, counts decisions and rejected orders, and reports
	// the queue depth by listing Store on scrape.
	Metrics Metrics
}

// New builds the review queue.
func New(d Deps) (*Service, error) {
	if d.Store == nil || d.Orders == nil || d.Validations == nil || d.Log == nil {
		return nil, errors.New("review: the queue needs Store, Orders, Validations and Log")
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Metrics == nil {
		d.Metrics = uncounted{}
	}
	d.Metrics.WatchQueue(d.Store.ListOrders)
	return &Service{store: d.Store, orders: d.Orders, vals: d.Validations, now: d.Now, log: d.Log, metrics: d.Metrics}, nil
}

// NameEvidence is how one name of an order was validated: the account's
// newest valid validation covering it, or nil when none does any more.
type NameEvidence struct {
	Name       string
	Validation *store.Validation
}

// Item is an order as a reviewer sees it.
type Item struct {
	Order        store.Order
	Account      store.Account
	Organization *profile.Organization // OV and EV
	// Why is why the order is in review: its profile, or the Manual
	// Review List pattern a name matches.
	Why       string
	Reviews   []store.Review
	Approvers []string // distinct approving reviewers, in order
	Required  int
	Evidence  []NameEvidence
}

// Decision is a reviewer's approval.
type Decision struct {
	Notes    string
	Evidence json.RawMessage // a JSON object, or empty
}

// Queue returns up to limit orders waiting for review, oldest first.
func (r *Service) Queue(ctx context.Context, reviewer store.Account, limit int) ([]Item, error) {
	if err := mayReview(reviewer); err != nil {
		return nil, err
	}
	if limit <= 0 || limit > MaxQueue {
		limit = MaxQueue
	}
	ords, err := r.store.ListOrders(ctx, store.OrderFilter{Status: store.OrderPendingReview, Limit: limit, OldestFirst: true})
	if err != nil {
		return nil, fmt.Errorf("review: listing orders in review: %w", err)
	}
	out := make([]Item, 0, len(ords))
	for _, o := range ords {
		it, err := r.item(ctx, o)
		if err != nil {
			return nil, err
		}
		out = append(out, it)
	}
	return out, nil
}

// Get returns one order, in any state, with its reviews and evidence.
func (r *Service) Get(ctx context.Context, reviewer store.Account, id string) (Item, error) {
	if err := mayReview(reviewer); err != nil {
		return Item{}, err
	}
	ord, err := r.order(ctx, id)
	if err != nil {
		return Item{}, err
	}
	return r.item(ctx, ord)
}

func mayReview(a store.Account) error {
	if a.Role != store.RoleReviewer {
		return &fault.ForbiddenError{Detail: "only reviewers review orders"}
	}
	return nil
}

func (r *Service) order(ctx context.Context, id string) (store.Order, error) {
	ord, err := r.store.Order(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return store.Order{}, &fault.NotFoundError{Detail: "no such order"}
	}
	if err != nil {
		return store.Order{}, fmt.Errorf("review: reading order: %w", err)
	}
	return ord, nil
}

func (r *Service) item(ctx context.Context, ord store.Order) (Item, error) {
	it := Item{Order: ord, Required: profile.Name(ord.Profile).Approvals()}
	var err error
	if it.Account, err = r.store.Account(ctx, ord.AccountID); err != nil {
		return Item{}, fmt.Errorf("review: order %s: reading its account: %w", ord.ID, err)
	}
	if len(ord.Organization) > 0 {
		it.Organization = new(profile.Organization)
		if err := json.Unmarshal(ord.Organization, it.Organization); err != nil {
			return Item{}, fmt.Errorf("review: order %s organization: %w", ord.ID, err)
		}
	}
	if it.Reviews, err = r.store.Reviews(ctx, ord.ID); err != nil {
		return Item{}, fmt.Errorf("review: order %s: reading reviews: %w", ord.ID, err)
	}
	it.Approvers = approvers(it.Reviews)
	it.Why = "profile " + ord.Profile
	if profile.Name(ord.Profile) == profile.DV {
		pat, err := r.orders.ReviewListPattern(ctx, ord.Names)
		if err != nil {
			return Item{}, err
		}
		it.Why = "Manual Review List: " + pat
		if pat == "" {
			it.Why = "Manual Review List (the pattern has since been removed)"
		}
	}
	cov, err := r.vals.Covering(ctx, ord.AccountID, ord.Names)
	if err != nil {
		return Item{}, err
	}
	for i, n := range ord.Names {
		it.Evidence = append(it.Evidence, NameEvidence{Name: n, Validation: cov[i]})
	}
	return it, nil
}

// approvers lists the distinct reviewers who approved, first first.
func approvers(rs []store.Review) []string {
	var out []string
	for _, rv := range rs {
		if rv.Decision == DecisionApprove && !slices.Contains(out, rv.ReviewerID) {
			out = append(out, rv.ReviewerID)
		}
	}
	return out
}

// Outcome is where an order stands after a decision.
type Outcome struct {
	Order     store.Order
	Approvals int
	Required  int
}

// Approve records reviewer's approval. When it completes the approvals
// the profile needs, the order is signed (Orders.Process, which mails the
// subscriber). A second approval by the same reviewer is refused with a
// *fault.ConflictError: it would not count.
func (r *Service) Approve(ctx context.Context, reviewer store.Account, id string, d Decision) (Outcome, error) {
	if err := mayReview(reviewer); err != nil {
		return Outcome{}, err
	}
	if len(d.Notes) > MaxNotes {
		return Outcome{}, &fault.InputError{Detail: fmt.Sprintf("notes are longer than %d bytes", MaxNotes)}
	}
	if len(d.Evidence) > MaxEvidence {
		return Outcome{}, &fault.InputError{Detail: fmt.Sprintf("evidence is larger than %d bytes", MaxEvidence)}
	}
	if len(d.Evidence) > 0 {
		var obj map[string]any
		if err := json.Unmarshal(d.Evidence, &obj); err != nil || obj == nil {
			return Outcome{}, &fault.InputError{Detail: "evidence must be a JSON object"}
		}
	}
	ord, err := r.decidable(ctx, reviewer, id)
	if err != nil {
		return Outcome{}, err
	}
	required := profile.Name(ord.Profile).Approvals()
	rs, err := r.store.Reviews(ctx, id)
	if err != nil {
		return Outcome{}, fmt.Errorf("review: order %s: reading reviews: %w", id, err)
	}
	ap := approvers(rs)
	if slices.Contains(ap, reviewer.ID) {
		if len(ap) < required {
			return Outcome{}, &fault.ConflictError{Detail: fmt.Sprintf(
				"you have approved this order already; it needs %d approvals from different reviewers", required)}
		}
		return r.finish(ctx, reviewer, id, required) // a crash left it approved but pending
	}
	if err := r.notLinkedToApprovers(ctx, reviewer, ap); err != nil {
		return Outcome{}, err
	}
	uncovered, err := r.vals.Uncovered(ctx, ord.AccountID, ord.Names)
	if err != nil {
		return Outcome{}, err
	}
	if len(uncovered) > 0 {
		return Outcome{}, &fault.ConflictError{Detail: "the domain validation of " + strings.Join(uncovered, ", ") +
			" is no longer valid; reject the order or wait for the subscriber to validate again"}
	}
	now := r.now()
	rv := store.Review{OrderID: id, ReviewerID: reviewer.ID, Decision: DecisionApprove, Notes: d.Notes, Evidence: d.Evidence, At: now}
	if err := r.store.AddReview(ctx, rv); err != nil {
		return Outcome{}, fmt.Errorf("review: recording approval of %s: %w", id, err)
	}
	r.metrics.ReviewDecided(DecisionApprove)
	if err := r.audit(ctx, "review.approved", rv, ord, map[string]any{"approvals": len(ap) + 1, "required": required}); err != nil {
		return Outcome{}, err
	}
	r.log.Info("order approved", "order", id, "reviewer", reviewer.ID, "approvals", len(ap)+1, "required", required)
	return r.finish(ctx, reviewer, id, required)
}

// notLinkedToApprovers refuses an approval from a reviewer linked to one
// who approved already: approvals count people, not accounts.
func (r *Service) notLinkedToApprovers(ctx context.Context, reviewer store.Account, approvers []string) error {
	for _, id := range approvers {
		other, err := r.store.Account(ctx, id)
		if err != nil {
			return fmt.Errorf("review: reading approver %s: %w", id, err)
		}
		if linked, why := people.Linked(reviewer, other); linked {
			return &fault.ConflictError{Detail: "you are linked to reviewer " + id + ", who approved this order already (" + why + "); its approvals must come from different people"}
		}
	}
	return nil
}

// decidable reads the order and checks that reviewer may decide on it now.
func (r *Service) decidable(ctx context.Context, reviewer store.Account, id string) (store.Order, error) {
	ord, err := r.order(ctx, id)
	if err != nil {
		return store.Order{}, err
	}
	if ord.AccountID == reviewer.ID {
		return store.Order{}, &fault.ForbiddenError{Detail: "reviewers may not review orders their own account placed"}
	}
	owner, err := r.store.Account(ctx, ord.AccountID)
	if err != nil {
		return store.Order{}, fmt.Errorf("review: order %s: reading its account: %w", id, err)
	}
	if linked, why := people.Linked(reviewer, owner); linked {
		return store.Order{}, &fault.ForbiddenError{Detail: "you are linked to the account that placed this order (" + why + "); another reviewer must decide"}
	}
	if ord.Status != store.OrderPendingReview {
		return store.Order{}, &fault.ConflictError{Detail: fmt.Sprintf("the order is %s, not pending review", ord.Status)}
	}
	return ord, nil
}

// finish moves a fully approved order to processing and signs it; an
// order still short of approvals is returned as it is.
func (r *Service) finish(ctx context.Context, reviewer store.Account, id string, required int) (Outcome, error) {
	for {
		ord, err := r.order(ctx, id)
		if err != nil {
			return Outcome{}, err
		}
		rs, err := r.store.Reviews(ctx, id)
		if err != nil {
			return Outcome{}, fmt.Errorf("review: order %s: reading reviews: %w", id, err)
		}
		n := len(approvers(rs))
		out := Outcome{Order: ord, Approvals: n, Required: required}
		switch ord.Status {
		case store.OrderProcessing, store.OrderIssued:
			return out, nil // another approval completed it
		case store.OrderRejected:
			return Outcome{}, &fault.ConflictError{Detail: "the order was rejected while you approved it: " + ord.RejectReason}
		}
		if n < required {
			return out, nil
		}
		ord.Status, ord.UpdatedAt = store.OrderProcessing, r.now()
		claimed, err := r.store.UpdateOrder(ctx, ord)
		if errors.Is(err, store.ErrConflict) {
			continue
		}
		if err != nil {
			return Outcome{}, fmt.Errorf("review: moving order %s to processing: %w", id, err)
		}
		issued, err := r.orders.Process(ctx, claimed, reviewer.ID)
		if err != nil {
			// The order stays processing; ResumeProcessing retries it.
			r.log.Error("approved order not signed yet", "order", id, "err", err)
			return Outcome{Order: claimed, Approvals: n, Required: required}, nil
		}
		out.Order = issued
		return out, nil
	}
}

// Reject ends the order with reason, which the subscriber is mailed.
func (r *Service) Reject(ctx context.Context, reviewer store.Account, id, reason string) (store.Order, error) {
	if err := mayReview(reviewer); err != nil {
		return store.Order{}, err
	}
	reason = strings.TrimSpace(reason)
	if reason == "" {
		return store.Order{}, &fault.InputError{Detail: "reason is required: the subscriber is told why"}
	}
	if len(reason) > 1000 {
		return store.Order{}, &fault.InputError{Detail: "reason is longer than 1000 bytes"}
	}
	for {
		ord, err := r.decidable(ctx, reviewer, id)
		if err != nil {
			return store.Order{}, err
		}
		now := r.now()
		ord.Status, ord.RejectReason, ord.UpdatedAt = store.OrderRejected, reason, now
		updated, err := r.store.UpdateOrder(ctx, ord)
		if errors.Is(err, store.ErrConflict) {
			continue
		}
		if err != nil {
			return store.Order{}, fmt.Errorf("review: rejecting order %s: %w", id, err)
		}
		r.metrics.OrderRejected(updated.Profile)
		rv := store.Review{OrderID: id, ReviewerID: reviewer.ID, Decision: DecisionReject, Notes: reason, At: now}
		if err := r.store.AddReview(ctx, rv); err != nil {
			return store.Order{}, fmt.Errorf("review: order %s rejected, but recording the review failed: %w", id, err)
		}
		r.metrics.ReviewDecided(DecisionReject)
		if err := r.audit(ctx, "review.rejected", rv, updated, nil); err != nil {
			return store.Order{}, err
		}
		r.log.Info("order rejected", "order", id, "reviewer", reviewer.ID)
		r.orders.NotifyRejected(ctx, updated)
		return updated, nil
	}
}

func (r *Service) audit(ctx context.Context, kind string, rv store.Review, ord store.Order, extra map[string]any) error {
	p := map[string]any{
		"order": ord.ID, "account": ord.AccountID, "profile": ord.Profile, "names": ord.Names,
		"decision": rv.Decision, "notes": rv.Notes,
	}
	if len(rv.Evidence) > 0 {
		p["evidence"] = json.RawMessage(rv.Evidence)
	}
	for k, v := range extra {
		p[k] = v
	}
	payload, err := json.Marshal(p)
	if err != nil {
		return fmt.Errorf("review: encoding audit entry: %w", err)
	}
	if _, err := r.store.AppendAudit(ctx, store.AuditEntry{At: rv.At, Kind: kind, Actor: rv.ReviewerID, Subject: ord.ID, Payload: payload}); err != nil {
		return fmt.Errorf("review: auditing %s of %s: %w", kind, ord.ID, err)
	}
	return nil
}
