package api_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"testing"

	"github.com/trustline/trustline/internal/store"
	"github.com/trustline/trustline/internal/store/postgres"
	"github.com/trustline/trustline/internal/testenv/pgtest"
	"github.com/trustline/trustline/internal/testfix"
)

// BenchmarkDVIssuance measures a whole DV order through the HTTP API:
// request decoding, CSR checks, validation coverage, serial reservation,
// lint-before-sign, signing, the store transaction and the reply.
func BenchmarkDVIssuance(b *testing.B) {
	stores := map[string]func(b *testing.B) store.Store{
		"sqlite": func(*testing.B) store.Store { return nil },
		"postgres": func(b *testing.B) store.Store {
			url := pgtest.FreshDatabase(b)
			st, err := postgres.Open(context.Background(), postgres.Config{URL: url}, testfix.QuietLogger())
			if err != nil {
				b.Fatal(err)
			}
			return st
		},
	}
	for _, name := range []string{"sqlite", "postgres"} {
		b.Run(name, func(b *testing.B) {
			e := newEnvWith(b, envOpts{store: stores[name](b)})
			key := e.newAccount(b, "bench@example.com")
			e.validate(b, key, "example.com")
			k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			body := map[string]string{"csr": csrPEM(b, k, "www.example.com", "example.com")}
			b.ResetTimer()
			for b.Loop() {
				if code, out, _ := e.call(b, "POST", "/api/v1/orders", key, body); code != 201 || out["status"] != "issued" {
					b.Fatalf("order: %d %v", code, out)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "certs/s")
		})
	}
}
