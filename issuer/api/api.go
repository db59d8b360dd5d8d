// Package api is Trustline's issuance API: JSON over HTTP with bearer API
// keys, described route by route in openapi.json (served at
// /api/v1/openapi.json) and walked through in README.md. Errors are RFC
// 9457 problem details (application/problem+json) whose detail says what
// was wrong; request bodies are bounded and decoded strictly.
//
// Roles are enforced on every endpoint: subscribers see and revoke only
// their own orders and certificates, reviewers review, admins manage
// accounts and the Manual Review List and may revoke any certificate.
// The review endpoints (/api/v1/review/...) are for the reviewer role
// only: admins manage accounts and the list but do not decide on orders,
// so that two-person review stays between reviewers.
//
// The OpenAPI 3.1 description of every route is served, without auth, at
// /api/v1/openapi.json; a test keeps it and the routes in step.
//
// It turns the issuer's typed errors into HTTP answers and holds no
// business logic of its own. Wired by cmd/.
package api

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/trustline/trustline/internal/reason"
	"github.com/trustline/trustline/internal/serial"
	"github.com/trustline/trustline/internal/store"
	"github.com/trustline/trustline/issuer"
	"github.com/trustline/trustline/issuer/fault"
	"github.com/trustline/trustline/issuer/pki"
	"github.com/trustline/trustline/issuer/profile"
	"github.com/trustline/trustline/issuer/ratelimit"
	"github.com/trustline/trustline/issuer/review"
	"github.com/trustline/trustline/issuer/reviewlist"
	"github.com/trustline/trustline/issuer/validation"
)

// MaxBody bounds every request body (a CSR in PEM is a few KiB).
const MaxBody = 64 << 10

// Store is the subset of the store the handlers read directly.
type Store interface {
	Certificate(ctx context.Context, s serial.Serial) (store.Certificate, error)
	ListOrders(ctx context.Context, f store.OrderFilter) ([]store.Order, error)
	AddReviewPattern(ctx context.Context, p store.ReviewPattern) error
	ReviewPatterns(ctx context.Context) ([]store.ReviewPattern, error)
}

// Revoker revokes certificates.
type Revoker interface {
	Revoke(ctx context.Context, r issuer.RevokeRequest) (store.Certificate, error)
	RevokeKey(ctx context.Context, sn serial.Serial, actor string) ([]store.Certificate, []serial.Serial, error)
}

// Deps are the services behind the API.
type Deps struct {
	Store    Store
	Accounts *issuer.Accounts
	Keys     *issuer.Keys // nil: the key endpoints answer 503
	// Confirmations mails and follows address confirmation links; nil:
	// none are sent (and an account's address stays unconfirmed).
	Confirmations *issuer.Confirmations
	// Limits, if set, bound sign-ups and failed API key attempts per
	// source address (the orders and validations services carry their
	// own).
	Limits *ratelimit.Limiter
	// EABKeys makes ACME external account binding keys; nil: the
	// endpoints answer 503.
	EABKeys EABKeyMaker
	// Plans records planned revocations; nil: the endpoints answer 503.
	Plans RevocationPlanner
	// Staff grants the reviewer and admin roles (dual control); nil: an
	// admin creating a staff account gives the role at once.
	Staff       *issuer.Staff
	Validations *validation.Service
	Orders      *issuer.Orders
	Reviews     *review.Service // nil: the review endpoints answer 503
	CA          Revoker
	PKI         *pki.PKI
	Log         *slog.Logger
	Now         func() time.Time
	// StoreTimeout bounds each store operation of a request
	// (store.WithOpTimeout), so that a hung database is answered 503
	// within it rather than never. 0 means DefaultStoreTimeout; negative,
	// the store's own bound.
	StoreTimeout time.Duration
}

// DefaultStoreTimeout is Deps.StoreTimeout's default.
const DefaultStoreTimeout = store.RequestOpTimeout

// Handler serves the API under /api/v1/.
type Handler struct {
	d      Deps
	mux    *http.ServeMux
	routes []string // every registered pattern, for the OpenAPI test
}

