// Package validation is Trustline's domain-control validation (seed steps
// 2–3): the BR §3.2.2.4 methods a subscriber proves control of a domain
// with — Constructed Email to Domain Contact (§3.2.2.4.4), DNS Change
// (§3.2.2.4.7), Agreed-Upon Change to Website v2 (§3.2.2.4.18) and, only
// when configured, the retired WHOIS email (§3.2.2.4.2) — and the evidence
// each leaves: method, contact, the random value's hash, times and
// attempts. It also says which names of an order an account's valid
// validations cover (BR §3.2.2.4, and §3.2.2.6 for wildcards) during the
// reuse period of BR §4.2.1.
//
// It reads and writes validations through the small Store it declares,
// mails through internal/mail, and reaches the network (DNS, HTTP, WHOIS)
// only through its configured resolver and dialer. Its errors for the
// subscriber are issuer/fault's.
//
// Who may import it: the edges (issuer/api, issuer/portal), cmd/trustline
// and the base package issuer (whose metrics name the methods). Orders and
// the review queue use it through their own Coverage interfaces. It
// imports only leaves of issuer/ (csrcheck, profile, fault) — never the
// base package, the review queue or the edges — and signs nothing.
package validation

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base32"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/trustline/trustline/internal/humanize"
	"github.com/trustline/trustline/internal/mail"
	"github.com/trustline/trustline/internal/store"
	"github.com/trustline/trustline/issuer/csrcheck"
	"github.com/trustline/trustline/issuer/fault"
	"github.com/trustline/trustline/issuer/mpic"
	"github.com/trustline/trustline/issuer/profile"
	"github.com/trustline/trustline/issuer/ratelimit"
)

// Store is the subset of the store validations use.
type Store interface {
	CreateValidation(ctx context.Context, v store.Validation) error
	Validation(ctx context.Context, id string) (store.Validation, error)
	UpdateValidation(ctx context.Context, v store.Validation) (store.Validation, error)
	ValidValidations(ctx context.Context, accountID string, now time.Time) ([]store.Validation, error)
	// ListValidations lists the account's newest validations (limit 0:
	// all), for the limit on pending ones.
	ListValidations(ctx context.Context, accountID string, limit int) ([]store.Validation, error)
}

// Validation methods, as the API and the store spell them.
const (
	MethodEmail      = "email"       // BR §3.2.2.4.4 Constructed Email to Domain Contact
	MethodDNSTXT     = "dns-txt"     // BR §3.2.2.4.7 DNS Change
	MethodHTTPToken  = "http-token"  // BR §3.2.2.4.18 Agreed-Upon Change to Website v2
	MethodWhoisEmail = "whois-email" // the seed's step 3; BR §3.2.2.4.2, retired
)

// ConstructedLocalParts are the addresses BR §3.2.2.4.4 lets a CA mail:
// admin, administrator, webmaster, hostmaster or postmaster @ the domain.
var ConstructedLocalParts = []string{"admin", "administrator", "webmaster", "hostmaster", "postmaster"}

const (
	// CodeBits is the entropy of a mailed code and of a published random
	// value: BR §1.6.1 asks at least 112 bits of a Random Value.
	CodeBits = 130
	// CodeLifetime: a pending emailed validation dies after this; BR
	// §3.2.2.4.4 allows a Random Value to be used for at most 30 days.
	CodeLifetime = 24 * time.Hour
	// MaxAttempts bounds failed confirmations (a wrong code, a missing
	// record or file) before the validation is dead.
	MaxAttempts = 5
	// DNSRecordLabel prefixes the domain to name the TXT record dns-txt
	// looks up. BR §3.2.2.4.7 accepts the Authorization Domain Name itself
	// or one "prefixed with a Domain Label that begins with an underscore";
	// a label of its own keeps the value clear of the domain's SPF and
	// other TXT records.
	DNSRecordLabel = "_pki-validation"
	// WellKnownPath is where http-token files live (BR §3.2.2.4.18).
	WellKnownPath = "/.well-known/pki-validation/"
)

