package presign

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/trustline/trustline/internal/ocspcache"
	"github.com/trustline/trustline/internal/ocspcache/cachetest"
	"github.com/trustline/trustline/internal/ocspcodec"
	"github.com/trustline/trustline/internal/serial"
	"github.com/trustline/trustline/internal/status"
	"github.com/trustline/trustline/internal/store"
	"github.com/trustline/trustline/internal/store/sqlite"
	"github.com/trustline/trustline/internal/testfix"
)

// benchIssuer is a P-256 issuer with a P-256 delegated responder, made
// without the PKI package so that benchmarks start fast.
func benchIssuer(b testing.TB) (Issuer, *ecdsa.PrivateKey) {
	now := time.Now()
	ik, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	rk, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	mk := func(tmpl, parent *x509.Certificate, pub crypto.PublicKey, key crypto.Signer) *x509.Certificate {
		if parent == nil {
			parent = tmpl
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, key)
		if err != nil {
			b.Fatal(err)
		}
		c, _ := x509.ParseCertificate(der)
		return c
	}
	is := mk(&x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "bench issuer"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.AddDate(1, 0, 0), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}, nil, ik.Public(), ik)
	resp := mk(&x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "bench responder"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.AddDate(0, 1, 0), KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage:     []x509.ExtKeyUsage{x509.ExtKeyUsageOCSPSigning},
		ExtraExtensions: []pkix.Extension{{Id: asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 48, 1, 5}, Value: []byte{5, 0}}},
	}, is, rk.Public(), ik)
	return Issuer{ID: "int-bench", Cert: is, Responder: resp, Key: rk}, rk
}

// fakeStore holds n synthetic certificate summaries (a tenth revoked): all
// a rebuild reads. Writes of refresh points are counted, not stored.
type fakeStore struct {
	certs     []store.CertSummary
	refreshes atomic.Int64
}

func newFakeStore(n int) *fakeStore {
	s := &fakeStore{certs: make([]store.CertSummary, n)}
	notAfter := time.Now().Add(90 * 24 * time.Hour)
	for i := range s.certs {
		c := store.CertSummary{Serial: serial.Serial(fmt.Sprintf("5b%032x", i+1)), IssuerID: "int-bench", NotAfter: notAfter, Status: status.Good}
		if i%10 == 0 {
			c.Status, c.RevokedAt, c.Reason = status.Revoked, time.Now().Add(-time.Hour), 1
		}
		s.certs[i] = c
	}
	return s
}

func (s *fakeStore) ListCertificates(_ context.Context, p store.Page) ([]store.CertSummary, error) {
	i := sort.Search(len(s.certs), func(i int) bool { return s.certs[i].Serial > p.AfterSerial })
	return s.certs[i:min(i+p.Limit, len(s.certs))], nil
}
func (s *fakeStore) CountCertificates(context.Context) (int64, error) {
	return int64(len(s.certs)), nil
}
func (s *fakeStore) Certificate(context.Context, serial.Serial) (store.Certificate, error) {
	return store.Certificate{}, store.ErrNotFound
}
func (s *fakeStore) DueForOCSP(context.Context, time.Time, time.Time, int) ([]store.CertSummary, error) {
	return nil, nil
}
func (s *fakeStore) SetOCSPRefresh(_ context.Context, rs []store.OCSPRefresh) error {
	s.refreshes.Add(int64(len(rs)))
	return nil
}
func (s *fakeStore) EventsAfter(context.Context, int64, int) ([]store.Event, error) { return nil, nil }
func (s *fakeStore) LastEventSeq(context.Context) (int64, error)                    { return 0, nil }
func (s *fakeStore) AcquireLease(context.Context, string, string, time.Time, time.Time) (bool, error) {
	return true, nil
}
func (s *fakeStore) ReleaseLease(context.Context, string, string) error { return nil }

