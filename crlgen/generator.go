package crlgen

import (
	"context"
	"crypto"
	crand "crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/trustline/trustline/crlgen/crlpub"
	"github.com/trustline/trustline/internal/follow"
	"github.com/trustline/trustline/internal/issuerid"
	"github.com/trustline/trustline/internal/shard"
	"github.com/trustline/trustline/internal/store"
)

// The store methods the generator uses, by concern (STYLE.md §5). Both
// store adapters satisfy Store.
type (
	// crlStore reads and swaps published CRLs.
	crlStore interface {
		CRL(ctx context.Context, issuer issuerid.ID, shard int) (store.CRL, error)
		ListCRLs(ctx context.Context, issuer issuerid.ID) ([]store.CRL, error)
		PublishCRL(ctx context.Context, c store.CRL, prevNumber int64, audit store.AuditEntry) error
	}
	// shardScanner reads one shard's revoked certificates.
	shardScanner interface {
		ScanShard(ctx context.Context, q store.ShardQuery, fn func(store.CertSummary) error) error
	}
	// eventLog follows status changes (follow.Events, and where the log
	// ends when the generator starts).
	eventLog interface {
		follow.Events
		LastEventSeq(ctx context.Context) (int64, error)
	}
	// recorder keeps the audit trail and the per-issuer event cursor.
	recorder interface {
		AppendAudit(ctx context.Context, e store.AuditEntry) (store.AuditEntry, error)
		Meta(ctx context.Context, key string) ([]byte, error)
		PutMeta(ctx context.Context, key string, value []byte) error
	}
)

// Store is the part of store.Store the generator uses.
type Store interface {
	crlStore
	shardScanner
	eventLog
	follow.Leaser // splits issuers between generators
	recorder
}

// Linter lints a CRL before publication; *linter.Linter implements it.
type Linter interface {
	CRL(der []byte) error
}

// Issuer is a CA whose CRLs the generator signs.
type Issuer struct {
	ID issuerid.ID
	// Cert must be a parsed certificate with cRLSign and a subject key id.
	Cert   *x509.Certificate
	Signer crypto.Signer
}

// Deps are the generator's collaborators.
type Deps struct {
	Store Store
	// Root gets one full CRL; each intermediate gets Config.Shards shards.
	// A Root without a Signer is kept offline: its CRL is signed in a
	// ceremony by a generator of the root alone (PublishNow), and this one
	// leaves it alone.
	Root          Issuer
	Intermediates []Issuer
	Linter        Linter
	// CALinter lints the root's full CRL, which covers CA certificates
	// (linter.Linter.CACRL); nil means Linter. It is required when
	// Config.FullValidity exceeds the 10 days subscriber CRLs may have.
	CALinter Linter
	// Publishers are told about every publication, in order.
	Publishers []crlpub.Publisher
	// Registerer receives the metrics; nil leaves them unregistered.
	Registerer prometheus.Registerer
	Log        *slog.Logger
	// Now and Rand default to time.Now and crypto/rand.Reader when nil.
	Now  func() time.Time
	Rand io.Reader
}

// Generator publishes the CRLs of one hierarchy. Its methods are safe for
// concurrent use; rounds are serialised.
type Generator struct {
	cfg Config
	// writer names this Generator in the CRLs it stores (store.CRL.Holder):
	// the holder and a random suffix, so that two generators, even under
	// one holder name, each recognise their own swap.
	writer string
	st     Store
	lint   Linter
	caLint Linter
	pubs   []crlpub.Publisher
	log    *slog.Logger
	now    func() time.Time
	rand   io.Reader
	m      *metrics

	issuers []*issuerState // root first, if online
	offline issuerid.ID    // the root, when its key is kept offline
	byID    map[issuerid.ID]*issuerState

	mu      sync.Mutex // one round at a time
	started bool
	cursor  int64 // last event seq read
}

// issuerState is what the generator knows of one issuer; the lease fields
// and everything under them are meaningful only while held.
type issuerState struct {
	Issuer
	full bool // the root: one full CRL instead of shards
	// force publishes every CRL of the issuer on the next round, due or
	// not (PublishNow).
	force bool

	// inUse is the highest shard index known to hold a certificate, plus
	// one; it only grows.
	inUse int

	lease  *follow.Lease
	stored map[int]storedCRL
	dirty  map[int]bool
	// uncertain holds CRLs whose swap returned an error and that were not
	// found stored right after (a commit the server may still complete):
	// the next round announces them if they did land.
	uncertain  map[int]built
	savedSeq   int64 // the persisted cursor
	savedInUse int
}

