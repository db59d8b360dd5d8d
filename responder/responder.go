package responder

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/trustline/trustline/internal/issuerid"
	"github.com/trustline/trustline/internal/ocspcache"
	"github.com/trustline/trustline/internal/ocspcodec"
	"github.com/trustline/trustline/internal/serial"
	"github.com/trustline/trustline/internal/status"
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
	cfg       Config
	issuers   []*issuer
	presigned [5]bool // by HashAlg
	primary   ocspcodec.HashAlg
	cache     Cache
	signer    LiveSigner
	log       *slog.Logger
	now       func() time.Time
	l1        *l1
	unsub     func()
	metrics   *metrics

	sem       chan struct{}
	flight    singleflight.Group
	downUntil atomic.Int64 // Unix nanoseconds; cache skipped before it
	complete  atomic.Bool
	checkedAt atomic.Int64 // Unix nanoseconds of the last State read
	logDown   atomic.Int64 // Unix nanoseconds: rate-limits cache-failure logs
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
	if d.Now == nil {
		d.Now = time.Now
	}
	r := &Responder{cfg: cfg, cache: d.Cache, signer: d.Signer, log: d.Log, now: d.Now, l1: newL1(cfg.L1Entries)}
	if cfg.LiveSigning > 0 && d.Signer != nil {
		r.sem = make(chan struct{}, cfg.LiveSigning)
	}
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
		r.issuers = append(r.issuers, ii)
	}
	for _, h := range cfg.Presigned {
		r.presigned[h] = true
	}
	// The algorithm whose presence proves the certificate known: SHA-256
	// if pre-signed, else the first pre-signed one.
	r.primary = cfg.Presigned[0]
	if slices.Contains(cfg.Presigned, ocspcodec.SHA256) {
		r.primary = ocspcodec.SHA256
	}
	m, err := newMetrics(d.Registerer, r)
	if err != nil {
		return nil, err
	}
	r.metrics = m
	if r.l1 != nil {
		r.unsub = d.Evictions.Subscribe(r.evict)
	}
	return r, nil
}

// Close stops listening for evictions.
func (r *Responder) Close() {
	if r.unsub != nil {
		r.unsub()
	}
}

func (r *Responder) evict(e ocspcache.Eviction) {
	if e.Prefix == "" {
		r.l1.clear()
		return
	}
	r.l1.evictPrefix(e.Prefix)
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

// rendered is a response ready to send, built once per cache fetch.
type rendered struct {
	key                               string
	der                               []byte
	kind                              Kind
	thisUpdate, refreshAt, nextUpdate int64 // Unix seconds
	etag, lastModified, expires, tags []byte
	tagHeader                         string
}

func (r *Responder) render(key string, is *issuer, serialHex string, e *ocspcache.Entry) *rendered {
	sum := sha256.Sum256(e.DER)
	etag := make([]byte, 0, 2+24)
	etag = append(etag, '"')
	etag = hex.AppendEncode(etag, sum[:12])
	etag = append(etag, '"')
	kind := Unknown
	switch e.Status {
	case status.Good:
		kind = Good
	case status.Revoked:
		kind = Revoked
	}
	rd := &rendered{
		key: key, der: e.DER, kind: kind,
		thisUpdate: e.ThisUpdate.Unix(), refreshAt: e.RefreshAt.Unix(), nextUpdate: e.NextUpdate.Unix(),
		etag:         etag,
		lastModified: e.ThisUpdate.UTC().AppendFormat(nil, http.TimeFormat),
		expires:      e.NextUpdate.UTC().AppendFormat(nil, http.TimeFormat),
	}
	if rd.refreshAt > rd.nextUpdate {
		rd.refreshAt = rd.nextUpdate
	}
	if r.cfg.CacheTagHeader != "" {
		sep := " "
		if r.cfg.CacheTagHeader == "Cache-Tag" {
			sep = ","
		}
		rd.tags = []byte(is.tags + sep + "ocsp-" + serialHex)
		rd.tagHeader = r.cfg.CacheTagHeader
	}
	return rd
}

func tagList(header string, tags ...string) string {
	if header == "Cache-Tag" {
		return strings.Join(tags, ",")
	}
	return strings.Join(tags, " ")
}

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

// maxKey bounds a cache key: an issuer id, a serial of at most 20 octets
// in hex, separators and the algorithm.
const maxKey = issuerid.MaxLen + 2*20 + 3

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
	var kb [maxKey]byte
	key := ocspcache.AppendKey(kb[:0], is.id, id.Serial, id.Hash)
	if r.l1 != nil {
		if rd := r.l1.get(key, now.Unix()); rd != nil {
			r.metrics.l1Hits.Inc()
			return r.success(rd, now.Unix())
		}
		r.metrics.l1Misses.Inc()
	}
	return r.lookup(ctx, string(key), is, id.Hash, now)
}

