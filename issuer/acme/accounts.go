package acme

import (
	"context"
	"crypto"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/mail"
	"net/url"
	"strings"

	"github.com/go-jose/go-jose/v4"

	"github.com/trustline/trustline/internal/store"
	"github.com/trustline/trustline/issuer/fault"
)

// maxContacts bounds an account's contact URLs.
const maxContacts = 10

// accountJSON is an account object (RFC 8555 §7.1.2).
type accountJSON struct {
	Status                 store.ACMEAccountStatus `json:"status"`
	Contact                []string                `json:"contact,omitempty"`
	TermsOfServiceAgreed   bool                    `json:"termsOfServiceAgreed,omitempty"`
	ExternalAccountBinding json.RawMessage         `json:"externalAccountBinding,omitempty"`
	Orders                 string                  `json:"orders"`
}

func (s *Server) accountJSON(a store.ACMEAccount) accountJSON {
	return accountJSON{Status: a.Status, Contact: a.Contact, TermsOfServiceAgreed: s.cfg.TermsOfService != "",
		Orders: s.url(pathAccount + a.ID + "/orders")}
}

// newAccountRequest is newAccount's payload (§7.3).
type newAccountRequest struct {
	Contact                []string        `json:"contact"`
	TermsOfServiceAgreed   bool            `json:"termsOfServiceAgreed"`
	OnlyReturnExisting     bool            `json:"onlyReturnExisting"`
	ExternalAccountBinding json.RawMessage `json:"externalAccountBinding"`
}

