package watch

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/trustline/trustline/internal/issuerid"
	"github.com/trustline/trustline/internal/serial"
	"github.com/trustline/trustline/internal/shard"
	"github.com/trustline/trustline/internal/status"
	"github.com/trustline/trustline/internal/store"
)

// Store is what a Watcher reads of the CA's records, and where it keeps
// its findings.
type Store interface {
	LastEventSeq(ctx context.Context) (int64, error)
	EventsAfter(ctx context.Context, seq int64, limit int) ([]store.Event, error)
	Certificate(ctx context.Context, s serial.Serial) (store.Certificate, error)
	ListCertificates(ctx context.Context, p store.Page) ([]store.CertSummary, error)
	ExpiringCertificates(ctx context.Context, from, to time.Time, limit int) ([]store.CertSummary, error)
	ScanShard(ctx context.Context, q store.ShardQuery, fn func(store.CertSummary) error) error
	RecordWatchFindings(ctx context.Context, fs []store.WatchFinding) error
}

// Targets are the URLs relying parties use and those of the plant's own
// servers behind them.
type Targets struct {
	PublicOCSP string   // the OCSP URL certificates carry (the CDN), ending in "/"
	Responders []string // each responder's OCSP URL
	PublicCRL  string   // the CRL base URL certificates carry: <base>/<issuer>/<shard>.crl
	Origins    []string // each origin's base URL; it serves every CRL at its path under PublicCRL
}

// Config configures a Watcher.
type Config struct {
	Targets Targets
	// Sample is how many certificates of each kind a round checks: the
	// newest issued, the newest revoked, those expiring soonest (within
	// ExpiringWithin), and a uniform draw. 0 means 20.
	Sample int
	// ExpiringWithin is how far ahead "expiring soonest" looks; 0 means
	// 7 days.
	ExpiringWithin time.Duration
	// OCSPRevocationDelay and CRLRevocationDelay are what the plant
	// promises: every URL answers revoked, and every shard lists the
	// revocation, this long after it.
	OCSPRevocationDelay, CRLRevocationDelay time.Duration
	// Instance names the watcher in its findings.
	Instance string
	// RecordEvery is how often a disagreement that lasts is recorded
	// again (metrics and logs count it every round); 0 means 1 hour.
	RecordEvery time.Duration
}

// Watcher runs rounds of checks.
type Watcher struct {
	cfg     Config
	st      Store
	issuers map[issuerid.ID]*x509.Certificate
	ocsp    *OCSPCheck
	crl     *CRLCheck
	log     *slog.Logger
	m       *metrics
	numbers map[string]*big.Int // highest CRL number seen per URL fetched
	// recorded is when each lasting disagreement (object, kind, URL,
	// serial) was last stored.
	recorded map[string]time.Time
}

// New builds a Watcher over the hierarchy's intermediates.
func New(cfg Config, st Store, issuers map[issuerid.ID]*x509.Certificate, log *slog.Logger, reg prometheus.Registerer) (*Watcher, error) {
	t := cfg.Targets
	if t.PublicOCSP == "" || t.PublicCRL == "" {
		return nil, errors.New("watch: the public OCSP and CRL URLs are required")
	}
	for _, u := range append(append([]string{t.PublicOCSP, t.PublicCRL}, t.Responders...), t.Origins...) {
		if p, err := url.Parse(u); err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
			return nil, fmt.Errorf("watch: %q is not an http(s) URL", u)
		}
	}
	if cfg.Sample == 0 {
		cfg.Sample = 20
	}
	if cfg.ExpiringWithin == 0 {
		cfg.ExpiringWithin = 7 * 24 * time.Hour
	}
	if cfg.RecordEvery == 0 {
		cfg.RecordEvery = time.Hour
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	m, err := newMetrics(reg)
	if err != nil {
		return nil, err
	}
	w := &Watcher{cfg: cfg, st: st, issuers: issuers, log: log, m: m, numbers: map[string]*big.Int{}, recorded: map[string]time.Time{},
		ocsp: &OCSPCheck{RevocationDelay: cfg.OCSPRevocationDelay, Observe: m.observe},
		crl:  &CRLCheck{RevocationDelay: cfg.CRLRevocationDelay, Observe: m.observe}}
	return w, nil
}

