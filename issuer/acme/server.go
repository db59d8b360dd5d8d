package acme

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/trustline/trustline/internal/serial"
	"github.com/trustline/trustline/internal/store"
	"github.com/trustline/trustline/issuer/fault"
	"github.com/trustline/trustline/issuer/pki"
	"github.com/trustline/trustline/issuer/ratelimit"
)

// Store is the subset of the store the ACME server reads and writes.
type Store interface {
	CreateACMEAccount(ctx context.Context, a store.ACMEAccount) error
	ACMEAccount(ctx context.Context, id string) (store.ACMEAccount, error)
	ACMEAccountByThumbprint(ctx context.Context, thumbprint string) (store.ACMEAccount, error)
	UpdateACMEAccount(ctx context.Context, a store.ACMEAccount) (store.ACMEAccount, error)
	ACMEEABKey(ctx context.Context, id string) (store.ACMEEABKey, error)
	ACMEOrders(ctx context.Context, acmeAccountID string, limit int) ([]store.ACMEOrder, error)
	// PlannedRevocation moves a certificate's renewal window (ari.go).
	PlannedRevocation(ctx context.Context, s serial.Serial) (store.PlannedRevocation, error)
	OrderStore
	CertStore
}

// Profile is a certificate profile offered to ACME clients
// (draft-ietf-acme-profiles), listed in the directory's meta.
type Profile struct {
	Name        string
	Description string
	// Validity is the certificates' validity; 0 is the CA's default. BR
	// §6.3.2's maximum caps it.
	Validity time.Duration
}

// Config configures the ACME server.
type Config struct {
	// BaseURL is the public URL of the api listener, scheme and host (and
	// a path prefix if a proxy adds one), without a trailing slash. Every
	// ACME URL is BaseURL + "/acme/…", and a request's JWS url must name
	// it exactly (RFC 8555 §6.4), so it must be the URL clients use.
	BaseURL string
	// TermsOfService, if set, is the URL of the terms a new account must
	// agree to (termsOfServiceAgreed).
	TermsOfService string
	// Website is shown in the directory's meta, if set.
	Website string
	// CAAIdentities are the issuer domain names CAA records name for this
	// CA (RFC 8555 §7.1.1), shown in the directory's meta.
	CAAIdentities []string
	// ExternalAccountRequired: a new account must be bound to a Trustline
	// account with an external account binding (RFC 8555 §7.3.4). Without
	// it, a new ACME account gets a new subscriber account of its own.
	ExternalAccountRequired bool
	// Profiles are offered in the directory; the first is the default.
	Profiles []Profile
}

// Validate checks the configuration.
func (c Config) Validate() error {
	u, err := url.Parse(c.BaseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || strings.HasSuffix(c.BaseURL, "/") ||
		u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("acme: base URL %q must be http(s)://host[:port][/prefix] without a trailing slash", c.BaseURL)
	}
	if c.TermsOfService != "" {
		if u, err := url.Parse(c.TermsOfService); err != nil || (u.Scheme != "http" && u.Scheme != "https") {
			return fmt.Errorf("acme: terms of service %q must be an http(s) URL", c.TermsOfService)
		}
	}
	seen := map[string]bool{}
	for _, p := range c.Profiles {
		if p.Name == "" || seen[p.Name] || strings.ContainsAny(p.Name, " /\"") {
			return fmt.Errorf("acme: profile name %q is empty, repeated or not a token", p.Name)
		}
		if p.Validity != 0 && (p.Validity < 24*time.Hour || p.Validity%time.Second != 0) {
			return fmt.Errorf("acme: profile %s: validity %v: at least a day, in whole seconds", p.Name, p.Validity)
		}
		seen[p.Name] = true
	}
	return nil
}

