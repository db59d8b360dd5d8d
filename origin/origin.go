package origin

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/textproto"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/trustline/trustline/crlgen/crlpub"
	"github.com/trustline/trustline/internal/issuerid"
	"github.com/trustline/trustline/internal/shard"
)

// Config tunes the cache headers.
type Config struct {
	// StaleIfError is the stale-if-error a cache is granted (RFC 5861) when
	// the origin fails, capped so a CRL is never served past its
	// nextUpdate. Default 1 h; at most 24 h.
	StaleIfError time.Duration
	// StaticMaxAge is the max-age of issuer certificates and crls.json,
	// which change rarely (a new shard count) and are not purged. Default
	// 1 h; at most 7 days.
	StaticMaxAge time.Duration
	// Period is the generator's republication period, used for CRLs read
	// from a directory (their next scheduled publication is thisUpdate +
	// Period); pushed CRLs say it themselves. Default 1 h, as crlgen's.
	Period time.Duration
}

func (c Config) withDefaults() Config {
	if c.StaleIfError == 0 {
		c.StaleIfError = time.Hour
	}
	if c.StaticMaxAge == 0 {
		c.StaticMaxAge = time.Hour
	}
	if c.Period == 0 {
		c.Period = time.Hour
	}
	return c
}

// Validate reports what is wrong with c (after defaults).
func (c Config) Validate() error {
	c = c.withDefaults()
	var errs []error
	if c.StaleIfError < 0 || c.StaleIfError > 24*time.Hour {
		errs = append(errs, fmt.Errorf("origin: config: StaleIfError %v out of range [0, 24h]", c.StaleIfError))
	}
	if c.StaticMaxAge < 0 || c.StaticMaxAge > 7*24*time.Hour {
		errs = append(errs, fmt.Errorf("origin: config: StaticMaxAge %v out of range [0, 7 days]", c.StaticMaxAge))
	}
	if c.Period < 0 || c.Period > 7*24*time.Hour {
		errs = append(errs, fmt.Errorf("origin: config: Period %v out of range (0, 7 days] (BR §4.9.7)", c.Period))
	}
	return errors.Join(errs...)
}

// Content types (RFC 5280 §4.2.1.13 and RFC 2585 §3-4).
const (
	typeCRL  = "application/pkix-crl"
	typeCert = "application/pkix-cert"
	typeJSON = "application/json"
)

// object is one servable representation. It is immutable once stored.
type object struct {
	body         []byte
	etag         string // strong: `"<32 hex digits>"`
	contentType  string
	lastModified time.Time
	// For CRLs: fresh until the next scheduled publication, and never
	// servable after nextUpdate. Zero for static objects.
	freshUntil time.Time
	nextUpdate time.Time
	number     int64

	// Header values, built once (read-only: len == cap, so an append by a
	// wrapper copies rather than writes into them).
	typeHdr, etagHdr []string
	// caching holds Cache-Control and Expires for the second they were
	// computed in; they change once a second at most.
	caching atomic.Pointer[cachingHeaders]
}

type cachingHeaders struct {
	sec                   int64
	cacheControl, expires []string
}

func newObject(body []byte, contentType string, lastModified time.Time) *object {
	sum := sha256.Sum256(body)
	etag := `"` + hex.EncodeToString(sum[:16]) + `"`
	return &object{
		body:         body,
		etag:         etag,
		contentType:  contentType,
		lastModified: lastModified.UTC().Truncate(time.Second),
		typeHdr:      []string{contentType},
		etagHdr:      []string{etag},
	}
}

// Server serves the origin's objects. It is safe for concurrent use.
type Server struct {
	cfg Config
	log *slog.Logger
	now func() time.Time

	mu      sync.RWMutex
	objects map[string]*object // by URL path
}

var (
	_ http.Handler     = (*Server)(nil)
	_ crlpub.Publisher = (*Server)(nil)
)

// New returns an empty server; fill it with Published, SetIssuerCert or
// WatchDir. now defaults to time.Now.
func New(cfg Config, log *slog.Logger, now func() time.Time) (*Server, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		return nil, errors.New("origin: no logger")
	}
	if now == nil {
		now = time.Now
	}
	return &Server{cfg: cfg, log: log, now: now, objects: map[string]*object{}}, nil
}

