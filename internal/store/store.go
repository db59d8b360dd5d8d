// Package store holds the CA's state: accounts and API keys, domain
// validations, orders and their reviews, reserved serials, certificates and
// their revocation, CRL shard state and leases, the hash-chained audit log
// with its anchored head, the status-change event log that the OCSP and
// CRL pipelines consume, and the web portal's sessions and sign-in links.
//
// This package declares the records, the errors callers branch on, and
// Store, the full method set the adapters implement. Consumers should not
// take a Store: each declares the two or three methods it uses as its own
// small interface (STYLE.md §5), which both adapters satisfy.
//
// Adapters: internal/store/sqlite (embedded default, one file, WAL) and
// internal/store/postgres (pgx v5 pool). internal/store/storetest is the
// conformance suite both must pass.
//
// Who may import it: issuer/, crlgen/, the presigner and cmd/. The responder
// and origin must not (they read caches and published files, never the
// database); a dependency test enforces that.
package store

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/trustline/trustline/internal/issuerid"
	"github.com/trustline/trustline/internal/reason"
	"github.com/trustline/trustline/internal/serial"
	"github.com/trustline/trustline/internal/shard"
	"github.com/trustline/trustline/internal/status"
)

// Errors callers branch on. Adapters wrap them with context; test with
// errors.Is.
var (
	// ErrNotFound: no row with that key.
	ErrNotFound = errors.New("store: not found")
	// ErrDuplicate: a row with that key exists (a serial collision, an
	// account email or id already taken).
	ErrDuplicate = errors.New("store: duplicate")
	// ErrConflict: an optimistic update lost (the row's Version moved on), or
	// a compare-and-swap saw another value.
	ErrConflict = errors.New("store: conflict")
	// ErrAlreadyRevoked: Revoke on a revoked certificate.
	ErrAlreadyRevoked = errors.New("store: certificate already revoked")
	// ErrUnavailable: the database could not be reached or did not answer
	// in time (refused, reset, shutting down, a deadline passed). Nothing
	// was committed unless the error says so otherwise; the same call may
	// succeed later. The API answers it 503 with Retry-After.
	ErrUnavailable = errors.New("store: database unavailable")
)

// Role is an account's role; it decides which endpoints it may call.
type Role string

const (
	RoleSubscriber Role = "subscriber"
	RoleReviewer   Role = "reviewer"
	RoleAdmin      Role = "admin"
)

// Valid reports whether r is one of the three roles.
func (r Role) Valid() bool {
	return r == RoleSubscriber || r == RoleReviewer || r == RoleAdmin
}

// Account is a subscriber, reviewer or admin. IDs are chosen by the caller
// (random, URL-safe) so both adapters behave alike.
type Account struct {
	ID        string
	Email     string // lowercase; several accounts may share one
	Role      Role
	CreatedAt time.Time
	// EmailVerifiedAt is when the owner confirmed Email by the link
	// mailed to it; zero until then, and Trustline mails it nothing else.
	EmailVerifiedAt time.Time
	// CreatedBy is the admin account that created it; empty for a
	// sign-up and for a plant's first accounts.
	CreatedBy string
	// Person names the natural person behind a staff account (an
	// employee number, say), set by admins: accounts with the same Person
	// are one person's. Empty when unknown.
	Person string
}

// GrantStatus is the state of a RoleGrant.
type GrantStatus string

const (
	GrantPending  GrantStatus = "pending"
	GrantApproved GrantStatus = "approved"
	GrantRejected GrantStatus = "rejected"
)

// RoleGrant is a request to give an account the reviewer or admin role,
// which a second admin decides (dual control).
type RoleGrant struct {
	ID          string
	AccountID   string
	Role        Role
	RequestedBy string
	RequestedAt time.Time
	Status      GrantStatus
	DecidedBy   string
	DecidedAt   time.Time
}