// Config configures the methods that reach out to the network.
// The zero value offers email only.
type Config struct {
	// Resolver is the recursive DNS resolver, host:port, that dns-txt asks
	// and http-token resolves names through. Empty turns both methods off.
	Resolver string
	// DNSTransport is "udp" (the default; a truncated answer is asked
	// again over TCP) or "tcp".
	DNSTransport string
	// DNSTimeout bounds one DNS exchange; 0 means 5 s.
	DNSTimeout time.Duration
	// HTTPPort and HTTPSPort are the ports http-token fetches from and
	// follows redirects to; 0 means 80 and 443, the BR Authorized Ports
	// for the two schemes (BR §1.6.1). Only tests change them.
	HTTPPort  int
	HTTPSPort int
	// HTTPTimeout bounds one whole fetch, redirects included; 0 means 10 s.
	HTTPTimeout time.Duration
	// MaxRedirects bounds the redirects http-token follows, in [0, 10];
	// -1 means none, 0 means the default, 5.
	MaxRedirects int
	// AllowPrivateAddresses lets http-token and WHOIS referrals connect to
	// loopback, private and link-local addresses. For tests and dev only:
	// in production it would let a subscriber aim the CA at its own
	// network.
	AllowPrivateAddresses bool
	// WhoisEmail offers whois-email: the code is mailed to a contact that
	// WhoisServer lists for the domain (the seed's step 3). Off by default:
	// the BR stopped accepting WHOIS-derived domain contacts in 2025.
	WhoisEmail bool
	// WhoisServer is host:port of the WHOIS server asked first (RFC 3912;
	// "whois.iana.org:43"); required with WhoisEmail. Referrals it gives
	// are followed on port 43, at most twice.
	WhoisServer string
	// WhoisTimeout bounds one WHOIS query; 0 means 10 s.
	WhoisTimeout time.Duration
	// ChallengeLifetime is how long a dns-txt or http-token random value
	// may be confirmed; 0 means 7 days. At most 30 days (BR §3.2.2.4.7,
	// §3.2.2.4.18).
	ChallengeLifetime time.Duration
}

const maxChallengeLifetime = 30 * 24 * time.Hour

// Validate checks the configuration.
func (c Config) Validate() error {
	var errs []error
	if c.Resolver != "" {
		if _, _, err := net.SplitHostPort(c.Resolver); err != nil {
			errs = append(errs, fmt.Errorf("validation: Resolver %q must be host:port", c.Resolver))
		}
	}
	switch c.DNSTransport {
	case "", "udp", "tcp":
	default:
		errs = append(errs, fmt.Errorf("validation: DNSTransport %q: want udp or tcp", c.DNSTransport))
	}
	for name, p := range map[string]int{"HTTPPort": c.HTTPPort, "HTTPSPort": c.HTTPSPort} {
		if p < 0 || p > 65535 {
			errs = append(errs, fmt.Errorf("validation: %s %d out of range", name, p))
		}
	}
	if c.MaxRedirects < -1 || c.MaxRedirects > 10 {
		errs = append(errs, fmt.Errorf("validation: MaxRedirects %d out of range [-1, 10]", c.MaxRedirects))
	}
	if c.DNSTimeout < 0 || c.HTTPTimeout < 0 || c.WhoisTimeout < 0 {
		errs = append(errs, errors.New("validation: validation timeouts must not be negative"))
	}
	if c.ChallengeLifetime < 0 || c.ChallengeLifetime > maxChallengeLifetime {
		errs = append(errs, fmt.Errorf("validation: ChallengeLifetime %s must be in [0, 30 days] (BR 3.2.2.4.7)", humanize.Duration(c.ChallengeLifetime)))
	}
	if c.WhoisEmail {
		if _, _, err := net.SplitHostPort(c.WhoisServer); err != nil {
			errs = append(errs, fmt.Errorf("validation: WhoisEmail needs WhoisServer as host:port, not %q", c.WhoisServer))
		}
	}
	return errors.Join(errs...)
}

func (c Config) withDefaults() Config {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&c.DNSTimeout, 5*time.Second)
	def(&c.HTTPTimeout, 10*time.Second)
	def(&c.WhoisTimeout, 10*time.Second)
	def(&c.ChallengeLifetime, 7*24*time.Hour)
	if c.DNSTransport == "" {
		c.DNSTransport = "udp"
	}
	if c.HTTPPort == 0 {
		c.HTTPPort = 80
	}
	if c.HTTPSPort == 0 {
		c.HTTPSPort = 443
	}
	switch c.MaxRedirects {
	case 0:
		c.MaxRedirects = 5
	case -1:
		c.MaxRedirects = 0
	}
	return c
}

// DialFunc opens a network connection, as net.Dialer.DialContext does.
type DialFunc func(ctx context.Context, network, address string) (net.Conn, error)

