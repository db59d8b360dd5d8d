package watch

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"golang.org/x/crypto/ocsp"

	"github.com/trustline/trustline/internal/issuerid"
	"github.com/trustline/trustline/internal/reason"
	"github.com/trustline/trustline/internal/serial"
	"github.com/trustline/trustline/internal/shard"
	"github.com/trustline/trustline/internal/status"
	"github.com/trustline/trustline/internal/store"
)

// fakePlant is a store, a responder and an origin for one issuer, all in
// process, each of which a test can make lie.
type fakePlant struct {
	t      *testing.T
	is     *testIssuer
	mu     sync.Mutex
	certs  map[serial.Serial]store.Certificate
	events []store.Event
	found  []store.WatchFinding
	// Faults.
	staleOCSP     map[serial.Serial]bool // the responder answers good for these whatever the store says
	dropOCSP      map[serial.Serial]bool // the responder has forgotten these: unknown
	dropFromCR    map[serial.Serial]bool // the origin's CRLs leave these out
	crlBase       string                 // the public CRL base URL the certificates name
	expiringAsked int
	revokeOnFetch serial.Serial        // revoked in the store when its OCSP response is first asked for
	rounds        []store.WatchFinding // the round summaries recorded
	ocspSrv       *httptest.Server
	originSrv     *httptest.Server
}

const testIssuerID = issuerid.ID("int-test")

func newFakePlant(t *testing.T) *fakePlant {
	p := &fakePlant{t: t, is: newTestIssuer(t), certs: map[serial.Serial]store.Certificate{},
		staleOCSP: map[serial.Serial]bool{}, dropOCSP: map[serial.Serial]bool{}, dropFromCR: map[serial.Serial]bool{}}
	p.ocspSrv = httptest.NewServer(http.HandlerFunc(p.serveOCSP))
	t.Cleanup(p.ocspSrv.Close)
	p.originSrv = httptest.NewServer(http.HandlerFunc(p.serveCRL))
	t.Cleanup(p.originSrv.Close)
	p.crlBase = p.originSrv.URL + "/crl"
	return p
}

func (p *fakePlant) add(sn string, sh shard.Index) {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := serial.Serial(sn)
	p.certs[s] = store.Certificate{Serial: s, IssuerID: testIssuerID, Shard: sh, Status: status.Good, NotAfter: time.Now().Add(30 * 24 * time.Hour)}
	p.events = append(p.events, store.Event{Seq: int64(len(p.events) + 1), Kind: store.EventIssued, Serial: s, IssuerID: testIssuerID, Shard: sh})
}

func (p *fakePlant) revoke(sn string, ago time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := serial.Serial(sn)
	c := p.certs[s]
	c.Status, c.RevokedAt, c.Reason = status.Revoked, time.Now().Add(-ago).Truncate(time.Second), reason.KeyCompromise
	p.certs[s] = c
	p.events = append(p.events, store.Event{Seq: int64(len(p.events) + 1), Kind: store.EventRevoked, Serial: s, IssuerID: testIssuerID, Shard: c.Shard})
}

func (p *fakePlant) serveOCSP(w http.ResponseWriter, r *http.Request) {
	raw, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(r.URL.Path, "/"))
	if err != nil {
		http.Error(w, "bad request", 400)
		return
	}
	req, err := ocsp.ParseRequest(raw)
	if err != nil {
		http.Error(w, "bad request", 400)
		return
	}
	sn := serial.Serial(fmt.Sprintf("%x", req.SerialNumber))
	if len(sn)%2 == 1 {
		sn = "0" + sn
	}
	p.mu.Lock()
	race := p.revokeOnFetch == sn
	p.mu.Unlock()
	if race {
		p.revoke(string(sn), 0)
		p.mu.Lock()
		p.revokeOnFetch = ""
		p.mu.Unlock()
	}
	p.mu.Lock()
	c, ok := p.certs[sn]
	stale := p.staleOCSP[sn]
	if p.dropOCSP[sn] {
		ok = false
	}
	p.mu.Unlock()
	now := time.Now().Truncate(time.Second)
	tmpl := ocsp.Response{Status: ocsp.Good, SerialNumber: req.SerialNumber, ThisUpdate: now.Add(-time.Hour), NextUpdate: now.Add(71 * time.Hour)}
	switch {
	case !ok:
		tmpl.Status = ocsp.Unknown
	case c.Status == status.Revoked && !stale:
		tmpl.Status, tmpl.RevokedAt, tmpl.RevocationReason = ocsp.Revoked, c.RevokedAt, int(c.Reason)
	}
	w.Header().Set("Cache-Control", "max-age=3600")
	w.Write(p.is.response(p.t, tmpl))
}