type storedCRL struct {
	number                 int64
	thisUpdate, nextUpdate time.Time
}

// New checks cfg and deps. It touches neither the store nor the keys.
func New(cfg Config, d Deps) (*Generator, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	errs := d.check(cfg)
	g := &Generator{cfg: cfg, st: d.Store, lint: d.Linter, caLint: d.CALinter, pubs: d.Publishers, log: d.Log,
		now: d.Now, rand: d.Rand, byID: map[issuerid.ID]*issuerState{}}
	if g.caLint == nil {
		g.caLint = d.Linter
	}
	var id [6]byte
	if _, err := crand.Read(id[:]); err != nil {
		return nil, fmt.Errorf("crlgen: naming this generator: %w", err)
	}
	g.writer = cfg.Holder + "/" + hex.EncodeToString(id[:])
	if g.now == nil {
		g.now = time.Now
	}
	if g.rand == nil {
		g.rand = cryptoRand()
	}
	add := func(is Issuer, full bool) {
		if err := g.checkIssuer(is); err != nil {
			errs = append(errs, err)
			return
		}
		lease, err := follow.NewLease(d.Store, leaseName(is.ID), cfg.Holder, cfg.LeaseTTL, g.now)
		if err != nil {
			errs = append(errs, fmt.Errorf("crlgen: %w", err))
			return
		}
		st := &issuerState{Issuer: is, full: full, lease: lease}
		g.issuers = append(g.issuers, st)
		g.byID[is.ID] = st
	}
	rootOnline := d.Root.Signer != nil
	switch {
	case rootOnline:
		add(d.Root, true)
	case d.Root.Cert == nil:
		errs = append(errs, fmt.Errorf("crlgen: issuer %s needs a certificate", d.Root.ID))
	default:
		g.offline = d.Root.ID
	}
	if len(d.Intermediates) == 0 && !rootOnline {
		errs = append(errs, errors.New("crlgen: no intermediates, and the root is offline: nothing to publish"))
	}
	for _, is := range d.Intermediates {
		add(is, false)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	m, err := newMetrics(d.Registerer)
	if err != nil {
		return nil, err
	}
	g.m = m
	return g, nil
}

// check reports what is missing from d, issuers aside.
func (d Deps) check(cfg Config) []error {
	var errs []error
	if d.Store == nil {
		errs = append(errs, errors.New("crlgen: no store"))
	}
	if d.Linter == nil {
		errs = append(errs, errors.New("crlgen: no linter (CRLs are linted before publication)"))
	}
	if d.Log == nil {
		errs = append(errs, errors.New("crlgen: no logger"))
	}
	for i, p := range d.Publishers {
		if p == nil {
			errs = append(errs, fmt.Errorf("crlgen: publisher %d is nil", i))
		}
	}
	if d.CALinter == nil && cfg.FullValidity > maxValidity {
		errs = append(errs, fmt.Errorf("crlgen: FullValidity %v exceeds %v and needs a CALinter (linter.Linter.CACRL)", cfg.FullValidity, maxValidity))
	}
	return errs
}

// checkIssuer checks that is can sign CRLs and is not given twice.
func (g *Generator) checkIssuer(is Issuer) error {
	switch {
	case !is.ID.Valid():
		return fmt.Errorf("crlgen: issuer id %q is invalid", is.ID)
	case g.byID[is.ID] != nil:
		return fmt.Errorf("crlgen: issuer %s given twice", is.ID)
	case is.Cert == nil || is.Signer == nil:
		return fmt.Errorf("crlgen: issuer %s needs a certificate and a signer", is.ID)
	case is.Cert.KeyUsage&x509.KeyUsageCRLSign == 0:
		return fmt.Errorf("crlgen: issuer %s certificate lacks the cRLSign key usage", is.ID)
	case !samePublicKey(is.Signer.Public(), is.Cert.PublicKey):
		return fmt.Errorf("crlgen: issuer %s signer does not match its certificate", is.ID)
	}
	return nil
}

func samePublicKey(a, b crypto.PublicKey) bool {
	k, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && k.Equal(b)
}

// Replay tells the publishers about every stored CRL (Replayed set), so
// that an origin started in the same process serves them at once.
func (g *Generator) Replay(ctx context.Context) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	var errs []error
	for _, is := range g.issuers {
		crls, err := g.st.ListCRLs(ctx, is.ID)
		if err != nil {
			errs = append(errs, fmt.Errorf("crlgen: listing %s CRLs: %w", is.ID, err))
			continue
		}
		for _, c := range crls {
			if !is.full && c.Shard >= 0 {
				is.inUse = max(is.inUse, c.Shard+1)
			}
		}
		urls := g.shardURLs(is)
		for _, c := range crls {
			if is.full != (c.Shard == shard.Full) {
				continue // not a CRL this generator makes
			}
			g.notify(ctx, g.announcement(is, c, urls, true))
		}
	}
	return errors.Join(errs...)
}