// Deps are the validation service's collaborators.
type Deps struct {
	Store Store
	Mail  mail.Sender
	Log   *slog.Logger // nil: discard
	Now   func() time.Time
	Rand  io.Reader
	// Dial, if set, replaces the dialer http-token and WHOIS connect
	// with (tests point it at loopback servers). By default connections
	// resolve names through Resolver and, unless AllowPrivateAddresses,
	// refuse non-public addresses.
	Dial DialFunc
	// Metrics, optional, counts validations started, completed and
	// failed by method.
	Metrics Metrics
	// Limits, if set, bound the validations an account starts (per
	// account, per domain, pending at once) and the mails sent to one
	// address.
	Limits *ratelimit.Limiter
	// Corroborator, if set, asks remote network perspectives to repeat
	// every dns-txt and http-token check the primary passed, and a
	// validation completes only when enough of them corroborate (BR
	// §3.2.2.9). nil: this process is the only perspective.
	Corroborator mpic.Corroborator
}

// Metrics counts validations by method; *issuer.Metrics is one.
type Metrics interface {
	ValidationStarted(method string)
	ValidationCompleted(method string)
	ValidationFailed(method string)
}

// uncounted is the Metrics of a service given none.
type uncounted struct{}

func (uncounted) ValidationStarted(string)   {}
func (uncounted) ValidationCompleted(string) {}
func (uncounted) ValidationFailed(string)    {}

// Service runs domain validation (seed steps 2–3) and keeps the evidence
// of each: method, random value (hashed), time and contact.
type Service struct {
	cfg   Config
	store Store
	mail  mail.Sender
	now   func() time.Time
	rand  io.Reader
	log   *slog.Logger
	dns   *txtLookup         // nil: dns-txt off
	web   *tokenFetcher      // nil: http-token off
	alpn  *alpnProber        // nil: ACME tls-alpn-01 off
	whois *whoisResolver     // nil: whois-email off
	mpic  mpic.Corroborator  // nil: no remote perspectives
	limit *ratelimit.Limiter // nil: no limits

	metrics Metrics
}

// NewEmailOnly builds a validation service that offers email only.
func NewEmailOnly(st Store, m mail.Sender, now func() time.Time) *Service {
	return newService(Config{}, Deps{Store: st, Mail: m, Now: now})
}

// New checks cfg and builds the validation service with the methods cfg
// turns on.
func New(cfg Config, d Deps) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if d.Store == nil || d.Mail == nil {
		return nil, errors.New("validation: validations need a Store and a Mail sender")
	}
	return newService(cfg, d), nil
}

func newService(cfg Config, d Deps) *Service {
	cfg = cfg.withDefaults()
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Rand == nil {
		d.Rand = rand.Reader
	}
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	if d.Metrics == nil {
		d.Metrics = uncounted{}
	}
	v := &Service{cfg: cfg, store: d.Store, mail: d.Mail, now: d.Now, rand: d.Rand, log: d.Log, metrics: d.Metrics, mpic: d.Corroborator, limit: d.Limits}
	public, direct := d.Dial, d.Dial
	if d.Dial == nil {
		public = guardedDialer(cfg.Resolver, cfg.AllowPrivateAddresses)
		direct = (&net.Dialer{}).DialContext
	}
	if cfg.Resolver != "" {
		v.dns = &txtLookup{server: cfg.Resolver, transport: cfg.DNSTransport, timeout: cfg.DNSTimeout}
		v.web = newTokenFetcher(cfg, public)
		v.alpn = &alpnProber{dial: public, port: cfg.HTTPSPort, timeout: cfg.HTTPTimeout}
	}
	if cfg.WhoisEmail {
		// The configured server is the operator's choice and is reached
		// directly; referrals come from the network and go through the
		// guarded dialer.
		v.whois = &whoisResolver{server: cfg.WhoisServer, timeout: cfg.WhoisTimeout, direct: direct, referral: public}
	}
	return v
}

// Methods lists the validation methods on offer.
func (v *Service) Methods() []string {
	ms := []string{MethodEmail}
	if v.dns != nil {
		ms = append(ms, MethodDNSTXT, MethodHTTPToken)
	}
	if v.whois != nil {
		ms = append(ms, MethodWhoisEmail)
	}
	return ms
}

// NormalizeDomain lowercases and checks a domain to validate. Only ASCII
// letters are lowercased: strings.ToLower would turn the Kelvin sign
// (U+212A) into "k" and accept a name the subscriber did not type.
func NormalizeDomain(d string) (string, error) {
	d = asciiLower(strings.TrimSuffix(strings.TrimSpace(d), "."))
	if strings.HasPrefix(d, "*.") {
		return "", &fault.InputError{Detail: "validate the base domain, not a wildcard name"}
	}
	if err := csrcheck.CheckName(d); err != nil {
		return "", &fault.InputError{Detail: err.Error()}
	}
	return d, nil
}

