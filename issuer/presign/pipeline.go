package presign

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/trustline/trustline/internal/issuerid"
	"github.com/trustline/trustline/internal/ocspcache"
	"github.com/trustline/trustline/internal/ocspcodec"
	"github.com/trustline/trustline/internal/reason"
	"github.com/trustline/trustline/internal/serial"
	"github.com/trustline/trustline/internal/status"
	"github.com/trustline/trustline/internal/store"
)

// CertReader reads one certificate (sink of events, live signing).
type CertReader interface {
	Certificate(ctx context.Context, s serial.Serial) (store.Certificate, error)
}

// CertScanner walks all certificates (rebuild).
type CertScanner interface {
	ListCertificates(ctx context.Context, p store.Page) ([]store.CertSummary, error)
	CountCertificates(ctx context.Context) (int64, error)
}

// RefreshSchedule is the per-certificate refresh point (refresh).
type RefreshSchedule interface {
	DueForOCSP(ctx context.Context, due, now time.Time, limit int) ([]store.CertSummary, error)
	SetOCSPRefresh(ctx context.Context, rs []store.OCSPRefresh) error
}

// EventLog is the status-change log (catching up).
type EventLog interface {
	EventsAfter(ctx context.Context, seq int64, limit int) ([]store.Event, error)
	LastEventSeq(ctx context.Context) (int64, error)
}

// Leases elect the one instance that refreshes and rebuilds.
type Leases interface {
	AcquireLease(ctx context.Context, name, holder string, now, until time.Time) (bool, error)
	ReleaseLease(ctx context.Context, name, holder string) error
}

// Store is the part of the store the pipeline uses: the roles above, each
// small; both store adapters satisfy it.
type Store interface {
	CertReader
	CertScanner
	RefreshSchedule
	EventLog
	Leases
}

// Cache is the response cache as the pipeline writes it (ocspcache.Memory,
// ocspcache.Redis).
type Cache interface {
	Get(ctx context.Context, keys []string, out []ocspcache.Entry) error
	Put(ctx context.Context, items []ocspcache.Item) error
	State(ctx context.Context) (ocspcache.State, error)
	SwapState(ctx context.Context, old, next ocspcache.State) error
}

// Issuer is one CA whose certificates' responses the pipeline signs.
type Issuer struct {
	ID   issuerid.ID
	Cert *x509.Certificate
	// Responder is the delegated responder certificate, or nil when Key is
	// the issuer's own key.
	Responder *x509.Certificate
	Key       crypto.Signer
}

// signer is an Issuer ready to sign.
type signer struct {
	*ocspcodec.Signer
	// notAfter is the responder certificate's expiry (zero when the issuer
	// key signs): no response may outlive it.
	notAfter time.Time
	// size estimates one response's length, to size batch buffers.
	size int
}

type signerSet map[issuerid.ID]*signer

func newSignerSet(issuers []Issuer) (signerSet, error) {
	if len(issuers) == 0 {
		return nil, errors.New("presign: at least one issuer is required")
	}
	set := signerSet{}
	for _, is := range issuers {
		if !is.ID.Valid() {
			return nil, fmt.Errorf("presign: issuer id %q is invalid", is.ID)
		}
		if _, dup := set[is.ID]; dup {
			return nil, fmt.Errorf("presign: issuer %s listed twice", is.ID)
		}
		s, err := ocspcodec.NewSigner(ocspcodec.Config{Issuer: is.Cert, Responder: is.Responder, Key: is.Key})
		if err != nil {
			return nil, fmt.Errorf("presign: issuer %s: %w", is.ID, err)
		}
		sg := &signer{Signer: s, size: 400} // generous: a reallocation copies the whole batch
		if is.Responder != nil {
			sg.notAfter = is.Responder.NotAfter
			sg.size += len(is.Responder.Raw)
		}
		set[is.ID] = sg
	}
	return set, nil
}

// Deps are the pipeline's collaborators.
type Deps struct {
	Store   Store // required
	Cache   Cache // required
	Issuers []Issuer
	// Registerer receives the metrics; nil registers nowhere.
	Registerer prometheus.Registerer
	Log        *slog.Logger // required
	Now        func() time.Time
	// Rand is handed to the signing keys; nil means crypto/rand.
	Rand io.Reader
}

// Pipeline is the pre-signer. Its methods are safe for concurrent use;
// Run is meant to be called once.
type Pipeline struct {
	cfg     Config
	store   Store
	cache   Cache
	signers atomic.Pointer[signerSet]
	log     *slog.Logger
	now     func() time.Time
	rand    io.Reader
	m       *metrics

	rebuildMu sync.Mutex // one rebuild at a time in this process
	progress  atomic.Pointer[Progress]
	warned    sync.Map // issuer ids already logged as unknown
}