// Cycle is one round: read new events, take or renew leases, and publish
// every dirty or due CRL of the issuers held. Run calls it on a timer;
// tests and one-shot commands call it directly.
func (g *Generator) Cycle(ctx context.Context) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.started {
		// Events before now are covered by the persisted per-issuer
		// cursors, replayed when an issuer is taken.
		seq, err := g.st.LastEventSeq(ctx)
		if err != nil {
			g.m.errors.WithLabelValues("events").Inc()
			return fmt.Errorf("crlgen: reading last event: %w", err)
		}
		g.cursor, g.started = seq, true
	}
	if err := g.follow(ctx); err != nil {
		g.m.errors.WithLabelValues("events").Inc()
		return err
	}
	taken, errs := g.renewAll(ctx)
	if len(taken) > 0 {
		if err := g.takeOver(ctx, taken); err != nil {
			// Without the catch-up a missed revocation could stay
			// unpublished: give the issuers back to a later round.
			for _, is := range taken {
				is.drop()
			}
			g.m.errors.WithLabelValues("takeover").Inc()
			errs = append(errs, err)
		}
	}
	for _, is := range g.issuers {
		if is.held() {
			if err := g.publishIssuer(ctx, is); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// renewAll takes or renews every issuer's lease and returns the issuers
// just taken.
func (g *Generator) renewAll(ctx context.Context) (taken []*issuerState, errs []error) {
	for _, is := range g.issuers {
		t, err := g.renew(ctx, is)
		if err != nil {
			errs = append(errs, err)
		} else if t {
			taken = append(taken, is)
		}
	}
	return taken, errs
}

// eventPage is how many events one EventsAfter call reads.
const eventPage = follow.DefaultPage

// follow reads the events after the cursor: issuance grows the shards in
// use, revocation dirties the shard of a held issuer.
func (g *Generator) follow(ctx context.Context) error {
	last, err := follow.Read(ctx, g.st, g.cursor, follow.NoBound, eventPage, follow.ConsumerFunc(
		func(_ context.Context, evs []store.Event) error {
			for _, e := range evs {
				if is := g.byID[e.IssuerID]; is != nil {
					is.apply(e, is.held())
				}
			}
			return nil
		}))
	g.cursor = last
	if err != nil {
		return fmt.Errorf("crlgen: %w", err)
	}
	return nil
}

// apply records one event. Revocations dirty a shard only when asked:
// an issuer not held is caught up when it is taken.
func (is *issuerState) apply(e store.Event, markDirty bool) {
	s := int(e.Shard)
	if is.full {
		s = shard.Full
	} else {
		is.inUse = max(is.inUse, s+1)
	}
	if markDirty && e.Kind == store.EventRevoked {
		is.dirty[s] = true
	}
}

func leaseName(id issuerid.ID) string  { return "crlgen/" + string(id) }
func cursorName(id issuerid.ID) string { return "crlgen/cursor/" + string(id) }

// renew takes or renews the issuer's lease and reports whether it was
// just taken. A renewal is written at half-life, or at once when the clock
// went backwards (follow.Lease.Fresh).
func (g *Generator) renew(ctx context.Context, is *issuerState) (taken bool, err error) {
	if is.lease.Fresh() {
		return false, nil
	}
	ch, err := is.lease.Renew(ctx)
	switch {
	case err != nil:
		g.m.errors.WithLabelValues("lease").Inc()
		// Unsure whether it is still ours: stop publishing for it; the CAS
		// would protect the numbers anyway.
		is.drop()
		return false, fmt.Errorf("crlgen: leasing %s: %w", is.ID, err)
	case ch == follow.Lost:
		g.log.Info("CRL lease taken by another generator", "issuer", is.ID, "holder", g.cfg.Holder)
		is.drop()
	case ch == follow.Taken:
		g.log.Info("CRL lease acquired", "issuer", is.ID, "holder", g.cfg.Holder)
		is.stored, is.dirty = map[int]storedCRL{}, map[int]bool{}
		if is.uncertain == nil {
			// Kept across a lost lease: an uncertain swap that landed is
			// still this generator's to announce once it holds the lease.
			is.uncertain = map[int]built{}
		}
	}
	return ch == follow.Taken, nil
}

func (is *issuerState) held() bool { return is.lease.Held() }

// drop forgets the lease (without giving it back) and what it covered.
func (is *issuerState) drop() {
	is.lease.Drop()
	is.stored, is.dirty = nil, nil
}

// cursorState is the persisted per-issuer cursor.
type cursorState struct {
	// Seq: every revocation at or before it is on a published CRL.
	Seq int64 `json:"seq"`
	// InUse: shards up to here hold certificates.
	InUse int `json:"shards_in_use"`
}

// takeOver loads what the previous holder left for each newly held issuer
// (its stored CRLs and persisted cursor) and replays the events between that
// cursor and the current one. An issuer never published before has no
// cursor: all of its events are replayed, which finds every shard in use.
func (g *Generator) takeOver(ctx context.Context, taken []*issuerState) error {
	from := g.cursor
	for _, is := range taken {
		if err := g.loadLeft(ctx, is); err != nil {
			return fmt.Errorf("crlgen: taking over %s: %w", is.ID, err)
		}
		from = min(from, is.savedSeq)
	}
	// Events after g.cursor are follow's to read.
	_, err := follow.Read(ctx, g.st, from, g.cursor, eventPage, follow.ConsumerFunc(
		func(_ context.Context, evs []store.Event) error {
			for _, e := range evs {
				if is := g.byID[e.IssuerID]; is != nil && e.Seq > is.savedSeq && contains(taken, is) {
					is.apply(e, true)
				}
			}
			return nil
		}))
	if err != nil {
		return fmt.Errorf("crlgen: replaying: %w", err)
	}
	return nil
}

// loadLeft reads what the previous holder of is left: its stored CRLs and
// its persisted cursor (none, or an unreadable one, means from the start).
func (g *Generator) loadLeft(ctx context.Context, is *issuerState) error {
	crls, err := g.st.ListCRLs(ctx, is.ID)
	if err != nil {
		return err
	}
	for _, c := range crls {
		is.stored[c.Shard] = storedCRL{c.Number, c.ThisUpdate, c.NextUpdate}
		if !is.full && c.Shard >= 0 {
			is.inUse = max(is.inUse, c.Shard+1)
		}
	}
	var cur cursorState
	b, err := g.st.Meta(ctx, cursorName(is.ID))
	switch {
	case errors.Is(err, store.ErrNotFound):
	case err != nil:
		return err
	default:
		if err := json.Unmarshal(b, &cur); err != nil {
			g.log.Warn("ignoring unreadable CRL cursor: replaying all events", "issuer", is.ID, "err", err)
			cur = cursorState{}
		}
	}
	is.savedSeq, is.savedInUse = cur.Seq, cur.InUse
	is.inUse = max(is.inUse, cur.InUse)
	return nil
}

func contains(list []*issuerState, is *issuerState) bool {
	for _, x := range list {
		if x == is {
			return true
		}
	}
	return false
}

// shardCount is how many shards an intermediate publishes: the configured
// count, or more when certificates sit in higher shards.
func (g *Generator) shardCount(is *issuerState) int {
	return max(g.cfg.Shards, is.inUse)
}

// crlURL is the distribution point a CRL answers: exactly what the issuer
// writes into certificates (crlpub.URL).
func (g *Generator) crlURL(id issuerid.ID, s int) string {
	return crlpub.URL(g.cfg.BaseURL, id, s)
}

// shardURLs is the issuer's CCADB JSON array.
func (g *Generator) shardURLs(is *issuerState) []string {
	if is.full {
		return []string{g.crlURL(is.ID, shard.Full)}
	}
	n := g.shardCount(is)
	urls := make([]string, n)
	for i := range urls {
		urls[i] = g.crlURL(is.ID, i)
	}
	return urls
}

// publishIssuer publishes the issuer's dirty and due CRLs, then persists
// its cursor if nothing is left dirty.
func (g *Generator) publishIssuer(ctx context.Context, is *issuerState) error {
	urls := g.shardURLs(is)
	var errs []error
	for _, s := range g.shards(is) {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("crlgen: %w", err)
		}
		if !g.wanted(is, s) {
			continue
		}
		// A long round must not outlive the lease.
		if _, err := g.renew(ctx, is); err != nil {
			return errors.Join(append(errs, err)...)
		}
		if !is.held() {
			return errors.Join(errs...)
		}
		if err := g.publishShard(ctx, is, s, urls); err != nil {
			errs = append(errs, err)
			continue
		}
		delete(is.dirty, s)
	}
	if len(errs) == 0 {
		is.force = false
	}
	if len(is.dirty) == 0 {
		if err := g.saveCursor(ctx, is); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// saveCursor persists the issuer's cursor once every revocation up to it
// is on a published CRL, so a later holder replays only what follows.
func (g *Generator) saveCursor(ctx context.Context, is *issuerState) error {
	if is.savedSeq == g.cursor && is.savedInUse == is.inUse {
		return nil
	}
	b, _ := json.Marshal(cursorState{Seq: g.cursor, InUse: is.inUse})
	if err := g.st.PutMeta(ctx, cursorName(is.ID), b); err != nil {
		g.m.errors.WithLabelValues("cursor").Inc()
		return fmt.Errorf("crlgen: saving %s cursor: %w", is.ID, err)
	}
	is.savedSeq, is.savedInUse = g.cursor, is.inUse
	return nil
}

// shards lists the issuer's CRLs: its full CRL, or its shards in use.
func (g *Generator) shards(is *issuerState) []int {
	if is.full {
		return []int{shard.Full}
	}
	shards := make([]int, g.shardCount(is))
	for i := range shards {
		shards[i] = i
	}
	return shards
}

// wanted reports whether CRL s must be published this round: a revocation
// is pending, it is due, an earlier swap's outcome is unknown, or
// PublishNow asked for it.
func (g *Generator) wanted(is *issuerState, s int) bool {
	_, uncertain := is.uncertain[s]
	return is.dirty[s] || g.due(is, s) || uncertain || is.force
}

// due reports whether a CRL must be rebuilt on schedule: none stored, or
// the stored one is Period old. After the clock steps back, now is before
// the stored thisUpdate and nothing is due until it catches up (revocations
// still publish).
func (g *Generator) due(is *issuerState, s int) bool {
	c, ok := is.stored[s]
	return !ok || !g.now().Before(c.thisUpdate.Add(g.cfg.Period))
}

// maxAttempts bounds rebuilding a dirty shard after losing the swap.
const maxAttempts = 3

// publishShard builds, checks and swaps in one CRL. Losing the swap means
// another generator published: re-read, and stop if its CRL is fresh and
// this one was only due; rebuild on top of it if a revocation is pending.
func (g *Generator) publishShard(ctx context.Context, is *issuerState, s int, urls []string) error {
	for attempt := 1; ; attempt++ {
		prev, err := g.current(ctx, is, s, urls)
		if err != nil {
			return err
		}
		if prev.Number > 0 && !is.dirty[s] && !g.due(is, s) && !is.force {
			return nil
		}
		b, err := g.buildChecked(ctx, is, s, prev)
		if err != nil {
			return err
		}
		err = g.swap(ctx, is, s, prev, b, urls)
		if !errors.Is(err, store.ErrConflict) {
			return err
		}
		g.m.conflicts.WithLabelValues(string(is.ID)).Inc()
		g.log.Info("another generator published first; re-reading", "crl", label(is.ID, s), "number", b.number, "attempt", attempt)
		if attempt >= maxAttempts {
			return fmt.Errorf("crlgen: publishing CRL %s: lost the swap %d times: %w", label(is.ID, s), attempt, err)
		}
	}
}

// current reads the stored CRL of shard s (zero if none) and remembers it.
// An uncertain swap of this generator's that turns out to have landed is
// announced now.
func (g *Generator) current(ctx context.Context, is *issuerState, s int, urls []string) (store.CRL, error) {
	prev, err := g.st.CRL(ctx, is.ID, s)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		g.m.errors.WithLabelValues("store").Inc()
		return prev, fmt.Errorf("crlgen: reading CRL %s: %w", label(is.ID, s), err)
	}
	if u, ok := is.uncertain[s]; ok && prev.Number >= u.number {
		delete(is.uncertain, s)
		if g.mine(prev, u) {
			g.log.Warn("a CRL whose publication looked failed was stored after all; announcing it", "crl", label(is.ID, s), "number", u.number)
			bctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), bookkeepingTimeout)
			g.published(bctx, is, s, u, urls)
			cancel()
		}
	}
	if prev.Number > 0 {
		is.stored[s] = storedCRL{prev.Number, prev.ThisUpdate, prev.NextUpdate}
	}
	return prev, nil
}