// StartRequest asks for a new validation.
type StartRequest struct {
	Domain string
	Method string
	// Email is the address to mail: required for email, optional for
	// whois-email (default: the domain's admin contact).
	Email string
}

// Start begins a validation by any offered method.
func (v *Service) Start(ctx context.Context, acct store.Account, r StartRequest) (store.Validation, error) {
	offered := v.Methods()
	if r.Method == "" {
		return store.Validation{}, &fault.InputError{Detail: fmt.Sprintf("method is required (%s)", strings.Join(offered, ", "))}
	}
	if !contains(offered, r.Method) {
		return store.Validation{}, &fault.InputError{Detail: fmt.Sprintf("validation method %q is not offered (offered: %s)",
			truncate(r.Method, 32), strings.Join(offered, ", "))}
	}
	switch r.Method {
	case MethodEmail:
		return v.StartEmail(ctx, acct, r.Domain, r.Email)
	case MethodDNSTXT, MethodHTTPToken:
		return v.startPublished(ctx, acct, r.Domain, r.Method)
	default:
		return v.startWhois(ctx, acct, r.Domain, r.Email)
	}
}

// StartEmail begins an email validation (BR §3.2.2.4.4): a random code is
// mailed to a constructed address at the domain; only its hash is stored.
func (v *Service) StartEmail(ctx context.Context, acct store.Account, domain, address string) (store.Validation, error) {
	domain, err := NormalizeDomain(domain)
	if err != nil {
		return store.Validation{}, err
	}
	addr := strings.ToLower(strings.TrimSpace(address))
	local, at, ok := strings.Cut(addr, "@")
	if !ok || at != domain || !contains(ConstructedLocalParts, local) {
		return store.Validation{}, &fault.InputError{Detail: fmt.Sprintf(
			"email must be one of %s@%s (BR 3.2.2.4.4 constructed addresses)", strings.Join(ConstructedLocalParts, "|"), domain)}
	}
	return v.mailCode(ctx, acct, domain, MethodEmail, addr, nil)
}

// mailCode records a code validation and mails the code to addr. Only the
// code's hash is stored. startEvidence (JSON object or nil) is kept and
// completed when the code is confirmed.
func (v *Service) mailCode(ctx context.Context, acct store.Account, domain, method, addr string, startEvidence []byte) (store.Validation, error) {
	if err := v.admit(ctx, acct, domain); err != nil {
		return store.Validation{}, err
	}
	if err := v.limit.Mail(ctx, addr); err != nil {
		return store.Validation{}, err
	}
	code, err := v.randomValue()
	if err != nil {
		return store.Validation{}, err
	}
	now := v.now()
	sum := sha256.Sum256([]byte(code))
	val := store.Validation{
		ID: newID("val_"), AccountID: acct.ID, Domain: domain, Method: method, Contact: addr,
		Secret: sum[:], Status: store.ValidationPending, CreatedAt: now, ExpiresAt: now.Add(CodeLifetime),
		Evidence: startEvidence,
	}
	if err := v.store.CreateValidation(ctx, val); err != nil {
		return store.Validation{}, fmt.Errorf("validation: creating validation: %w", err)
	}
	v.metrics.ValidationStarted(method)
	msg := mail.Message{
		To:      addr,
		Subject: "Confirm control of " + domain,
		Body: fmt.Sprintf("Someone asked Trustline to issue certificates for %s.\n"+
			"If that was you or your organisation, paste this code on the validation page:\n\n"+
			"Validation code: %s\n\nThe code works for %s, until %s. If you did not ask for this, ignore this message.\n\n"+
			"Validation id: %s\n",
			domain, code, humanize.Duration(CodeLifetime), val.ExpiresAt.UTC().Format(time.RFC1123), val.ID),
	}
	if err := v.mail.Send(ctx, msg); err != nil {
		// Nobody can ever confirm it: retire the row rather than leave a
		// pending validation behind.
		val.Status = store.ValidationInvalid
		if _, uerr := v.store.UpdateValidation(context.WithoutCancel(ctx), val); uerr != nil {
			v.log.Error("cannot retire validation after a mail failure", "validation", val.ID, "err", uerr)
		}
		v.metrics.ValidationFailed(method)
		return store.Validation{}, fmt.Errorf("validation: mailing validation code: %w", err)
	}
	return val, nil
}