// APIKey is the stored half of an API key: its public id and the SHA-256 of
// its secret. The secret itself is never stored.
type APIKey struct {
	ID        string // unique; the public part of the bearer token
	AccountID string
	Hash      []byte // SHA-256 of the secret part
	CreatedAt time.Time
	// RevokedAt is when the key was revoked (it then authenticates no
	// one); zero while it is active.
	RevokedAt time.Time
}

// ValidationStatus is the state of a domain validation.
type ValidationStatus string

const (
	ValidationPending ValidationStatus = "pending"
	ValidationValid   ValidationStatus = "valid"
	ValidationInvalid ValidationStatus = "invalid" // attempts exhausted or expired
)

// Validation is one attempt to prove control of a domain (BR §3.2.2.4).
type Validation struct {
	ID        string
	AccountID string
	Domain    string // lowercase, no trailing dot
	Method    string // "email", "dns-txt", "http-token", "whois-email"
	Contact   string // address mailed, DNS name or URL checked
	// Secret is what must be matched: for email methods the SHA-256 of the
	// mailed code (never the code), for dns-txt/http-token the random value
	// the subscriber publishes.
	Secret    []byte
	Status    ValidationStatus
	Attempts  int
	CreatedAt time.Time
	ExpiresAt time.Time // a pending validation is dead after this
	// ValidatedAt and ValidUntil are set when Status becomes valid;
	// ValidUntil is ValidatedAt plus the BR reuse period.
	ValidatedAt time.Time
	ValidUntil  time.Time
	Evidence    []byte // JSON: method, random value, time, contact, …
	// Version increments on every update; UpdateValidation succeeds only
	// if the stored row still has the Version the caller read.
	Version int
}

// OrderStatus is where an order stands.
type OrderStatus string

const (
	OrderPendingReview OrderStatus = "pending_review"
	OrderIssued        OrderStatus = "issued"
	OrderRejected      OrderStatus = "rejected"
	// OrderProcessing: approved or auto-approved, being signed. An order
	// left here by a crash is retried.
	OrderProcessing OrderStatus = "processing"
)

// Order is a request for a certificate.
type Order struct {
	ID           string
	AccountID    string
	Profile      string // "dv", "ov", "ev"
	CSR          []byte // DER
	Names        []string
	Organization []byte // JSON, empty for DV
	Status       OrderStatus
	Serial       serial.Serial // set once issued
	RejectReason string
	// Validity is the certificate validity the order asks for, whole
	// seconds; 0 is the CA's default. It never exceeds what BR §6.3.2
	// allows: the profile caps it when signing.
	Validity time.Duration
	// AccountURI names the ordering account in CAA accounturi parameters
	// (RFC 8657): an ACME order's ACME account URL; "" is the account's
	// API URI.
	AccountURI string
	CreatedAt  time.Time
	UpdatedAt  time.Time
	Version    int // see Validation.Version
}

// OrderFilter selects orders for ListOrders; zero fields match anything.
type OrderFilter struct {
	AccountID string
	Status    OrderStatus
	Limit     int // 0: adapter default (100)
	// OldestFirst lists in creation order (a review queue) instead of
	// newest first (an account's history).
	OldestFirst bool
}

// Review is one reviewer's decision on an order.
type Review struct {
	OrderID    string
	ReviewerID string
	Decision   string // "approve" or "reject"
	Notes      string
	Evidence   []byte // JSON
	At         time.Time
}

// ReviewPattern is a Manual Review List entry: DV orders with a name that
// matches go to review.
type ReviewPattern struct {
	ID        string
	Pattern   string
	CreatedBy string
	CreatedAt time.Time
}