// buildChecked builds the next CRL of shard s and runs the publication
// checks on it; failures are counted and logged.
func (g *Generator) buildChecked(ctx context.Context, is *issuerState, s int, prev store.CRL) (built, error) {
	b, err := g.build(ctx, is, s, prev)
	if err != nil && ctx.Err() != nil {
		// Shutting down or the lease was lost mid-build: nothing failed,
		// the next holder builds this shard.
		g.log.Debug("CRL build abandoned", "crl", label(is.ID, s), "err", err)
		return b, err
	}
	if err != nil {
		g.m.failures.WithLabelValues(string(is.ID), "build").Inc()
		g.log.Error("building CRL failed", "crl", label(is.ID, s), "err", err)
		return b, err
	}
	if err := g.check(is, s, prev, b); err != nil {
		var cf *checkFailure
		check := "unknown"
		if errors.As(err, &cf) {
			check = cf.check
		}
		g.m.failures.WithLabelValues(string(is.ID), check).Inc()
		g.log.Error("CRL failed a publication check: not published", "crl", label(is.ID, s), "check", check,
			"number", b.number, "err", err)
		return b, err
	}
	return b, nil
}

// swap publishes b in place of prev. It returns an error wrapping
// store.ErrConflict when another generator swapped first. A swap whose
// outcome is unknown is remembered as uncertain.
func (g *Generator) swap(ctx context.Context, is *issuerState, s int, prev store.CRL, b built, urls []string) error {
	c := store.CRL{IssuerID: is.ID, Shard: s, Number: b.number, ThisUpdate: b.thisUpdate, NextUpdate: b.nextUpdate, DER: b.der, Holder: g.writer}
	audit, err := g.auditEntry(is.ID, s, b)
	if err != nil {
		return err
	}
	err = g.st.PublishCRL(ctx, c, prev.Number, audit)
	if errors.Is(err, store.ErrConflict) {
		return err
	}
	if err != nil && !g.landed(ctx, is, s, b) {
		is.uncertain[s] = b
		g.m.errors.WithLabelValues("store").Inc()
		return fmt.Errorf("crlgen: publishing CRL %s: %w", label(is.ID, s), err)
	}
	is.stored[s] = storedCRL{b.number, b.thisUpdate, b.nextUpdate}
	// The CRL is out: record and announce it even if ctx ended meanwhile.
	bctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), bookkeepingTimeout)
	g.published(bctx, is, s, b, urls)
	cancel()
	return nil
}