// startPublished begins a dns-txt or http-token validation: the subscriber
// publishes a fresh random value (BR §3.2.2.4.7, §3.2.2.4.18) and then
// asks the CA to look. The value is stored as is: it is public once
// published.
func (v *Service) startPublished(ctx context.Context, acct store.Account, domain, method string) (store.Validation, error) {
	domain, err := NormalizeDomain(domain)
	if err != nil {
		return store.Validation{}, err
	}
	if err := v.admit(ctx, acct, domain); err != nil {
		return store.Validation{}, err
	}
	value, err := v.randomValue()
	if err != nil {
		return store.Validation{}, err
	}
	contact := DNSRecordLabel + "." + domain
	if method == MethodHTTPToken {
		// BR §3.2.2.4.18: the random value must not appear in the request,
		// so the file is named by a separate token.
		token := make([]byte, 16)
		if _, err := io.ReadFull(v.rand, token); err != nil {
			return store.Validation{}, fmt.Errorf("validation: reading randomness: %w", err)
		}
		contact = "http://" + domain + WellKnownPath + hex.EncodeToString(token)
	}
	now := v.now()
	val := store.Validation{
		ID: newID("val_"), AccountID: acct.ID, Domain: domain, Method: method, Contact: contact,
		Secret: []byte(value), Status: store.ValidationPending, CreatedAt: now, ExpiresAt: now.Add(v.cfg.ChallengeLifetime),
	}
	if err := v.store.CreateValidation(ctx, val); err != nil {
		return store.Validation{}, fmt.Errorf("validation: creating validation: %w", err)
	}
	v.metrics.ValidationStarted(method)
	return val, nil
}

// admit applies the limits on starting a validation: per account and
// per domain in a window, and the pending ones at once.
func (v *Service) admit(ctx context.Context, acct store.Account, domain string) error {
	if v.limit == nil {
		return nil
	}
	if max := v.limit.Config().PendingValidationsPerAccount; max > 0 {
		recent, err := v.store.ListValidations(ctx, acct.ID, max)
		if err != nil {
			return fmt.Errorf("validation: counting pending validations: %w", err)
		}
		now, pending := v.now(), 0
		for _, r := range recent {
			if r.Status == store.ValidationPending && now.Before(r.ExpiresAt) {
				pending++
			}
		}
		if err := v.limit.Pending(pending); err != nil {
			return err
		}
	}
	return v.limit.Validation(ctx, acct.ID, domain)
}

// randomValue returns CodeBits of randomness in base32 without padding:
// easy to paste, and safe in a TXT record or a file.
func (v *Service) randomValue() (string, error) {
	b := make([]byte, (CodeBits+7)/8)
	if _, err := io.ReadFull(v.rand, b); err != nil {
		return "", fmt.Errorf("validation: reading randomness: %w", err)
	}
	return base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b), nil
}

// Publication says what a subscriber must publish for a pending dns-txt
// or http-token validation.
type Publication struct {
	RecordName string // dns-txt: the TXT record's owner name
	URL        string // http-token: where the file must be served
	Value      string // the random value to publish
}

// PublicationOf returns what to publish for v, and false for the methods
// that publish nothing or once v is no longer pending.
func PublicationOf(v store.Validation) (Publication, bool) {
	if v.Status != store.ValidationPending {
		return Publication{}, false
	}
	switch v.Method {
	case MethodDNSTXT:
		return Publication{RecordName: v.Contact, Value: string(v.Secret)}, true
	case MethodHTTPToken, MethodACMEHTTP01:
		return Publication{URL: v.Contact, Value: string(v.Secret)}, true
	case MethodACMEDNS01:
		return Publication{RecordName: v.Contact, Value: dns01Value(string(v.Secret))}, true
	}
	return Publication{}, false
}

// RandomValueSHA256 is the hex SHA-256 of v's random value or code: what
// evidence shows instead of the value.
func RandomValueSHA256(v store.Validation) string {
	switch v.Method {
	case MethodDNSTXT, MethodHTTPToken, MethodACMEHTTP01, MethodACMEDNS01, MethodACMETLSALPN01:
		sum := sha256.Sum256(v.Secret)
		return hex.EncodeToString(sum[:])
	}
	return hex.EncodeToString(v.Secret) // codes are stored hashed already
}