// Round is one pass: sample certificates, check their OCSP responses at
// every URL and, with crls, the CRL shards they are on at every URL and
// each issuer's crls.json; record the findings, and return them. (Several
// watchers share the CRLs through a lease: the holder checks them, every
// watcher checks OCSP for its own random sample.)
func (w *Watcher) Round(ctx context.Context, crls bool) ([]Finding, error) {
	certs, err := w.sample(ctx)
	if err != nil {
		return nil, err
	}
	w.m.startRound()
	var out []Finding
	var checked RoundSummary
	ocspURLs := append([]string{w.cfg.Targets.PublicOCSP}, w.cfg.Targets.Responders...)
	type shardKey struct {
		is issuerid.ID
		sh shard.Index
	}
	shards := map[shardKey]bool{}
	for _, c := range certs {
		iss := w.issuers[c.IssuerID]
		if iss == nil {
			continue // the root's, or an issuer this watcher does not know
		}
		for _, u := range ocspURLs {
			fs := w.ocsp.Check(ctx, u, OCSPSubject{Cert: c, Issuer: iss})
			if disagreesWithStore(fs) {
				// The sample was read before the fetch: a revocation in
				// between is no fault. Compare again with the store now.
				if fresh, ok := w.current(ctx, c); ok {
					fs = w.ocsp.Check(ctx, u, OCSPSubject{Cert: fresh, Issuer: iss})
				}
			}
			out = append(out, fs...)
			w.m.checks.WithLabelValues("ocsp").Inc()
			checked.OCSP++
		}
		if crls {
			shards[shardKey{c.IssuerID, c.Shard}] = true
		}
	}
	indexWant := map[issuerid.ID][]string{}
	for k := range shards {
		idp := fmt.Sprintf("%s/%s/%d.crl", strings.TrimSuffix(w.cfg.Targets.PublicCRL, "/"), k.is, k.sh)
		indexWant[k.is] = append(indexWant[k.is], idp)
		var revoked []store.CertSummary
		err := w.st.ScanShard(ctx, store.ShardQuery{Issuer: k.is, Shard: k.sh, RevokedOnly: true}, func(c store.CertSummary) error {
			revoked = append(revoked, c)
			return nil
		})
		if err != nil {
			return out, fmt.Errorf("watch: reading shard %s/%d: %w", k.is, k.sh, err)
		}
		for _, u := range w.sameObject(idp) {
			// The number never goes back at one URL; a CDN may well hold
			// an older CRL than its origin, and that is no fault.
			n, fs := w.crl.Check(ctx, u, CRLSubject{Issuer: w.issuers[k.is], IDP: idp, Revoked: revoked, LastNumber: w.numbers[u]})
			fs = w.dropRevokedSince(ctx, fs)
			for i := range fs {
				fs[i].Issuer = string(k.is)
			}
			out = append(out, fs...)
			if n != nil && (w.numbers[u] == nil || n.Cmp(w.numbers[u]) > 0) {
				w.numbers[u] = n
			}
			w.m.checks.WithLabelValues("crl").Inc()
			checked.CRL++
		}
	}
	for is, want := range indexWant {
		slices.Sort(want)
		index := fmt.Sprintf("%s/%s/crls.json", strings.TrimSuffix(w.cfg.Targets.PublicCRL, "/"), is)
		for _, u := range w.sameObject(index) {
			fs := w.crl.CheckIndex(ctx, u, want)
			for i := range fs {
				fs[i].Issuer = string(is)
			}
			out = append(out, fs...)
		}
	}
	w.m.round(out)
	checked.Certificates, checked.Findings = len(certs), len(out)
	if err := w.record(ctx, out, checked); err != nil {
		return out, err
	}
	for _, f := range out {
		w.log.Warn("watch finding", "object", f.Object, "kind", f.Kind, "url", f.URL, "serial", f.Serial, "detail", f.Detail)
	}
	return out, nil
}

