package responder

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/trustline/trustline/internal/issuerid"
	"github.com/trustline/trustline/internal/ocspcache"
	"github.com/trustline/trustline/internal/ocspcodec"
	"github.com/trustline/trustline/internal/serial"
)

// Cache is the response cache as the responder uses it: lookups, the
// completeness flag of the pipeline's last rebuild, and writes of lazily
// signed responses. ocspcache.Memory and ocspcache.Redis implement it.
type Cache interface {
	Get(ctx context.Context, keys []string, out []ocspcache.Entry) error
	Put(ctx context.Context, items []ocspcache.Item) error
	State(ctx context.Context) (ocspcache.State, error)
}

// Evictions tells the responder which responses were replaced, so that it
// drops its L1 copies (ocspcache adapters implement it).
type Evictions interface {
	Subscribe(fn func(ocspcache.Eviction)) (cancel func())
}

// LiveSigner signs one response on demand: for hash algorithms the
// pipeline does not pre-sign, and while the cache is down or being
// rebuilt. It returns an error wrapping ocspcache.ErrUnknown when the
// issuer issued no such certificate (or it expired). cmd/ injects the
// pre-signing pipeline, which holds the keys and reads the store.
type LiveSigner interface {
	SignLive(ctx context.Context, issuer issuerid.ID, h ocspcodec.HashAlg, sn serial.Serial) (ocspcache.Entry, error)
}

// Config configures a Responder.
type Config struct {
	// Issuers are the CAs answered for. Required.
	Issuers []Issuer
	// Presigned lists the CertID hash algorithms the pipeline pre-signs
	// for every certificate (issuer/presign Config.HashAlgs); once the
	// cache is complete, a miss for one of them means "unknown serial".
	// Empty means SHA-1 and SHA-256, the pipeline's default.
	Presigned []ocspcodec.HashAlg
	// L1Entries bounds the in-process L1 (about 1 KB per entry with a
	// delegated responder certificate). 0 disables it.
	L1Entries int
	// LiveSigning bounds concurrent live signatures; requests beyond it get
	// tryLater. 0 disables live signing (a LiveSigner is then unused).
	LiveSigning int
	// LookupTimeout bounds one cache lookup or write. 0 means 250 ms.
	LookupTimeout time.Duration
	// Cooldown is how long the cache is left alone after it failed; L1
	// and live signing answer meanwhile. 0 means 1 s.
	Cooldown time.Duration
	// StateTTL is how long the cache's completeness flag is trusted before
	// it is read again. 0 means 1 s.
	StateTTL time.Duration
	// SignTimeout bounds one live signature (an HSM may stall). 0 means 2 s.
	SignTimeout time.Duration
	// CacheTagHeader, if set, is "Surrogate-Key" (space-separated tags)
	// or "Cache-Tag" (comma-separated): each cacheable answer carries the
	// tags "ocsp", "ocsp-<issuer>" and "ocsp-<serial hex>" so that a CDN
	// can purge one certificate's or one issuer's responses.
	CacheTagHeader string
}

// Validate checks cfg.
func (cfg Config) Validate() error {
	var errs []error
	if len(cfg.Issuers) == 0 {
		errs = append(errs, errors.New("responder: at least one issuer is required"))
	}
	for _, h := range cfg.Presigned {
		if !h.Valid() {
			errs = append(errs, fmt.Errorf("responder: Presigned: %v is not a CertID hash algorithm", h))
		}
	}
	if cfg.L1Entries < 0 || cfg.LiveSigning < 0 || cfg.LookupTimeout < 0 || cfg.Cooldown < 0 || cfg.StateTTL < 0 || cfg.SignTimeout < 0 {
		errs = append(errs, errors.New("responder: L1Entries, LiveSigning and the durations must not be negative"))
	}
	switch cfg.CacheTagHeader {
	case "", "Surrogate-Key", "Cache-Tag":
	default:
		errs = append(errs, fmt.Errorf("responder: CacheTagHeader %q: want \"\", \"Surrogate-Key\" or \"Cache-Tag\"", cfg.CacheTagHeader))
	}
	return errors.Join(errs...)
}