// New checks cfg and builds the pipeline.
func New(cfg Config, d Deps) (*Pipeline, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if d.Store == nil || d.Cache == nil || d.Log == nil {
		return nil, errors.New("presign: Store, Cache and Log are required")
	}
	set, err := newSignerSet(d.Issuers)
	if err != nil {
		return nil, err
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Rand == nil {
		d.Rand = rand.Reader
	}
	p := &Pipeline{cfg: cfg.withDefaults(), store: d.Store, cache: d.Cache, log: d.Log, now: d.Now, rand: d.Rand}
	p.signers.Store(&set)
	p.progress.Store(&Progress{})
	if p.m, err = newMetrics(d.Registerer, p); err != nil {
		return nil, err
	}
	return p, nil
}

// SetIssuers replaces the signing keys and certificates, after delegated
// responder certificates were renewed (pki.RenewResponders). Responses
// already cached stay valid; new ones use the new certificates.
func (p *Pipeline) SetIssuers(issuers []Issuer) error {
	set, err := newSignerSet(issuers)
	if err != nil {
		return err
	}
	p.signers.Store(&set)
	return nil
}

// HashAlgs returns the pre-signed CertID hash algorithms (for the
// responder's Presigned).
func (p *Pipeline) HashAlgs() []ocspcodec.HashAlg { return slices.Clone(p.cfg.HashAlgs) }

// allAlgs is every CertID hash algorithm: a revocation replaces the
// responses of all of them, lazily signed ones included.
var allAlgs = []ocspcodec.HashAlg{ocspcodec.SHA1, ocspcodec.SHA256, ocspcodec.SHA384, ocspcodec.SHA512}

// cert is what signing needs to know of a certificate.
type cert struct {
	Serial    serial.Serial
	IssuerID  issuerid.ID
	NotAfter  time.Time
	Status    status.Status
	RevokedAt time.Time
	Reason    reason.Reason
}

func fromSummary(c store.CertSummary) cert {
	return cert{Serial: c.Serial, IssuerID: c.IssuerID, NotAfter: c.NotAfter, Status: c.Status, RevokedAt: c.RevokedAt, Reason: c.Reason}
}

func fromCertificate(c store.Certificate) cert {
	return cert{Serial: c.Serial, IssuerID: c.IssuerID, NotAfter: c.NotAfter, Status: c.Status, RevokedAt: c.RevokedAt, Reason: c.Reason}
}

// batch is signed responses ready to write, and the refresh points to
// record once they are written.
type batch struct {
	items     []ocspcache.Item
	refreshes []store.OCSPRefresh
	signed    int // certificates signed
	skipped   int // expired, or of an issuer without a signer
	last      serial.Serial
}

// times returns thisUpdate, nextUpdate and the refresh point of a response
// signed at now (BR §4.9.10; see Config). A revoked response is not dated
// before its revocation.
func (p *Pipeline) times(now time.Time, c *cert) (this, next, refresh time.Time) {
	this = now.Truncate(time.Second).Add(-p.cfg.Backdate).UTC()
	if c.Status == status.Revoked {
		if r := c.RevokedAt.Truncate(time.Second).UTC(); r.After(this) && !r.After(now) {
			this = r
		}
	}
	return this, this.Add(p.cfg.Validity), this.Add(p.cfg.RefreshAfter)
}

// signBatch signs the responses of certs for algs at now into one shared
// buffer. Expired certificates are skipped; so are certificates of
// issuers this pipeline has no key for (logged once per issuer).
func (p *Pipeline) signBatch(certs []cert, algs []ocspcodec.HashAlg, now time.Time, evict bool) (batch, error) {
	set := *p.signers.Load()
	b := batch{items: make([]ocspcache.Item, 0, len(certs)*len(algs)), refreshes: make([]store.OCSPRefresh, 0, len(certs))}
	var buf []byte
	var sn [serial.MaxOctets]byte
	for i := range certs {
		c := &certs[i]
		s := set[c.IssuerID]
		if s == nil {
			if _, logged := p.warned.LoadOrStore(c.IssuerID, true); !logged {
				p.log.Warn("no OCSP signer for issuer; its certificates get no responses", "issuer", c.IssuerID)
			}
			// Move it to the back of the refresh queue, or it would
			// come back first every round.
			b.refreshes = append(b.refreshes, store.OCSPRefresh{Serial: c.Serial, At: now.Add(p.cfg.RefreshAfter)})
			b.skipped++
			continue
		}
		if !now.Before(c.NotAfter) {
			b.skipped++
			continue
		}
		if buf == nil {
			buf = make([]byte, 0, (len(certs)-i)*len(algs)*s.size)
		}
		n, ok := decodeSerial(&sn, c.Serial)
		if !ok {
			return batch{}, fmt.Errorf("presign: certificate serial %q is not canonical", c.Serial)
		}
		this, next, refresh := p.times(now, c)
		if !s.notAfter.IsZero() && s.notAfter.Before(next) {
			return batch{}, fmt.Errorf("presign: the OCSP responder certificate of %s expires at %v, before nextUpdate %v: renew it (pki.RenewResponders) and call SetIssuers",
				c.IssuerID, s.notAfter, next)
		}
		one := ocspcodec.Single{ID: ocspcodec.CertID{Serial: sn[:n]}, Status: c.Status, ThisUpdate: this, NextUpdate: next}
		if c.Status == status.Revoked {
			one.RevokedAt, one.Reason = c.RevokedAt, c.Reason
		}
		for _, h := range algs {
			one.ID.Hash = h
			one.ID.IssuerNameHash, one.ID.IssuerKeyHash = nil, nil
			start := len(buf)
			var err error
			buf, err = s.Sign(buf, one, now, p.rand)
			if err != nil {
				return batch{}, fmt.Errorf("presign: signing %s for %s: %w", h, c.Serial, err)
			}
			b.items = append(b.items, ocspcache.Item{
				Key: ocspcache.Key(c.IssuerID, string(c.Serial), h),
				// Capacity capped so that a later append cannot write into it.
				Entry: ocspcache.Entry{DER: buf[start:len(buf):len(buf)], Status: c.Status, ThisUpdate: this, NextUpdate: next, RefreshAt: refresh},
				Evict: evict,
			})
		}
		b.refreshes = append(b.refreshes, store.OCSPRefresh{Serial: c.Serial, At: refresh})
		b.signed++
	}
	return b, nil
}

// decodeSerial decodes a canonical serial's hex into dst without
// allocating; ok is false unless it is 1 to 20 octets, minimal.
func decodeSerial(dst *[serial.MaxOctets]byte, s serial.Serial) (n int, ok bool) {
	if len(s) == 0 || len(s)%2 != 0 || len(s) > 2*serial.MaxOctets {
		return 0, false
	}
	for i := 0; i < len(s); i += 2 {
		hi, ok1 := fromHex(s[i])
		lo, ok2 := fromHex(s[i+1])
		if !ok1 || !ok2 {
			return 0, false
		}
		dst[i/2] = hi<<4 | lo
	}
	return len(s) / 2, dst[0] != 0
}

func fromHex(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	}
	return 0, false
}