func (p *fakePlant) serveCRL(w http.ResponseWriter, r *http.Request) {
	path := strings.TrimPrefix(r.URL.Path, "/crl/"+string(testIssuerID)+"/")
	p.mu.Lock()
	defer p.mu.Unlock()
	if path == "crls.json" {
		var urls []string
		for s := range 4 {
			urls = append(urls, fmt.Sprintf("%s/%s/%d.crl", p.crlBase, testIssuerID, s))
		}
		json.NewEncoder(w).Encode(urls)
		return
	}
	var sh int
	if _, err := fmt.Sscanf(path, "%d.crl", &sh); err != nil {
		http.NotFound(w, r)
		return
	}
	now := time.Now().Truncate(time.Second)
	tmpl := x509.RevocationList{Number: big.NewInt(now.Unix()), ThisUpdate: now.Add(-time.Minute), NextUpdate: now.Add(24 * time.Hour),
		ExtraExtensions: []pkix.Extension{idpExt(fmt.Sprintf("%s/%s/%d.crl", p.crlBase, testIssuerID, sh))}}
	for _, c := range p.certs {
		if c.Status == status.Revoked && int(c.Shard) == sh && !p.dropFromCR[c.Serial] {
			n, _ := new(big.Int).SetString(string(c.Serial), 16)
			tmpl.RevokedCertificateEntries = append(tmpl.RevokedCertificateEntries, x509.RevocationListEntry{SerialNumber: n, RevocationTime: c.RevokedAt, ReasonCode: int(c.Reason)})
		}
	}
	der, err := x509.CreateRevocationList(rand.Reader, &tmpl, p.is.cert, p.is.key)
	if err != nil {
		http.Error(w, err.Error(), 500)
		return
	}
	w.Header().Set("Cache-Control", "max-age=60")
	w.Write(der)
}

// The Store side.

func (p *fakePlant) LastEventSeq(context.Context) (int64, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return int64(len(p.events)), nil
}

func (p *fakePlant) EventsAfter(_ context.Context, seq int64, limit int) ([]store.Event, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []store.Event
	for _, e := range p.events {
		if e.Seq > seq && len(out) < limit {
			out = append(out, e)
		}
	}
	return out, nil
}

func (p *fakePlant) Certificate(_ context.Context, s serial.Serial) (store.Certificate, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	c, ok := p.certs[s]
	if !ok {
		return c, store.ErrNotFound
	}
	return c, nil
}

func (p *fakePlant) ListCertificates(_ context.Context, pg store.Page) ([]store.CertSummary, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var sns []serial.Serial
	for s := range p.certs {
		if s > pg.AfterSerial {
			sns = append(sns, s)
		}
	}
	slices.Sort(sns)
	var out []store.CertSummary
	for _, s := range sns {
		if len(out) == pg.Limit {
			break
		}
		out = append(out, summary(p.certs[s]))
	}
	return out, nil
}

func (p *fakePlant) ExpiringCertificates(_ context.Context, from, to time.Time, limit int) ([]store.CertSummary, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []store.CertSummary
	for _, c := range p.certs {
		if c.NotAfter.After(from) && !c.NotAfter.After(to) {
			out = append(out, summary(c))
		}
	}
	slices.SortFunc(out, func(a, b store.CertSummary) int { return a.NotAfter.Compare(b.NotAfter) })
	if len(out) > limit {
		out = out[:limit]
	}
	p.expiringAsked++
	return out, nil
}

func (p *fakePlant) ScanShard(_ context.Context, q store.ShardQuery, fn func(store.CertSummary) error) error {
	p.mu.Lock()
	var out []store.CertSummary
	for _, c := range p.certs {
		if c.IssuerID == q.Issuer && c.Shard == q.Shard && (!q.RevokedOnly || c.Status == status.Revoked) {
			out = append(out, summary(c))
		}
	}
	p.mu.Unlock()
	for _, c := range out {
		if err := fn(c); err != nil {
			return err
		}
	}
	return nil
}

func (p *fakePlant) RecordWatchFindings(_ context.Context, fs []store.WatchFinding) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, f := range fs {
		if f.Object == ObjectRound {
			p.rounds = append(p.rounds, f)
		} else {
			p.found = append(p.found, f)
		}
	}
	return nil
}

func summary(c store.Certificate) store.CertSummary {
	return store.CertSummary{Serial: c.Serial, IssuerID: c.IssuerID, Shard: c.Shard, NotAfter: c.NotAfter, Status: c.Status, RevokedAt: c.RevokedAt, Reason: c.Reason}
}

