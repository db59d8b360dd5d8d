package acme

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/trustline/trustline/internal/store"
	"github.com/trustline/trustline/issuer/csrcheck"
	"github.com/trustline/trustline/issuer/validation"
)

// Lifetimes of pending objects.
const (
	// OrderLifetime: an order not finalized by then is invalid.
	OrderLifetime = 7 * 24 * time.Hour
	// AuthzLifetime: a pending authorization not answered by then is
	// invalid. A valid one lasts as long as its validation may be reused.
	AuthzLifetime = 7 * 24 * time.Hour
	// maxIdentifiers bounds an order's names, as the CSR policy bounds a
	// certificate's.
	maxIdentifiers = 100
)

// OrderStore is the subset of the store orders and authorizations use.
type OrderStore interface {
	CreateACMEOrder(ctx context.Context, o store.ACMEOrder, authzs []store.ACMEAuthorization) error
	ACMEOrder(ctx context.Context, id string) (store.ACMEOrder, error)
	UpdateACMEOrder(ctx context.Context, o store.ACMEOrder) (store.ACMEOrder, error)
	ACMEAuthorization(ctx context.Context, id string) (store.ACMEAuthorization, error)
	UpdateACMEAuthorization(ctx context.Context, a store.ACMEAuthorization) (store.ACMEAuthorization, error)
	Account(ctx context.Context, id string) (store.Account, error)
	Validation(ctx context.Context, id string) (store.Validation, error)
}

// Validations is what orders need of the validation service
// (*validation.Service): coverage by validations the account already
// holds, and the ACME challenge methods.
type Validations interface {
	Covering(ctx context.Context, accountID string, names []string) ([]*store.Validation, error)
	StartACME(ctx context.Context, acct store.Account, domain, method, keyAuth string) (store.Validation, error)
	ConfirmACME(ctx context.Context, acct store.Account, id string) (store.Validation, error)
}

// identifier is an ACME identifier in a request or an answer.
type identifier = Identifier

// orderJSON is an order object (§7.1.3).
type orderJSON struct {
	Status         store.ACMEOrderStatus `json:"status"`
	Expires        string                `json:"expires,omitempty"`
	Identifiers    []identifier          `json:"identifiers"`
	Authorizations []string              `json:"authorizations"`
	Finalize       string                `json:"finalize"`
	Certificate    string                `json:"certificate,omitempty"`
	Error          json.RawMessage       `json:"error,omitempty"`
	Profile        string                `json:"profile,omitempty"`
	Replaces       string                `json:"replaces,omitempty"`
}

func (s *Server) orderJSON(o store.ACMEOrder, cert string) orderJSON {
	j := orderJSON{Status: o.Status, Expires: rfc3339(o.ExpiresAt), Finalize: s.url(pathOrder + o.ID + "/finalize"),
		Error: o.Error, Profile: o.Profile, Replaces: o.Replaces, Certificate: cert}
	for _, n := range o.Names {
		j.Identifiers = append(j.Identifiers, identifier{Type: "dns", Value: n})
	}
	for _, id := range o.AuthzIDs {
		j.Authorizations = append(j.Authorizations, s.url(pathAuthz+id))
	}
	return j
}