// Certificate is an issued certificate with its revocation state.
type Certificate struct {
	Serial    serial.Serial
	IssuerID  issuerid.ID
	Shard     shard.Index // fixed at issuance; named in the CRLDP
	AccountID string
	OrderID   string
	DER       []byte
	NotBefore time.Time
	NotAfter  time.Time
	Status    status.Status // Good or Revoked
	RevokedAt time.Time     // zero unless revoked
	Reason    reason.Reason // meaningful only when revoked
	// OCSPRefreshAt is when the pre-signed OCSP response is next due;
	// zero means "now".
	OCSPRefreshAt time.Time
	// KeyHash is the SHA-256 of the certificate's subjectPublicKeyInfo.
	// InsertCertificate indexes it when set, so that every certificate of
	// a compromised key can be found (CertificatesWithKey); it is not
	// read back into Certificate.
	KeyHash []byte
	// Precertificate is true while DER is the precertificate (RFC 6962
	// §3.1) that a final certificate has not yet replaced; such a
	// certificate is covered by OCSP and CRLs like any other.
	Precertificate bool
}

// Precertificate is the RFC 6962 precertificate of a certificate whose
// final certificate was signed, kept with the SCTs the logs returned for it.
type Precertificate struct {
	Serial    serial.Serial
	DER       []byte
	SCTList   []byte    // the SignedCertificateTimestampList (RFC 6962 §3.3, TLS encoding) embedded in the final certificate
	CreatedAt time.Time // when the final certificate replaced it
}

// BlockedKey is a public key the CA no longer certifies, by the SHA-256
// of its subjectPublicKeyInfo: reported compromised (BR §4.9.1.1, §6.1.1.3).
type BlockedKey struct {
	KeyHash []byte
	// Serial is the certificate whose revocation for keyCompromise
	// blocked it, or empty.
	Serial    serial.Serial
	Reason    string // why, for people
	Actor     string // account id of who reported it
	BlockedAt time.Time
}

// CertSummary is a Certificate without its DER: what scans return.
type CertSummary struct {
	Serial        serial.Serial
	IssuerID      issuerid.ID
	Shard         shard.Index
	AccountID     string
	NotAfter      time.Time
	Status        status.Status
	RevokedAt     time.Time
	Reason        reason.Reason
	OCSPRefreshAt time.Time
}

// ShardQuery selects the certificates of one CRL shard.
type ShardQuery struct {
	Issuer issuerid.ID
	Shard  shard.Index
	// RevokedOnly limits the scan to revoked certificates (what a CRL needs).
	RevokedOnly bool
	// NotAfterAfter, if set, skips certificates that expired at or before
	// it (a CRL keeps entries until one CRL after expiry).
	NotAfterAfter time.Time
}

// Page walks all certificates in serial order, for warm starts.
type Page struct {
	AfterSerial   serial.Serial // exclusive; "" starts at the beginning
	NotAfterAfter time.Time     // skip expired, if set
	Limit         int           // 0: adapter default (1000)
}

// Revocation asks Revoke to revoke a certificate.
type Revocation struct {
	Serial serial.Serial
	Reason reason.Reason
	At     time.Time
}

// OCSPRefresh moves a certificate's next OCSP refresh point.
type OCSPRefresh struct {
	Serial serial.Serial
	At     time.Time
}

// EventKind says what changed.
type EventKind string

const (
	EventIssued  EventKind = "issued"
	EventRevoked EventKind = "revoked"
)

// Event is one entry of the status-change log. Seq is assigned by the
// store, strictly increasing; consumers remember the last Seq they handled.
type Event struct {
	Seq      int64
	Kind     EventKind
	Serial   serial.Serial
	IssuerID issuerid.ID
	Shard    shard.Index
	At       time.Time
}

// CRL is the stored state of one published CRL: a shard of an issuer's
// subscriber CRLs, or (Shard = shard.Full) the full CRL an issuer publishes.
type CRL struct {
	IssuerID   issuerid.ID
	Shard      int // shard index, or shard.Full
	Number     int64
	ThisUpdate time.Time
	NextUpdate time.Time
	DER        []byte
	// Holder names who published it (a CRL generator's holder), so that a
	// generator can tell its own swap from another's of the same bytes
	// (RSA signatures are deterministic); "" for CRLs stored before.
	Holder string
}