// Published stores a CRL the generator published (and its issuer's
// crls.json), unless the origin already has one numbered as high.
func (s *Server) Published(_ context.Context, c crlpub.CRL) error {
	if !c.Issuer.Valid() {
		return fmt.Errorf("origin: CRL with invalid issuer id %q", c.Issuer)
	}
	if c.Shard < shard.Full || c.Shard >= shard.Max {
		return fmt.Errorf("origin: CRL %s with invalid shard %d", c.Issuer, c.Shard)
	}
	if len(c.DER) == 0 {
		return fmt.Errorf("origin: CRL %s is empty", crlpub.Path(c.Issuer, c.Shard))
	}
	o := newObject(c.DER, typeCRL, c.ThisUpdate)
	o.freshUntil, o.nextUpdate, o.number = c.NextPublication, c.NextUpdate, c.Number
	s.putCRL(crlpub.Path(c.Issuer, c.Shard), o)
	if len(c.ShardURLs) > 0 {
		list, err := json.Marshal(c.ShardURLs)
		if err != nil {
			return fmt.Errorf("origin: encoding %s list: %w", c.Issuer, err)
		}
		s.putList(c.Issuer, list, c.ThisUpdate)
	}
	return nil
}

// putCRL stores o unless the current CRL at path has a number at least as
// high; it reports whether it stored.
func (s *Server) putCRL(path string, o *object) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if cur := s.objects[path]; cur != nil && cur.number >= o.number {
		return false
	}
	s.objects[path] = o
	return true
}

// putList stores an issuer's crls.json if it changed. Its Last-Modified
// moves forwards by at least a second per change, so If-Modified-Since and
// If-Range by date stay exact.
func (s *Server) putList(id issuerid.ID, list []byte, at time.Time) {
	path := "/" + string(id) + "/" + crlpub.ListName
	s.mu.Lock()
	defer s.mu.Unlock()
	cur := s.objects[path]
	if cur != nil && bytes.Equal(cur.body, list) {
		return
	}
	if cur != nil && !at.After(cur.lastModified) {
		at = cur.lastModified.Add(time.Second)
	}
	s.objects[path] = newObject(list, typeJSON, at)
}

// SetIssuerCert serves an issuer's certificate (DER) at /<id>.cer. Its
// Last-Modified is the certificate's notBefore, the same on every origin.
func (s *Server) SetIssuerCert(id issuerid.ID, der []byte) error {
	if !id.Valid() {
		return fmt.Errorf("origin: invalid issuer id %q", id)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return fmt.Errorf("origin: issuer %s certificate: %w", id, err)
	}
	o := newObject(der, typeCert, c.NotBefore)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.objects["/"+crlpub.CertName(id)] = o
	return nil
}

// lookup returns the object at a path.
func (s *Server) lookup(path string) *object {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.objects[path]
}

// ServeHTTP answers GET and HEAD for the four path forms.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	// The escaped form, so that an encoded slash or dot cannot pass as a
	// plain one: every servable path is plain ASCII without '%'.
	path := r.URL.EscapedPath()
	var o *object
	if _, ok := ParsePath(path); ok {
		o = s.lookup(path)
	}
	if o == nil {
		http.Error(w, "not found", http.StatusNotFound)
		return
	}
	h := w.Header()
	h["Content-Type"] = o.typeHdr
	h["Etag"] = o.etagHdr
	h["X-Content-Type-Options"] = nosniff
	c := s.cachingFor(o)
	h["Cache-Control"] = c.cacheControl
	h["Expires"] = c.expires
	if rng := r.Header.Get("Range"); rng != "" {
		if fixed, ok := withoutEmptySuffixes(rng, len(o.body)); ok {
			r.Header.Set("Range", fixed)
		}
	}
	http.ServeContent(w, r, "", o.lastModified, bytes.NewReader(o.body))
}