// Deps are the services behind the ACME server.
type Deps struct {
	Store  Store
	Nonces *Nonces
	// NewAccount makes the Trustline subscriber account a new ACME
	// account without external account binding acts for; email is the
	// first mailto contact, "" if none.
	NewAccount func(ctx context.Context, email string) (store.Account, error)
	// EABKey returns the HMAC key of an external account binding key id
	// (derived, never stored).
	EABKey func(keyID string) []byte
	// Orders turns a finalized order into a Trustline order.
	Orders Ordering
	// CA revokes certificates.
	CA Revoker
	// PKI is the hierarchy, for certificate chains.
	PKI *pki.PKI
	// Validations performs the challenges and finds validations the
	// account may reuse.
	Validations Validations
	// Limits bound new accounts per source address; nil: no limits.
	Limits *ratelimit.Limiter
	Log    *slog.Logger
	Now    func() time.Time
}

// Server is the ACME server, an http.Handler for the paths under /acme/.
type Server struct {
	cfg Config
	d   Deps
	mux *http.ServeMux
}

// The paths the server answers, under BaseURL.
const (
	pathDirectory   = "/acme/directory"
	pathNewNonce    = "/acme/new-nonce"
	pathNewAccount  = "/acme/new-account"
	pathNewOrder    = "/acme/new-order"
	pathRevokeCert  = "/acme/revoke-cert"
	pathKeyChange   = "/acme/key-change"
	pathAccount     = "/acme/acct/"
	pathOrder       = "/acme/order/"
	pathAuthz       = "/acme/authz/"
	pathChallenge   = "/acme/chall/"
	pathCert        = "/acme/cert/"
	pathRenewalInfo = "/acme/renewal-info"
)

// New builds the server.
func New(cfg Config, d Deps) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if d.Store == nil || d.Nonces == nil || d.NewAccount == nil || d.EABKey == nil || d.Validations == nil || d.Orders == nil || d.PKI == nil || d.CA == nil {
		return nil, errors.New("acme: the server needs a Store, Nonces, Validations, Orders, a CA, a PKI, NewAccount and EABKey")
	}
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	s := &Server{cfg: cfg, d: d, mux: http.NewServeMux()}
	s.mux.HandleFunc("GET "+pathDirectory, s.directory)
	s.mux.HandleFunc("HEAD "+pathNewNonce, s.newNonce)
	s.mux.HandleFunc("GET "+pathNewNonce, s.newNonce)
	s.mux.HandleFunc("POST "+pathNewAccount, s.newAccount)
	s.mux.HandleFunc("POST "+pathAccount+"{id}", s.account)
	s.mux.HandleFunc("POST "+pathAccount+"{id}/orders", s.accountOrders)
	s.mux.HandleFunc("POST "+pathKeyChange, s.keyChange)
	s.mux.HandleFunc("POST "+pathNewOrder, s.newOrder)
	s.mux.HandleFunc("POST "+pathRevokeCert, s.revokeCert)
	s.mux.HandleFunc("GET "+pathRenewalInfo+"/{id}", s.renewalInfo)
	s.mux.HandleFunc("POST "+pathOrder+"{id}", s.order)
	s.mux.HandleFunc("POST "+pathOrder+"{id}/finalize", s.finalize)
	s.mux.HandleFunc("POST "+pathCert+"{serial}", s.certificate)
	s.mux.HandleFunc("POST "+pathCert+"{serial}/{alt}", s.certificate)
	s.mux.HandleFunc("POST "+pathAuthz+"{id}", s.authz)
	s.mux.HandleFunc("POST "+pathChallenge+"{authz}/{type}", s.challenge)
	s.mux.HandleFunc("/acme/", func(w http.ResponseWriter, r *http.Request) {
		s.problem(w, &Problem{Type: Malformed, Status: http.StatusNotFound, Detail: "no such ACME resource: " + r.Method + " " + truncate(r.URL.Path, 100)})
	})
	return s, nil
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	if r.URL.Path != pathDirectory {
		h.Set("Link", link(s.url(pathDirectory), "index"))
	}
	s.mux.ServeHTTP(w, r)
}

func (s *Server) url(path string) string { return s.cfg.BaseURL + path }