// New builds the handler.
func New(d Deps) *Handler {
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.StoreTimeout == 0 {
		d.StoreTimeout = DefaultStoreTimeout
	}
	h := &Handler{d: d, mux: http.NewServeMux()}
	anyone := []store.Role{store.RoleSubscriber, store.RoleReviewer, store.RoleAdmin}
	h.handle("POST /api/v1/accounts", http.HandlerFunc(h.createAccount))
	h.handle("GET /api/v1/issuers", http.HandlerFunc(h.issuers))
	h.handle("GET /api/v1/openapi.json", http.HandlerFunc(serveOpenAPI))
	h.handle("GET /api/v1/account", h.auth(anyone, h.whoami))
	h.handle("POST /api/v1/email-confirmations", http.HandlerFunc(h.confirmEmail))
	h.handle("POST /api/v1/account/email-confirmation", h.auth(anyone, h.resendConfirmation))
	h.handle("GET /api/v1/account/keys", h.auth(anyone, h.listOwnKeys))
	h.handle("POST /api/v1/account/keys", h.auth(anyone, h.createOwnKey))
	h.handle("POST /api/v1/account/keys/rotate", h.auth(anyone, h.rotateOwnKey))
	h.handle("DELETE /api/v1/account/keys/{id}", h.auth(anyone, h.revokeOwnKey))
	h.handle("POST /api/v1/account/acme-eab-keys", h.auth(anyone, h.createOwnEABKey))
	h.handle("POST /api/v1/validations", h.auth(anyone, h.startValidation))
	h.handle("GET /api/v1/validations/{id}", h.auth(anyone, h.getValidation))
	h.handle("POST /api/v1/validations/{id}/confirm", h.auth(anyone, h.confirmValidation))
	h.handle("POST /api/v1/orders", h.auth(anyone, h.createOrder))
	h.handle("GET /api/v1/orders", h.auth(anyone, h.listOrders))
	h.handle("GET /api/v1/orders/{id}", h.auth(anyone, h.getOrder))
	h.handle("GET /api/v1/certificates/{serial}", h.auth(anyone, h.getCertificate))
	h.handle("POST /api/v1/certificates/{serial}/revoke", h.auth(anyone, h.revoke))
	reviewer := []store.Role{store.RoleReviewer}
	h.handle("GET /api/v1/review/orders", h.auth(reviewer, h.reviewQueue))
	h.handle("GET /api/v1/review/orders/{id}", h.auth(reviewer, h.reviewOrder))
	h.handle("POST /api/v1/review/orders/{id}/approve", h.auth(reviewer, h.approveOrder))
	h.handle("POST /api/v1/review/orders/{id}/reject", h.auth(reviewer, h.rejectOrder))
	admin := []store.Role{store.RoleAdmin}
	h.handle("POST /api/v1/admin/accounts", h.auth(admin, h.adminCreateAccount))
	h.handle("POST /api/v1/admin/accounts/{id}/role", h.auth(admin, h.requestRole))
	h.handle("PUT /api/v1/admin/accounts/{id}/person", h.auth(admin, h.setPerson))
	h.handle("GET /api/v1/admin/role-grants", h.auth(admin, h.listGrants))
	h.handle("POST /api/v1/admin/role-grants/{id}/approve", h.auth(admin, h.approveGrant))
	h.handle("POST /api/v1/admin/role-grants/{id}/reject", h.auth(admin, h.rejectGrant))
	h.handle("GET /api/v1/admin/accounts/{id}/keys", h.auth(admin, h.adminListKeys))
	h.handle("DELETE /api/v1/admin/accounts/{id}/keys/{key}", h.auth(admin, h.adminRevokeKey))
	h.handle("POST /api/v1/admin/accounts/{id}/acme-eab-keys", h.auth(admin, h.adminCreateEABKey))
	h.handle("POST /api/v1/admin/review-list", h.auth(admin, h.addReviewPattern))
	h.handle("GET /api/v1/admin/review-list", h.auth(admin, h.listReviewPatterns))
	h.handle("POST /api/v1/admin/certificates/{serial}/revoke-key", h.auth(admin, h.revokeKey))
	h.handle("POST /api/v1/admin/planned-revocations", h.auth(admin, h.planRevocations))
	h.handle("GET /api/v1/admin/planned-revocations", h.auth(admin, h.listPlannedRevocations))
	h.handle("DELETE /api/v1/admin/planned-revocations/{serial}", h.auth(admin, h.cancelPlannedRevocation))
	h.mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		problem(w, http.StatusNotFound, "no such endpoint: "+r.Method+" "+truncate(r.URL.Path, 100))
	})
	return h
}