// withoutEmptySuffixes rewrites each zero-length suffix range ("-0") of a
// bytes Range header as "size-", a range that starts past the end, and
// reports whether it changed anything. A zero-length suffix selects no
// byte, so it is unsatisfiable (RFC 9110 §14.1.2): alone it must be
// answered 416, beside satisfiable ranges it is ignored. http.ServeContent
// answers it 206 with the invalid Content-Range "bytes N-(N-1)/N"
// (golang/go#81262); "size-" is a form it answers correctly, after the
// preconditions and If-Range, as before. Specs are split and trimmed as
// ServeContent splits them.
func withoutEmptySuffixes(rng string, size int) (string, bool) {
	const unit = "bytes="
	if !strings.HasPrefix(rng, unit) || !strings.Contains(rng, "-") {
		return rng, false
	}
	specs := strings.Split(rng[len(unit):], ",")
	changed := false
	for i, spec := range specs {
		first, last, ok := strings.Cut(textproto.TrimString(spec), "-")
		if !ok || textproto.TrimString(first) != "" {
			continue
		}
		last = textproto.TrimString(last)
		if n, err := strconv.ParseInt(last, 10, 64); err == nil && n == 0 && last != "" && last[0] != '-' {
			specs[i] = strconv.Itoa(size) + "-"
			changed = true
		}
	}
	if !changed {
		return rng, false
	}
	return unit + strings.Join(specs, ","), true
}

var nosniff = []string{"nosniff"}

// cachingFor returns Cache-Control and Expires (RFC 9111 §5.2.2.1, §5.3;
// stale-if-error RFC 5861 §4) for o at the current second. A CRL is fresh
// until its next scheduled publication and no cache may hold it past
// nextUpdate, stale or not; after its scheduled time (a late generator) it
// is served with max-age=0 so caches revalidate. Times are whole seconds,
// as Date is, so Date + max-age = Expires.
func (s *Server) cachingFor(o *object) *cachingHeaders {
	now := s.now().Truncate(time.Second)
	sec := now.Unix()
	if c := o.caching.Load(); c != nil && c.sec == sec {
		return c
	}
	var expires time.Time
	var staleIfError time.Duration
	if o.nextUpdate.IsZero() {
		expires = now.Add(s.cfg.StaticMaxAge)
		staleIfError = s.cfg.StaleIfError
	} else {
		expires = o.freshUntil.Truncate(time.Second)
		if nu := o.nextUpdate.Truncate(time.Second); expires.After(nu) {
			expires = nu
		}
		if expires.Before(now) {
			expires = now
		}
		staleIfError = min(s.cfg.StaleIfError, max(o.nextUpdate.Sub(expires), 0))
	}
	var b strings.Builder
	b.Grow(64)
	b.WriteString("public, max-age=")
	b.WriteString(strconv.FormatInt(int64(expires.Sub(now)/time.Second), 10))
	b.WriteString(", stale-if-error=")
	b.WriteString(strconv.FormatInt(int64(staleIfError/time.Second), 10))
	c := &cachingHeaders{sec: sec, cacheControl: []string{b.String()}, expires: []string{expires.UTC().Format(http.TimeFormat)}}
	o.caching.Store(c)
	return c
}

// Kind is what a path names.
type Kind int

const (
	KindShardCRL Kind = iota + 1
	KindFullCRL
	KindList
	KindCert
)

// Target is a parsed path.
type Target struct {
	Kind   Kind
	Issuer issuerid.ID
	Shard  shard.Index // for KindShardCRL
}

// ParsePath parses a request path strictly: "/<issuer-id>.cer",
// "/<issuer-id>/crls.json", "/<issuer-id>/full.crl" or
// "/<issuer-id>/<shard>.crl" with the shard in canonical decimal; nothing
// else (no dot segments, empty segments, encodings, trailing slashes).
func ParsePath(p string) (Target, bool) {
	if len(p) < 2 || p[0] != '/' || len(p) > 1+issuerid.MaxLen+1+len("4095.crl") {
		return Target{}, false
	}
	rest := p[1:]
	dir, name, nested := strings.Cut(rest, "/")
	if !nested {
		id, ok := strings.CutSuffix(rest, ".cer")
		if !ok {
			return Target{}, false
		}
		iid, err := issuerid.Parse(id)
		if err != nil {
			return Target{}, false
		}
		return Target{Kind: KindCert, Issuer: iid}, true
	}
	iid, err := issuerid.Parse(dir)
	if err != nil {
		return Target{}, false
	}
	switch name {
	case crlpub.ListName:
		return Target{Kind: KindList, Issuer: iid}, true
	case "full.crl":
		return Target{Kind: KindFullCRL, Issuer: iid}, true
	}
	num, ok := strings.CutSuffix(name, ".crl")
	if !ok {
		return Target{}, false
	}
	sh, err := shard.Parse(num)
	if err != nil {
		return Target{}, false
	}
	return Target{Kind: KindShardCRL, Issuer: iid, Shard: sh}, true
}