// Get returns a validation the account owns.
func (v *Service) Get(ctx context.Context, acct store.Account, id string) (store.Validation, error) {
	val, err := v.store.Validation(ctx, id)
	if errors.Is(err, store.ErrNotFound) || (err == nil && val.AccountID != acct.ID) {
		return store.Validation{}, &fault.NotFoundError{Detail: "no such validation"}
	}
	if err != nil {
		return store.Validation{}, fmt.Errorf("validation: reading validation: %w", err)
	}
	return val, nil
}

// Confirm completes a validation: email methods check the mailed code;
// dns-txt and http-token take no code and make the CA look for the
// published value. Every method allows MaxAttempts failures before the
// validation dies, and none works after it expires.
func (v *Service) Confirm(ctx context.Context, acct store.Account, id, code string) (store.Validation, error) {
	val, err := v.Get(ctx, acct, id)
	if err != nil {
		return store.Validation{}, err
	}
	switch val.Method {
	case MethodEmail, MethodWhoisEmail:
		if strings.TrimSpace(code) == "" {
			return store.Validation{}, &fault.InputError{Detail: "code is required: paste the code from the email"}
		}
		return v.confirmCode(ctx, acct, id, code)
	case MethodDNSTXT, MethodHTTPToken:
		if strings.TrimSpace(code) != "" {
			return store.Validation{}, &fault.InputError{Detail: val.Method + " validations take no code: publish the value, then confirm with an empty body"}
		}
		return v.confirmPublished(ctx, acct, id)
	}
	return store.Validation{}, &fault.InputError{Detail: fmt.Sprintf("validation method %q cannot be confirmed here", val.Method)}
}

// gate settles the states in which a confirmation cannot proceed; it
// returns done=true with the answer to give. An expired pending
// validation is retired (retry=true when that update lost a race).
func (v *Service) gate(ctx context.Context, val store.Validation, now time.Time) (done, retry bool, err error) {
	switch {
	case val.Status == store.ValidationValid:
		return true, false, &fault.ConflictError{Detail: "this validation is already complete; codes work once"}
	case val.Status != store.ValidationPending:
		return true, false, &fault.ConflictError{Detail: "this validation has failed; start a new one"}
	case !now.Before(val.ExpiresAt):
		val.Status = store.ValidationInvalid
		_, err := v.store.UpdateValidation(ctx, val)
		if errors.Is(err, store.ErrConflict) {
			return true, true, nil
		}
		if err == nil {
			v.metrics.ValidationFailed(val.Method)
		}
		return true, false, &fault.ConflictError{Detail: "this validation has expired; start a new one"}
	}
	return false, false, nil
}

// failAttempt records a failed confirmation, keeping what went wrong in
// the evidence as "last_failure", and phrases the answer from f.Detail.
// retry=true: the update lost a race, read again.
func (v *Service) failAttempt(ctx context.Context, val store.Validation, f *checkFailure) (retry bool, err error) {
	why := f.Detail
	internal := f.Internal
	if internal == "" {
		internal = why
	}
	val.Evidence = withEvidence(val.Evidence, "last_failure", lastFailure{At: v.now().UTC(), Method: val.Method, Detail: why, DetailForReviewers: internal})
	v.log.Info("validation attempt failed", "validation", val.ID, "method", val.Method, "detail", internal)
	val.Attempts++
	if val.Attempts >= MaxAttempts {
		val.Status = store.ValidationInvalid
	}
	if _, err := v.store.UpdateValidation(ctx, val); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return true, nil
		}
		return false, fmt.Errorf("validation: recording attempt: %w", err)
	}
	if val.Status == store.ValidationInvalid {
		v.metrics.ValidationFailed(val.Method)
		return false, &fault.InputError{Detail: why + "; no attempts left, start a new validation"}
	}
	return false, &fault.InputError{Detail: fmt.Sprintf("%s; %d attempt(s) left", why, MaxAttempts-val.Attempts)}
}

