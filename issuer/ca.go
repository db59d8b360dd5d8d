// Package issuer is Trustline's issuance core: the signing path from an
// approved order to a stored certificate (seed steps 8 and 9), revocation,
// and the services the API drives — accounts and API keys, and orders.
// Domain validation (BR §3.2.2.4) is issuer/validation's and the manual
// review queue issuer/review's: orders ask validation through Coverage,
// and the queue signs approved orders through review.Orders, which *Orders
// satisfies. The errors all of them return to subscribers are
// issuer/fault's.
//
// The signing path, in order: choose the intermediate by the subscriber's
// key type and the profile; reserve a serial in the store (an instance
// prefix octet and 128 random bits; a collision retries); build the
// template from the profile with the certificate's CRL shard fixed from
// the serial; sign it with a throwaway key and lint it with zlint (BR
// §4.3.1.2); sign with the real key only if the lints pass; check the
// signature and that the signed TBS is the linted one; store the
// certificate, its status-change event and its audit entry in one
// transaction; hand the certificate to the status sink (the OCSP
// pre-signer) before returning.
//
// It imports the store's records and small interfaces over it, the PKI,
// the linter, and issuer/validation and issuer/review (never the other
// way round). The responder and the origin never import it.
package issuer

import (
	"cmp"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"time"

	"github.com/trustline/trustline/internal/issuerid"
	"github.com/trustline/trustline/internal/linter"
	"github.com/trustline/trustline/internal/reason"
	"github.com/trustline/trustline/internal/serial"
	"github.com/trustline/trustline/internal/shard"
	"github.com/trustline/trustline/internal/status"
	"github.com/trustline/trustline/internal/store"
	"github.com/trustline/trustline/issuer/ct"
	"github.com/trustline/trustline/issuer/fault"
	"github.com/trustline/trustline/issuer/pki"
	"github.com/trustline/trustline/issuer/profile"
)

// CertStore is the subset of the store the signing path uses.
type CertStore interface {
	ReserveSerial(ctx context.Context, s serial.Serial, issuer issuerid.ID, at time.Time) error
	InsertCertificate(ctx context.Context, c store.Certificate, a store.AuditEntry) error
	Revoke(ctx context.Context, r store.Revocation, a store.AuditEntry) (store.Certificate, error)
	BlockKey(ctx context.Context, k store.BlockedKey) error
	BlockedKey(ctx context.Context, keyHash []byte) (store.BlockedKey, error)
	AppendAudit(ctx context.Context, e store.AuditEntry) (store.AuditEntry, error)
	Certificate(ctx context.Context, s serial.Serial) (store.Certificate, error)
	CertificatesWithKey(ctx context.Context, keyHash []byte) ([]serial.Serial, error)
	CompleteCertificate(ctx context.Context, s serial.Serial, der, sctList []byte, at time.Time, audit store.AuditEntry) error
}

// CTLogs gets Signed Certificate Timestamps from Certificate Transparency
// logs (*ct.Submitter): with it, every certificate is first signed as a
// precertificate, logged, and signed again with the SCTs embedded.
type CTLogs interface {
	// CanMeet says whether the logs available now could meet the CT
	// policy for a certificate expiring at notAfter.
	CanMeet(notBefore, notAfter time.Time) error
	// SCTs logs the precertificate chain and returns SCTs meeting the
	// policy for a certificate valid from notBefore to notAfter.
	SCTs(ctx context.Context, chain [][]byte, notBefore, notAfter time.Time) (ct.Result, error)
	// VerifyEmbedded checks the SCTs a final certificate embeds.
	VerifyEmbedded(cert, issuer []byte) error
	// LogFinal submits the final certificate chain in the background.
	LogFinal(chain [][]byte, notAfter time.Time)
}

// KeyHash is the SHA-256 of a subjectPublicKeyInfo (DER): how blocked
// keys and the certificates of a key are found.
func KeyHash(spki []byte) []byte {
	h := sha256.Sum256(spki)
	return h[:]
}

// CheckKeyNotBlocked refuses a public key reported compromised, as a
// *fault.ForbiddenError saying when and why (BR §4.9.1.1, §6.1.1.3).
func (ca *CA) CheckKeyNotBlocked(ctx context.Context, pub crypto.PublicKey) error {
	spki, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return fmt.Errorf("issuer: encoding the public key: %w", err)
	}
	return ca.checkSPKI(ctx, spki)
}