// BenchmarkSign compares, on one core, the raw P-256 signature (what the
// key costs) with the pipeline signing one response (encoding, hashing,
// signing, batch bookkeeping): the ratio of their ns/op is the share of
// the key's rate the pipeline keeps (goal ≥ 0.9).
func BenchmarkSign(b *testing.B) {
	is, rk := benchIssuer(b)
	b.Run("raw-P256", func(b *testing.B) {
		digest := sha256.Sum256([]byte("tbsResponseData"))
		b.ReportAllocs()
		for b.Loop() {
			if _, err := ecdsa.SignASN1(rand.Reader, rk, digest[:]); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("pipeline-P256", func(b *testing.B) {
		mem, _ := ocspcache.NewMemory(ocspcache.MemoryConfig{})
		p, err := New(Config{Workers: 1}, Deps{Store: newFakeStore(0), Cache: mem, Issuers: []Issuer{is}, Log: testfix.QuietLogger()})
		if err != nil {
			b.Fatal(err)
		}
		fs := newFakeStore(256)
		certs := make([]cert, len(fs.certs))
		for i, c := range fs.certs {
			certs[i] = fromSummary(c)
		}
		algs := []ocspcodec.HashAlg{ocspcodec.SHA256}
		now := time.Now()
		b.ReportAllocs()
		b.ResetTimer()
		for done := 0; done < b.N; done += len(certs) {
			if _, err := p.signBatch(certs[:min(len(certs), b.N-done)], algs, now, false); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkPresign rebuilds a cache from a store of b.N certificates (two
// responses each, SHA-1 and SHA-256) with all cores, and reports
// responses per second: into the memory cache and into a private
// redis-server from a synthetic in-memory store (the pipeline's own
// cost), and into Redis from a real SQLite store (paging the
// certificates, writing refresh points). The 1,000,000-response figures
// in docs/ocsp.md are
//
//	go test ./issuer/presign -run '^$' -bench 'Presign/redis' -benchtime 500000x
func BenchmarkPresign(b *testing.B) {
	is, _ := benchIssuer(b)
	for _, kind := range []string{"memory", "redis", "redis-sqlite"} {
		b.Run(kind, func(b *testing.B) {
			var cache Cache
			var st Store = newFakeStore(b.N)
			switch kind {
			case "memory":
				cache, _ = ocspcache.NewMemory(ocspcache.MemoryConfig{})
			case "redis", "redis-sqlite":
				srv := cachetest.StartPrivateRedis(b)
				client := redis.NewClient(&redis.Options{Addr: srv.Addr, PoolSize: 8})
				defer client.Close()
				rc, err := ocspcache.NewRedis(ocspcache.RedisConfig{Prefix: "bench:"}, client, testfix.QuietLogger())
				if err != nil {
					b.Fatal(err)
				}
				defer rc.Close()
				cache = rc
			}
			if kind == "redis-sqlite" {
				st = sqliteWith(b, st.(*fakeStore).certs)
			}
			p, err := New(Config{}, Deps{Store: st, Cache: cache, Issuers: []Issuer{is}, Log: testfix.QuietLogger()})
			if err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			start := time.Now()
			n, err := p.Rebuild(context.Background())
			elapsed := time.Since(start)
			b.StopTimer()
			if err != nil || n != int64(b.N) {
				b.Fatalf("Rebuild: %d, %v", n, err)
			}
			b.ReportMetric(float64(2*n)/elapsed.Seconds(), "responses/s")
			if v := os.Getenv("TRUSTLINE_BENCH_VERBOSE"); v != "" {
				b.Logf("%d responses in %v (%s)", 2*n, elapsed, strconv.Quote(kind))
			}
		})
	}
}

// sqliteWith stores certs (with placeholder DER) in a new SQLite store.
func sqliteWith(b *testing.B, certs []store.CertSummary) Store {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, sqlite.Config{Path: filepath.Join(b.TempDir(), "bench.db")}, testfix.QuietLogger())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	rows := make([]store.Certificate, 0, 5000)
	for i, c := range certs {
		rows = append(rows, store.Certificate{Serial: c.Serial, IssuerID: c.IssuerID, AccountID: "bench", DER: []byte{0x30, 0},
			NotBefore: time.Now(), NotAfter: c.NotAfter, Status: c.Status, RevokedAt: c.RevokedAt, Reason: c.Reason})
		if len(rows) == cap(rows) || i == len(certs)-1 {
			if err := st.InsertCertificates(ctx, rows); err != nil {
				b.Fatal(err)
			}
			rows = rows[:0]
		}
	}
	return st
}