// complete marks val valid with its evidence. retry=true: lost a race.
func (v *Service) complete(ctx context.Context, val store.Validation, now time.Time, evidence map[string]any) (store.Validation, bool, error) {
	base := map[string]any{}
	if len(val.Evidence) > 0 {
		_ = json.Unmarshal(val.Evidence, &base) // what the start recorded
	}
	for k, x := range evidence {
		base[k] = x
	}
	// issuer/api shows a valid validation's evidence to its subscriber:
	// the raw error of an earlier failed attempt stays behind.
	if lf, ok := base["last_failure"].(map[string]any); ok {
		delete(lf, "detail_for_reviewers")
	}
	base["method"], base["contact"] = val.Method, val.Contact
	base["random_value_sha256"] = RandomValueSHA256(val)
	base["created_at"], base["confirmed_at"], base["attempts"] = val.CreatedAt.UTC(), now.UTC(), val.Attempts+1
	val.Status = store.ValidationValid
	val.ValidatedAt = now
	val.ValidUntil = now.Add(profile.ReusePeriod(now))
	val.Evidence, _ = json.Marshal(base)
	updated, err := v.store.UpdateValidation(ctx, val)
	if errors.Is(err, store.ErrConflict) {
		return store.Validation{}, true, nil
	}
	if err != nil {
		return store.Validation{}, false, fmt.Errorf("validation: completing validation: %w", err)
	}
	v.metrics.ValidationCompleted(val.Method)
	return updated, false, nil
}

// confirmCode checks a mailed code. A code works once, before it expires,
// and only within MaxAttempts tries.
func (v *Service) confirmCode(ctx context.Context, acct store.Account, id, code string) (store.Validation, error) {
	for {
		val, err := v.Get(ctx, acct, id)
		if err != nil {
			return store.Validation{}, err
		}
		now := v.now()
		if done, retry, err := v.gate(ctx, val, now); retry {
			continue
		} else if done {
			return store.Validation{}, err
		}
		sum := sha256.Sum256([]byte(strings.ToUpper(strings.TrimSpace(code))))
		if subtle.ConstantTimeCompare(sum[:], val.Secret) != 1 {
			if retry, err := v.failAttempt(ctx, val, &checkFailure{Detail: "wrong code"}); retry {
				continue
			} else {
				return store.Validation{}, err
			}
		}
		ev := map[string]any{"br_section": "3.2.2.4.4", "sent_at": val.CreatedAt.UTC()}
		if val.Method == MethodWhoisEmail {
			ev["br_section"] = "3.2.2.4.2 (retired)"
		}
		updated, retry, err := v.complete(ctx, val, now, ev)
		if retry {
			continue // a concurrent confirm: re-read and report what happened
		}
		return updated, err
	}
}

// confirmPublished looks for the published random value of a dns-txt or
// http-token validation. Confirming a validation that is already valid
// answers it again: the call has no code to reuse.
func (v *Service) confirmPublished(ctx context.Context, acct store.Account, id string) (store.Validation, error) {
	for {
		val, err := v.Get(ctx, acct, id)
		if err != nil {
			return store.Validation{}, err
		}
		if val.Status == store.ValidationValid {
			return val, nil
		}
		now := v.now()
		if done, retry, err := v.gate(ctx, val, now); retry {
			continue
		} else if done {
			return store.Validation{}, err
		}
		var evidence map[string]any
		switch val.Method {
		case MethodACMEHTTP01, MethodACMEDNS01, MethodACMETLSALPN01:
			evidence, err = v.checkACME(ctx, val)
		case MethodDNSTXT:
			if v.dns == nil {
				return store.Validation{}, &fault.UnavailableError{Detail: "dns-txt validation is not configured on this server"}
			}
			evidence, err = v.dns.check(ctx, val.Contact, string(val.Secret))
		default:
			if v.web == nil {
				return store.Validation{}, &fault.UnavailableError{Detail: "http-token validation is not configured on this server"}
			}
			evidence, err = v.web.check(ctx, val.Contact, string(val.Secret))
		}
		if err == nil && v.mpic != nil {
			var o mpic.Outcome
			o, err = v.corroborate(ctx, val)
			if err == nil {
				evidence["mpic"] = o
			} else {
				val.Evidence = withOutcome(val.Evidence, o)
			}
		}
		var miss *checkFailure
		if errors.As(err, &miss) {
			if retry, err := v.failAttempt(ctx, val, miss); retry {
				continue
			} else {
				return store.Validation{}, err
			}
		}
		if err != nil {
			return store.Validation{}, err
		}
		updated, retry, err := v.complete(ctx, val, v.now(), evidence)
		if retry {
			continue
		}
		return updated, err
	}
}

// checkFailure: the published value was not found (a subscriber-side
// failure; it costs an attempt). Other errors are the CA's own.
type checkFailure struct {
	// Detail is what the subscriber is told: what to fix, in words that
	// reveal nothing of the CA's network.
	Detail string
	// Internal, if set, is the raw error behind Detail, for reviewers
	// only (the validation's evidence while it is pending).
	Internal string
}

func (e *checkFailure) Error() string { return e.Detail }