// checkSPKI is CheckKeyNotBlocked for the key's subjectPublicKeyInfo DER,
// encoded as crypto/x509 encodes it in certificates.
func (ca *CA) checkSPKI(ctx context.Context, spki []byte) error {
	k, err := ca.store.BlockedKey(ctx, KeyHash(spki))
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil
	case err != nil:
		return fmt.Errorf("issuer: reading the blocked keys: %w", err)
	}
	how := "it was reported compromised"
	if k.Serial != "" {
		how = fmt.Sprintf("certificate %s with this key was revoked for keyCompromise", k.Serial)
	}
	return &fault.ForbiddenError{Detail: fmt.Sprintf("this public key is blocked: %s on %s; generate a new key pair and a new CSR (BR 6.1.1.3)",
		how, k.BlockedAt.UTC().Format("2 January 2006")), Cause: ErrKeyBlocked}
}

// StatusSink learns of every issuance and revocation before the API
// answers: the OCSP pre-signer puts the fresh response in its cache.
type StatusSink interface {
	CertificateChanged(ctx context.Context, c store.Certificate) error
}

// Config configures the signing path.
type Config struct {
	// OCSPURL is written into AIA id-ad-ocsp ("http://127.0.0.1:8081/").
	OCSPURL string
	// BaseURL is the CRL origin's base URL: CRL distribution points and
	// caIssuers are under it (see pki.ShardCRLURL, pki.CAIssuersURL).
	BaseURL string
	// CAIssuersURL is the base URL of issuer certificates
	// (<CAIssuersURL>/<id>.cer); "" means BaseURL.
	CAIssuersURL string
	// Shards is the number of CRL shards per intermediate, in [1, 4096].
	// Changing it moves no existing certificate.
	Shards int
	// Validity of subscriber certificates; 0 means profile.Default. It is
	// always capped by BR §6.3.2 at the time of issuance.
	Validity time.Duration
	// SerialPrefix is this instance's first serial octet, in [0x01, 0x7f]:
	// non-zero so serials keep their length, below 0x80 so they stay
	// positive without padding. Instances that issue concurrently must use
	// different prefixes.
	SerialPrefix byte
	// Route chooses the intermediate per key family ("ecdsa", "rsa") and,
	// optionally, per profile ("ev/rsa"): the most specific entry wins.
	Route map[string]issuerid.ID
	// Profile holds the CA's choices for every certificate (a
	// commonName, keyEncipherment on RSA); the zero value is the
	// BR-recommended one.
	Profile profile.Options
}

// Validate checks the configuration against the PKI.
func (c Config) Validate(p *pki.PKI) error {
	var errs []error
	if c.OCSPURL == "" || c.BaseURL == "" {
		errs = append(errs, errors.New("issuer: OCSPURL and BaseURL are required"))
	}
	if err := shard.ValidCount(c.Shards); err != nil {
		errs = append(errs, fmt.Errorf("issuer: %w", err))
	}
	if c.SerialPrefix == 0 || c.SerialPrefix > 0x7f {
		errs = append(errs, fmt.Errorf("issuer: SerialPrefix %#x out of range [0x01, 0x7f]", c.SerialPrefix))
	}
	if c.Validity < 0 {
		errs = append(errs, errors.New("issuer: Validity must not be negative"))
	}
	for k, id := range c.Route {
		if _, ok := p.Issuer(id); !ok {
			errs = append(errs, fmt.Errorf("issuer: route %q names unknown issuer %q", k, id))
		}
	}
	return errors.Join(errs...)
}

func (c Config) caIssuersBase() string {
	if c.CAIssuersURL != "" {
		return c.CAIssuersURL
	}
	return c.BaseURL
}

// DefaultRoute sends each key family to the first intermediate of the same
// family.
func DefaultRoute(p *pki.PKI) map[string]issuerid.ID {
	r := map[string]issuerid.ID{}
	for _, is := range p.Intermediates {
		fam := keyFamily(is.Cert.PublicKey)
		if _, ok := r[fam]; !ok && fam != "" {
			r[fam] = is.ID
		}
	}
	return r
}

func keyFamily(pub crypto.PublicKey) string {
	switch pub.(type) {
	case *ecdsa.PublicKey:
		return "ecdsa"
	case *rsa.PublicKey:
		return "rsa"
	}
	return ""
}

// CA signs and revokes.
type CA struct {
	cfg    Config
	store  CertStore
	pki    *pki.PKI
	lint   *linter.Linter
	sink   StatusSink
	ct     CTLogs // nil: certificates are not logged
	log    *slog.Logger
	now    func() time.Time
	rand   io.Reader
	serial io.Reader

	metrics *Metrics // nil: not counted

	load loadRefs // SignForLoad's reference certificates (loadsign.go)
}

