package store

import (
	"context"
	"time"

	"github.com/trustline/trustline/internal/reason"
	"github.com/trustline/trustline/internal/serial"
)

// The ACME server's objects (RFC 8555 §7.1). They sit beside the CA's own
// records: an ACMEAccount acts for a Trustline Account, an ACMEOrder
// becomes a Trustline Order when it is finalized, and an
// ACMEAuthorization is satisfied by a Validation (answered through a
// challenge, or one the account completed before and may still reuse).

// ACMEAccountStatus is an ACME account's status (RFC 8555 §7.1.6).
type ACMEAccountStatus string

const (
	ACMEAccountValid       ACMEAccountStatus = "valid"
	ACMEAccountDeactivated ACMEAccountStatus = "deactivated" // by its holder; final
	ACMEAccountRevoked     ACMEAccountStatus = "revoked"     // by the CA; final
)

// ACMEAccount is an ACME account: a key pair whose holder places orders
// for a Trustline account.
type ACMEAccount struct {
	ID        string // the last segment of the account URL
	AccountID string // the Trustline account it acts for
	// Thumbprint is the RFC 7638 SHA-256 thumbprint of the public key,
	// base64url; unique among all ACME accounts, whatever their status.
	Thumbprint string
	JWK        []byte // the public key as a JWK (JSON)
	Status     ACMEAccountStatus
	Contact    []string // URLs, "mailto:" only
	// EABKeyID is the external account binding key it was created with
	// (RFC 8555 §7.3.4), "" if none.
	EABKeyID  string
	CreatedAt time.Time
	Version   int // see Validation.Version
}

// ACMEEABKey is an external account binding key id given to the holder of
// a Trustline account. The HMAC key itself is not stored: it is derived
// from the id and a server secret, so a copy of the store alone does not
// let anyone bind an ACME account.
type ACMEEABKey struct {
	ID        string
	AccountID string // the Trustline account an ACME account bound with it acts for
	CreatedBy string
	CreatedAt time.Time
	ExpiresAt time.Time
	// UsedAt is when an ACME account was bound with it; a key binds one
	// account only. Zero while unused.
	UsedAt time.Time
	// CertProfile is the certificate profile ("dv", "ov", "ev") of every
	// order of the account bound with it, "" for dv; Organization the OV or
	// EV subject (JSON), which reviewers check before anything is signed.
	CertProfile  string
	Organization []byte
}

// ACMEOrderStatus is an ACME order's status (RFC 8555 §7.1.6).
type ACMEOrderStatus string

const (
	ACMEOrderPending    ACMEOrderStatus = "pending"
	ACMEOrderReady      ACMEOrderStatus = "ready"
	ACMEOrderProcessing ACMEOrderStatus = "processing"
	ACMEOrderValid      ACMEOrderStatus = "valid"
	ACMEOrderInvalid    ACMEOrderStatus = "invalid"
)

// ACMEOrder is an ACME order.
type ACMEOrder struct {
	ID            string
	ACMEAccountID string
	Names         []string // the dns identifiers, lowercase, "*.": a wildcard
	AuthzIDs      []string // one authorization per name, in Names' order
	Status        ACMEOrderStatus
	Profile       string // the certificate profile asked for, "" for the default
	// Replaces is the ARI certificate identifier (RFC 9773 §5) of the
	// certificate this order renews, "" if none.
	Replaces string
	// OrderID is the Trustline order made at finalization, "" before.
	// The ACME server chooses it when it claims the order (FinalizedAt),
	// before the order service creates the order, so a finalization cut
	// short is told apart from one in progress.
	OrderID string
	// FinalizedAt is when a finalization claimed the order, zero before.
	FinalizedAt time.Time
	Error       []byte // the problem document of an invalid order (JSON)
	ExpiresAt   time.Time
	CreatedAt   time.Time
	Version     int
}

// ACMEAuthzStatus is an ACME authorization's status (RFC 8555 §7.1.6).
type ACMEAuthzStatus string

const (
	ACMEAuthzPending     ACMEAuthzStatus = "pending"
	ACMEAuthzValid       ACMEAuthzStatus = "valid"
	ACMEAuthzInvalid     ACMEAuthzStatus = "invalid"
	ACMEAuthzDeactivated ACMEAuthzStatus = "deactivated"
)