// bookkeepingTimeout bounds what follows a swap that happened: re-reading
// it and the hooks.
const bookkeepingTimeout = 10 * time.Second

// landed reports whether a swap that returned an error (a cancelled
// context, a lost connection at commit) did store b after all, so that its
// publication is recorded and announced rather than silently left in the
// store.
func (g *Generator) landed(ctx context.Context, is *issuerState, s int, b built) bool {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), bookkeepingTimeout)
	defer cancel()
	c, err := g.st.CRL(ctx, is.ID, s)
	return err == nil && g.mine(c, b)
}

// mine reports whether the stored CRL c is b as this generator published
// it: the same number and bytes, and this generator's writer name. Two
// generators racing may build the very same bytes (an RSA signature is
// deterministic, thisUpdate has a second's precision): the writer tells
// whose swap landed.
func (g *Generator) mine(c store.CRL, b built) bool {
	return c.Number == b.number && sha256Sum(c.DER) == b.sha256 && c.Holder == g.writer
}

// published records a successful publication (its audit entry was
// written with it): metrics, log, hooks.
func (g *Generator) published(ctx context.Context, is *issuerState, s int, b built, urls []string) {
	g.m.published.WithLabelValues(string(is.ID)).Inc()
	g.m.lastPublish.WithLabelValues(string(is.ID)).Set(float64(g.now().UnixNano()) / 1e9)
	g.m.entries.WithLabelValues(string(is.ID), shardLabel(s)).Set(float64(b.entries))
	g.log.Info("CRL published", "crl", label(is.ID, s), "number", b.number, "entries", b.entries,
		"this_update", b.thisUpdate, "bytes", len(b.der))
	c := crlpub.CRL{
		Issuer: is.ID, Shard: s, URL: g.crlURL(is.ID, s), Number: b.number,
		ThisUpdate: b.thisUpdate, NextUpdate: b.nextUpdate,
		NextPublication: b.thisUpdate.Add(g.cfg.Period),
		DER:             b.der, SHA256: b.sha256, Entries: b.entries, ShardURLs: urls,
	}
	g.notify(ctx, c)
}