// handle registers an API route and remembers its pattern.
func (h *Handler) handle(pattern string, hd http.Handler) {
	h.mux.Handle(pattern, hd)
	h.routes = append(h.routes, pattern)
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	if h.d.StoreTimeout > 0 {
		r = r.WithContext(store.WithOpTimeout(r.Context(), h.d.StoreTimeout))
	}
	h.mux.ServeHTTP(w, r)
}

// auth resolves the bearer token and checks the role.
func (h *Handler) auth(roles []store.Role, next func(http.ResponseWriter, *http.Request, store.Account)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || tok == "" {
			w.Header().Set("WWW-Authenticate", `Bearer realm="trustline"`)
			problem(w, http.StatusUnauthorized, "missing API key: send Authorization: Bearer <api key>")
			return
		}
		acct, err := h.d.Accounts.Authenticate(r.Context(), strings.TrimSpace(tok))
		if err != nil {
			if errors.Is(err, issuer.ErrUnauthenticated) {
				if lerr := h.d.Limits.FailedAuth(r.Context(), r.RemoteAddr, bearerKeyID(r)); lerr != nil {
					h.fail(w, r, lerr)
					return
				}
				w.Header().Set("WWW-Authenticate", `Bearer realm="trustline", error="invalid_token"`)
				problem(w, http.StatusUnauthorized, "invalid API key")
				return
			}
			h.fail(w, r, err)
			return
		}
		for _, role := range roles {
			if acct.Role == role {
				next(w, r, acct)
				return
			}
		}
		problem(w, http.StatusForbidden, fmt.Sprintf("this endpoint needs the %s role", roles[0]))
	})
}

// problem writes an RFC 9457 problem document.
func problem(w http.ResponseWriter, status int, detail string) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{
		"type": "about:blank", "title": http.StatusText(status), "status": status, "detail": detail,
	})
}

// fail maps an error to its HTTP answer. Unexpected errors are logged and
// answered 500 without their text.
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	var (
		in  *fault.InputError
		cf  *fault.ConflictError
		fb  *fault.ForbiddenError
		nf  *fault.NotFoundError
		un  *fault.UnavailableError
		rl  *fault.RateLimitedError
		mbe *http.MaxBytesError
	)
	switch {
	case errors.As(err, &rl):
		w.Header().Set("Retry-After", ratelimit.RetryAfterSeconds(rl.RetryAfter))
		problem(w, http.StatusTooManyRequests, rl.Detail)
	case errors.As(err, &mbe):
		problem(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body larger than %d bytes", MaxBody))
	case errors.As(err, &in):
		problem(w, http.StatusBadRequest, in.Detail)
	case errors.As(err, &cf):
		problem(w, http.StatusConflict, cf.Detail)
	case errors.As(err, &fb):
		problem(w, http.StatusForbidden, fb.Detail)
	case errors.As(err, &nf):
		problem(w, http.StatusNotFound, nf.Detail)
	case errors.As(err, &un):
		w.Header().Set("Retry-After", "30")
		problem(w, http.StatusServiceUnavailable, un.Detail)
	case errors.Is(err, store.ErrUnavailable):
		// Logged once per request at Warn, without the driver's text in
		// the answer: the database is down or failing over.
		h.d.Log.Warn("request failed: database unavailable", "method", r.Method, "path", r.URL.Path, "err", err)
		w.Header().Set("Retry-After", "5")
		problem(w, http.StatusServiceUnavailable, "the CA's database is unavailable; try again in a few seconds")
	case errors.Is(err, issuer.ErrNoIssuer):
		problem(w, http.StatusBadRequest, "no intermediate issues for this key type")
	case errors.Is(err, context.Canceled):
		// The client went away.
	default:
		h.d.Log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		problem(w, http.StatusInternalServerError, "internal error; the request may be retried")
	}
}

