package acme

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/trustline/trustline/internal/store"
	"github.com/trustline/trustline/issuer/fault"
	"github.com/trustline/trustline/issuer/validation"
)

// The challenge types offered (RFC 8555 §8.3, §8.4, RFC 8737), and the
// validation method each runs.
var challengeMethods = map[string]string{
	"http-01":     validation.MethodACMEHTTP01,
	"dns-01":      validation.MethodACMEDNS01,
	"tls-alpn-01": validation.MethodACMETLSALPN01,
}

// challengeTypes lists the challenges an authorization offers: only
// dns-01 for a wildcard (BR §3.2.2.6: the DNS methods alone cover one).
func challengeTypes(a store.ACMEAuthorization) []string {
	if a.Wildcard {
		return []string{"dns-01"}
	}
	return []string{"http-01", "dns-01", "tls-alpn-01"}
}

// challengeJSON is a challenge object (§7.1.5, §8).
type challengeJSON struct {
	Type      string          `json:"type"`
	URL       string          `json:"url"`
	Status    string          `json:"status"`
	Token     string          `json:"token"`
	Validated string          `json:"validated,omitempty"`
	Error     json.RawMessage `json:"error,omitempty"`
}

// authzJSON is an authorization object (§7.1.4).
type authzJSON struct {
	Identifier identifier            `json:"identifier"`
	Status     store.ACMEAuthzStatus `json:"status"`
	Expires    string                `json:"expires,omitempty"`
	Challenges []challengeJSON       `json:"challenges"`
	Wildcard   bool                  `json:"wildcard,omitempty"`
}

// authzJSON renders a with its challenges. val is the validation that
// satisfied or failed it, if any: the answered challenge takes its
// status, the others stay pending (or are dropped once it is valid, as
// §7.1.4 allows, so a client sees which one counted).
func (s *Server) authzJSON(a store.ACMEAuthorization, val *store.Validation) authzJSON {
	j := authzJSON{Identifier: identifier{Type: "dns", Value: a.Domain}, Status: a.Status, Expires: rfc3339(a.ExpiresAt), Wildcard: a.Wildcard}
	for _, t := range challengeTypes(a) {
		c := challengeJSON{Type: t, URL: s.url(pathChallenge + a.ID + "/" + t), Status: "pending", Token: a.Token}
		switch {
		case t == a.Challenge && a.Status == store.ACMEAuthzValid:
			c.Status = "valid"
		case t == a.Challenge && a.Status == store.ACMEAuthzInvalid:
			c.Status = "invalid"
			c.Error = challengeError(val)
		case a.Status == store.ACMEAuthzValid && a.Challenge == "" && val != nil:
			// Satisfied by a validation made before (through the API, the
			// portal or another order): shown as the challenge it was.
			if !strings.HasSuffix(val.Method, t) {
				continue
			}
			c.Status = "valid"
		case a.Status != store.ACMEAuthzPending:
			continue
		}
		if c.Status == "valid" && val != nil {
			c.Validated = rfc3339(val.ValidatedAt)
		}
		j.Challenges = append(j.Challenges, c)
	}
	if j.Challenges == nil {
		j.Challenges = []challengeJSON{}
	}
	return j
}

// challengeError is the problem a failed challenge shows: what the
// validation recorded as its last failure, in the subscriber's words.
func challengeError(val *store.Validation) json.RawMessage {
	detail := "the challenge failed"
	if val != nil {
		var ev struct {
			LastFailure struct {
				Detail string `json:"detail"`
			} `json:"last_failure"`
		}
		if json.Unmarshal(val.Evidence, &ev) == nil && ev.LastFailure.Detail != "" {
			detail = ev.LastFailure.Detail
		}
	}
	b, _ := json.Marshal(&Problem{Type: IncorrectResponse, Detail: detail})
	return b
}