func link(u, rel string) string { return "<" + u + `>;rel="` + rel + `"` }

// directory answers RFC 8555 §7.1.1's directory, with RFC 9773's
// renewalInfo and the profiles in meta.
func (s *Server) directory(w http.ResponseWriter, r *http.Request) {
	meta := map[string]any{"externalAccountRequired": s.cfg.ExternalAccountRequired}
	if s.cfg.TermsOfService != "" {
		meta["termsOfService"] = s.cfg.TermsOfService
	}
	if s.cfg.Website != "" {
		meta["website"] = s.cfg.Website
	}
	if len(s.cfg.CAAIdentities) > 0 {
		meta["caaIdentities"] = s.cfg.CAAIdentities
	}
	if len(s.cfg.Profiles) > 0 {
		p := map[string]string{}
		for _, pr := range s.cfg.Profiles {
			p[pr.Name] = pr.Description
		}
		meta["profiles"] = p
	}
	s.json(w, http.StatusOK, map[string]any{
		"newNonce": s.url(pathNewNonce), "newAccount": s.url(pathNewAccount), "newOrder": s.url(pathNewOrder),
		"revokeCert": s.url(pathRevokeCert), "keyChange": s.url(pathKeyChange), "renewalInfo": s.url(pathRenewalInfo),
		"meta": meta,
	})
}