// decode reads one strict JSON object into v.
func decode(w http.ResponseWriter, r *http.Request, v any) error {
	// JSON is read whatever the client called it, as long as it did not call
	// it something else: curl -d labels its body form-urlencoded. Bearer
	// tokens, not cookies, authenticate the API, so a simple cross-site
	// form post gains nothing from this leniency.
	ct, _, _ := strings.Cut(r.Header.Get("Content-Type"), ";")
	ct = strings.TrimSpace(strings.ToLower(ct))
	switch ct {
	case "", "application/json", "application/x-www-form-urlencoded", "text/plain":
	default:
		return &fault.InputError{Detail: "Content-Type must be application/json"}
	}
	hint := ""
	if ct != "application/json" {
		hint = " (send a JSON object, Content-Type: application/json)"
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, MaxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return err
		}
		if errors.Is(err, io.EOF) {
			return &fault.InputError{Detail: "request body is empty; want a JSON object"}
		}
		return &fault.InputError{Detail: "malformed JSON" + hint + ": " + truncate(err.Error(), 200)}
	}
	if dec.More() {
		return &fault.InputError{Detail: "malformed JSON: more than one value in the body"}
	}
	return nil
}

// decodeOptional is decode for endpoints whose body may be left empty
// (confirming a dns-txt validation, approving without notes).
func decodeOptional(w http.ResponseWriter, r *http.Request, v any) error {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBody))
	if err != nil {
		return err
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return nil
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	return decode(w, r, v)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// Accounts.

func (h *Handler) createAccount(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Email string `json:"email"`
	}
	if err := decode(w, r, &req); err != nil {
		h.fail(w, r, err)
		return
	}
	if err := h.d.Limits.SignUp(r.Context(), r.RemoteAddr); err != nil {
		h.fail(w, r, err)
		return
	}
	acct, key, err := h.d.Accounts.Create(r.Context(), req.Email, store.RoleSubscriber)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, map[string]any{"id": acct.ID, "api_key": key, "role": acct.Role,
		"email_confirmation": h.sendConfirmation(r, acct)})
}

// adminCreateAccount makes an account; a staff role (reviewer, admin) is
// asked for through a role grant, which under dual control waits for a
// second admin ("grant" in the answer) while the account stays a
// subscriber.
func (h *Handler) adminCreateAccount(w http.ResponseWriter, r *http.Request, admin store.Account) {
	var req struct {
		Email string     `json:"email"`
		Role  store.Role `json:"role"`
	}
	if err := decode(w, r, &req); err != nil {
		h.fail(w, r, err)
		return
	}
	if req.Role == "" {
		req.Role = store.RoleSubscriber
	}
	if !req.Role.Valid() {
		problem(w, http.StatusBadRequest, fmt.Sprintf("role %q: want subscriber, reviewer or admin", truncate(string(req.Role), 32)))
		return
	}
	if h.d.Staff == nil {
		acct, key, err := h.d.Accounts.Create(r.Context(), req.Email, req.Role)
		if err != nil {
			h.fail(w, r, err)
			return
		}
		writeJSON(w, http.StatusCreated, map[string]any{"id": acct.ID, "api_key": key, "role": acct.Role})
		return
	}
	acct, key, err := h.d.Accounts.CreateFor(r.Context(), admin, req.Email)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	out := map[string]any{"id": acct.ID, "api_key": key, "role": acct.Role, "created_by": admin.ID}
	if req.Role != store.RoleSubscriber {
		g, err := h.d.Staff.Request(r.Context(), admin, acct.ID, req.Role)
		if err != nil {
			h.fail(w, r, err)
			return
		}
		out["grant"] = toGrantJSON(g)
		if g.Status == store.GrantApproved {
			out["role"] = g.Role
		}
	}
	writeJSON(w, http.StatusCreated, out)
}

func (h *Handler) whoami(w http.ResponseWriter, _ *http.Request, a store.Account) {
	writeJSON(w, http.StatusOK, map[string]any{"id": a.ID, "email": a.Email, "role": a.Role, "email_verified": !a.EmailVerifiedAt.IsZero()})
}

// Issuers.

func (h *Handler) issuers(w http.ResponseWriter, _ *http.Request) {
	out := []map[string]any{}
	for _, is := range h.d.PKI.Intermediates {
		item := map[string]any{
			"id":          is.ID,
			"key_type":    is.KeyAlg.String(),
			"certificate": string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: is.Cert.Raw})),
			"not_after":   is.Cert.NotAfter.UTC(),
		}
		if rc := h.d.PKI.ResponderCert(is); rc != nil {
			item["ocsp_responder_certificate"] = string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: rc.Raw}))
		}
		out = append(out, item)
	}
	writeJSON(w, http.StatusOK, out)
}