// Deps are the Responder's collaborators.
type Deps struct {
	Cache Cache // required
	// Evictions may be nil only when L1 is disabled.
	Evictions Evictions
	// Signer may be nil: no live signing.
	Signer LiveSigner
	// Registerer receives the metrics; nil registers nowhere.
	Registerer prometheus.Registerer
	Log        *slog.Logger // required
	// Now defaults to time.Now.
	Now func() time.Time
}

// Responder answers OCSP requests. It is safe for concurrent use.
type Responder struct {
	issuers []*issuer
	now     func() time.Time
	metrics *metrics
	// src is the head of the source chain (doc.go); l1 is its first
	// tier, nil when the L1 is disabled.
	src source
	l1  *l1Source
}

// New builds a Responder.
func New(cfg Config, d Deps) (*Responder, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if d.Cache == nil || d.Log == nil {
		return nil, errors.New("responder: Cache and Log are required")
	}
	if cfg.L1Entries > 0 && d.Evictions == nil {
		return nil, errors.New("responder: an L1 needs Evictions, or revocations would not reach it")
	}
	cfg = cfg.withDefaults()
	if d.Now == nil {
		d.Now = time.Now
	}
	issuers, err := newIssuers(cfg)
	if err != nil {
		return nil, err
	}
	c := newL1(cfg.L1Entries)
	m, err := newMetrics(d.Registerer, c)
	if err != nil {
		return nil, err
	}
	r := &Responder{issuers: issuers, now: d.Now, metrics: m, src: newChain(cfg, d, m)}
	if c != nil {
		r.l1 = newL1Source(c, d.Evictions, m, r.src)
		r.src = r.l1
	}
	return r, nil
}

// withDefaults fills in the zero values documented on Config.
func (cfg Config) withDefaults() Config {
	if len(cfg.Presigned) == 0 {
		cfg.Presigned = []ocspcodec.HashAlg{ocspcodec.SHA1, ocspcodec.SHA256}
	}
	if cfg.LookupTimeout == 0 {
		cfg.LookupTimeout = 250 * time.Millisecond
	}
	if cfg.Cooldown == 0 {
		cfg.Cooldown = time.Second
	}
	if cfg.StateTTL == 0 {
		cfg.StateTTL = time.Second
	}
	if cfg.SignTimeout == 0 {
		cfg.SignTimeout = 2 * time.Second
	}
	return cfg
}

func newIssuers(cfg Config) ([]*issuer, error) {
	var out []*issuer
	seen := map[issuerid.ID]bool{}
	for _, is := range cfg.Issuers {
		if seen[is.ID] {
			return nil, fmt.Errorf("responder: issuer %s listed twice", is.ID)
		}
		seen[is.ID] = true
		ii, err := newIssuer(is)
		if err != nil {
			return nil, err
		}
		ii.tags = tagList(cfg.CacheTagHeader, "ocsp", "ocsp-"+string(is.ID))
		out = append(out, ii)
	}
	return out, nil
}

// newChain builds the source chain below the L1 (doc.go): the response
// cache, then live signing if there is a signer and a budget for it.
func newChain(cfg Config, d Deps, m *metrics) source {
	rr := renderer{tagHeader: cfg.CacheTagHeader}
	brk := newBreakers(d.Cache, cfg.Cooldown, d.Log, m.cacheErrors)
	var live source = unavailable{}
	if cfg.LiveSigning > 0 && d.Signer != nil {
		live = &liveSource{signer: d.Signer, cache: d.Cache, brk: brk, rr: rr, signTimeout: cfg.SignTimeout, putTimeout: cfg.LookupTimeout}
		live = newBudget(cfg.LiveSigning, m, live)
		live = &coalescer{next: live}
		live = &liveOutcomes{next: live, m: m, log: d.Log}
	}
	return newCacheSource(d.Cache, cfg.Presigned, cfg.LookupTimeout, cfg.StateTTL, brk, rr, m, live)
}

// Close stops listening for evictions.
func (r *Responder) Close() {
	if r.l1 != nil {
		r.l1.close()
	}
}

// Kind is what an Answer says.
type Kind uint8