// auditEntry is the record of b's publication in the store's history,
// written by PublishCRL in the swap's own transaction: a CRL is never out
// without it, whatever happens to the connection after the commit.
func (g *Generator) auditEntry(id issuerid.ID, s int, b built) (store.AuditEntry, error) {
	payload, err := json.Marshal(struct {
		Issuer     issuerid.ID `json:"issuer"`
		Shard      string      `json:"shard"`
		Number     int64       `json:"number"`
		SHA256     string      `json:"sha256"`
		ThisUpdate time.Time   `json:"this_update"`
		NextUpdate time.Time   `json:"next_update"`
		Entries    int         `json:"entries"`
		Holder     string      `json:"holder"`
	}{id, shardLabel(s), b.number, fmt.Sprintf("%x", b.sha256), b.thisUpdate, b.nextUpdate, b.entries, g.cfg.Holder})
	if err != nil {
		return store.AuditEntry{}, fmt.Errorf("crlgen: auditing CRL %s: %w", label(id, s), err)
	}
	return store.AuditEntry{At: g.now(), Kind: "crl.published", Actor: "system", Subject: label(id, s), Payload: payload}, nil
}

func (g *Generator) notify(ctx context.Context, c crlpub.CRL) {
	for _, p := range g.pubs {
		if err := p.Published(ctx, c); err != nil {
			g.m.hookFailures.Inc()
			g.log.Warn("CRL publisher hook failed", "crl", label(c.Issuer, c.Shard), "number", c.Number,
				"hook", fmt.Sprintf("%T", p), "err", err)
		}
	}
}