// CertificateChanged is the CA's status sink (issuer.StatusSink): it signs
// c's responses and writes them to the cache before returning. A
// revocation is signed for every hash algorithm, lazily signed ones
// included, and evicts the responders' copies.
func (p *Pipeline) CertificateChanged(ctx context.Context, c store.Certificate) error {
	algs, evict, trigger := p.cfg.HashAlgs, false, triggerIssue
	if c.Status == status.Revoked {
		algs, evict, trigger = allAlgs, true, triggerRevoke
	}
	b, err := p.signBatch([]cert{fromCertificate(c)}, algs, p.now(), evict)
	if err != nil {
		p.m.failures[stageSign].Inc()
		return err
	}
	if len(b.items) == 0 {
		return fmt.Errorf("presign: no response signed for %s (issuer %s unknown, or expired)", c.Serial, c.IssuerID)
	}
	if err := p.cache.Put(ctx, b.items); err != nil {
		p.m.failures[stageWrite].Inc()
		return fmt.Errorf("presign: writing responses for %s: %w", c.Serial, err)
	}
	p.m.signed[trigger].Add(float64(len(b.items)))
	// A failed schedule update only means an early refresh: the stored
	// point is still the old one (or "now" for a new certificate).
	if err := p.store.SetOCSPRefresh(ctx, b.refreshes); err != nil {
		p.m.failures[stageSchedule].Inc()
		p.log.Warn("recording OCSP refresh point", "serial", c.Serial, "err", err)
	}
	return nil
}

// SignLive signs one response on demand (responder.LiveSigner). It returns
// an error wrapping ocspcache.ErrUnknown when issuer issued no certificate
// sn, or it has expired. The caller writes the response to the cache.
func (p *Pipeline) SignLive(ctx context.Context, issuer issuerid.ID, h ocspcodec.HashAlg, sn serial.Serial) (ocspcache.Entry, error) {
	c, err := p.store.Certificate(ctx, sn)
	if errors.Is(err, store.ErrNotFound) {
		return ocspcache.Entry{}, fmt.Errorf("presign: %s: %w", sn, ocspcache.ErrUnknown)
	}
	if err != nil {
		return ocspcache.Entry{}, fmt.Errorf("presign: reading %s: %w", sn, err)
	}
	now := p.now()
	if c.IssuerID != issuer || !now.Before(c.NotAfter) {
		return ocspcache.Entry{}, fmt.Errorf("presign: %s of %s (expired or another issuer's): %w", sn, issuer, ocspcache.ErrUnknown)
	}
	b, err := p.signBatch([]cert{fromCertificate(c)}, []ocspcodec.HashAlg{h}, now, false)
	if err != nil {
		p.m.failures[stageSign].Inc()
		return ocspcache.Entry{}, err
	}
	if len(b.items) == 0 {
		return ocspcache.Entry{}, fmt.Errorf("presign: %s: no signer for issuer %s: %w", sn, issuer, ocspcache.ErrUnknown)
	}
	p.m.signed[triggerLive].Inc()
	return b.items[0].Entry, nil
}