// ACMEAuthorization is an ACME authorization for one identifier.
type ACMEAuthorization struct {
	ID            string
	ACMEAccountID string
	Domain        string // the identifier's value: the base domain of a wildcard
	Wildcard      bool
	// Token is shared by the authorization's challenges (RFC 8555 §8.1
	// asks 128 bits of entropy per token).
	Token  string
	Status ACMEAuthzStatus
	// Challenge is the type of the challenge the client answered
	// ("http-01", "dns-01", "tls-alpn-01"), "" before it answers one.
	Challenge string
	// ValidationID is the Validation that satisfies it: the one its
	// answered challenge started, or a valid one of the account that
	// already covered the name when the authorization was made.
	ValidationID string
	ExpiresAt    time.Time
	CreatedAt    time.Time
	Version      int
}

// ACMEStore is the part of Store that holds the ACME server's objects.
type ACMEStore interface {
	// CreateACMEAccount stores a. ErrDuplicate: an account with its id or
	// thumbprint exists. With a.EABKeyID set, the key is marked used at
	// a.CreatedAt in the same transaction: ErrNotFound if it does not
	// exist, ErrConflict if it was used already.
	CreateACMEAccount(ctx context.Context, a ACMEAccount) error
	ACMEAccount(ctx context.Context, id string) (ACMEAccount, error)
	ACMEAccountByThumbprint(ctx context.Context, thumbprint string) (ACMEAccount, error)
	// UpdateACMEAccount writes a (CAS on Version; ErrConflict otherwise)
	// and returns it with Version+1; a thumbprint another account holds
	// is ErrDuplicate (a key rollover to a key in use).
	UpdateACMEAccount(ctx context.Context, a ACMEAccount) (ACMEAccount, error)

	CreateACMEEABKey(ctx context.Context, k ACMEEABKey) error // ErrDuplicate
	ACMEEABKey(ctx context.Context, id string) (ACMEEABKey, error)

	// CreateACMEOrder stores o and the authorizations it names that are
	// new (those in authzs), in one transaction.
	CreateACMEOrder(ctx context.Context, o ACMEOrder, authzs []ACMEAuthorization) error
	ACMEOrder(ctx context.Context, id string) (ACMEOrder, error)
	UpdateACMEOrder(ctx context.Context, o ACMEOrder) (ACMEOrder, error) // CAS on Version
	// ACMEOrders lists an ACME account's orders, newest first, at most
	// limit (0: 100).
	ACMEOrders(ctx context.Context, acmeAccountID string, limit int) ([]ACMEOrder, error)

	ACMEAuthorization(ctx context.Context, id string) (ACMEAuthorization, error)
	UpdateACMEAuthorization(ctx context.Context, a ACMEAuthorization) (ACMEAuthorization, error) // CAS on Version

	// PlanRevocations records ps in one transaction, each replacing any
	// plan of the same serial (of two in ps, the later). A serial with no certificate is
	// ErrNotFound, and nothing is recorded.
	PlanRevocations(ctx context.Context, ps []PlannedRevocation) error
	PlannedRevocation(ctx context.Context, s serial.Serial) (PlannedRevocation, error) // ErrNotFound
	// PlannedRevocations lists plans, earliest RevokeBy first (then by
	// serial), at most limit (0: 100), skipping those at or before after
	// in that order (the zero cursor for the first page). Plans of
	// certificates revoked since stay listed until cancelled.
	PlannedRevocations(ctx context.Context, after PlannedRevocationCursor, limit int) ([]PlannedRevocation, error)
	// CancelPlannedRevocation deletes the plan of s; ErrNotFound if none.
	CancelPlannedRevocation(ctx context.Context, s serial.Serial) error
}

// PlannedRevocation is a certificate the CA has decided to revoke by a
// deadline, typically one of many after an incident (BR 4.9.1.1 gives 24
// hours or 5 days). Until it is revoked the certificate stays good, but
// its ACME renewal window (RFC 9773) moves before the deadline, so that
// subscribers replace it in time.
type PlannedRevocation struct {
	Serial   serial.Serial
	RevokeBy time.Time
	// Reason is the CRL reason code the revocation is expected to carry.
	Reason reason.Reason
	// ExplanationURL is a page about the incident given to ACME clients
	// (RFC 9773 §4.2 explanationURL), "" if none.
	ExplanationURL string
	CreatedBy      string
	CreatedAt      time.Time
}

// PlannedRevocationCursor is a position in PlannedRevocations' order.
type PlannedRevocationCursor struct {
	RevokeBy time.Time
	Serial   serial.Serial // "" for the first page
}