// disagreesWithStore reports whether fs holds a finding that compares
// with the store's record (and so may come from reading it too early).
func disagreesWithStore(fs []Finding) bool {
	for _, f := range fs {
		switch f.Kind {
		case StatusMismatch, ReasonMismatch, TimeMismatch:
			return true
		}
	}
	return false
}

// current re-reads a sampled certificate; ok is false if it did not change
// (or cannot be read: the first comparison stands).
func (w *Watcher) current(ctx context.Context, c store.CertSummary) (store.CertSummary, bool) {
	f, err := w.st.Certificate(ctx, c.Serial)
	if err != nil || (f.Status == c.Status && f.Reason == c.Reason && f.RevokedAt.Equal(c.RevokedAt)) {
		return c, false
	}
	c.Status, c.Reason, c.RevokedAt = f.Status, f.Reason, f.RevokedAt
	return c, true
}

// dropRevokedSince drops a CRL's "listed, but not revoked" findings of
// certificates the store has as revoked now: revoked after the shard was
// read, before the CRL was fetched.
func (w *Watcher) dropRevokedSince(ctx context.Context, fs []Finding) []Finding {
	out := fs[:0]
	for _, f := range fs {
		if f.Kind == StatusMismatch && f.Serial != "" {
			if c, err := w.st.Certificate(ctx, serial.Serial(f.Serial)); err == nil && c.Status == status.Revoked {
				continue
			}
		}
		out = append(out, f)
	}
	return out
}

// sameObject is u (under the public CRL base) and the same path at every
// origin.
func (w *Watcher) sameObject(u string) []string {
	out := []string{u}
	pub, err := url.Parse(u)
	if err != nil {
		return out
	}
	for _, o := range w.cfg.Targets.Origins {
		out = append(out, strings.TrimSuffix(o, "/")+pub.EscapedPath())
	}
	return out
}

// sample picks the certificates of a round: the newest issued and revoked
// (from the event log), those expiring soonest (a responder or cache that
// drops certificates near their end is caught), and a uniform draw
// (serials are random, so the page after a random serial is one).
func (w *Watcher) sample(ctx context.Context) ([]store.CertSummary, error) {
	last, err := w.st.LastEventSeq(ctx)
	if err != nil {
		return nil, fmt.Errorf("watch: reading the event log: %w", err)
	}
	evs, err := w.st.EventsAfter(ctx, max(0, last-int64(20*w.cfg.Sample)), 20*w.cfg.Sample)
	if err != nil {
		return nil, fmt.Errorf("watch: reading the event log: %w", err)
	}
	var picked []serial.Serial // from the event log
	add := func(s serial.Serial) {
		if !slices.Contains(picked, s) {
			picked = append(picked, s)
		}
	}
	issued, revoked := 0, 0
	for i := len(evs) - 1; i >= 0; i-- {
		switch e := evs[i]; {
		case e.Kind == store.EventIssued && issued < w.cfg.Sample:
			add(e.Serial)
			issued++
		case e.Kind == store.EventRevoked && revoked < w.cfg.Sample:
			add(e.Serial)
			revoked++
		}
	}
	var b [17]byte
	rand.Read(b[:])
	now := time.Now()
	page, err := w.st.ListCertificates(ctx, store.Page{AfterSerial: serial.Serial(hex.EncodeToString(b[:])), NotAfterAfter: now, Limit: w.cfg.Sample})
	if err != nil {
		return nil, fmt.Errorf("watch: sampling certificates: %w", err)
	}
	if len(page) < w.cfg.Sample {
		more, err := w.st.ListCertificates(ctx, store.Page{NotAfterAfter: now, Limit: w.cfg.Sample - len(page)})
		if err != nil {
			return nil, fmt.Errorf("watch: sampling certificates: %w", err)
		}
		page = append(page, more...)
	}
	fromEvents := picked
	expiring, err := w.st.ExpiringCertificates(ctx, now, now.Add(w.cfg.ExpiringWithin), w.cfg.Sample)
	if err != nil {
		return nil, fmt.Errorf("watch: sampling certificates about to expire: %w", err)
	}
	var out []store.CertSummary
	for _, c := range append(page, expiring...) {
		if !slices.Contains(fromEvents, c.Serial) && !slices.ContainsFunc(out, func(o store.CertSummary) bool { return o.Serial == c.Serial }) {
			out = append(out, c)
		}
	}
	for _, s := range fromEvents {
		c, err := w.st.Certificate(ctx, s)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("watch: reading %s: %w", s, err)
		}
		if c.NotAfter.Before(now) {
			continue // expired: nothing is promised of it any more
		}
		out = append(out, store.CertSummary{Serial: c.Serial, IssuerID: c.IssuerID, Shard: c.Shard, AccountID: c.AccountID,
			NotAfter: c.NotAfter, Status: c.Status, RevokedAt: c.RevokedAt, Reason: c.Reason})
	}
	return out, nil
}