// Validations.

type validationJSON struct {
	ID          string     `json:"id"`
	Domain      string     `json:"domain"`
	Method      string     `json:"method"`
	Contact     string     `json:"contact,omitempty"`
	Status      string     `json:"status"`
	ExpiresAt   time.Time  `json:"expires_at"`
	ValidUntil  *time.Time `json:"valid_until,omitempty"`
	AttemptsMax int        `json:"attempts_max,omitempty"`
	Attempts    int        `json:"attempts"`
	// What to publish, while a dns-txt or http-token validation is pending.
	RandomValue string          `json:"random_value,omitempty"`
	DNS         *dnsPublish     `json:"dns,omitempty"`
	HTTP        *httpPublish    `json:"http,omitempty"`
	Evidence    json.RawMessage `json:"evidence,omitempty"`
}

type dnsPublish struct {
	RecordName string `json:"record_name"`
	RecordType string `json:"record_type"`
	Value      string `json:"value"`
}

type httpPublish struct {
	URL     string `json:"url"`
	Content string `json:"content"`
}

// toValidationJSON presents v at now: a valid validation's valid_until is
// how long it covers its domain under the reuse period in force now (BR
// 4.2.1), which a later step of the BR schedule can shorten.
func toValidationJSON(v store.Validation, now time.Time) validationJSON {
	out := validationJSON{ID: v.ID, Domain: v.Domain, Method: v.Method, Contact: v.Contact, Status: string(v.Status),
		ExpiresAt: v.ExpiresAt.UTC(), Attempts: v.Attempts, AttemptsMax: validation.MaxAttempts}
	if v.Status == store.ValidationValid {
		u := validation.ReusableUntil(v, now).UTC()
		out.ValidUntil = &u
		out.Evidence = v.Evidence
	}
	if p, ok := validation.PublicationOf(v); ok {
		out.RandomValue = p.Value
		switch v.Method {
		case validation.MethodDNSTXT:
			out.DNS = &dnsPublish{RecordName: p.RecordName, RecordType: "TXT", Value: p.Value}
		case validation.MethodHTTPToken:
			out.HTTP = &httpPublish{URL: p.URL, Content: p.Value}
		}
	}
	return out
}

func (h *Handler) startValidation(w http.ResponseWriter, r *http.Request, acct store.Account) {
	var req struct {
		Domain string `json:"domain"`
		Method string `json:"method"`
		Email  string `json:"email"`
	}
	if err := decode(w, r, &req); err != nil {
		h.fail(w, r, err)
		return
	}
	v, err := h.d.Validations.Start(r.Context(), acct, validation.StartRequest{Domain: req.Domain, Method: req.Method, Email: req.Email})
	if err != nil {
		h.fail(w, r, err)
		return
	}
	w.Header().Set("Location", "/api/v1/validations/"+v.ID)
	writeJSON(w, http.StatusCreated, toValidationJSON(v, h.d.Now()))
}

func (h *Handler) getValidation(w http.ResponseWriter, r *http.Request, acct store.Account) {
	v, err := h.d.Validations.Get(r.Context(), acct, r.PathValue("id"))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, toValidationJSON(v, h.d.Now()))
}

func (h *Handler) confirmValidation(w http.ResponseWriter, r *http.Request, acct store.Account) {
	var req struct {
		Code string `json:"code"`
	}
	// dns-txt and http-token confirmations carry no code.
	if err := decodeOptional(w, r, &req); err != nil {
		h.fail(w, r, err)
		return
	}
	if len(req.Code) > 128 {
		problem(w, http.StatusBadRequest, "code is longer than any code Trustline mails")
		return
	}
	v, err := h.d.Validations.Confirm(r.Context(), acct, r.PathValue("id"), req.Code)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, toValidationJSON(v, h.d.Now()))
}

// Orders.

type orderJSON struct {
	ID           string    `json:"id"`
	Status       string    `json:"status"`
	Profile      string    `json:"profile"`
	Names        []string  `json:"names"`
	Serial       string    `json:"serial,omitempty"`
	RejectReason string    `json:"reject_reason,omitempty"`
	CreatedAt    time.Time `json:"created_at"`
}

