package bench

import (
	"cmp"
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/big"
	"math/rand/v2"
	"net/http"
	"net/url"
	"path"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/trustline/trustline/internal/cli"
	"github.com/trustline/trustline/internal/issuerid"
	"github.com/trustline/trustline/internal/reason"
	"github.com/trustline/trustline/internal/serial"
	"github.com/trustline/trustline/internal/status"
	"github.com/trustline/trustline/internal/store"
)

// CRLConfig configures `trustline bench crl`: a fleet of CDN edges
// revalidating the origin's CRLs with conditional GETs, and optionally a
// storm: many revocations at once, then how long until every edge holds
// CRLs listing them.
type CRLConfig struct {
	Name     string `json:"name"`
	Target   string `json:"target"` // the origin's base URL
	DataDir  string `json:"data_dir"`
	Postgres string `json:"-"`
	// Edges is the number of simulated CDN edges, each with its own cache
	// (ETag and Last-Modified per CRL). Requests are spread over the
	// edges and shards and sent by Load.Concurrency connections.
	Edges int        `json:"edges"`
	Load  LoadConfig `json:"-"`
	// Conditional is what edges revalidate with: "etag" (If-None-Match),
	// "ims" (If-Modified-Since), "both", or "none" (full GETs).
	Conditional string        `json:"conditional"`
	Timeout     time.Duration `json:"-"`
	// Storm, when positive, revokes this many good certificates of the
	// store (store.Revoke, with an audit entry each) once the edges are
	// warm, and the run lasts until every edge has fetched, for every
	// affected shard, a CRL that lists all of them, or until
	// Load.Duration. Edges then poll every CRL once per StormPoll.
	Storm     int           `json:"storm,omitempty"`
	StormPoll time.Duration `json:"storm_poll,omitempty"`
	Seed      uint64        `json:"seed"`
}

// Validate reports what is wrong with cfg.
func (cfg CRLConfig) Validate() error {
	switch {
	case cfg.Target == "":
		return errors.New("bench: --target is required (the CRL origin's base URL)")
	case cfg.DataDir == "":
		return errors.New("bench: --data is required")
	case cfg.Edges < 1 || cfg.Edges > 100000:
		return errors.New("bench: --edges must be in 1–100000")
	case cfg.Conditional != "etag" && cfg.Conditional != "ims" && cfg.Conditional != "both" && cfg.Conditional != "none":
		return fmt.Errorf("bench: --conditional %q: want etag, ims, both or none", cfg.Conditional)
	case cfg.Timeout <= 0:
		return errors.New("bench: --timeout must be positive")
	case cfg.Storm < 0:
		return errors.New("bench: --storm must not be negative")
	case cfg.Storm > 0 && cfg.StormPoll <= 0:
		return errors.New("bench: --storm-poll must be positive")
	}
	return cfg.Load.Validate()
}

// crlShard is one CRL the origin serves.
type crlShard struct {
	issuer *Issuer
	path   string // request path on the target
	host   string // Host: the listed URL's, as a relying party sends it to a CDN
	name   string // "<issuer>/<file>"
}

// edgeState is one edge's cache of one CRL.
type edgeState struct {
	etag, lastModified []byte
	number             *big.Int
	converged          bool // storm: holds a CRL listing every revoked serial of this shard
}

// edge is one simulated CDN edge.
type edge struct {
	mu     sync.Mutex
	shards []edgeState
}

// crlRun is the shared state of a CRL run.
type crlRun struct {
	cfg    CRLConfig
	ep     endpoint
	shards []crlShard
	edges  []edge
	now    func() time.Time

	notModified, full, bytes, newCRLs atomic.Int64
	verified                          atomic.Int64

	// Storm: serials revoked per shard index, T0, and convergence.
	stormMu      sync.Mutex
	stormSerials map[int][]*big.Int // by shard index; read-only once stormT0 is set
	stormT0      time.Time
	stormStarted atomic.Bool
	pending      int // (edge, shard) pairs not converged yet
	converged    []time.Duration
	stormDone    chan struct{}
	closeDone    sync.Once
}