// authz is the authorization URL: POST-as-GET reads it, a payload
// {"status": "deactivated"} deactivates it (§7.5.2).
func (s *Server) authz(w http.ResponseWriter, r *http.Request) {
	q, err := s.authenticate(r, byAccount)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	ctx := r.Context()
	a, err := s.ownAuthz(ctx, q, r.PathValue("id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if !q.postAsGet() {
		var req struct {
			Status string `json:"status"`
		}
		if err := decodePayload(q.payload, &req); err != nil {
			s.fail(w, r, err)
			return
		}
		if req.Status != string(store.ACMEAuthzDeactivated) {
			s.fail(w, r, Problemf(Malformed, "an authorization's status can only be set to deactivated"))
			return
		}
		if a.Status != store.ACMEAuthzPending && a.Status != store.ACMEAuthzValid {
			s.fail(w, r, Problemf(Malformed, "the authorization is %s", a.Status))
			return
		}
		a.Status = store.ACMEAuthzDeactivated
		if a, err = s.d.Store.UpdateACMEAuthorization(ctx, a); err != nil {
			s.fail(w, r, err)
			return
		}
	}
	a = s.expireAuthz(ctx, a)
	val, err := s.validationOf(ctx, a)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.json(w, http.StatusOK, s.authzJSON(a, val))
}

// expireAuthz turns a pending authorization past its time invalid (a
// failed write leaves it for the next read).
func (s *Server) expireAuthz(ctx context.Context, a store.ACMEAuthorization) store.ACMEAuthorization {
	if (a.Status == store.ACMEAuthzPending || a.Status == store.ACMEAuthzValid) && !s.d.Now().Before(a.ExpiresAt) {
		b := a
		b.Status = store.ACMEAuthzInvalid
		if u, err := s.d.Store.UpdateACMEAuthorization(ctx, b); err == nil {
			return u
		}
		a.Status = store.ACMEAuthzInvalid
	}
	return a
}

// validationOf reads the validation behind an authorization, nil if none.
func (s *Server) validationOf(ctx context.Context, a store.ACMEAuthorization) (*store.Validation, error) {
	if a.ValidationID == "" {
		return nil, nil
	}
	v, err := s.d.Store.Validation(ctx, a.ValidationID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &v, nil
}

// challenge answers a challenge (§7.5.1): the CA checks what the client
// published, now, from its primary and remote perspectives, through the
// validation service, and the authorization becomes valid or invalid.
// Answering a challenge of an authorization that is no longer pending
// returns it as it is.
func (s *Server) challenge(w http.ResponseWriter, r *http.Request) {
	q, err := s.authenticate(r, byAccount)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	ctx := r.Context()
	a, err := s.ownAuthz(ctx, q, r.PathValue("authz"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	typ := r.PathValue("type")
	offered := false
	for _, t := range challengeTypes(a) {
		offered = offered || t == typ
	}
	if !offered {
		s.fail(w, r, &Problem{Type: Malformed, Status: http.StatusNotFound, Detail: "no such challenge"})
		return
	}
	if !q.postAsGet() {
		// The payload of a response is an empty object (§7.5.1); a
		// client may send more, which is ignored.
		var ignored map[string]any
		if err := decodePayload(q.payload, &ignored); err != nil {
			s.fail(w, r, err)
			return
		}
		a = s.expireAuthz(ctx, a)
		if a.Status == store.ACMEAuthzPending {
			if a, err = s.answer(ctx, q, a, typ); err != nil {
				s.fail(w, r, err)
				return
			}
		}
	}
	val, err := s.validationOf(ctx, a)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	w.Header().Add("Link", link(s.url(pathAuthz+a.ID), "up"))
	for _, c := range s.authzJSON(a, val).Challenges {
		if c.Type == typ {
			s.json(w, http.StatusOK, c)
			return
		}
	}
	// The authorization was satisfied by another challenge.
	s.json(w, http.StatusOK, challengeJSON{Type: typ, URL: s.url(pathChallenge + a.ID + "/" + typ), Status: "pending", Token: a.Token})
}

// answer runs the challenge typ of a pending authorization and records
// the outcome. A failure of the client's making (the value not found,
// not corroborated) makes the authorization invalid (§7.5.1: no retry of
// a failed challenge); the CA's own failures (DNS resolver down, too few
// perspectives answering) leave it pending and are answered as errors.
func (s *Server) answer(ctx context.Context, q *request, a store.ACMEAuthorization, typ string) (store.ACMEAuthorization, error) {
	owner, err := s.d.Store.Account(ctx, q.account.AccountID)
	if err != nil {
		return a, fmt.Errorf("acme: reading the account behind %s: %w", q.account.ID, err)
	}
	thumb := q.account.Thumbprint
	val, err := s.d.Validations.StartACME(ctx, owner, a.Domain, challengeMethods[typ], a.Token+"."+thumb)
	if err != nil {
		return a, err
	}
	a.Challenge, a.ValidationID = typ, val.ID
	claimed, err := s.d.Store.UpdateACMEAuthorization(ctx, a)
	if errors.Is(err, store.ErrConflict) {
		// Another answer to this authorization got there first: report
		// what it made of it.
		return s.d.Store.ACMEAuthorization(ctx, a.ID)
	}
	if err != nil {
		return a, err
	}
	a = claimed
	done, err := s.d.Validations.ConfirmACME(ctx, owner, val.ID)
	var in *fault.InputError
	switch {
	case err == nil:
		a.Status = store.ACMEAuthzValid
		a.ExpiresAt = validation.ReusableUntil(done, s.d.Now())
	case errors.As(err, &in):
		a.Status = store.ACMEAuthzInvalid
	default:
		return a, err
	}
	updated, uerr := s.d.Store.UpdateACMEAuthorization(ctx, a)
	if errors.Is(uerr, store.ErrConflict) {
		return s.d.Store.ACMEAuthorization(ctx, a.ID) // deactivated meanwhile
	}
	if uerr != nil {
		return a, uerr
	}
	s.d.Log.Info("acme challenge answered", "acme_authz", a.ID, "type", typ, "status", updated.Status)
	return updated, nil
}

// order is the order URL: POST-as-GET reads it, its status brought up to
// date from its authorizations and, once finalized, its Trustline order.
func (s *Server) order(w http.ResponseWriter, r *http.Request) {
	q, err := s.authenticate(r, byAccount)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if !q.postAsGet() {
		s.fail(w, r, Problemf(Malformed, "an order is read with POST-as-GET (an empty payload)"))
		return
	}
	o, err := s.ownOrder(r.Context(), q, r.PathValue("id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if o, err = s.refreshOrder(r.Context(), o); err != nil {
		s.fail(w, r, err)
		return
	}
	o, ord, err := s.followOrder(r.Context(), o)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.writeOrder(w, o, ord)
}

// refreshOrder moves a pending order to ready once every authorization
// is valid, and to invalid once one is invalid or deactivated or the
// order has expired.
func (s *Server) refreshOrder(ctx context.Context, o store.ACMEOrder) (store.ACMEOrder, error) {
	if o.Status != store.ACMEOrderPending && o.Status != store.ACMEOrderReady {
		return o, nil
	}
	next := store.ACMEOrderReady
	var why string
	if !s.d.Now().Before(o.ExpiresAt) {
		next, why = store.ACMEOrderInvalid, "the order expired before it was finalized"
	}
	for _, id := range o.AuthzIDs {
		if next == store.ACMEOrderInvalid {
			break
		}
		a, err := s.d.Store.ACMEAuthorization(ctx, id)
		if err != nil {
			return o, err
		}
		a = s.expireAuthz(ctx, a)
		switch a.Status {
		case store.ACMEAuthzPending:
			next = store.ACMEOrderPending
		case store.ACMEAuthzInvalid, store.ACMEAuthzDeactivated:
			next, why = store.ACMEOrderInvalid, fmt.Sprintf("the authorization for %s is %s", a.Domain, a.Status)
		}
	}
	if next == o.Status {
		return o, nil
	}
	o.Status = next
	if why != "" {
		o.Error, _ = json.Marshal(&Problem{Type: Unauthorized, Detail: why})
	}
	updated, err := s.d.Store.UpdateACMEOrder(ctx, o)
	if errors.Is(err, store.ErrConflict) {
		return s.d.Store.ACMEOrder(ctx, o.ID) // another request moved it
	}
	return updated, err
}