// AuditEntry is one record of the append-only audit log. Seq, PrevHash and
// Hash are assigned by the store when it appends.
type AuditEntry struct {
	Seq      int64
	At       time.Time
	Kind     string // "certificate.issued", "certificate.revoked", "review.approved", …
	Actor    string // account id or "system"
	Subject  string // serial, order id, …
	Payload  []byte // JSON
	PrevHash []byte
	Hash     []byte
}

// ChainHash computes an audit entry's Hash from the previous entry's Hash
// and the entry's own fields: SHA-256 over prev ‖ seq ‖ unix-nanos ‖ each
// of kind, actor, subject, payload as length-prefixed bytes. Times are
// hashed at microsecond precision (what both databases keep).
func ChainHash(prev []byte, e AuditEntry) []byte {
	h := sha256.New()
	var n [8]byte
	put := func(b []byte) {
		binary.BigEndian.PutUint64(n[:], uint64(len(b)))
		h.Write(n[:])
		h.Write(b)
	}
	put(prev)
	binary.BigEndian.PutUint64(n[:], uint64(e.Seq))
	h.Write(n[:])
	binary.BigEndian.PutUint64(n[:], uint64(e.At.UTC().Truncate(time.Microsecond).UnixNano()))
	h.Write(n[:])
	put([]byte(e.Kind))
	put([]byte(e.Actor))
	put([]byte(e.Subject))
	put(e.Payload)
	return h.Sum(nil)
}

// AuditHead anchors the audit log: the Seq and Hash of the newest entry,
// written in the same transaction as every append. VerifyAudit compares
// the log with it, so deleting the newest entries does not go unnoticed.
type AuditHead struct {
	Seq  int64
	Hash []byte
}

// PortalSession is one signed-in browser of the web portal, kept in the
// store so that every API instance serves it and a restart keeps it. It is
// found by the SHA-256 of the session token (the cookie's value); the
// token itself is never stored.
type PortalSession struct {
	TokenHash []byte // SHA-256 of the session token; the key
	AccountID string
	CreatedAt time.Time
	// LastUsed is the last use recorded by TouchPortalSession; the portal
	// records uses at most every minute or so.
	LastUsed time.Time
	// ExpiresAt is the absolute end, fixed at sign-in.
	ExpiresAt time.Time
	// IdleExpiresAt is when the session ends unless used again. The store
	// keeps it at or before ExpiresAt.
	IdleExpiresAt time.Time
	// Notice is a message for the next page the session sees; "" for none.
	Notice string
}

// Expired reports whether the session is over at now, by either limit.
func (s PortalSession) Expired(now time.Time) bool {
	return !now.Before(s.ExpiresAt) || !now.Before(s.IdleExpiresAt)
}

// SignInLink is an outstanding sign-in link of the web portal: a random
// token mailed to the account's address, good once until ExpiresAt. It is
// kept in the store so that a link mailed by one API instance works on
// any; the store has only the token's SHA-256, never the token.
type SignInLink struct {
	TokenHash []byte // SHA-256 of the token; the key
	AccountID string
	CreatedAt time.Time
	ExpiresAt time.Time
}

// Expired reports whether the link is over at now.
func (l SignInLink) Expired(now time.Time) bool { return !now.Before(l.ExpiresAt) }

// SignInLinkLimits are the bounds CreateSignInLink keeps.
type SignInLinkLimits struct {
	// Interval is how soon after an account's newest stored link another
	// may be created for it (≥ 0): it keeps an inbox from being flooded.
	Interval time.Duration
	// PerAccount bounds an account's stored links (≥ 1); a new link
	// replaces the oldest beyond it.
	PerAccount int
	// Total bounds the unexpired links of all accounts (≥ 1), so that a
	// flood of requests cannot grow the table without end.
	Total int
}