// RoundSummary is what a round checked. It is stored beside the findings
// (object "round", kind "checked", the summary in Detail as JSON), so
// that a report says how much was checked as well as what disagreed.
type RoundSummary struct {
	Certificates int `json:"certificates"` // sampled
	OCSP         int `json:"ocsp"`         // responses fetched and checked
	CRL          int `json:"crl"`          // CRLs fetched and checked
	Findings     int `json:"findings"`
}

// Summary object and kind in the findings table.
const (
	ObjectRound = "round"
	KindChecked = "checked"
)

// record stores the findings with their evidence: a disagreement when
// first seen, then once every RecordEvery while it lasts; the bytes of one
// fetch once, with the first of its findings. The round's summary goes
// with them.
func (w *Watcher) record(ctx context.Context, fs []Finding, sum RoundSummary) error {
	now := time.Now()
	js, _ := json.Marshal(sum)
	rows := []store.WatchFinding{{At: now, Watcher: w.cfg.Instance, Object: ObjectRound, Kind: KindChecked, Detail: string(js)}}
	kept := map[string]bool{} // fetches whose body is stored already
	seen := map[string]bool{}
	for _, f := range fs {
		key := f.Object + " " + string(f.Kind) + " " + f.URL + " " + f.Serial
		seen[key] = true
		if last, ok := w.recorded[key]; ok && now.Sub(last) < w.cfg.RecordEvery {
			continue
		}
		w.recorded[key] = now
		at := f.Fetched.At
		if at.IsZero() {
			at = now
		}
		h, _ := json.Marshal(f.Fetched.Header)
		row := store.WatchFinding{At: at, Watcher: w.cfg.Instance, Object: f.Object, Kind: string(f.Kind), URL: f.URL,
			Serial: f.Serial, Issuer: f.Issuer, Detail: f.Detail, HTTPStatus: f.Fetched.Status, Header: h}
		fetch := f.URL + " " + at.String()
		if !kept[fetch] {
			row.Body, kept[fetch] = f.Fetched.Body, true
		}
		rows = append(rows, row)
	}
	for key := range w.recorded {
		if !seen[key] {
			delete(w.recorded, key) // over: recorded afresh if it comes back
		}
	}
	if err := w.st.RecordWatchFindings(ctx, rows); err != nil {
		return fmt.Errorf("watch: recording %d findings: %w", len(rows)-1, err)
	}
	return nil
}
