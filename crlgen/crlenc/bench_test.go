package crlenc_test

import (
	"context"
	"crypto/rand"
	mrand "math/rand/v2"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/trustline/trustline/crlgen/crlenc"
	"github.com/trustline/trustline/internal/reason"
	"github.com/trustline/trustline/internal/serial"
)

// benchEntries is n entries shaped like Trustline's: 17-octet serials (a
// prefix byte and 128 random bits), revoked over the last 90 days, a quarter
// with reason unspecified (no reasonCode).
func benchEntries(n int) []crlenc.Entry {
	r := mrand.New(mrand.NewPCG(uint64(n), 99))
	reasons := []reason.Reason{reason.Unspecified, reason.KeyCompromise, reason.Superseded, reason.CessationOfOperation}
	end := time.Date(2026, 3, 14, 0, 0, 0, 0, time.UTC)
	es := make([]crlenc.Entry, n)
	b := make([]byte, 17)
	for i := range es {
		b[0] = 0x4e
		for j := 1; j < len(b); j++ {
			b[j] = byte(r.Uint32())
		}
		s, err := serial.FromBytes(b)
		if err != nil {
			panic(err)
		}
		es[i] = crlenc.Entry{
			Serial:    s,
			RevokedAt: end.Add(-time.Duration(r.Int64N(int64(90 * 24 * time.Hour)))),
			Reason:    reasons[r.IntN(len(reasons))],
		}
	}
	return es
}

var benchSizes = []struct {
	name string
	n    int
}{{"10k", 10_000}, {"100k", 100_000}, {"1M", 1_000_000}}

// runCRLBench reports ns/op, allocations, the DER size and the bytes
// allocated per byte of DER (the brief's memory goal is ≤ 2).
func runCRLBench(b *testing.B, build func([]crlenc.Entry) []byte) {
	for _, size := range benchSizes {
		entries := benchEntries(size.n)
		b.Run(size.name, func(b *testing.B) {
			b.ReportAllocs()
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			var der []byte
			for b.Loop() {
				der = build(entries)
			}
			runtime.ReadMemStats(&after)
			b.ReportMetric(float64(len(der)), "DER-bytes")
			b.ReportMetric(float64(after.TotalAlloc-before.TotalAlloc)/float64(b.N)/float64(len(der)), "alloc/DER")
		})
	}
}

func BenchmarkEncode(b *testing.B) {
	iss := newIssuer(b, keyP256)
	p := baseParams(iss)
	runCRLBench(b, func(es []crlenc.Entry) []byte {
		der, err := crlenc.Encode(context.Background(), p, slices.Values(es), iss.key, rand.Reader)
		if err != nil {
			b.Fatal(err)
		}
		return der
	})
}

// BenchmarkStdlib is x509.CreateRevocationList on the same input, for
// comparison.
func BenchmarkStdlib(b *testing.B) {
	iss := newIssuer(b, keyP256)
	p := baseParams(iss)
	runCRLBench(b, func(es []crlenc.Entry) []byte { return stdlibCRL(b, p, es, iss.key) })
}