// announcement is the crlpub form of a stored CRL.
func (g *Generator) announcement(is *issuerState, c store.CRL, urls []string, replayed bool) crlpub.CRL {
	return crlpub.CRL{
		Issuer: is.ID, Shard: c.Shard, URL: g.crlURL(is.ID, c.Shard), Number: c.Number,
		ThisUpdate: c.ThisUpdate, NextUpdate: c.NextUpdate, NextPublication: c.ThisUpdate.Add(g.cfg.Period),
		DER: c.DER, SHA256: sha256Sum(c.DER), Entries: -1, ShardURLs: urls, Replayed: replayed,
	}
}

// label names a CRL in logs and the audit subject: "int-p256/7", "root/full".
func label(id issuerid.ID, s int) string { return string(id) + "/" + shardLabel(s) }

func shardLabel(s int) string {
	if s == shard.Full {
		return "full"
	}
	return fmt.Sprint(s)
}

// PublishNow publishes every CRL of issuer id at once, due or not. It
// takes the issuer's lease for the call if this generator did not hold it,
// and gives it back before returning; another generator holding it is an
// error. The root CRL ceremony runs it on a generator of the root alone.
func (g *Generator) PublishNow(ctx context.Context, id issuerid.ID) error {
	g.mu.Lock()
	is := g.byID[id]
	if is == nil {
		g.mu.Unlock()
		return fmt.Errorf("crlgen: this generator does not sign %s's CRLs", id)
	}
	held := is.held()
	is.force = true
	g.mu.Unlock()
	err := g.Cycle(ctx)
	g.mu.Lock()
	defer g.mu.Unlock()
	failed, owned := is.force, is.held()
	is.force = false
	if !held && owned {
		if rerr := is.lease.Release(context.WithoutCancel(ctx)); rerr != nil {
			g.log.Warn("releasing CRL lease", "issuer", id, "err", rerr)
		}
		is.drop()
	}
	switch {
	case !failed:
		return nil
	case !owned:
		return errors.Join(err, fmt.Errorf("crlgen: another generator holds %s's lease; nothing was published", id))
	default:
		return errors.Join(err, fmt.Errorf("crlgen: %s's CRLs were not all published", id))
	}
}