// Answer kinds: the three certificate statuses of a successful response,
// and the unsuccessful response statuses Trustline sends (RFC 6960 §4.2.1).
const (
	Good Kind = iota
	Revoked
	Unknown
	Malformed
	Unauthorized
	TryLater
	InternalError
	numKinds
)

var kindNames = [numKinds]string{"good", "revoked", "unknown", "malformed_request", "unauthorized", "try_later", "internal_error"}

// String returns the kind's metric label ("good", "malformed_request", …).
func (k Kind) String() string {
	if k < numKinds {
		return kindNames[k]
	}
	return "kind(" + fmt.Sprint(uint8(k)) + ")"
}

// Answer is the responder's reply to one request. A successful answer
// carries a pre-signed response with the header values RFC 5019 §6 asks
// for; the others carry an unsigned error response and must not be cached.
// The byte slices are shared: never modify them.
type Answer struct {
	Kind Kind
	// MaxAge is the Cache-Control max-age in seconds (until the response's
	// refresh point, never negative) when Cacheable.
	MaxAge int64
	r      *rendered
	body   []byte
}

// Body is the DER OCSPResponse to send.
func (a *Answer) Body() []byte {
	if a.r != nil {
		return a.r.der
	}
	return a.body
}

// Cacheable reports whether the answer is a pre-signed response that HTTP
// caches may keep (with the headers below); error answers are not.
func (a *Answer) Cacheable() bool { return a.r != nil }

// ETag is the strong entity tag of the response, quoted.
func (a *Answer) ETag() []byte { return a.r.etag }

// LastModified is the response's thisUpdate as an IMF-fixdate.
func (a *Answer) LastModified() []byte { return a.r.lastModified }

// Expires is the response's nextUpdate as an IMF-fixdate.
func (a *Answer) Expires() []byte { return a.r.expires }

// CacheTagHeader names the cache-tag header to send CacheTags under
// (Config.CacheTagHeader), "" for none.
func (a *Answer) CacheTagHeader() string { return a.r.tagHeader }

// CacheTags is the value of the cache-tag header, nil if none.
func (a *Answer) CacheTags() []byte { return a.r.tags }

func (r *Responder) success(rd *rendered, now int64) Answer {
	a := Answer{Kind: rd.kind, MaxAge: max(rd.refreshAt-now, 0), r: rd}
	r.metrics.answers[rd.kind].Inc()
	r.metrics.age.Observe(float64(now - rd.thisUpdate))
	return a
}

func (r *Responder) refuse(k Kind) Answer {
	r.metrics.answers[k].Inc()
	var body []byte
	switch k {
	case Malformed:
		body = ocspcodec.MalformedRequest
	case Unauthorized:
		body = ocspcodec.Unauthorized
	case TryLater:
		body = ocspcodec.TryLater
	default:
		body = ocspcodec.InternalError
	}
	return Answer{Kind: k, body: body}
}

// Answer answers the DER OCSPRequest der (nil or garbage answers
// malformedRequest). ctx bounds cache lookups and live signing; pass a
// long-lived context (the server's), not a per-request one that costs a
// goroutine to watch. On an L1 hit it does not allocate.
func (r *Responder) Answer(ctx context.Context, der []byte) Answer {
	return r.AnswerAt(ctx, der, r.now())
}

// AnswerAt is Answer with the current time supplied by the caller, who
// has usually just read the clock to time the request (the injected Now
// is then not called).
func (r *Responder) AnswerAt(ctx context.Context, der []byte, now time.Time) Answer {
	var req ocspcodec.Request
	if err := ocspcodec.ParseRequest(der, &req); err != nil || req.N != 1 {
		return r.refuse(Malformed)
	}
	id := &req.CertIDs[0]
	var is *issuer
	for _, c := range r.issuers {
		if c.matches(id) {
			is = c
			break
		}
	}
	if is == nil || len(id.Serial) > serial.MaxOctets {
		return r.refuse(Unauthorized)
	}
	var l lookup
	l.set(is, id.Hash, id.Serial, now)
	rd, err := r.src.Response(ctx, l)
	switch {
	case err == nil:
		return r.success(rd, now.Unix())
	case errors.Is(err, ocspcache.ErrUnknown):
		return r.refuse(Unauthorized)
	default:
		return r.refuse(TryLater)
	}
}
