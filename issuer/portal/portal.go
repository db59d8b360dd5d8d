package portal

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"html/template"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/trustline/trustline/internal/issuerid"
	"github.com/trustline/trustline/internal/mail"
	"github.com/trustline/trustline/internal/serial"
	"github.com/trustline/trustline/internal/store"
	"github.com/trustline/trustline/issuer"
	"github.com/trustline/trustline/issuer/pki"
	"github.com/trustline/trustline/issuer/ratelimit"
	"github.com/trustline/trustline/issuer/review"
	"github.com/trustline/trustline/issuer/validation"
)

// Config configures the portal.
type Config struct {
	// BaseURL is the portal's public origin, scheme and host only
	// ("http://127.0.0.1:8080"). Mailed sign-in links point here, and a
	// form may be posted from here as well as from the Host it was sent
	// to. Required: taking it from a request's Host header would let
	// anyone have links to another site mailed to our users.
	BaseURL string
	// SessionLifetime ends a session this long after sign-in; 0 means
	// 8 h. At most 7 days.
	SessionLifetime time.Duration
	// SessionIdle ends a session unused for this long; 0 means 30 min.
	// At most SessionLifetime.
	SessionIdle time.Duration
	// LoginLinkLifetime is how long a mailed sign-in link works (once);
	// 0 means 15 min. At most 1 h: the link is a bearer credential sitting
	// in a mailbox.
	LoginLinkLifetime time.Duration
	// SessionsPerAccount bounds one account's sessions: signing in again
	// ends the account's least recently used sessions beyond it, so that
	// nobody can sign another account out by signing in many times.
	// 0 means 20; at most 1000.
	SessionsPerAccount int
	// MaxSignInLinks bounds the unexpired sign-in links in the store,
	// shared by every API instance: beyond it, link requests are answered
	// as if rate-limited and mail nothing, so a flood of requests cannot
	// grow the table without end. 0 means 10000.
	MaxSignInLinks int
	// FormKey keys the pre-sign-in form tokens (HMAC-SHA256, 32 bytes).
	// Every API instance of a plant must share it, so that a sign-in form
	// served by one is accepted by another; nil means a random key of
	// this process.
	FormKey []byte
	// MaxUpload bounds the body of the Certificates Wizard's form, CSR
	// file included; 0 means 96 KiB, in [16 KiB, 1 MiB]. The CSR itself is
	// bounded by csrcheck.MaxInputSize. Other forms are bounded by
	// MaxForm.
	MaxUpload int64
	// StoreTimeout bounds each store operation of a request
	// (store.WithOpTimeout), so that a hung database gets a 503 page
	// within it rather than a page that never loads. 0 means
	// store.RequestOpTimeout (1.5 s); negative, the store's own bound.
	StoreTimeout time.Duration
	// ACMEDirectory is the ACME directory URL shown on the ACME page,
	// where subscribers also make binding keys; "" hides the page.
	ACMEDirectory string
}

// MaxForm bounds the body of every form but the order form: review notes
// (review.MaxNotes) and evidence fit with room to spare.
const MaxForm = 32 << 10