// TestWatcherRound: a plant that agrees with itself gives no findings;
// a responder left answering good for a revoked certificate and an origin
// whose CRL leaves out a revocation are each found, named and recorded
// with their evidence, at the URL that lies.
func TestWatcherRound(t *testing.T) {
	p := newFakePlant(t)
	for i := range 30 {
		p.add(fmt.Sprintf("%02x%030x", 0x10+i, i), shard.Index(i%4))
	}
	p.revoke(fmt.Sprintf("%02x%030x", 0x10+3, 3), time.Hour)
	w, err := New(Config{
		Targets: Targets{PublicOCSP: p.ocspSrv.URL + "/", Responders: []string{p.ocspSrv.URL + "/"},
			PublicCRL: p.crlBase, Origins: []string{p.originSrv.URL}},
		Sample: 10, OCSPRevocationDelay: time.Minute, CRLRevocationDelay: 5 * time.Minute, Instance: "w1",
	}, p, map[issuerid.ID]*x509.Certificate{testIssuerID: p.is.cert}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	fs, err := w.Round(context.Background(), true)
	if err != nil || len(fs) != 0 {
		t.Fatalf("a healthy plant: %v %v", fs, err)
	}
	if n := len(p.found); n != 0 {
		t.Fatalf("recorded %d findings of a healthy plant", n)
	}
	var sum RoundSummary
	if len(p.rounds) != 1 || json.Unmarshal([]byte(p.rounds[0].Detail), &sum) != nil || sum.Findings != 0 ||
		sum.Certificates < 10 || sum.OCSP != 2*sum.Certificates || sum.CRL == 0 || p.rounds[0].Watcher != "w1" {
		t.Fatalf("the round summary: %+v", p.rounds)
	}
	// The fake responder's responses are an hour old, its CRLs a minute.
	if age := testutil.ToFloat64(w.m.oldest.WithLabelValues("ocsp")); age < 3590 || age > 3700 {
		t.Errorf("oldest OCSP response %v s, want about 3600", age)
	}
	if age := testutil.ToFloat64(w.m.oldest.WithLabelValues("crl")); age < 55 || age > 120 {
		t.Errorf("oldest CRL %v s, want about 60", age)
	}

	// A revocation between the sample's read and the fetch is no finding:
	// the watcher compares again with the store as it is now.
	racing := serial.Serial(fmt.Sprintf("%02x%030x", 0x10+29, 29)) // the newest issued: always sampled
	p.mu.Lock()
	p.revokeOnFetch = racing
	p.mu.Unlock()
	if fs, err := w.Round(context.Background(), true); err != nil || len(fs) != 0 {
		t.Fatalf("a revocation while the round ran: %v %v", fs, err)
	}
	if c, _ := p.Certificate(context.Background(), racing); c.Status != status.Revoked {
		t.Fatal("the racing revocation did not happen")
	}

	lying := fmt.Sprintf("%02x%030x", 0x10+7, 7)
	p.revoke(lying, 10*time.Minute)
	p.mu.Lock()
	p.staleOCSP[serial.Serial(lying)] = true
	p.dropFromCR[serial.Serial(lying)] = true
	p.mu.Unlock()
	fs, err = w.Round(context.Background(), true)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range fs {
		got = append(got, fmt.Sprintf("%s/%s", f.Object, f.Kind))
		if f.Serial != lying || f.Fetched.At.IsZero() || len(f.Fetched.Body) == 0 || f.Issuer != string(testIssuerID) {
			t.Errorf("finding %v", f)
		}
	}
	slices.Sort(got)
	// Each OCSP URL (public and responder) and each CRL URL (public and origin).
	want := []string{"crl/missing_entry", "crl/missing_entry", "ocsp/status_mismatch", "ocsp/status_mismatch"}
	if !slices.Equal(got, want) {
		t.Fatalf("findings %v, want %v", got, want)
	}
	// The public and the responder URL are one server here (and so are
	// the CRL URLs): the same disagreement at the same URL is recorded
	// once, with the bytes fetched.
	if len(p.found) != 2 || p.found[0].Watcher != "w1" || len(p.found[0].Body) == 0 || !strings.Contains(string(p.found[0].Header), "Cache-Control") {
		t.Fatalf("recorded %+v", p.found)
	}
	// Lasting, it is counted every round but recorded again only after
	// RecordEvery.
	if fs, _ := w.Round(context.Background(), true); len(fs) != 4 || len(p.found) != 2 {
		t.Fatalf("the next round: %d findings, %d recorded in all; want 4 and still 2", len(fs), len(p.found))
	}
	u, _ := url.Parse(fs[0].URL)
	if u == nil {
		t.Fatal("a finding without a URL")
	}

	// The oldest certificate, far from the newest events, expires in two
	// days, and the responder has dropped it: the expiring sample finds it
	// every round.
	old := serial.Serial(fmt.Sprintf("%02x%030x", 0x10, 0))
	p.mu.Lock()
	c := p.certs[old]
	c.NotAfter = time.Now().Add(48 * time.Hour)
	p.certs[old] = c
	p.dropOCSP[old] = true
	p.staleOCSP, p.dropFromCR = map[serial.Serial]bool{}, map[serial.Serial]bool{}
	p.mu.Unlock()
	for range 3 {
		fs, err := w.Round(context.Background(), true)
		if err != nil {
			t.Fatal(err)
		}
		found := 0
		for _, f := range fs {
			if f.Serial == string(old) && f.Kind == StatusMismatch && strings.Contains(f.Detail, "unknown") {
				found++
			} else {
				t.Errorf("another finding: %v", f)
			}
		}
		if found != 2 {
			t.Fatalf("the dropped certificate about to expire: %d findings of %v, want one per OCSP URL", found, fs)
		}
	}
	if p.expiringAsked == 0 {
		t.Error("the expiring certificates were never asked for")
	}
}