// Deps are the CA's collaborators; Now and Rand default to the real clock
// and crypto/rand.
type Deps struct {
	Store  CertStore
	PKI    *pki.PKI
	Linter *linter.Linter
	Sink   StatusSink // may be nil
	// CT, if set, logs every certificate (RFC 6962): precertificate,
	// SCTs, final certificate with the SCTs embedded.
	CT   CTLogs
	Log  *slog.Logger
	Now  func() time.Time
	Rand io.Reader
	// Metrics, optional, counts certificates issued and revoked.
	Metrics *Metrics
}

// New checks cfg and builds the CA.
func New(cfg Config, d Deps) (*CA, error) {
	if d.Store == nil || d.PKI == nil || d.Linter == nil || d.Log == nil {
		return nil, errors.New("issuer: Store, PKI, Linter and Log are required")
	}
	if cfg.Route == nil {
		cfg.Route = DefaultRoute(d.PKI)
	}
	if err := cfg.Validate(d.PKI); err != nil {
		return nil, err
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Rand == nil {
		d.Rand = rand.Reader
	}
	return &CA{cfg: cfg, store: d.Store, pki: d.PKI, lint: d.Linter, sink: d.Sink, ct: d.CT, log: d.Log,
		now: d.Now, rand: d.Rand, serial: d.Rand, metrics: d.Metrics}, nil
}

// SetSink installs the status sink; cmd/ wires the pre-signer after both
// exist.
func (ca *CA) SetSink(s StatusSink) { ca.sink = s }

// IssueRequest is an approved order ready for signing.
type IssueRequest struct {
	AccountID string
	OrderID   string
	Profile   profile.Name
	Names     []string // validated, lowercase
	PublicKey crypto.PublicKey
	Org       profile.Organization // OV/EV
	Actor     string               // who approved: the account, or a reviewer
	// Validity replaces the CA's configured validity when set (an ACME
	// profile's lifetime); BR §6.3.2's maximum still caps it.
	Validity time.Duration
}

// ErrNoIssuer: no intermediate is configured for the key type.
var ErrNoIssuer = errors.New("issuer: no intermediate for this key type")

// ErrKeyBlocked is the Cause of the fault.ForbiddenError that refuses a
// key reported compromised (CheckKeyNotBlocked).
var ErrKeyBlocked = errors.New("issuer: public key blocked")

// IssuerFor returns the intermediate that signs pub under prof.
func (ca *CA) IssuerFor(prof profile.Name, pub crypto.PublicKey) (*pki.Issuer, error) {
	fam := keyFamily(pub)
	id, ok := ca.cfg.Route[string(prof)+"/"+fam]
	if !ok {
		id, ok = ca.cfg.Route[fam]
	}
	if !ok {
		return nil, fmt.Errorf("%w (%T)", ErrNoIssuer, pub)
	}
	is, ok := ca.pki.Issuer(id)
	if !ok {
		return nil, fmt.Errorf("%w: %s", ErrNoIssuer, id)
	}
	return is, nil
}

const maxSerialTries = 5

// NewSerial reserves a fresh serial for issuer: the prefix octet and 128
// random bits (17 octets, positive). The reservation is committed before
// anything is signed, so a crash can waste a serial but never reuse one.
func (ca *CA) NewSerial(ctx context.Context, issuer issuerid.ID) (serial.Serial, error) {
	b := make([]byte, 17)
	for try := 0; try < maxSerialTries; try++ {
		b[0] = ca.cfg.SerialPrefix
		if _, err := io.ReadFull(ca.serial, b[1:]); err != nil {
			return "", fmt.Errorf("issuer: reading serial randomness: %w", err)
		}
		s, err := serial.FromBytes(b)
		if err != nil {
			return "", fmt.Errorf("issuer: %w", err)
		}
		err = ca.store.ReserveSerial(ctx, s, issuer, ca.now())
		if err == nil {
			return s, nil
		}
		if !errors.Is(err, store.ErrDuplicate) {
			return "", fmt.Errorf("issuer: reserving serial: %w", err)
		}
		ca.log.Warn("serial collision, retrying", "serial", s)
	}
	return "", fmt.Errorf("issuer: %d serial collisions in a row: the random source is broken", maxSerialTries)
}

// Issue signs and stores a certificate for r.
func (ca *CA) Issue(ctx context.Context, r IssueRequest) (store.Certificate, error) {
	is, err := ca.IssuerFor(r.Profile, r.PublicKey)
	if err != nil {
		return store.Certificate{}, err
	}
	spki, err := x509.MarshalPKIXPublicKey(r.PublicKey)
	if err != nil {
		return store.Certificate{}, fmt.Errorf("issuer: encoding the public key: %w", err)
	}
	if err := ca.checkSPKI(ctx, spki); err != nil {
		return store.Certificate{}, err
	}
	sn, err := ca.NewSerial(ctx, is.ID)
	if err != nil {
		return store.Certificate{}, err
	}
	sh := shard.For(sn, ca.cfg.Shards)
	now := ca.now()
	tmpl, err := profile.Template(profile.Request{
		Profile:      r.Profile,
		Serial:       sn,
		Names:        r.Names,
		PublicKey:    r.PublicKey,
		NotBefore:    now,
		Validity:     cmp.Or(r.Validity, ca.cfg.Validity),
		Org:          r.Org,
		OCSPURL:      ca.cfg.OCSPURL,
		CAIssuersURL: pki.CAIssuersURL(ca.cfg.caIssuersBase(), is.ID),
		CRLURL:       pki.ShardCRLURL(ca.cfg.BaseURL, is.ID, int(sh)),
		Options:      ca.cfg.Profile,
	})
	if err != nil {
		return store.Certificate{}, fmt.Errorf("issuer: %w", err)
	}
	if ca.ct != nil {
		return ca.issueLogged(ctx, r, is, sn, sh, tmpl, spki, now)
	}
	der, cert, err := ca.sign(tmpl, is, r.PublicKey, sn)
	if err != nil {
		return store.Certificate{}, err
	}
	row := store.Certificate{
		Serial:    sn,
		IssuerID:  is.ID,
		Shard:     sh,
		AccountID: r.AccountID,
		OrderID:   r.OrderID,
		DER:       der,
		NotBefore: cert.NotBefore,
		NotAfter:  cert.NotAfter,
		Status:    status.Good,
		KeyHash:   KeyHash(spki), // the DER crypto/x509 put in the certificate
	}
	audit := store.AuditEntry{At: now, Kind: "certificate.issued", Actor: orSystem(r.Actor), Subject: string(sn), Payload: issuedPayload(r, is, sh, cert, der, nil)}
	if err := ca.store.InsertCertificate(ctx, row, audit); err != nil {
		return store.Certificate{}, fmt.Errorf("issuer: storing %s: %w", sn, err)
	}
	ca.log.Info("certificate issued", "serial", sn, "issuer", is.ID, "profile", r.Profile, "order", r.OrderID)
	ca.metrics.certificateIssued(is.ID, r.Profile)
	if ca.sink != nil {
		if err := ca.sink.CertificateChanged(ctx, row); err != nil {
			return row, fmt.Errorf("issuer: %s stored, but its OCSP response is not ready: %w", sn, err)
		}
	}
	return row, nil
}

// sign lints tmpl (zlint, with a throwaway key), signs it with the
// intermediate's key, and checks that what was signed is what was linted
// and that the signature verifies.
func (ca *CA) sign(tmpl *x509.Certificate, is *pki.Issuer, pub crypto.PublicKey, sn serial.Serial) ([]byte, *x509.Certificate, error) {
	tbs, err := ca.lint.Prelint(tmpl, is.Cert, pub)
	if err != nil {
		return nil, nil, fmt.Errorf("issuer: refusing to sign %s: %w", sn, err)
	}
	der, err := x509.CreateCertificate(ca.rand, tmpl, is.Cert, pub, is.Signer)
	if err != nil && temporarilyUnavailable(err) {
		// The key's token is down (pkcs11key fails fast while it is):
		// nothing was signed, the reserved serial stays unused, and the
		// caller may retry.
		ca.log.Warn("signing key unavailable", "serial", sn, "issuer", is.ID, "err", err)
		return nil, nil, &fault.UnavailableError{Detail: "the CA's signing key cannot be reached right now; nothing was issued"}
	}
	if err != nil {
		return nil, nil, fmt.Errorf("issuer: signing %s with %s: %w", sn, is.ID, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, fmt.Errorf("issuer: parsing signed %s: %w", sn, err)
	}
	if err := linter.SameTBS(tbs, cert); err != nil {
		return nil, nil, fmt.Errorf("issuer: %s: %w", sn, err)
	}
	if err := cert.CheckSignatureFrom(is.Cert); err != nil {
		return nil, nil, fmt.Errorf("issuer: %s signature does not verify: %w", sn, err)
	}
	return der, cert, nil
}

// issuedPayload is the certificate.issued audit entry's payload.
func issuedPayload(r IssueRequest, is *pki.Issuer, sh shard.Index, cert *x509.Certificate, der []byte, scts []ct.Obtained) []byte {
	sum := sha256.Sum256(der)
	m := map[string]any{
		"issuer": is.ID, "profile": r.Profile, "names": r.Names, "order": r.OrderID,
		"account": r.AccountID, "not_after": cert.NotAfter, "sha256": hex.EncodeToString(sum[:]), "shard": sh,
	}
	if scts != nil {
		m["scts"] = scts
	}
	payload, _ := json.Marshal(m)
	return payload
}

// RevokeRequest asks for a revocation.
type RevokeRequest struct {
	Serial serial.Serial
	Reason reason.Reason
	Actor  string // account id of the subscriber or admin
}

// ErrReasonNotAllowed: BR §7.2.2 does not allow this reason for a
// subscriber certificate.
var ErrReasonNotAllowed = errors.New("issuer: revocation reason not allowed for subscriber certificates")

// Revoke revokes a subscriber certificate. Whether the actor may do so is
// the caller's check.
func (ca *CA) Revoke(ctx context.Context, r RevokeRequest) (store.Certificate, error) {
	if !r.Reason.AllowedForSubscriber() {
		return store.Certificate{}, fmt.Errorf("%w: %s", ErrReasonNotAllowed, r.Reason)
	}
	now := ca.now()
	payload, _ := json.Marshal(map[string]any{"reason": r.Reason.String(), "revoked_at": now.UTC()})
	audit := store.AuditEntry{At: now, Kind: "certificate.revoked", Actor: orSystem(r.Actor), Subject: string(r.Serial), Payload: payload}
	c, err := ca.store.Revoke(ctx, store.Revocation{Serial: r.Serial, Reason: r.Reason, At: now}, audit)
	if err != nil {
		return store.Certificate{}, fmt.Errorf("issuer: revoking %s: %w", r.Serial, err)
	}
	ca.log.Info("certificate revoked", "serial", r.Serial, "reason", r.Reason, "actor", r.Actor)
	ca.metrics.revoked(r.Reason)
	if r.Reason == reason.KeyCompromise {
		if _, err := ca.blockKeyOf(ctx, c, r.Actor); err != nil {
			return c, fmt.Errorf("issuer: %s revoked, but its key is not blocked yet: %w", r.Serial, err)
		}
	}
	if ca.sink != nil {
		if err := ca.sink.CertificateChanged(ctx, c); err != nil {
			return c, fmt.Errorf("issuer: %s revoked, but its OCSP response is not updated yet: %w", r.Serial, err)
		}
	}
	return c, nil
}

// RevokeKey treats the key of certificate sn as compromised (BR §4.9.1.1):
// it blocks the key, then revokes for keyCompromise every certificate
// issued with it that is not revoked yet, and audits the whole. It
// returns the certificates it revoked and the serials revoked already.
// Certificates stored before the key index existed are found only by sn
// itself.
func (ca *CA) RevokeKey(ctx context.Context, sn serial.Serial, actor string) (revoked []store.Certificate, already []serial.Serial, err error) {
	c, err := ca.store.Certificate(ctx, sn)
	if err != nil {
		return nil, nil, fmt.Errorf("issuer: reading %s: %w", sn, err)
	}
	hash, err := ca.blockKeyOf(ctx, c, actor)
	if err != nil {
		return nil, nil, fmt.Errorf("issuer: blocking the key of %s: %w", sn, err)
	}
	serials, err := ca.store.CertificatesWithKey(ctx, hash)
	if err != nil {
		return nil, nil, fmt.Errorf("issuer: listing the certificates of the key of %s: %w", sn, err)
	}
	if !slices.Contains(serials, sn) {
		serials = append(serials, sn)
	}
	for _, s := range serials {
		got, err := ca.Revoke(ctx, RevokeRequest{Serial: s, Reason: reason.KeyCompromise, Actor: actor})
		switch {
		case errors.Is(err, store.ErrAlreadyRevoked):
			already = append(already, s)
		case err != nil && got.Serial == "":
			return revoked, already, err
		default: // revoked (an OCSP update still pending is logged by the sink)
			revoked = append(revoked, got)
		}
	}
	var done []serial.Serial
	for _, r := range revoked {
		done = append(done, r.Serial)
	}
	payload, _ := json.Marshal(map[string]any{"key_sha256": hex.EncodeToString(hash), "from": sn, "revoked": done, "already_revoked": already})
	_, err = ca.store.AppendAudit(ctx, store.AuditEntry{At: ca.now(), Kind: "key.certificates_revoked", Actor: orSystem(actor), Subject: hex.EncodeToString(hash), Payload: payload})
	return revoked, already, err
}

// blockKeyOf blocks the key of c, revoked for keyCompromise, audits it,
// and returns its hash; a key blocked already stays as first recorded.
func (ca *CA) blockKeyOf(ctx context.Context, c store.Certificate, actor string) ([]byte, error) {
	cert, err := x509.ParseCertificate(c.DER)
	if err != nil {
		return nil, fmt.Errorf("parsing %s: %w", c.Serial, err)
	}
	k := store.BlockedKey{KeyHash: KeyHash(cert.RawSubjectPublicKeyInfo), Serial: c.Serial,
		Reason: "certificate revoked for keyCompromise", Actor: orSystem(actor), BlockedAt: ca.now()}
	err = ca.store.BlockKey(ctx, k)
	if errors.Is(err, store.ErrDuplicate) {
		return k.KeyHash, nil
	}
	if err != nil {
		return nil, err
	}
	payload, _ := json.Marshal(map[string]any{"key_sha256": hex.EncodeToString(k.KeyHash), "serial": c.Serial, "reason": k.Reason})
	if _, err := ca.store.AppendAudit(ctx, store.AuditEntry{At: k.BlockedAt, Kind: "key.blocked", Actor: k.Actor, Subject: hex.EncodeToString(k.KeyHash), Payload: payload}); err != nil {
		return nil, err
	}
	ca.log.Warn("key blocked: reported compromised", "key_sha256", hex.EncodeToString(k.KeyHash), "serial", c.Serial, "actor", k.Actor)
	return k.KeyHash, nil
}

func orSystem(actor string) string {
	if actor == "" {
		return "system"
	}
	return actor
}

// SignForLoad signs a DV certificate for name and pub with the
// intermediate routed for family ("ecdsa", "rsa"), for the bench's bulk
// loader (bench.Populate) only. It takes shortcuts no subscriber
// certificate may: its serial is not reserved (the bulk insert stores
// it), it is not linted (the profile is the one every issued certificate
// passes lint with), nothing is stored, announced or audited, and most
// certificates are made by patching serial, validity and name into a
// reference certificate of the same issuer, shard, key and name length
// (loadsign.go), which is signed once, never returned and never stored.
// It is still signed by the intermediate's key and carries the usual
// serial, shard, CRLDP and AIA. The row it returns is good and has no
// account.
func (ca *CA) SignForLoad(ctx context.Context, family, name string, pub crypto.PublicKey) (store.Certificate, error) {
	id, ok := ca.cfg.Route[family]
	if !ok {
		return store.Certificate{}, fmt.Errorf("%w: %s", ErrNoIssuer, family)
	}
	is, _ := ca.pki.Issuer(id) // Validate checked every route
	b := make([]byte, loadSerialLen)
	b[0] = ca.cfg.SerialPrefix
	if _, err := io.ReadFull(ca.serial, b[1:]); err != nil {
		return store.Certificate{}, err
	}
	sn, err := serial.FromBytes(b)
	if err != nil {
		return store.Certificate{}, err
	}
	sh := shard.For(sn, ca.cfg.Shards)
	tmpl, err := ca.loadTemplate(is, sh, sn, name, pub, ca.now())
	if err != nil {
		return store.Certificate{}, err
	}
	der, err := ca.signLoad(tmpl, is, sh, pub)
	if err != nil {
		return store.Certificate{}, fmt.Errorf("issuer: signing a load-test certificate: %w", err)
	}
	row := store.Certificate{
		Serial: sn, IssuerID: is.ID, Shard: sh, DER: der,
		NotBefore: tmpl.NotBefore, NotAfter: tmpl.NotAfter, Status: status.Good,
	}
	return row, ctx.Err()
}

// temporarilyUnavailable reports an error that says a dependency is down
// for a while rather than that the request failed: the signer's errors
// carry an Unavailable method then (pkcs11key.ErrUnavailable, for a token
// that cannot be reached), which the issuance core checks without
// importing the HSM package.
func temporarilyUnavailable(err error) bool {
	var u interface{ Unavailable() bool }
	return errors.As(err, &u) && u.Unavailable()
}