// newAccount is §7.3: an account for the key that signed, or the one it
// already has (200 with its URL).
func (s *Server) newAccount(w http.ResponseWriter, r *http.Request) {
	q, err := s.authenticate(r, byJWK)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	var req newAccountRequest
	if err := decodePayload(q.payload, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	ctx := r.Context()
	thumb, err := thumbprint(q.key)
	if err != nil {
		s.fail(w, r, Problemf(BadPublicKey, "the key has no thumbprint: %v", err))
		return
	}
	if existing, err := s.d.Store.ACMEAccountByThumbprint(ctx, thumb); err == nil {
		s.existingAccount(w, r, existing)
		return
	} else if !errors.Is(err, store.ErrNotFound) {
		s.fail(w, r, err)
		return
	}
	if req.OnlyReturnExisting {
		s.fail(w, r, Problemf(AccountDoesNotExist, "no account has this key"))
		return
	}
	if s.cfg.TermsOfService != "" && !req.TermsOfServiceAgreed {
		s.fail(w, r, Problemf(Malformed, "agree to the terms of service (%s) with termsOfServiceAgreed: true", s.cfg.TermsOfService))
		return
	}
	contact, email, err := checkContacts(req.Contact)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	jwk, err := q.key.MarshalJSON()
	if err != nil {
		s.fail(w, r, fmt.Errorf("acme: encoding the account key: %w", err))
		return
	}
	acct := store.ACMEAccount{ID: newID(), Thumbprint: thumb, JWK: jwk, Status: store.ACMEAccountValid, Contact: contact, CreatedAt: s.d.Now().UTC()}
	switch {
	case len(req.ExternalAccountBinding) > 0 && string(req.ExternalAccountBinding) != "null":
		key, err := s.checkEAB(ctx, req.ExternalAccountBinding, q.key)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		acct.EABKeyID, acct.AccountID = key.ID, key.AccountID
	case s.cfg.ExternalAccountRequired:
		s.fail(w, r, Problemf(ExternalAccountRequired, "this CA binds ACME accounts to Trustline accounts: create an external account binding key in the portal or the API and give it to your client"))
		return
	default:
		if err := s.d.Limits.SignUp(ctx, r.RemoteAddr); err != nil {
			s.fail(w, r, err)
			return
		}
		owner, err := s.d.NewAccount(ctx, email)
		var in *fault.InputError
		if errors.As(err, &in) {
			err = Problemf(InvalidContact, "%s", in.Detail)
		}
		if err != nil {
			s.fail(w, r, err)
			return
		}
		acct.AccountID = owner.ID
	}
	err = s.d.Store.CreateACMEAccount(ctx, acct)
	switch {
	case errors.Is(err, store.ErrDuplicate):
		// The same key registered at the same moment: answer with the
		// account that won.
		if existing, err := s.d.Store.ACMEAccountByThumbprint(ctx, thumb); err == nil {
			s.existingAccount(w, r, existing)
			return
		}
		s.fail(w, r, err)
		return
	case errors.Is(err, store.ErrConflict), errors.Is(err, store.ErrNotFound):
		s.fail(w, r, Problemf(Unauthorized, "the external account binding key was used already or does not exist"))
		return
	case err != nil:
		s.fail(w, r, err)
		return
	}
	s.d.Log.Info("acme account created", "acme_account", acct.ID, "account", acct.AccountID, "eab", acct.EABKeyID != "")
	w.Header().Set("Location", s.url(pathAccount+acct.ID))
	s.json(w, http.StatusCreated, s.accountJSON(acct))
}

// existingAccount answers a newAccount for a key that has an account.
func (s *Server) existingAccount(w http.ResponseWriter, r *http.Request, a store.ACMEAccount) {
	if a.Status != store.ACMEAccountValid {
		s.fail(w, r, Problemf(Unauthorized, "the account with this key is %s", a.Status))
		return
	}
	w.Header().Set("Location", s.url(pathAccount+a.ID))
	s.json(w, http.StatusOK, s.accountJSON(a))
}

// checkContacts checks contact URLs (§7.3): mailto only, one address
// each, no header fields. It returns them as stored and the first
// address.
func checkContacts(in []string) ([]string, string, error) {
	if len(in) > maxContacts {
		return nil, "", Problemf(InvalidContact, "at most %d contacts", maxContacts)
	}
	var out []string
	email := ""
	for _, c := range in {
		u, err := url.Parse(c)
		if err != nil || u.Scheme == "" {
			return nil, "", Problemf(InvalidContact, "%q is not a URL", truncate(c, 100))
		}
		if !strings.EqualFold(u.Scheme, "mailto") {
			return nil, "", Problemf(UnsupportedContact, "only mailto: contacts are supported, not %q", truncate(u.Scheme, 20))
		}
		if u.RawQuery != "" || u.Fragment != "" || u.Opaque == "" {
			return nil, "", Problemf(InvalidContact, "%q: a mailto contact is one address, without header fields", truncate(c, 100))
		}
		addr, err := mail.ParseAddress(u.Opaque)
		if err != nil || addr.Name != "" || addr.Address != u.Opaque || strings.Contains(u.Opaque, ",") {
			return nil, "", Problemf(InvalidContact, "%q is not one plain email address", truncate(u.Opaque, 100))
		}
		if email == "" {
			email = addr.Address
		}
		out = append(out, "mailto:"+addr.Address)
	}
	return out, email, nil
}

// checkEAB verifies an external account binding (§7.3.4): a JWS signed
// with the HMAC key of a key id the CA gave out, over the account key,
// with the newAccount URL and no nonce. It returns the binding key.
func (s *Server) checkEAB(ctx context.Context, raw json.RawMessage, accountKey *jose.JSONWebKey) (store.ACMEEABKey, error) {
	bad := func(format string, args ...any) (store.ACMEEABKey, error) {
		return store.ACMEEABKey{}, Problemf(Malformed, "externalAccountBinding: "+format, args...)
	}
	var f flattened
	if err := json.Unmarshal(raw, &f); err != nil || f.Protected == nil || f.Payload == nil || f.Signature == nil || f.Header != nil || f.Signatures != nil {
		return bad("not a JWS in the flattened JSON serialization")
	}
	jws, err := jose.ParseSignedJSON(string(raw), []jose.SignatureAlgorithm{jose.HS256, jose.HS384, jose.HS512})
	if err != nil {
		return bad("%v", err)
	}
	if len(jws.Signatures) != 1 {
		return bad("one signature is needed")
	}
	h := jws.Signatures[0].Protected
	if h.Nonce != "" {
		return bad("the protected header must not have a nonce")
	}
	if h.JSONWebKey != nil {
		return bad("the protected header must not have a jwk")
	}
	if u, _ := h.ExtraHeaders["url"].(string); u != s.url(pathNewAccount) {
		return bad("the url must be the newAccount URL")
	}
	if h.KeyID == "" {
		return bad("the kid must be the key id the CA gave you")
	}
	key, err := s.d.Store.ACMEEABKey(ctx, h.KeyID)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return store.ACMEEABKey{}, Problemf(Unauthorized, "externalAccountBinding: unknown key id %q", truncate(h.KeyID, 64))
	case err != nil:
		return store.ACMEEABKey{}, err
	case !key.UsedAt.IsZero():
		return store.ACMEEABKey{}, Problemf(Unauthorized, "externalAccountBinding: this key id bound an account already; create another")
	case !key.ExpiresAt.IsZero() && !s.d.Now().Before(key.ExpiresAt):
		return store.ACMEEABKey{}, Problemf(Unauthorized, "externalAccountBinding: this key id has expired; create another")
	}
	payload, err := jws.Verify(s.d.EABKey(key.ID))
	if err != nil {
		return store.ACMEEABKey{}, Problemf(Unauthorized, "externalAccountBinding: the MAC does not verify with this key id's key")
	}
	bound, err := parseJWK(payload)
	if err != nil {
		return bad("the payload is not a JWK")
	}
	want, err1 := thumbprint(accountKey)
	got, err2 := thumbprint(bound)
	if err1 != nil || err2 != nil || want != got {
		return bad("the payload is not the account's key")
	}
	return key, nil
}