// newNonce answers §7.2: 200 to HEAD, 204 to GET, the nonce in
// Replay-Nonce (which every answer carries).
func (s *Server) newNonce(w http.ResponseWriter, r *http.Request) {
	if !s.setNonce(w) {
		s.problem(w, Problemf(ServerInternal, "no nonce could be made"))
		return
	}
	if r.Method == http.MethodHead {
		w.WriteHeader(http.StatusOK)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// setNonce puts a fresh nonce in Replay-Nonce.
func (s *Server) setNonce(w http.ResponseWriter) bool {
	n, err := s.d.Nonces.New()
	if err != nil {
		s.d.Log.Error("acme: making a nonce", "err", err)
		return false
	}
	w.Header().Set("Replay-Nonce", n)
	return true
}

// json writes v with status and a fresh nonce.
func (s *Server) json(w http.ResponseWriter, status int, v any) {
	s.setNonce(w)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

// problem writes p as an RFC 7807 document with a fresh nonce (a client
// retries a badNonce with it, §6.5).
func (s *Server) problem(w http.ResponseWriter, p *Problem) {
	s.setNonce(w)
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(p.HTTPStatus())
	json.NewEncoder(w).Encode(p)
}

// fail answers err: a *Problem as it is, the issuer's typed errors as the
// problem types they mean, anything else as serverInternal (logged, its
// text not shown).
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	var (
		p  *Problem
		in *fault.InputError
		fb *fault.ForbiddenError
		nf *fault.NotFoundError
		un *fault.UnavailableError
		rl *fault.RateLimitedError
		cf *fault.ConflictError
	)
	switch {
	case errors.As(err, &p):
	case errors.As(err, &rl):
		w.Header().Set("Retry-After", ratelimit.RetryAfterSeconds(rl.RetryAfter))
		p = Problemf(RateLimited, "%s", rl.Detail)
	case errors.As(err, &in):
		p = Problemf(Malformed, "%s", in.Detail)
	case errors.As(err, &fb):
		p = Problemf(Unauthorized, "%s", fb.Detail)
	case errors.As(err, &nf):
		p = &Problem{Type: Malformed, Status: http.StatusNotFound, Detail: nf.Detail}
	case errors.As(err, &cf):
		p = &Problem{Type: Malformed, Status: http.StatusConflict, Detail: cf.Detail}
	case errors.As(err, &un), errors.Is(err, store.ErrUnavailable):
		w.Header().Set("Retry-After", "5")
		p = &Problem{Type: ServerInternal, Status: http.StatusServiceUnavailable, Detail: "the CA cannot answer right now; try again in a few seconds"}
	default:
		s.d.Log.Error("acme request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		p = Problemf(ServerInternal, "the CA failed to handle the request; nothing the client did caused it")
	}
	s.problem(w, p)
}

// keyUse says which of jwk and kid a request may be signed with.
type keyUse int

const (
	byAccount keyUse = iota // kid: every request of an existing account
	byJWK                   // jwk: newAccount (and the inner JWS of a key change)
	byEither                // revokeCert: the account's key or the certificate's
)

// request is an authenticated ACME POST.
type request struct {
	signed  *Signed
	payload []byte
	key     *jose.JSONWebKey
	// account is the account that signed (kid), nil for a jwk request.
	account *store.ACMEAccount
}

// postAsGet reports whether the request is a POST-as-GET (§6.3).
func (q *request) postAsGet() bool { return len(q.payload) == 0 }

// authenticate applies §6.2–§6.5 to a POST: the body's form, the url, the
// key (the embedded jwk or the kid's account, which must be valid), the
// signature and, last, the nonce (so that a forged request burns none).
func (s *Server) authenticate(r *http.Request, use keyUse) (*request, error) {
	signed, err := ReadRequest(r)
	if err != nil {
		return nil, err
	}
	if err := signed.CheckURL(s.url(r.URL.Path)); err != nil {
		return nil, err
	}
	q := &request{signed: signed}
	switch {
	case signed.JWK != nil && use == byAccount:
		return nil, Problemf(Malformed, "this request must be signed by an account (kid), not an embedded jwk")
	case signed.KeyID != "" && use == byJWK:
		return nil, Problemf(Malformed, "this request must carry its key as a jwk, not a kid")
	case signed.JWK != nil:
		q.key = signed.JWK
	default:
		acct, err := s.accountOf(r.Context(), signed.KeyID)
		if err != nil {
			return nil, err
		}
		key, err := parseJWK(acct.JWK)
		if err != nil {
			return nil, fmt.Errorf("acme: account %s holds an unreadable key: %w", acct.ID, err)
		}
		q.account, q.key = &acct, key
	}
	if q.payload, err = signed.Verify(q.key); err != nil {
		return nil, err
	}
	if err := s.d.Nonces.Redeem(r.Context(), signed.Nonce); err != nil {
		return nil, err
	}
	return q, nil
}

// accountOf resolves a kid, the account's URL, to a valid account.
func (s *Server) accountOf(ctx context.Context, kid string) (store.ACMEAccount, error) {
	id, ok := strings.CutPrefix(kid, s.url(pathAccount))
	if !ok || id == "" || strings.Contains(id, "/") {
		return store.ACMEAccount{}, Problemf(AccountDoesNotExist, "the kid %q is not an account URL of this server", truncate(kid, 200))
	}
	acct, err := s.d.Store.ACMEAccount(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return store.ACMEAccount{}, Problemf(AccountDoesNotExist, "there is no account %s", truncate(id, 64))
	}
	if err != nil {
		return store.ACMEAccount{}, err
	}
	if acct.Status != store.ACMEAccountValid {
		return store.ACMEAccount{}, Problemf(Unauthorized, "the account is %s", acct.Status)
	}
	return acct, nil
}

func parseJWK(b []byte) (*jose.JSONWebKey, error) {
	var k jose.JSONWebKey
	if err := k.UnmarshalJSON(b); err != nil {
		return nil, err
	}
	return &k, nil
}

// decodePayload reads a JSON payload strictly: unknown members are
// allowed (RFC 8555 §7.3 lets clients send fields a server ignores), but
// the value must be one JSON object of the right shape.
func decodePayload(payload []byte, v any) error {
	dec := json.NewDecoder(strings.NewReader(string(payload)))
	if err := dec.Decode(v); err != nil {
		return Problemf(Malformed, "the request payload is not the JSON object expected: %v", err)
	}
	if dec.More() {
		return Problemf(Malformed, "the request payload holds more than one JSON value")
	}
	return nil
}
