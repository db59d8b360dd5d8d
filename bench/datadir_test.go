package bench

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/trustline/trustline/internal/keyfile"
	"github.com/trustline/trustline/internal/shard"
	"github.com/trustline/trustline/internal/store"
	"github.com/trustline/trustline/internal/store/sqlite"
	"github.com/trustline/trustline/internal/testfix"
)

// dataDir writes f as a trustline data dir: ca/<id>.pem, ca/<id>-ocsp.pem,
// the responder's file key, and a SQLite store holding the certificates
// spread over shards shards.
func (f *fixture) dataDir(t testing.TB, shards int) (string, *sqlite.Store) {
	t.Helper()
	dir := t.TempDir()
	for _, d := range []string{"ca", "keys"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	writePEM := func(name string, c *x509.Certificate) {
		b := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
		if err := os.WriteFile(filepath.Join(dir, "ca", name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	writePEM(string(testIssuer)+".pem", f.issuer.Cert)
	writePEM(string(testIssuer)+"-ocsp.pem", f.issuer.Responder)
	if err := keyfile.Write(keyPath(dir, testIssuer, true), f.responderKey); err != nil {
		t.Fatal(err)
	}
	st, err := sqlite.Open(context.Background(), sqlite.Config{Path: filepath.Join(dir, "trustline.db")},
		testfix.QuietLogger())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	rows := make([]store.Certificate, len(f.certs))
	for i := range f.certs {
		c := &f.certs[i]
		c.Shard = shard.For(c.Serial, shards)
		rows[i] = store.Certificate{Serial: c.Serial, IssuerID: c.IssuerID, Shard: c.Shard, AccountID: "bench-test",
			DER: []byte{0x30, 0x00}, NotBefore: time.Now().Add(-time.Hour), NotAfter: c.NotAfter, Status: c.Status,
			RevokedAt: c.RevokedAt, Reason: c.Reason}
	}
	if err := st.InsertCertificates(context.Background(), rows); err != nil {
		t.Fatal(err)
	}
	return dir, st
}

// fakeOrigin serves crls.json and shard CRLs built from the store, as
// the origin does, republishing a shard at most every period (so that
// revocations take a moment to show, as after a real generator).
type fakeOrigin struct {
	t      testing.TB
	f      *fixture
	st     *sqlite.Store
	shards int
	period time.Duration

	mu     sync.Mutex
	number int64
	cache  map[int]fakeCRL
}

type fakeCRL struct {
	der  []byte
	etag string
	at   time.Time
}

func (o *fakeOrigin) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	base := "http://" + r.Host
	if r.URL.Path == "/"+string(testIssuer)+"/crls.json" {
		var urls []string
		for i := range o.shards {
			urls = append(urls, fmt.Sprintf("%s/%s/%d.crl", base, testIssuer, i))
		}
		json.NewEncoder(w).Encode(urls)
		return
	}
	name, ok := strings.CutPrefix(r.URL.Path, "/"+string(testIssuer)+"/")
	n, err := strconv.Atoi(strings.TrimSuffix(name, ".crl"))
	if !ok || err != nil || n >= o.shards {
		http.NotFound(w, r)
		return
	}
	c := o.crl(n)
	if r.Header.Get("If-None-Match") == c.etag {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	w.Header().Set("Content-Type", "application/pkix-crl")
	w.Header().Set("ETag", c.etag)
	w.Header().Set("Last-Modified", c.at.UTC().Format(http.TimeFormat))
	w.Write(c.der)
}

func (o *fakeOrigin) crl(n int) fakeCRL {
	o.mu.Lock()
	defer o.mu.Unlock()
	if c, ok := o.cache[n]; ok && time.Since(c.at) < o.period {
		return c
	}
	var entries []x509.RevocationListEntry
	err := o.st.ScanShard(context.Background(), store.ShardQuery{Issuer: testIssuer, Shard: shard.Index(n), RevokedOnly: true},
		func(s store.CertSummary) error {
			entries = append(entries, x509.RevocationListEntry{SerialNumber: s.Serial.BigInt(), RevocationTime: s.RevokedAt})
			return nil
		})
	if err != nil {
		o.t.Error(err)
	}
	o.number++
	now := time.Now()
	der, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{Number: big.NewInt(o.number), ThisUpdate: now,
		NextUpdate: now.Add(time.Hour), RevokedCertificateEntries: entries}, o.f.issuer.Cert, o.f.issuerKey)
	if err != nil {
		o.t.Error(err)
	}
	sum := sha256.Sum256(der)
	c := fakeCRL{der: der, etag: `"` + hex.EncodeToString(sum[:16]) + `"`, at: now}
	if o.cache == nil {
		o.cache = map[int]fakeCRL{}
	}
	o.cache[n] = c
	return c
}

func TestCRLEdges(t *testing.T) {
	f := newFixture(t, 200)
	dir, st := f.dataDir(t, 4)
	srv := httptest.NewServer(&fakeOrigin{t: t, f: f, st: st, shards: 4, period: time.Hour})
	defer srv.Close()
	for _, cond := range []string{"etag", "none"} {
		t.Run(cond, func(t *testing.T) {
			r, err := CRL(context.Background(), CRLConfig{Target: srv.URL, DataDir: dir, Edges: 10, Conditional: cond,
				Load: LoadConfig{Duration: 300 * time.Millisecond, Concurrency: 4}, Timeout: 5 * time.Second}, time.Now)
			if err != nil {
				t.Fatal(err)
			}
			if r.Errors != 0 || r.Requests == 0 {
				t.Fatalf("%d requests, errors %v", r.Requests, r.FirstErrors)
			}
			share := r.Figures["not_modified_share"]
			if cond == "etag" && share < 0.5 {
				t.Errorf("304 share %.2f with ETags", share)
			}
			if cond == "none" && share != 0 {
				t.Errorf("304 share %.2f without conditional requests", share)
			}
			if r.Verified == 0 || r.Figures["crls"] != 4 {
				t.Errorf("verified %d, figures %v", r.Verified, r.Figures)
			}
		})
	}
}

func TestCRLStorm(t *testing.T) {
	f := newFixture(t, 200)
	dir, st := f.dataDir(t, 4)
	srv := httptest.NewServer(&fakeOrigin{t: t, f: f, st: st, shards: 4, period: 300 * time.Millisecond})
	defer srv.Close()
	start := time.Now()
	r, err := CRL(context.Background(), CRLConfig{Target: srv.URL, DataDir: dir, Edges: 5, Conditional: "etag",
		Load: LoadConfig{Duration: 20 * time.Second, Warmup: 300 * time.Millisecond, Concurrency: 4}, Timeout: 5 * time.Second,
		Storm: 20, StormPoll: 100 * time.Millisecond, Seed: 1}, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	if r.Errors != 0 {
		t.Fatalf("errors %v", r.FirstErrors)
	}
	if time.Since(start) > 10*time.Second {
		t.Errorf("the storm run took %v: it should end once every edge has converged", time.Since(start))
	}
	fig := r.Figures
	if fig["storm_revoked"] != 20 || fig["storm_edge_crl_pairs_pending"] != 0 || fig["storm_affected_crls"] == 0 {
		t.Errorf("figures %v", fig)
	}
	if all := fig["storm_all_edges_sec"]; all <= 0 || all > 5 || fig["storm_first_edge_sec"] > all {
		t.Errorf("propagation: first %v s, all %v s", fig["storm_first_edge_sec"], all)
	}
	if c := r.StormConvergence; len(c) == 0 || c[len(c)-1].Share != 1 {
		t.Errorf("convergence curve %v does not reach 1", c)
	}
	// The revocations are in the store, each with its audit entry.
	var audits int
	st.ScanAudit(context.Background(), 0, func(e store.AuditEntry) error {
		if e.Kind == "certificate.revoked" && e.Actor == "bench" {
			audits++
		}
		return nil
	})
	if audits != 20 {
		t.Errorf("%d audit entries for 20 revocations", audits)
	}
}

func TestOCSPFromDataDir(t *testing.T) {
	f := newFixture(t, 100)
	dir, _ := f.dataDir(t, 4)
	target := serveFloor(t, f.floorPairs(nil))
	out := filepath.Join(t.TempDir(), "r.json")
	var stdout strings.Builder
	err := RunOCSP(context.Background(), []string{"--target", target, "--data", dir, "--duration", "300ms", "--warmup", "0s",
		"--concurrency", "2", "--sha256", "0.5", "--method", "mix", "--json", out}, &stdout, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"requests_per_sec", "latency_p50_ms", "latency_p99_ms", "errors", "latency_percentiles_ms",
		"latency_spectrum_ms", "machine", "config", "timeline"} {
		if _, ok := got[k]; !ok {
			t.Errorf("JSON lacks %q", k)
		}
	}
	if got["errors"].(float64) != 0 {
		t.Errorf("errors: %v", got["errors_by_kind"])
	}
	if !strings.Contains(stdout.String(), "requests") {
		t.Errorf("summary: %s", stdout.String())
	}
}

func TestPresign(t *testing.T) {
	f := newFixture(t, 50)
	dir, _ := f.dataDir(t, 4)
	r, err := Presign(context.Background(), PresignConfig{DataDir: dir, Responses: 300, Workers: 2, VerifyEvery: 10, MaxCerts: 100},
		PresignDeps{}, time.Now, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if r.Requests != 300 || r.Errors != 0 || r.Verified < 20 || r.RequestsPerSec <= 0 {
		t.Errorf("%d signed, %d errors %v, %d verified, %.0f/s", r.Requests, r.Errors, r.FirstErrors, r.Verified, r.RequestsPerSec)
	}
}

func TestRunFloorServesDataDir(t *testing.T) {
	f := newFixture(t, 20)
	dir, _ := f.dataDir(t, 4)
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() { done <- RunFloor(ctx, []string{"--data", dir, "--listen", "127.0.0.1:0"}, io.Discard, pw) }()
	var addr string
	buf := make([]byte, 4096)
	n, _ := pr.Read(buf)
	kv := parseLogLine(strings.TrimSpace(string(buf[:n])))
	if kv["msg"] != "floor ready" {
		t.Fatalf("ready line %q", buf[:n])
	}
	addr = kv["addr"]
	go io.Copy(io.Discard, pr)
	r := f.ocspRun(t, addr, LoadConfig{Duration: 200 * time.Millisecond, Concurrency: 2}, Mix{Method: "mix", GetEncoding: "raw", SHA256: 0.5, Seed: 1}, 5)
	if r.Errors != 0 || r.Requests == 0 {
		t.Errorf("%d requests, errors %v", r.Requests, r.FirstErrors)
	}
	cancel()
	if err := <-done; err != nil {
		t.Error(err)
	}
}