// Validate reports what is wrong with lim.
func (lim SignInLinkLimits) Validate() error {
	var errs []error
	if lim.Interval < 0 {
		errs = append(errs, fmt.Errorf("SignInLinkLimits.Interval %v is negative", lim.Interval))
	}
	if lim.PerAccount < 1 {
		errs = append(errs, fmt.Errorf("SignInLinkLimits.PerAccount %d is below 1", lim.PerAccount))
	}
	if lim.Total < 1 {
		errs = append(errs, fmt.Errorf("SignInLinkLimits.Total %d is below 1", lim.Total))
	}
	return errors.Join(errs...)
}

// WatchFinding is one disagreement the plant's self-watch found (package
// watch): what a relying party received that the CA's records or the
// Baseline Requirements contradict, with the evidence.
//
// The text fields are stored as valid UTF-8 without NUL bytes (all
// PostgreSQL's TEXT can hold): a store replaces invalid bytes and NULs
// with U+FFFD, in both adapters alike. Header and Body keep any bytes.
type WatchFinding struct {
	ID         int64     // assigned by the store, increasing
	At         time.Time // when it was fetched
	Watcher    string    // the instance that found it
	Object     string    // "ocsp" or "crl"
	Kind       string    // e.g. "status_mismatch", "expired"
	URL        string
	Serial     string // "" when it is about a whole CRL
	Issuer     string
	Detail     string
	HTTPStatus int
	Header     []byte // the response headers, JSON
	Body       []byte // the bytes fetched (at most 64 MiB; may be empty)
}

// BulkLoader is the bulk path of the certificate table, for load tests
// only: the bench (bench.Populate, behind `trustline bench populate`)
// fills a store through it. Both adapters implement it besides Store, and
// the conformance suite tests it.
type BulkLoader interface {
	// InsertCertificates stores all of cs, each with an EventIssued (At:
	// NotBefore), in one transaction (COPY, or prepared statements). It
	// neither checks reservations nor writes audit entries; a serial
	// stored already fails the whole call with ErrDuplicate.
	InsertCertificates(ctx context.Context, cs []Certificate) error
}