// lastFailure is the evidence a failed attempt leaves.
type lastFailure struct {
	At                 time.Time `json:"at"`
	Method             string    `json:"method"`
	Detail             string    `json:"detail"`
	DetailForReviewers string    `json:"detail_for_reviewers"`
}

// withEvidence returns the JSON object val with key set to x; val is
// returned as is if the result cannot be encoded.
func withEvidence(val []byte, key string, x any) []byte {
	base := map[string]any{}
	if len(val) > 0 {
		_ = json.Unmarshal(val, &base)
	}
	base[key] = x
	out, err := json.Marshal(base)
	if err != nil {
		return val
	}
	return out
}

// Uncovered returns the names that no valid validation of the account
// covers at now.
func (v *Service) Uncovered(ctx context.Context, accountID string, names []string) ([]string, error) {
	cov, err := v.Covering(ctx, accountID, names)
	if err != nil {
		return nil, err
	}
	var out []string
	for i, n := range names {
		if cov[i] == nil {
			out = append(out, n)
		}
	}
	return out, nil
}

// Covering returns, for each name, the account's newest valid validation
// that covers it at now, or nil. A validation is relied on only within the
// reuse period in force now (BR §4.2.1, profile.ReusePeriod), counted from
// when it was completed: the ValidUntil stored at completion is an upper
// bound, and a schedule step since (200 days to 100 on 2027-03-15, to 10
// on 2029-03-15) shortens it.
func (v *Service) Covering(ctx context.Context, accountID string, names []string) ([]*store.Validation, error) {
	now := v.now()
	vals, err := v.store.ValidValidations(ctx, accountID, now)
	if err != nil {
		return nil, fmt.Errorf("validation: reading validations: %w", err)
	}
	vals = slices.DeleteFunc(vals, func(val store.Validation) bool { return !Reusable(val, now) })
	out := make([]*store.Validation, len(names))
	for i, n := range names {
		for j := range vals {
			if covers(vals[j], n) && (out[i] == nil || vals[j].ValidatedAt.After(out[i].ValidatedAt)) {
				out[i] = &vals[j]
			}
		}
	}
	return out, nil
}

// Reusable reports whether a valid validation may still be relied on for
// a certificate issued at now: completed no longer ago than the reuse
// period in force at now, and before its stored ValidUntil.
func Reusable(val store.Validation, now time.Time) bool {
	return val.Status == store.ValidationValid && now.Before(val.ValidUntil) &&
		!val.ValidatedAt.IsZero() && now.Sub(val.ValidatedAt) <= profile.ReusePeriod(now)
}

// ReusableUntil is when a valid validation stops covering its domain if
// the reuse period in force at now still holds then: the earlier of its
// stored ValidUntil and its completion plus that period. (A later step of
// the BR schedule can only shorten it.)
func ReusableUntil(val store.Validation, now time.Time) time.Time {
	if end := val.ValidatedAt.Add(profile.ReusePeriod(now)); end.Before(val.ValidUntil) {
		return end
	}
	return val.ValidUntil
}

// covers applies BR §3.2.2.4's table of what a method's validation of an
// Authorization Domain Name reaches: email, WHOIS email, dns-txt and ACME
// dns-01 cover the domain and every name under it; only the two DNS
// methods cover wildcards (BR §3.2.2.6); http-token, ACME http-01 and
// tls-alpn-01 cover exactly the FQDN they reached (BR §3.2.2.4.18,
// §3.2.2.4.19, §3.2.2.4.20).
func covers(v store.Validation, name string) bool {
	wild := strings.HasPrefix(name, "*.")
	base := strings.TrimPrefix(name, "*.")
	dnsMethod := v.Method == MethodDNSTXT || v.Method == MethodACMEDNS01
	switch {
	case wild && !dnsMethod:
		return false
	case v.Method == MethodHTTPToken || v.Method == MethodACMEHTTP01 || v.Method == MethodACMETLSALPN01:
		return base == v.Domain
	}
	return base == v.Domain || strings.HasSuffix(base, "."+v.Domain)
}

// newID returns a random, URL-safe validation id (96 bits: unguessable,
// so ids in URLs reveal nothing), as issuer.NewID makes account and order
// ids.
func newID(prefix string) string {
	b := make([]byte, 12)
	rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

func asciiLower(s string) string {
	return strings.Map(func(r rune) rune {
		if 'A' <= r && r <= 'Z' {
			return r + ('a' - 'A')
		}
		return r
	}, s)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