func rfc3339(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

// newOrderRequest is newOrder's payload (§7.4, RFC 9773 §5,
// draft-ietf-acme-profiles).
type newOrderRequest struct {
	Identifiers []identifier `json:"identifiers"`
	NotBefore   string       `json:"notBefore"`
	NotAfter    string       `json:"notAfter"`
	Profile     string       `json:"profile"`
	Replaces    string       `json:"replaces"`
}

// orderNames checks an order's identifiers and returns its names:
// dns only, each a name the CSR policy accepts, lowercase, without
// repeats, in the order given. A refused name is a rejectedIdentifier
// subproblem of its own.
func orderNames(ids []identifier) ([]string, error) {
	if len(ids) == 0 {
		return nil, Problemf(Malformed, "an order needs at least one identifier")
	}
	if len(ids) > maxIdentifiers {
		return nil, Problemf(RejectedIdentifier, "an order may have at most %d identifiers", maxIdentifiers)
	}
	var names []string
	var subs []*Problem
	for _, id := range ids {
		if id.Type != "dns" {
			subs = append(subs, &Problem{Type: UnsupportedIdentifier, Detail: fmt.Sprintf("identifier type %q is not supported; only dns", truncate(id.Type, 20)),
				Identifier: &Identifier{Type: truncate(id.Type, 20), Value: truncate(id.Value, 256)}})
			continue
		}
		n := asciiLower(strings.TrimSuffix(id.Value, "."))
		if err := csrcheck.CheckName(n); err != nil {
			subs = append(subs, &Problem{Type: RejectedIdentifier, Detail: err.Error(), Identifier: &Identifier{Type: "dns", Value: truncate(id.Value, 256)}})
			continue
		}
		if !slices.Contains(names, n) {
			names = append(names, n)
		}
	}
	switch len(subs) {
	case 0:
		return names, nil
	case 1:
		p := *subs[0]
		p.Identifier = nil
		return nil, &p
	}
	return nil, &Problem{Type: subs[0].Type, Detail: "several identifiers are refused", Subproblems: subs}
}

// newOrder is §7.4: an order for the names, with an authorization for
// each; a name a valid validation of the account already covers gets a
// valid authorization at once (the reuse rules of every validation).
func (s *Server) newOrder(w http.ResponseWriter, r *http.Request) {
	q, err := s.authenticate(r, byAccount)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	var req newOrderRequest
	if err := decodePayload(q.payload, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	if req.NotBefore != "" || req.NotAfter != "" {
		s.fail(w, r, Problemf(Malformed, "notBefore and notAfter are not supported: the profile sets the validity"))
		return
	}
	prof, err := s.profile(req.Profile)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	names, err := orderNames(req.Identifiers)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	ctx := r.Context()
	if err := s.admitOrder(ctx, q.account); err != nil {
		s.fail(w, r, err)
		return
	}
	if req.Replaces != "" {
		if err := s.checkReplaces(ctx, q.account, req.Replaces); err != nil {
			s.fail(w, r, err)
			return
		}
	}
	covering, err := s.d.Validations.Covering(ctx, q.account.AccountID, names)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	now := s.d.Now().UTC()
	o := store.ACMEOrder{ID: newID(), ACMEAccountID: q.account.ID, Names: names, Status: store.ACMEOrderReady, Profile: prof,
		Replaces: req.Replaces, ExpiresAt: now.Add(OrderLifetime), CreatedAt: now}
	var authzs []store.ACMEAuthorization
	for i, n := range names {
		a := store.ACMEAuthorization{ID: newID(), ACMEAccountID: q.account.ID, Domain: strings.TrimPrefix(n, "*."),
			Wildcard: strings.HasPrefix(n, "*."), Status: store.ACMEAuthzPending, ExpiresAt: now.Add(AuthzLifetime), CreatedAt: now}
		if a.Token, err = newToken(); err != nil {
			s.fail(w, r, err)
			return
		}
		if v := covering[i]; v != nil {
			a.Status, a.ValidationID = store.ACMEAuthzValid, v.ID
			a.ExpiresAt = validation.ReusableUntil(*v, now)
		} else {
			o.Status = store.ACMEOrderPending
		}
		if a.ExpiresAt.Before(o.ExpiresAt) {
			o.ExpiresAt = a.ExpiresAt
		}
		authzs = append(authzs, a)
		o.AuthzIDs = append(o.AuthzIDs, a.ID)
	}
	if err := s.d.Store.CreateACMEOrder(ctx, o, authzs); err != nil {
		s.fail(w, r, err)
		return
	}
	s.d.Log.Info("acme order created", "acme_order", o.ID, "acme_account", o.ACMEAccountID, "names", len(names), "status", o.Status)
	w.Header().Set("Location", s.url(pathOrder+o.ID))
	s.json(w, http.StatusCreated, s.orderJSON(o, ""))
}

// admitOrder applies the limit on the orders an ACME account has open.
func (s *Server) admitOrder(ctx context.Context, acct *store.ACMEAccount) error {
	if s.d.Limits == nil {
		return nil
	}
	max := s.d.Limits.Config().PendingACMEOrdersPerAccount
	if max <= 0 {
		return nil
	}
	orders, err := s.d.Store.ACMEOrders(ctx, acct.ID, max)
	if err != nil {
		return err
	}
	now, open := s.d.Now(), 0
	for _, o := range orders {
		if (o.Status == store.ACMEOrderPending || o.Status == store.ACMEOrderReady) && now.Before(o.ExpiresAt) {
			open++
		}
	}
	return s.d.Limits.PendingACMEOrders(open)
}

// profileValidity is the validity a profile gives its certificates, 0 for
// the CA's default.
func (s *Server) profileValidity(name string) time.Duration {
	for _, p := range s.cfg.Profiles {
		if p.Name == name {
			return p.Validity
		}
	}
	return 0
}

// profile resolves an order's profile name: "" is the default.
func (s *Server) profile(name string) (string, error) {
	if len(s.cfg.Profiles) == 0 {
		if name != "" {
			return "", Problemf(InvalidProfile, "this CA offers no profiles to choose from")
		}
		return "", nil
	}
	if name == "" {
		return s.cfg.Profiles[0].Name, nil
	}
	for _, p := range s.cfg.Profiles {
		if p.Name == name {
			return name, nil
		}
	}
	return "", Problemf(InvalidProfile, "profile %q is not offered; the directory's meta lists the profiles", truncate(name, 64))
}

// newToken is a challenge token: 128 random bits, base64url (§8.1).
func newToken() (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("acme: making a token: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// ownOrder reads an order the requesting account owns.
func (s *Server) ownOrder(ctx context.Context, q *request, id string) (store.ACMEOrder, error) {
	o, err := s.d.Store.ACMEOrder(ctx, id)
	if errors.Is(err, store.ErrNotFound) || (err == nil && o.ACMEAccountID != q.account.ID) {
		return store.ACMEOrder{}, &Problem{Type: Malformed, Status: http.StatusNotFound, Detail: "no such order"}
	}
	return o, err
}

// ownAuthz reads an authorization the requesting account owns.
func (s *Server) ownAuthz(ctx context.Context, q *request, id string) (store.ACMEAuthorization, error) {
	a, err := s.d.Store.ACMEAuthorization(ctx, id)
	if errors.Is(err, store.ErrNotFound) || (err == nil && a.ACMEAccountID != q.account.ID) {
		return store.ACMEAuthorization{}, &Problem{Type: Malformed, Status: http.StatusNotFound, Detail: "no such authorization"}
	}
	return a, err
}

func asciiLower(s string) string {
	return strings.Map(func(r rune) rune {
		if 'A' <= r && r <= 'Z' {
			return r + ('a' - 'A')
		}
		return r
	}, s)
}