// lookup is the L1 miss path: the cache, then live signing.
func (r *Responder) lookup(ctx context.Context, key string, is *issuer, h ocspcodec.HashAlg, now time.Time) Answer {
	serialHex := key[len(is.id)+1 : len(key)-2]
	if now.UnixNano() >= r.downUntil.Load() {
		keys := []string{key}
		if !r.presigned[h] {
			// The pre-signed response tells a known certificate from an
			// unknown one when this algorithm's must be signed live.
			keys = append(keys, ocspcache.Key(is.id, serialHex, r.primary))
		}
		out := make([]ocspcache.Entry, len(keys))
		lctx, cancel := context.WithTimeout(ctx, r.cfg.LookupTimeout)
		err := r.cache.Get(lctx, keys, out)
		cancel()
		if err == nil {
			if e := &out[0]; e.Found() && now.Before(e.NextUpdate) {
				r.metrics.cacheHits.Inc()
				rd := r.render(key, is, serialHex, e)
				if r.l1 != nil && now.Unix() < rd.refreshAt {
					r.l1.put(rd, now.Unix())
				}
				return r.success(rd, now.Unix())
			}
			r.metrics.cacheMisses.Inc()
			known := len(out) > 1 && out[1].Found()
			if !known && r.cacheComplete(ctx, now) {
				return r.refuse(Unauthorized)
			}
		} else {
			r.cacheFailed(now, err)
		}
	}
	return r.signLive(ctx, key, is, serialHex, h, now)
}

// cacheFailed opens the breaker for Cooldown and logs, at most once per
// Cooldown.
func (r *Responder) cacheFailed(now time.Time, err error) {
	r.metrics.cacheErrors.Inc()
	r.downUntil.Store(now.Add(r.cfg.Cooldown).UnixNano())
	if last := r.logDown.Load(); now.UnixNano()-last >= int64(r.cfg.Cooldown) && r.logDown.CompareAndSwap(last, now.UnixNano()) {
		r.log.Warn("response cache lookup failed; serving from L1 and live signing", "err", err, "cooldown", r.cfg.Cooldown)
	}
}

// cacheComplete reports whether the pipeline's last rebuild finished, so
// that a miss means an unknown certificate. The flag is re-read at most
// once per StateTTL; a failed read counts as incomplete.
func (r *Responder) cacheComplete(ctx context.Context, now time.Time) bool {
	last := r.checkedAt.Load()
	if now.UnixNano()-last < int64(r.cfg.StateTTL) {
		return r.complete.Load()
	}
	lctx, cancel := context.WithTimeout(ctx, r.cfg.LookupTimeout)
	st, err := r.cache.State(lctx)
	cancel()
	ok := err == nil && st.Complete
	r.complete.Store(ok)
	r.checkedAt.Store(now.UnixNano())
	if err != nil {
		r.cacheFailed(now, err)
	}
	return ok
}

// signLive signs the response on demand, within the LiveSigning budget;
// concurrent requests for the same key share one signature.
func (r *Responder) signLive(ctx context.Context, key string, is *issuer, serialHex string, h ocspcodec.HashAlg, now time.Time) Answer {
	if r.sem == nil {
		return r.refuse(TryLater)
	}
	v, err, _ := r.flight.Do(key, func() (any, error) {
		select {
		case r.sem <- struct{}{}:
		default:
			r.metrics.live[liveRejected].Inc()
			return nil, errBudget
		}
		r.metrics.liveInflight.Inc()
		defer func() { r.metrics.liveInflight.Dec(); <-r.sem }()
		sn, err := serial.Parse(serialHex)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ocspcache.ErrUnknown, err)
		}
		sctx, cancel := context.WithTimeout(ctx, r.cfg.SignTimeout)
		e, err := r.signer.SignLive(sctx, is.id, h, sn)
		cancel()
		if err != nil {
			return nil, err
		}
		if !e.Found() || !now.Before(e.NextUpdate) {
			return nil, errors.New("responder: live signer returned no usable response")
		}
		rd := r.render(key, is, serialHex, &e)
		if r.l1 != nil && now.Unix() < rd.refreshAt {
			r.l1.put(rd, now.Unix())
		}
		if now.UnixNano() >= r.downUntil.Load() {
			lctx, cancel := context.WithTimeout(ctx, r.cfg.LookupTimeout)
			if err := r.cache.Put(lctx, []ocspcache.Item{{Key: key, Entry: e}}); err != nil {
				r.cacheFailed(now, err)
			}
			cancel()
		}
		return rd, nil
	})
	switch {
	case err == nil:
		r.metrics.live[liveSigned].Inc()
		return r.success(v.(*rendered), now.Unix())
	case errors.Is(err, ocspcache.ErrUnknown):
		r.metrics.live[liveUnknown].Inc()
		return r.refuse(Unauthorized)
	case errors.Is(err, errBudget):
		return r.refuse(TryLater)
	default:
		r.metrics.live[liveFailed].Inc()
		r.log.Warn("live signing failed", "key", key, "err", err)
		return r.refuse(TryLater)
	}
}

var errBudget = errors.New("responder: live signing budget exhausted")