func toOrderJSON(o store.Order) orderJSON {
	return orderJSON{ID: o.ID, Status: string(o.Status), Profile: o.Profile, Names: o.Names, Serial: string(o.Serial),
		RejectReason: o.RejectReason, CreatedAt: o.CreatedAt.UTC()}
}

func (h *Handler) createOrder(w http.ResponseWriter, r *http.Request, acct store.Account) {
	var req struct {
		CSR          string                `json:"csr"`
		Profile      string                `json:"profile"`
		Organization *profile.Organization `json:"organization"`
	}
	if err := decode(w, r, &req); err != nil {
		h.fail(w, r, err)
		return
	}
	if req.CSR == "" {
		problem(w, http.StatusBadRequest, "csr is required (PEM)")
		return
	}
	if req.Profile == "" {
		req.Profile = "dv"
	}
	ord, err := h.d.Orders.Create(r.Context(), acct, issuer.OrderRequest{CSR: []byte(req.CSR), Profile: req.Profile, Organization: req.Organization})
	if err != nil {
		h.fail(w, r, err)
		return
	}
	w.Header().Set("Location", "/api/v1/orders/"+ord.ID)
	writeJSON(w, http.StatusCreated, toOrderJSON(ord))
}

func (h *Handler) getOrder(w http.ResponseWriter, r *http.Request, acct store.Account) {
	ord, err := h.d.Orders.Get(r.Context(), acct, r.PathValue("id"))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, toOrderJSON(ord))
}

func (h *Handler) listOrders(w http.ResponseWriter, r *http.Request, acct store.Account) {
	ords, err := h.d.Store.ListOrders(r.Context(), store.OrderFilter{AccountID: acct.ID, Limit: 100})
	if err != nil {
		h.fail(w, r, err)
		return
	}
	out := make([]orderJSON, 0, len(ords))
	for _, o := range ords {
		out = append(out, toOrderJSON(o))
	}
	writeJSON(w, http.StatusOK, out)
}

// Certificates.

// visibleCertificate returns the certificate if acct may see it: its
// owner, reviewers and admins. Others get 404, not 403, so serials of
// other accounts are not confirmed.
func (h *Handler) visibleCertificate(r *http.Request, acct store.Account) (store.Certificate, error) {
	s, err := serial.Parse(r.PathValue("serial"))
	if err != nil || string(s) != r.PathValue("serial") {
		return store.Certificate{}, &fault.InputError{Detail: "serial must be lowercase hex without separators"}
	}
	c, err := h.d.Store.Certificate(r.Context(), s)
	if errors.Is(err, store.ErrNotFound) || (err == nil && c.AccountID != acct.ID && acct.Role == store.RoleSubscriber) {
		return store.Certificate{}, &fault.NotFoundError{Detail: "no such certificate"}
	}
	return c, err
}

func (h *Handler) getCertificate(w http.ResponseWriter, r *http.Request, acct store.Account) {
	c, err := h.visibleCertificate(r, acct)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if c.Precertificate {
		problem(w, http.StatusConflict, fmt.Sprintf("%s is a precertificate whose certificate was never issued (the Certificate Transparency logs gave too few timestamps); it is covered by OCSP and CRLs and may be revoked", c.Serial))
		return
	}
	is, ok := h.d.PKI.Issuer(c.IssuerID)
	if !ok {
		h.fail(w, r, fmt.Errorf("certificate %s names unknown issuer %s", c.Serial, c.IssuerID))
		return
	}
	w.Header().Set("Content-Type", "application/pem-certificate-chain")
	pem.Encode(w, &pem.Block{Type: "CERTIFICATE", Bytes: c.DER})
	pem.Encode(w, &pem.Block{Type: "CERTIFICATE", Bytes: is.Cert.Raw})
}