// Store is everything an adapter implements for the CA's state (and
// BulkLoader besides). It is declared here for the adapters and the
// conformance suite; consumers declare their own subsets.
//
// Times go in and come out in UTC at microsecond precision.
type Store interface {
	ACMEStore

	// Accounts and keys.
	CreateAccount(ctx context.Context, a Account, k APIKey) error // both or neither; ErrDuplicate (an id)
	AddAPIKey(ctx context.Context, k APIKey) error
	Account(ctx context.Context, id string) (Account, error)
	// AccountsByEmail lists the accounts with that address, oldest first.
	AccountsByEmail(ctx context.Context, email string) ([]Account, error)
	// VerifyAccountEmail records that the account's address, if it is
	// still email, was confirmed at at (the first time is kept).
	// ErrNotFound if there is no such account with that address.
	VerifyAccountEmail(ctx context.Context, id, email string, at time.Time) error
	APIKey(ctx context.Context, keyID string) (APIKey, Account, error)
	// SetAccountPerson records the person behind an account.
	// ErrNotFound if there is no such account.
	SetAccountPerson(ctx context.Context, accountID, person string) error
	// CreateRoleGrant stores a pending grant (ErrNotFound: no account).
	CreateRoleGrant(ctx context.Context, g RoleGrant) error
	RoleGrant(ctx context.Context, id string) (RoleGrant, error)
	// RoleGrants lists grants in status (all when empty), oldest first.
	RoleGrants(ctx context.Context, status GrantStatus) ([]RoleGrant, error)
	// DecideRoleGrant moves a pending grant to status (approved or
	// rejected) by by at at and, when approved, gives its account the
	// role, in one transaction. ErrConflict if it is no longer pending.
	DecideRoleGrant(ctx context.Context, id string, status GrantStatus, by string, at time.Time) (RoleGrant, error)
	// APIKeys lists an account's keys, revoked ones too, oldest first.
	APIKeys(ctx context.Context, accountID string) ([]APIKey, error)
	// RevokeAPIKey marks a key revoked at at; revoking a revoked key
	// keeps the first time. ErrNotFound if there is no such key.
	RevokeAPIKey(ctx context.Context, keyID string, at time.Time) error

	// Validations.
	CreateValidation(ctx context.Context, v Validation) error
	Validation(ctx context.Context, id string) (Validation, error)
	UpdateValidation(ctx context.Context, v Validation) (Validation, error) // CAS on Version; returns the row with Version+1
	// ValidValidations returns the account's validations with Status valid
	// and ValidUntil after now.
	ValidValidations(ctx context.Context, accountID string, now time.Time) ([]Validation, error)
	// ListValidations returns the account's validations in any state,
	// newest first, at most limit (0: 100).
	ListValidations(ctx context.Context, accountID string, limit int) ([]Validation, error)

	// Orders and reviews.
	CreateOrder(ctx context.Context, o Order) error
	Order(ctx context.Context, id string) (Order, error)
	UpdateOrder(ctx context.Context, o Order) (Order, error)        // CAS on Version
	ListOrders(ctx context.Context, f OrderFilter) ([]Order, error) // newest first unless f.OldestFirst
	AddReview(ctx context.Context, r Review) error
	Reviews(ctx context.Context, orderID string) ([]Review, error) // oldest first
	AddReviewPattern(ctx context.Context, p ReviewPattern) error
	ReviewPatterns(ctx context.Context) ([]ReviewPattern, error)
	DeleteReviewPattern(ctx context.Context, id string) error

	// Serials: reserved before anything is signed, never released.
	ReserveSerial(ctx context.Context, s serial.Serial, issuer issuerid.ID, at time.Time) error // ErrDuplicate on collision

	// Certificates. InsertCertificate requires the serial to be reserved;
	// it stores the row, an EventIssued and the audit entry in one
	// transaction. The bulk path is BulkLoader's.
	InsertCertificate(ctx context.Context, c Certificate, a AuditEntry) error
	// CompleteCertificate replaces the precertificate stored for s with the
	// final certificate der, and keeps the precertificate with its SCT list
	// (Precertificate), appending audit, in one transaction. ErrNotFound if
	// there is no certificate s; ErrConflict if its row does not hold a
	// precertificate (completed already, or never one). The final
	// certificate keeps the row's serial, issuer, shard, account, order,
	// status, validity and key hash; DER changes, and Precertificate
	// becomes false. The status is not touched (a precertificate revoked
	// before completion stays revoked), so no event is appended.
	CompleteCertificate(ctx context.Context, s serial.Serial, der, sctList []byte, at time.Time, audit AuditEntry) error
	// Precertificate returns the precertificate kept for s; ErrNotFound if
	// none (no certificate s, or one never completed — then the
	// certificate row itself holds the precertificate).
	Precertificate(ctx context.Context, s serial.Serial) (Precertificate, error)
	Certificate(ctx context.Context, s serial.Serial) (Certificate, error)
	// CertificatesWithKey lists the serials of the certificates inserted
	// with KeyHash keyHash, in serial order.
	CertificatesWithKey(ctx context.Context, keyHash []byte) ([]serial.Serial, error)
	// BlockKey records a blocked key; one blocked already is ErrDuplicate
	// (the first record stands). BlockedKey reads one back, ErrNotFound if
	// the key is not blocked.
	BlockKey(ctx context.Context, k BlockedKey) error
	BlockedKey(ctx context.Context, keyHash []byte) (BlockedKey, error)
	// Revoke marks the certificate revoked, appends an EventRevoked and the
	// audit entry in one transaction, and returns the updated row.
	Revoke(ctx context.Context, r Revocation, a AuditEntry) (Certificate, error)
	ScanShard(ctx context.Context, q ShardQuery, fn func(CertSummary) error) error
	ListCertificates(ctx context.Context, p Page) ([]CertSummary, error)
	// DueForOCSP returns certificates, not expired at now, whose
	// OCSPRefreshAt is at or before due, earliest first.
	DueForOCSP(ctx context.Context, due, now time.Time, limit int) ([]CertSummary, error)
	// ExpiringCertificates returns certificates whose NotAfter is after from
	// and at or before to, soonest first (then by serial), at most limit (0:
	// 100): the plant's self-watch checks that certificates about to expire
	// are still answered for.
	ExpiringCertificates(ctx context.Context, from, to time.Time, limit int) ([]CertSummary, error)
	SetOCSPRefresh(ctx context.Context, rs []OCSPRefresh) error
	CountCertificates(ctx context.Context) (int64, error)

	// Status-change events.
	EventsAfter(ctx context.Context, seq int64, limit int) ([]Event, error)
	LastEventSeq(ctx context.Context) (int64, error)

	// CRLs. PublishCRL stores c only if the stored Number for that
	// (issuer, shard) equals prevNumber (0 when none is stored) and
	// c.Number is greater; otherwise ErrConflict. audit, unless its Kind
	// is empty, is appended to the audit log in the same transaction: a
	// publication and its record in the store's history commit together.
	CRL(ctx context.Context, issuer issuerid.ID, shard int) (CRL, error)
	ListCRLs(ctx context.Context, issuer issuerid.ID) ([]CRL, error)
	PublishCRL(ctx context.Context, c CRL, prevNumber int64, audit AuditEntry) error

	// Leases: AcquireLease succeeds if the lease is free, expired at now,
	// or already held by holder; it then runs until `until`.
	AcquireLease(ctx context.Context, name, holder string, now, until time.Time) (bool, error)
	ReleaseLease(ctx context.Context, name, holder string) error

	// Audit log. Every append (AppendAudit, and the entries InsertCertificate
	// and Revoke write) moves the anchored head in its own transaction.
	// AuditHead is ErrNotFound when there is no anchor: the log is empty,
	// or the store predates anchoring.
	AppendAudit(ctx context.Context, e AuditEntry) (AuditEntry, error)
	ScanAudit(ctx context.Context, afterSeq int64, fn func(AuditEntry) error) error
	AuditHead(ctx context.Context) (AuditHead, error)

	// Meta: small named values (instance prefix, PKI state, …). InsertMeta
	// creates a key only if it is absent; if present it fails, wrapping
	// ErrDuplicate, and changes nothing (of racing inserts, exactly one
	// wins).
	Meta(ctx context.Context, key string) ([]byte, error) // ErrNotFound
	PutMeta(ctx context.Context, key string, value []byte) error
	InsertMeta(ctx context.Context, key string, value []byte) error

	// Rate limits.
	//
	// CountHit adds one to the counter of key in the window starting at
	// windowStart (created at 1, kept until expiresAt) and returns the
	// new count, atomically, whichever instance asks.
	CountHit(ctx context.Context, key string, windowStart, expiresAt time.Time) (int64, error)
	// DeleteExpiredRateCounters deletes counters whose expiresAt is not
	// after now and returns how many.
	DeleteExpiredRateCounters(ctx context.Context, now time.Time) (int64, error)

	// Portal sessions, keyed by PortalSession.TokenHash.
	//
	// CreatePortalSession stores s (its IdleExpiresAt capped at ExpiresAt)
	// and, in the same transaction, ends the account's least recently used
	// sessions beyond maxPerAccount (s is always kept; maxPerAccount ≥ 1),
	// so that signing in again and again ends only one's own sessions. An
	// unknown account is ErrNotFound, a stored TokenHash ErrDuplicate.
	CreatePortalSession(ctx context.Context, s PortalSession, maxPerAccount int) error
	// PortalSession returns the session, expired or not (ErrNotFound if
	// there is none): the caller decides, and can say "expired".
	PortalSession(ctx context.Context, tokenHash []byte) (PortalSession, error)
	// TouchPortalSession records a use at `at` and moves IdleExpiresAt to
	// idleExpiresAt, capped at ExpiresAt; neither moves backwards.
	// ErrNotFound if the session is gone.
	TouchPortalSession(ctx context.Context, tokenHash []byte, at, idleExpiresAt time.Time) error
	// SetPortalSessionNotice sets the session's Notice ("" clears it).
	// ErrNotFound if the session is gone.
	SetPortalSessionNotice(ctx context.Context, tokenHash []byte, notice string) error
	// DeletePortalSession ends a session; ending one that is gone is not
	// an error.
	DeletePortalSession(ctx context.Context, tokenHash []byte) error
	// DeleteExpiredPortalSessions deletes the sessions expired at now (by
	// either limit) and returns how many.
	DeleteExpiredPortalSessions(ctx context.Context, now time.Time) (int64, error)

	// Portal sign-in links, keyed by SignInLink.TokenHash.
	//
	// CreateSignInLink stores l unless the account's newest stored link
	// (expired or not) was created less than lim.Interval before
	// l.CreatedAt, or the store holds lim.Total or more links unexpired at
	// l.CreatedAt: then it changes nothing and returns false (the caller
	// answers as if rate-limited). Otherwise it returns true and, in the
	// same transaction, drops the account's oldest links so that it keeps
	// at most lim.PerAccount, l among them. Racing creations for one
	// account keep all three limits; racing creations for different
	// accounts may overshoot Total by a few. An unknown account is
	// ErrNotFound, a stored TokenHash ErrDuplicate, limits that fail
	// Validate an error.
	CreateSignInLink(ctx context.Context, l SignInLink, lim SignInLinkLimits) (bool, error)
	// SignInLink returns the link without using it up, expired or not
	// (ErrNotFound if there is none): the caller decides.
	SignInLink(ctx context.Context, tokenHash []byte) (SignInLink, error)
	// ConsumeSignInLink deletes the link and returns it, expired or not,
	// atomically: of racing consumers exactly one gets it, the others
	// ErrNotFound.
	ConsumeSignInLink(ctx context.Context, tokenHash []byte) (SignInLink, error)
	// DeleteExpiredSignInLinks deletes the links expired at now and
	// returns how many.
	DeleteExpiredSignInLinks(ctx context.Context, now time.Time) (int64, error)

	// Self-watch findings (package watch).
	//
	// RecordWatchFindings stores fs (their ID is assigned) in one
	// transaction: the store gives each the next ID, in the order of fs,
	// ignoring the ID fields (fs is not modified). Nil or empty fs does
	// nothing. IDs are never reused and follow commit order (a finding
	// commits after every finding of a lower ID), so a reader paging by
	// ID skips none recorded later.
	RecordWatchFindings(ctx context.Context, fs []WatchFinding) error
	// WatchFindings lists the findings fetched at or after since, oldest
	// first, at most limit (0: 1000), those with ID > afterID (0: from
	// the first): a page at a time. Oldest is in ID order, the order they
	// were recorded; the next page is afterID = the last ID of this one.
	// Empty Header and Body come back nil; without evidence they are not
	// read at all (nil), for listings of many findings.
	WatchFindings(ctx context.Context, since time.Time, afterID int64, limit int, evidence bool) ([]WatchFinding, error)
	// DeleteWatchFindings removes findings fetched before before and
	// returns how many (retention).
	DeleteWatchFindings(ctx context.Context, before time.Time) (int64, error)

	Close() error
}

// WrapError is how an adapter reports err from doing something:
// "<adapter>: <doing>: err", with the sentinel classify finds for it
// (ErrDuplicate, ErrNotFound, …) wrapped too so that callers can branch
// with errors.Is. nil stays nil.
func WrapError(adapter string, classify func(error) error, err error, doing string) error {
	if err == nil {
		return nil
	}
	if sentinel := classify(err); sentinel != nil && !errors.Is(err, sentinel) {
		return fmt.Errorf("%s: %s: %w: %w", adapter, doing, sentinel, err)
	}
	return fmt.Errorf("%s: %s: %w", adapter, doing, err)
}