// CRL runs the CRL scenario.
func CRL(ctx context.Context, cfg CRLConfig, now func() time.Time) (*Run, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	ep, err := parseEndpoint(cfg.Target)
	if err != nil {
		return nil, err
	}
	issuers, err := loadIssuers(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	shards, err := discoverShards(ctx, ep, issuers, cfg.Timeout)
	if err != nil {
		return nil, err
	}
	r := &crlRun{cfg: cfg, ep: ep, shards: shards, edges: make([]edge, cfg.Edges), now: now}
	for i := range r.edges {
		r.edges[i].shards = make([]edgeState, len(shards))
	}
	load := cfg.Load
	var storm *stormResult
	if cfg.Storm > 0 {
		// Every edge asks for every CRL once per StormPoll: an open loop.
		load.Rate = float64(cfg.Edges*len(shards)) / cfg.StormPoll.Seconds()
		r.stormDone = make(chan struct{})
		load.Done = r.stormDone
		st, err := openStore(ctx, cfg.DataDir, cfg.Postgres)
		if err != nil {
			return nil, err
		}
		defer st.Close()
		targets, err := pickStormTargets(ctx, st, cfg.Storm, cfg.Seed, now())
		if err != nil {
			return nil, err
		}
		storm = &stormResult{}
		go r.storm(ctx, st, targets, now().Add(load.Warmup), storm)
	}

	scenario := "crl"
	if cfg.Storm > 0 {
		scenario = "crl-storm"
	}
	run, res, err := measure(ctx, load, func(int) (Worker, error) {
		return &crlWorker{run: r, c: ep.client(cfg.Timeout, 256<<20)}, nil
	}, now, runOf{name: cmp.Or(cfg.Name, scenario), scenario: scenario, target: cfg.Target, cfg: cfg})
	if run == nil {
		return nil, err
	}
	run.Verified = r.verified.Load()
	total := r.notModified.Load() + r.full.Load()
	run.Figures = map[string]float64{
		"crls":                 float64(len(shards)),
		"edges":                float64(cfg.Edges),
		"answers_304":          float64(r.notModified.Load()),
		"answers_200":          float64(r.full.Load()),
		"new_crls_seen":        float64(r.newCRLs.Load()),
		"body_bytes_per_sec":   round(float64(r.bytes.Load())/res.Elapsed.Seconds(), 0),
		"not_modified_share":   0,
		"conditional_requests": 0,
	}
	if total > 0 {
		run.Figures["not_modified_share"] = round(float64(r.notModified.Load())/float64(total), 4)
	}
	if cfg.Conditional != "none" {
		run.Figures["conditional_requests"] = 1
	}
	if storm != nil {
		r.stormResults(run, storm)
	}
	return run, err
}

// discoverShards reads each issuer's crls.json (CCADB form) from the
// target. URLs in it name the CDN host; edges fetch the same paths from
// the target.
func discoverShards(ctx context.Context, ep endpoint, issuers map[issuerid.ID]*Issuer, timeout time.Duration) ([]crlShard, error) {
	c := &http.Client{Timeout: timeout}
	var out []crlShard
	ids := make([]issuerid.ID, 0, len(issuers))
	for id := range issuers {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	for _, id := range ids {
		u := ep.raw
		u = strings.TrimRight(u, "/") + "/" + string(id) + "/crls.json"
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return nil, err
		}
		resp, err := c.Do(req)
		if err != nil {
			return nil, fmt.Errorf("bench: fetching %s: %w", u, err)
		}
		body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		if resp.StatusCode == http.StatusNotFound {
			continue // an issuer without sharded CRLs (the root)
		}
		if err != nil || resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("bench: fetching %s: HTTP %d %v", u, resp.StatusCode, err)
		}
		urls, err := parseCRLList(body)
		if err != nil {
			return nil, fmt.Errorf("bench: %s: %w", u, err)
		}
		for _, l := range urls {
			out = append(out, crlShard{issuer: issuers[id], path: ep.basePath + l.path, host: l.host, name: string(id) + "/" + path.Base(l.path)})
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("bench: %s lists no CRLs for the issuers in DIR/ca", ep.raw)
	}
	return out, nil
}

// listedCRL is one URL of a crls.json.
type listedCRL struct{ host, path string }

// parseCRLList reads a CCADB JSON array of CRL URLs and returns their
// hosts and paths. Its input comes from the network: anything but an
// array of absolute http(s) URLs is refused.
func parseCRLList(b []byte) ([]listedCRL, error) {
	var urls []string
	if err := json.Unmarshal(b, &urls); err != nil {
		return nil, fmt.Errorf("not a JSON array of URLs: %w", err)
	}
	if len(urls) > 65536 {
		return nil, fmt.Errorf("%d CRLs listed; refusing more than 65536", len(urls))
	}
	out := make([]listedCRL, 0, len(urls))
	for _, s := range urls {
		u, err := url.Parse(s)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.EscapedPath() == "" {
			return nil, fmt.Errorf("%q is not an absolute http(s) URL", clip(s, 80))
		}
		out = append(out, listedCRL{host: u.Host, path: u.EscapedPath()})
	}
	return out, nil
}

// crlWorker sends conditional GETs on one connection.
type crlWorker struct {
	run  *crlRun
	c    *fasthttp.HostClient
	req  fasthttp.Request
	resp fasthttp.Response
}

func (w *crlWorker) Close() { w.c.CloseIdleConnections() }

// Do asks edge seq%E for CRL (seq/E)%S, so that consecutive requests
// come from different edges, as at a CDN.
func (w *crlWorker) Do(seq uint64) error {
	r := w.run
	e := &r.edges[seq%uint64(len(r.edges))]
	si := int((seq / uint64(len(r.edges))) % uint64(len(r.shards)))
	sh := &r.shards[si]

	e.mu.Lock()
	st := e.shards[si]
	// Copies: the stored slices are reused when the next CRL arrives.
	st.etag, st.lastModified = slices.Clone(st.etag), slices.Clone(st.lastModified)
	e.mu.Unlock()
	w.req.Reset()
	w.req.Header.SetHost(sh.host)
	w.req.SetRequestURI(sh.path)
	if c := r.cfg.Conditional; c == "etag" || c == "both" {
		if st.etag != nil {
			w.req.Header.SetBytesV("If-None-Match", st.etag)
		}
	}
	if c := r.cfg.Conditional; c == "ims" || c == "both" {
		if st.lastModified != nil {
			w.req.Header.SetBytesV("If-Modified-Since", st.lastModified)
		}
	}
	if err := w.c.Do(&w.req, &w.resp); err != nil {
		return transportFailure(err)
	}
	switch code := w.resp.StatusCode(); code {
	case fasthttp.StatusNotModified:
		if st.etag == nil && st.lastModified == nil {
			return fail("http_304", fmt.Errorf("%s: 304 to an unconditional request", sh.name))
		}
		r.notModified.Add(1)
		return nil
	case fasthttp.StatusOK:
	default:
		return statusFailure(code, w.resp.Body())
	}
	r.full.Add(1)
	body := w.resp.Body()
	r.bytes.Add(int64(len(body)))
	etag := w.resp.Header.Peek("ETag")
	if st.etag != nil && string(etag) == string(st.etag) && st.number != nil && !r.stormStarted.Load() {
		return nil // the same CRL again (no conditional requests): verified when first seen
	}
	if ct := w.resp.Header.ContentType(); string(ct) != "application/pkix-crl" {
		return fail("content_type", fmt.Errorf("%s: Content-Type %q", sh.name, ct))
	}
	crl, err := w.verify(sh, body, st.number)
	if err != nil {
		return err
	}
	if st.number == nil || crl.Number.Cmp(st.number) > 0 {
		r.newCRLs.Add(1)
	}
	listed := r.listsStorm(si, crl)
	e.mu.Lock()
	cur := &e.shards[si]
	newlyConverged := listed && !cur.converged
	// Another worker may have stored a newer CRL for this edge meanwhile.
	if cur.number == nil || crl.Number.Cmp(cur.number) >= 0 {
		cur.etag = append(cur.etag[:0], etag...)
		cur.lastModified = append(cur.lastModified[:0], w.resp.Header.Peek("Last-Modified")...)
		cur.number = crl.Number
	}
	cur.converged = cur.converged || listed
	e.mu.Unlock()
	if newlyConverged {
		r.markConverged()
	}
	return nil
}

// verify checks a fetched CRL as a relying party would: it parses, is
// signed by its issuer, is not past its nextUpdate, and its number has not
// gone back (DESIGN invariant 6).
func (w *crlWorker) verify(sh *crlShard, der []byte, prev *big.Int) (*x509.RevocationList, error) {
	w.run.verified.Add(1)
	crl, err := x509.ParseRevocationList(der)
	if err != nil {
		return nil, fail("verify", fmt.Errorf("%s: %w", sh.name, err))
	}
	if err := crl.CheckSignatureFrom(sh.issuer.Cert); err != nil {
		return nil, fail("verify", fmt.Errorf("%s: signature: %w", sh.name, err))
	}
	if now := w.run.now(); !crl.NextUpdate.IsZero() && !now.Before(crl.NextUpdate) {
		return nil, fail("stale", fmt.Errorf("%s: nextUpdate %v is past", sh.name, crl.NextUpdate))
	}
	if crl.Number == nil {
		return nil, fail("verify", fmt.Errorf("%s: no CRL number", sh.name))
	}
	if prev != nil && crl.Number.Cmp(prev) < 0 {
		return nil, fail("number_regressed", fmt.Errorf("%s: CRL number %v after %v", sh.name, crl.Number, prev))
	}
	return crl, nil
}

// stormTarget is a certificate the storm revokes.
type stormTarget struct {
	serial serial.Serial
	sn     *big.Int
	issuer issuerid.ID
	shard  int
}

// pickStormTargets chooses n good certificates at random (seeded).
func pickStormTargets(ctx context.Context, st lister, n int, seed uint64, now time.Time) ([]stormTarget, error) {
	certs, err := loadCerts(ctx, st, 1_000_000, now)
	if err != nil {
		return nil, err
	}
	var good []Cert
	for _, c := range certs {
		if c.Status == status.Good {
			good = append(good, c)
		}
	}
	if len(good) < n {
		return nil, fmt.Errorf("bench: storm of %d revocations, but the store has only %d good certificates", n, len(good))
	}
	r := rand.New(rand.NewPCG(seed, 0x73746f726d))
	r.Shuffle(len(good), func(i, j int) { good[i], good[j] = good[j], good[i] })
	out := make([]stormTarget, n)
	for i, c := range good[:n] {
		out[i] = stormTarget{serial: c.Serial, sn: c.SN, issuer: c.IssuerID, shard: int(c.Shard)}
	}
	return out, nil
}

// revoker is the store write the storm makes.
type revoker interface {
	Revoke(ctx context.Context, r store.Revocation, a store.AuditEntry) (store.Certificate, error)
}

// stormResult is what the storm measured besides the load.
type stormResult struct {
	revoked     int
	revokeTime  time.Duration
	affected    int // CRLs that must change
	err         error
	revokeStart time.Time
}

// storm waits for the measured part, revokes the targets through the
// store (each with an audit entry, as issuer.CA.Revoke writes it), then
// starts the convergence clock.
func (r *crlRun) storm(ctx context.Context, st revoker, targets []stormTarget, at time.Time, res *stormResult) {
	select {
	case <-time.After(time.Until(at) + time.Second):
	case <-ctx.Done():
		return
	}
	bySlot := map[int][]*big.Int{}
	for _, t := range targets {
		for i, sh := range r.shards {
			if sh.issuer.ID == t.issuer && sh.name == string(t.issuer)+"/"+strconv.Itoa(t.shard)+".crl" {
				bySlot[i] = append(bySlot[i], t.sn)
			}
		}
	}
	start := r.now()
	res.revokeStart = start
	for _, t := range targets {
		now := r.now()
		payload, _ := json.Marshal(map[string]any{"reason": reason.KeyCompromise.String(), "revoked_at": now.UTC(),
			"by": "trustline bench crl --storm"})
		_, err := st.Revoke(ctx, store.Revocation{Serial: t.serial, Reason: reason.KeyCompromise, At: now},
			store.AuditEntry{At: now, Kind: "certificate.revoked", Actor: "bench", Subject: string(t.serial), Payload: payload})
		if err != nil && !errors.Is(err, store.ErrAlreadyRevoked) {
			res.err = fmt.Errorf("bench: storm: revoking %s: %w", t.serial, err)
			break
		}
		res.revoked++
	}
	res.revokeTime = r.now().Sub(start)
	res.affected = len(bySlot)
	r.stormMu.Lock()
	r.stormSerials = bySlot
	r.stormT0 = r.now()
	r.pending = len(bySlot) * len(r.edges)
	// Edges already holding a listing CRL cannot exist yet: the CRLs
	// were fetched before the revocations.
	for i := range r.edges {
		for si := range r.edges[i].shards {
			r.edges[i].mu.Lock()
			r.edges[i].shards[si].converged = bySlot[si] == nil
			r.edges[i].mu.Unlock()
		}
	}
	none := r.pending == 0
	r.stormMu.Unlock()
	r.stormStarted.Store(true)
	if none {
		r.closeDone.Do(func() { close(r.stormDone) })
	}
}

// listsStorm reports whether crl, the CRL of shard si, lists every
// serial the storm revoked in that shard.
func (r *crlRun) listsStorm(si int, crl *x509.RevocationList) bool {
	if !r.stormStarted.Load() {
		return false
	}
	want := r.stormSerials[si]
	if len(want) == 0 {
		return false // not affected: marked converged at T0
	}
	have := make(map[string]bool, len(crl.RevokedCertificateEntries))
	for _, e := range crl.RevokedCertificateEntries {
		have[string(e.SerialNumber.Bytes())] = true
	}
	for _, sn := range want {
		if !have[string(sn.Bytes())] {
			return false
		}
	}
	return true
}

func (r *crlRun) markConverged() {
	r.stormMu.Lock()
	defer r.stormMu.Unlock()
	r.converged = append(r.converged, r.now().Sub(r.stormT0))
	r.pending--
	if r.pending == 0 {
		r.closeDone.Do(func() { close(r.stormDone) })
	}
}

// stormResults adds the storm's figures to run.
func (r *crlRun) stormResults(run *Run, s *stormResult) {
	r.stormMu.Lock()
	conv := slices.Clone(r.converged)
	pending := r.pending
	r.stormMu.Unlock()
	slices.Sort(conv)
	run.Figures["storm_revoked"] = float64(s.revoked)
	run.Figures["storm_revoke_sec"] = round(s.revokeTime.Seconds(), 3)
	if s.revokeTime > 0 {
		run.Figures["storm_revocations_per_sec"] = round(float64(s.revoked)/s.revokeTime.Seconds(), 1)
	}
	run.Figures["storm_affected_crls"] = float64(s.affected)
	run.Figures["storm_edge_crl_pairs_pending"] = float64(pending)
	total := len(conv) + pending
	for i, c := range conv {
		run.StormConvergence = append(run.StormConvergence, StormPoint{Sec: round(c.Seconds(), 4), Share: round(float64(i+1)/float64(total), 4)})
	}
	if len(conv) > 0 {
		q := func(p float64) float64 { return round(conv[min(int(p*float64(len(conv))), len(conv)-1)].Seconds(), 3) }
		run.Figures["storm_first_edge_sec"] = round(conv[0].Seconds(), 3)
		run.Figures["storm_p50_edge_sec"] = q(0.5)
		run.Figures["storm_p99_edge_sec"] = q(0.99)
		run.Figures["storm_all_edges_sec"] = round(conv[len(conv)-1].Seconds(), 3)
	}
	run.Notes = append(run.Notes, fmt.Sprintf("storm: %d certificates revoked through the store at %s; propagation is measured from the last revocation to each edge holding CRLs that list them all (edges poll every CRL every %v)",
		s.revoked, s.revokeStart.UTC().Format(time.RFC3339), r.cfg.StormPoll))
	if pending > 0 {
		run.Notes = append(run.Notes, fmt.Sprintf("storm: %d (edge, CRL) pairs never saw the revocations before the run ended", pending))
		run.Errors += int64(pending)
		run.ErrorsByKind["storm_not_propagated"] += int64(pending)
	}
	if s.err != nil {
		run.Notes = append(run.Notes, s.err.Error())
		run.Errors++
		run.ErrorsByKind["storm_revoke"]++
		run.FirstErrors["storm_revoke"] = s.err.Error()
	}
}

// RunCRL is `trustline bench crl`.
func RunCRL(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("trustline bench crl", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg CRLConfig
	fs.StringVar(&cfg.Target, "target", "", "CRL origin base URL, e.g. http://127.0.0.1:8082 (required)")
	fs.StringVar(&cfg.DataDir, "data", "", "data dir: issuer certificates, and the store for --storm (required)")
	fs.StringVar(&cfg.Postgres, "postgres", "", "PostgreSQL URL of the store (default: DIR/trustline.db)")
	fs.StringVar(&cfg.Name, "name", "", "run name in reports (default crl / crl-storm)")
	lf := registerLoadFlags(fs, 10*time.Second, 16)
	fs.IntVar(&cfg.Edges, "edges", 50, "simulated CDN edges, each with its own cache")
	fs.StringVar(&cfg.Conditional, "conditional", "etag", "revalidate with etag (If-None-Match), ims (If-Modified-Since), both, or none")
	fs.DurationVar(&cfg.Timeout, "timeout", 10*time.Second, "per-request timeout")
	fs.IntVar(&cfg.Storm, "storm", 0, "revoke this many certificates in the store, then measure until every edge sees them (modifies the store!)")
	fs.DurationVar(&cfg.StormPoll, "storm-poll", time.Second, "storm: each edge revalidates each CRL this often")
	fs.Uint64Var(&cfg.Seed, "seed", 1, "seed for choosing the storm's certificates")
	of := registerOutputFlags(fs)
	if err := cli.Parse(fs, args); err != nil {
		return err
	}
	cfg.Load = lf.config()
	if cfg.Storm > 0 && !flagSet(fs, "duration") {
		cfg.Load.Duration = 2 * time.Minute // an upper bound: the storm ends when every edge has converged
	}
	r, err := CRL(ctx, cfg, time.Now)
	if r == nil {
		return err
	}
	return errors.Join(err, of.emit(stdout, r))
}

func flagSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}