// Validate checks the configuration.
func (c Config) Validate() error {
	var errs []error
	u, err := url.Parse(c.BaseURL)
	switch {
	case c.BaseURL == "":
		errs = append(errs, errors.New("portal: BaseURL is required"))
	case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
		(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.User != nil:
		errs = append(errs, fmt.Errorf("portal: BaseURL %q must be an http or https origin such as http://127.0.0.1:8080", c.BaseURL))
	}
	if c.SessionLifetime < 0 || c.SessionLifetime > 7*24*time.Hour {
		errs = append(errs, fmt.Errorf("portal: SessionLifetime %v must be in [0, 7 days]", c.SessionLifetime))
	}
	if c.SessionIdle < 0 || (c.SessionIdle > 0 && c.SessionIdle > c.withDefaults().SessionLifetime) {
		errs = append(errs, fmt.Errorf("portal: SessionIdle %v must be positive and at most SessionLifetime", c.SessionIdle))
	}
	if c.LoginLinkLifetime < 0 || c.LoginLinkLifetime > time.Hour {
		errs = append(errs, fmt.Errorf("portal: LoginLinkLifetime %v must be in [0, 1 h]", c.LoginLinkLifetime))
	}
	if c.SessionsPerAccount < 0 || c.SessionsPerAccount > 1000 {
		errs = append(errs, fmt.Errorf("portal: SessionsPerAccount %d must be in [0, 1000]", c.SessionsPerAccount))
	}
	if c.MaxSignInLinks < 0 {
		errs = append(errs, errors.New("portal: MaxSignInLinks must not be negative"))
	}
	if c.MaxUpload != 0 && (c.MaxUpload < 16<<10 || c.MaxUpload > 1<<20) {
		errs = append(errs, fmt.Errorf("portal: MaxUpload %d must be in [16 KiB, 1 MiB]", c.MaxUpload))
	}
	return errors.Join(errs...)
}

func (c Config) withDefaults() Config {
	c.BaseURL = strings.TrimSuffix(c.BaseURL, "/")
	if c.SessionLifetime == 0 {
		c.SessionLifetime = 8 * time.Hour
	}
	if c.SessionIdle == 0 {
		c.SessionIdle = min(30*time.Minute, c.SessionLifetime)
	}
	if c.LoginLinkLifetime == 0 {
		c.LoginLinkLifetime = 15 * time.Minute
	}
	if c.SessionsPerAccount == 0 {
		c.SessionsPerAccount = 20
	}
	if c.MaxSignInLinks == 0 {
		c.MaxSignInLinks = 10000
	}
	if c.MaxUpload == 0 {
		c.MaxUpload = 96 << 10
	}
	if c.StoreTimeout == 0 {
		c.StoreTimeout = store.RequestOpTimeout
	}
	return c
}

// AccountStore is the subset of the store the portal reads accounts with:
// to resolve a session's account on every request (so a role change takes
// effect at once) and to find the account an email sign-in names.
type AccountStore interface {
	Account(ctx context.Context, id string) (store.Account, error)
	AccountsByEmail(ctx context.Context, email string) ([]store.Account, error)
}

// RecordStore is the subset of the store the dashboard and the
// certificate pages read directly.
type RecordStore interface {
	Certificate(ctx context.Context, s serial.Serial) (store.Certificate, error)
	ListOrders(ctx context.Context, f store.OrderFilter) ([]store.Order, error)
	ValidValidations(ctx context.Context, accountID string, now time.Time) ([]store.Validation, error)
	ListValidations(ctx context.Context, accountID string, limit int) ([]store.Validation, error)
}

// Store is all four; the store adapters satisfy it.
type Store interface {
	AccountStore
	RecordStore
	SessionStore
	LinkStore
}

// Revoker revokes certificates (*issuer.CA).
type Revoker interface {
	Revoke(ctx context.Context, r issuer.RevokeRequest) (store.Certificate, error)
}

// Issuers finds the intermediate that issued a certificate, for the chain
// (*pki.PKI).
type Issuers interface {
	Issuer(id issuerid.ID) (*pki.Issuer, bool)
}

// Deps are the services behind the portal: the same ones the JSON API
// uses.
type Deps struct {
	Store       Store
	Accounts    *issuer.Accounts
	Validations *validation.Service
	Orders      *issuer.Orders
	Reviews     *review.Service
	CA          Revoker
	Issuers     Issuers
	Mail        mail.Sender // sign-in links
	// Confirmations mails and follows address confirmation links; nil:
	// none are sent.
	Confirmations *issuer.Confirmations
	// Limits, if set, bound sign-ups and failed sign-ins per source
	// address and per key (the orders and validations services carry
	// their own).
	Limits *ratelimit.Limiter
	// EABKeys makes ACME external account binding keys (*acme.EABKeys);
	// needed with Config.ACMEDirectory.
	EABKeys EABKeyMaker
	Log     *slog.Logger
	Now     func() time.Time // nil: time.Now
	Rand    io.Reader        // nil: crypto/rand
}

// Handler serves the portal at / and the review console at /review.
type Handler struct {
	cfg      Config
	d        Deps
	mux      *http.ServeMux
	pages    map[string]*template.Template
	sessions *sessionTable
	links    *linkTable
	sweeper  *sweeper
	preKey   []byte // HMAC key of the pre-sign-in form tokens
	secure   bool   // BaseURL is https: cookies are always Secure
	origin   string // BaseURL's origin, for the same-origin check
}

// New checks cfg and d and builds the handler.
func New(cfg Config, d Deps) (*Handler, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	if d.Store == nil || d.Accounts == nil || d.Validations == nil || d.Orders == nil || d.Reviews == nil ||
		d.CA == nil || d.Issuers == nil || d.Mail == nil || d.Log == nil {
		return nil, errors.New("portal: Store, Accounts, Validations, Orders, Reviews, CA, Issuers, Mail and Log are all required")
	}
	if cfg.ACMEDirectory != "" && d.EABKeys == nil {
		return nil, errors.New("portal: the ACME page (Config.ACMEDirectory) needs Deps.EABKeys")
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Rand == nil {
		d.Rand = rand.Reader
	}
	pages, err := parsePages()
	if err != nil {
		return nil, err
	}
	h := &Handler{
		cfg: cfg, d: d, mux: http.NewServeMux(), pages: pages,
		sessions: newSessions(d.Store, cfg, d.Rand, d.Log),
		links:    newLinks(d.Store, cfg, d.Rand),
		sweeper:  &sweeper{sessions: d.Store, links: d.Store, log: d.Log},
		preKey:   make([]byte, 32),
		secure:   strings.HasPrefix(cfg.BaseURL, "https://"),
		origin:   cfg.BaseURL,
	}
	if len(cfg.FormKey) > 0 {
		if len(cfg.FormKey) < 32 {
			return nil, errors.New("portal: FormKey must hold at least 32 bytes")
		}
		h.preKey = cfg.FormKey
	} else if _, err := io.ReadFull(d.Rand, h.preKey); err != nil {
		return nil, fmt.Errorf("portal: reading randomness: %w", err)
	}
	h.routes()
	return h, nil
}

func (h *Handler) routes() {
	anyone := []store.Role{store.RoleSubscriber, store.RoleReviewer, store.RoleAdmin}
	reviewer := []store.Role{store.RoleReviewer}
	m := h.mux
	m.HandleFunc("GET /static/portal.css", serveCSS)
	m.HandleFunc("GET /{$}", h.home)
	m.HandleFunc("POST /signin", h.anon(h.signIn))
	m.HandleFunc("POST /signin/email", h.anon(h.requestLink))
	m.HandleFunc("GET /signin/link", h.linkPage)
	m.HandleFunc("POST /signin/link", h.anon(h.redeemLink))
	m.HandleFunc("POST /signup", h.anon(h.signUp))
	m.HandleFunc("GET "+issuer.ConfirmPath, h.confirmEmail)
	m.Handle("POST /signout", h.user(anyone, h.signOut))

	m.Handle("GET /validations/new", h.user(anyone, h.newValidation))
	m.Handle("POST /validations", h.user(anyone, h.startValidation))
	m.Handle("GET /validations/{id}", h.user(anyone, h.showValidation))
	m.Handle("POST /validations/{id}/confirm", h.user(anyone, h.confirmValidation))

	m.Handle("GET /orders/new", h.user(anyone, h.newOrder))
	m.Handle("POST /orders", h.upload(anyone, h.createOrder))
	m.Handle("GET /orders/{id}", h.user(anyone, h.showOrder))

	m.Handle("GET /certificates/{serial}", h.user(anyone, h.showCertificate))
	m.Handle("GET /certificates/{serial}/chain.pem", h.user(anyone, h.downloadChain))
	m.Handle("POST /certificates/{serial}/revoke", h.user(anyone, h.revoke))

	if h.cfg.ACMEDirectory != "" {
		m.Handle("GET /account/acme", h.user(anyone, h.acmePage))
		m.Handle("POST /account/acme/keys", h.user(anyone, h.makeEABKey))
	}

	m.Handle("GET /review", h.user(reviewer, h.reviewQueue))
	m.Handle("GET /review/orders/{id}", h.user(reviewer, h.reviewOrder))
	m.Handle("POST /review/orders/{id}/approve", h.user(reviewer, h.approve))
	m.Handle("POST /review/orders/{id}/reject", h.user(reviewer, h.reject))

	m.HandleFunc("/", h.notFound)
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	// No script, no frame, nothing from elsewhere: the pages need none.
	hd.Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("X-Frame-Options", "DENY")
	// Sign-in links carry their token in the query: keep URLs off other
	// sites' logs.
	hd.Set("Referrer-Policy", "same-origin")
	if r.URL.Path != "/static/portal.css" {
		hd.Set("Cache-Control", "no-store")
	}
	if h.cfg.StoreTimeout > 0 {
		r = r.WithContext(store.WithOpTimeout(r.Context(), h.cfg.StoreTimeout))
	}
	h.mux.ServeHTTP(w, r)
}

// now is the injected clock.
func (h *Handler) now() time.Time { return h.d.Now() }