// authenticateAs authenticates a request that must be signed by the
// account whose id its URL names.
func (s *Server) authenticateAs(r *http.Request, id string) (*request, error) {
	q, err := s.authenticate(r, byAccount)
	if err != nil {
		return nil, err
	}
	if q.account.ID != id {
		return nil, Problemf(Unauthorized, "the request is signed by another account than the one it names")
	}
	return q, nil
}

// account is §7.3.2–§7.3.6 on the account URL: POST-as-GET reads it, a
// payload updates its contacts or deactivates it.
func (s *Server) account(w http.ResponseWriter, r *http.Request) {
	q, err := s.authenticateAs(r, r.PathValue("id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	acct := *q.account
	if !q.postAsGet() {
		var req struct {
			Contact *[]string `json:"contact"`
			Status  string    `json:"status"`
		}
		if err := decodePayload(q.payload, &req); err != nil {
			s.fail(w, r, err)
			return
		}
		switch req.Status {
		case "":
		case string(store.ACMEAccountDeactivated):
			acct.Status = store.ACMEAccountDeactivated
		default:
			s.fail(w, r, Problemf(Malformed, "an account's status can only be set to deactivated"))
			return
		}
		if req.Contact != nil {
			if acct.Contact, _, err = checkContacts(*req.Contact); err != nil {
				s.fail(w, r, err)
				return
			}
		}
		if acct, err = s.d.Store.UpdateACMEAccount(r.Context(), acct); err != nil {
			s.fail(w, r, err)
			return
		}
		if acct.Status == store.ACMEAccountDeactivated {
			s.d.Log.Info("acme account deactivated", "acme_account", acct.ID)
		}
	}
	s.json(w, http.StatusOK, s.accountJSON(acct))
}

// accountOrders is §7.1.2.1: the account's orders, as URLs.
func (s *Server) accountOrders(w http.ResponseWriter, r *http.Request) {
	q, err := s.authenticateAs(r, r.PathValue("id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	orders, err := s.d.Store.ACMEOrders(r.Context(), q.account.ID, 0)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	urls := []string{}
	for _, o := range orders {
		urls = append(urls, s.url(pathOrder+o.ID))
	}
	s.json(w, http.StatusOK, map[string]any{"orders": urls})
}

// keyChange is §7.3.5: the account's key is replaced by the one that
// signed the inner JWS, which must name the account and its old key.
func (s *Server) keyChange(w http.ResponseWriter, r *http.Request) {
	q, err := s.authenticate(r, byAccount)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	inner, err := parseInner(q.payload)
	if err != nil {
		s.fail(w, r, innerProblem(err))
		return
	}
	if inner.JWK == nil {
		s.fail(w, r, Problemf(Malformed, "the inner JWS of a key change must carry the new key as a jwk"))
		return
	}
	if inner.URL != q.signed.URL {
		s.fail(w, r, Problemf(Malformed, "the inner JWS's url must be the outer one's"))
		return
	}
	payload, err := inner.Verify(inner.JWK)
	if err != nil {
		s.fail(w, r, innerProblem(err))
		return
	}
	var req struct {
		Account string          `json:"account"`
		OldKey  json.RawMessage `json:"oldKey"`
	}
	if err := decodePayload(payload, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	if req.Account != q.signed.KeyID {
		s.fail(w, r, Problemf(Malformed, "the key change names another account than the one that signed it"))
		return
	}
	old, err := parseJWK(req.OldKey)
	if err != nil {
		s.fail(w, r, Problemf(Malformed, "oldKey is not a JWK"))
		return
	}
	oldThumb, err := thumbprint(old)
	if err != nil || oldThumb != q.account.Thumbprint {
		s.fail(w, r, Problemf(Malformed, "oldKey is not the account's current key"))
		return
	}
	newThumb, err := thumbprint(inner.JWK)
	if err != nil {
		s.fail(w, r, Problemf(BadPublicKey, "the new key has no thumbprint"))
		return
	}
	jwk, err := inner.JWK.MarshalJSON()
	if err != nil {
		s.fail(w, r, fmt.Errorf("acme: encoding the new key: %w", err))
		return
	}
	acct := *q.account
	acct.Thumbprint, acct.JWK = newThumb, jwk
	updated, err := s.d.Store.UpdateACMEAccount(r.Context(), acct)
	if errors.Is(err, store.ErrDuplicate) {
		// §7.3.5: the new key is another account's; say which.
		if other, err := s.d.Store.ACMEAccountByThumbprint(r.Context(), newThumb); err == nil {
			w.Header().Set("Location", s.url(pathAccount+other.ID))
		}
		s.fail(w, r, &Problem{Type: Malformed, Status: http.StatusConflict, Detail: "the new key belongs to another account"})
		return
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.d.Log.Info("acme account key changed", "acme_account", updated.ID)
	s.json(w, http.StatusOK, s.accountJSON(updated))
}

// innerProblem names a problem of a key change's inner JWS as such.
func innerProblem(err error) error {
	var p *Problem
	if errors.As(err, &p) {
		q := *p
		q.Detail = "the inner JWS: " + p.Detail
		return &q
	}
	return err
}

// thumbprint is the RFC 7638 SHA-256 thumbprint of k, base64url.
func thumbprint(k *jose.JSONWebKey) (string, error) {
	t, err := k.Thumbprint(crypto.SHA256)
	if err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(t), nil
}

// newID is a random, URL-safe id (96 bits).
func newID() string {
	b := make([]byte, 12)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// EABKey derives the HMAC key of an external account binding key id from
// the server's secret: HMAC-SHA256(secret, "trustline acme eab\x00" ‖ id).
// Only the id is stored; the key is shown once, to whoever made it.
func EABKey(secret []byte, keyID string) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte("trustline acme eab\x00"))
	m.Write([]byte(keyID))
	return m.Sum(nil)
}