func (h *Handler) revoke(w http.ResponseWriter, r *http.Request, acct store.Account) {
	var req struct {
		Reason string `json:"reason"`
	}
	if err := decode(w, r, &req); err != nil {
		h.fail(w, r, err)
		return
	}
	rs := reason.Unspecified
	if req.Reason != "" {
		var err error
		if rs, err = reason.Parse(req.Reason); err != nil {
			problem(w, http.StatusBadRequest, fmt.Sprintf("unknown reason %q", truncate(req.Reason, 40)))
			return
		}
	}
	if !rs.AllowedForSubscriber() {
		problem(w, http.StatusBadRequest, fmt.Sprintf("reason %s is not allowed for subscriber certificates (BR 7.2.2): use keyCompromise, affiliationChanged, superseded, cessationOfOperation, privilegeWithdrawn or unspecified", rs))
		return
	}
	c, err := h.visibleCertificate(r, acct)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if acct.Role == store.RoleReviewer && c.AccountID != acct.ID {
		problem(w, http.StatusForbidden, "reviewers may not revoke other accounts' certificates")
		return
	}
	if rs == reason.PrivilegeWithdrawn && acct.Role != store.RoleAdmin {
		problem(w, http.StatusForbidden, "privilegeWithdrawn is the CA's reason; subscribers choose another")
		return
	}
	got, err := h.d.CA.Revoke(r.Context(), issuer.RevokeRequest{Serial: c.Serial, Reason: rs, Actor: acct.ID})
	if errors.Is(err, store.ErrAlreadyRevoked) {
		problem(w, http.StatusConflict, "certificate is already revoked")
		return
	}
	if err != nil && got.Serial == "" {
		h.fail(w, r, err)
		return
	}
	h.d.Orders.NotifyRevoked(r.Context(), got, acct.ID)
	writeJSON(w, http.StatusOK, map[string]any{"serial": got.Serial, "status": "revoked", "reason": got.Reason.String(), "revoked_at": got.RevokedAt.UTC()})
}

// revokeKey treats a certificate's key as compromised: it is blocked, and
// every certificate issued with it is revoked for keyCompromise (BR
// §4.9.1.1); each account concerned is mailed.
func (h *Handler) revokeKey(w http.ResponseWriter, r *http.Request, acct store.Account) {
	sn, err := serial.Parse(r.PathValue("serial"))
	if err != nil {
		problem(w, http.StatusNotFound, "no such certificate")
		return
	}
	revoked, already, err := h.d.CA.RevokeKey(r.Context(), sn, acct.ID)
	if errors.Is(err, store.ErrNotFound) {
		problem(w, http.StatusNotFound, "no such certificate")
		return
	}
	for _, c := range revoked {
		h.d.Orders.NotifyRevoked(r.Context(), c, acct.ID)
	}
	if err != nil {
		h.fail(w, r, err)
		return
	}
	done := make([]serial.Serial, 0, len(revoked))
	for _, c := range revoked {
		done = append(done, c.Serial)
	}
	if already == nil {
		already = []serial.Serial{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"key_blocked": true, "revoked": done, "already_revoked": already})
}

// Manual Review List.

func (h *Handler) addReviewPattern(w http.ResponseWriter, r *http.Request, acct store.Account) {
	var req struct {
		Pattern string `json:"pattern"`
	}
	if err := decode(w, r, &req); err != nil {
		h.fail(w, r, err)
		return
	}
	// DNS names are case-insensitive: an upper-case pattern is lowered,
	// not refused.
	p := strings.ToLower(strings.TrimSpace(req.Pattern))
	if err := reviewlist.Validate(p); err != nil {
		problem(w, http.StatusBadRequest, err.Error())
		return
	}
	rp := store.ReviewPattern{ID: issuer.NewID("rl_"), Pattern: p, CreatedBy: acct.ID, CreatedAt: h.d.Now()}
	if err := h.d.Store.AddReviewPattern(r.Context(), rp); err != nil {
		if errors.Is(err, store.ErrDuplicate) {
			problem(w, http.StatusConflict, "pattern already listed")
			return
		}
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, map[string]any{"id": rp.ID, "pattern": rp.Pattern})
}

func (h *Handler) listReviewPatterns(w http.ResponseWriter, r *http.Request, _ store.Account) {
	ps, err := h.d.Store.ReviewPatterns(r.Context())
	if err != nil {
		h.fail(w, r, err)
		return
	}
	out := []map[string]any{}
	for _, p := range ps {
		out = append(out, map[string]any{"id": p.ID, "pattern": p.Pattern, "created_at": p.CreatedAt.UTC()})
	}
	writeJSON(w, http.StatusOK, out)
}
