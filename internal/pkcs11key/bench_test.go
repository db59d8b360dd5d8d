package pkcs11key

import (
	"context"
	"crypto"
	"crypto/rand"
	"fmt"
	"testing"
	"time"

	"github.com/miekg/pkcs11"
	"github.com/trustline/trustline/internal/keyfile"
)

var benchAlgorithms = []keyfile.Algorithm{keyfile.ECDSAP256, keyfile.RSA2048}

func reportOps(b *testing.B) {
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
}

// BenchmarkRawCSign is the ceiling: C_SignInit + C_Sign on a session of its
// own, with the mechanism input prepared once and no pool, retry or DER
// conversion. "serial" is one session; "parallel" gives every benchmark
// goroutine its own session.
func BenchmarkRawCSign(b *testing.B) {
	tok := newTestToken(b, 1)
	for _, alg := range benchAlgorithms {
		s := generate(b, tok, "bench-"+alg.String(), alg)
		input, err := s.signInput(digestOf(crypto.SHA256, "bench"), crypto.SHA256)
		if err != nil {
			b.Fatal(err)
		}
		h := pkcs11.ObjectHandle(s.handle.Load())
		rawSign := func(b *testing.B, sh pkcs11.SessionHandle) {
			if err := tok.p11.SignInit(sh, s.mech, h); err != nil {
				b.Fatal(err)
			}
			if _, err := tok.p11.Sign(sh, input); err != nil {
				b.Fatal(err)
			}
		}
		openSession := func(b *testing.B) pkcs11.SessionHandle {
			sh, err := tok.p11.OpenSession(tok.slot, pkcs11.CKF_SERIAL_SESSION)
			if err != nil {
				b.Fatal(err)
			}
			return sh
		}
		b.Run(alg.String()+"/serial", func(b *testing.B) {
			sh := openSession(b)
			defer tok.p11.CloseSession(sh)
			for b.Loop() {
				rawSign(b, sh)
			}
			reportOps(b)
		})
		b.Run(alg.String()+"/parallel", func(b *testing.B) {
			b.SetParallelism(4)
			b.RunParallel(func(pb *testing.PB) {
				sh := openSession(b)
				defer tok.p11.CloseSession(sh)
				for pb.Next() {
					rawSign(b, sh)
				}
			})
			reportOps(b)
		})
	}
}

// BenchmarkSigner is the pooled crypto.Signer as callers use it: "serial"
// on a pool of one (the pool's overhead against RawCSign/serial), and
// b.RunParallel with 4×GOMAXPROCS goroutines sharing pools of 1 to 8
// sessions; sessions=8 matches RawCSign/parallel's one session per
// goroutine on 2 CPUs, so those two compare like for like.
func BenchmarkSigner(b *testing.B) {
	cfg := fixture(b, 1)
	gen := openTest(b, cfg)
	for _, alg := range benchAlgorithms {
		generate(b, gen, "bench-"+alg.String(), alg)
	}
	d := digestOf(crypto.SHA256, "bench")
	for _, alg := range benchAlgorithms {
		b.Run(alg.String()+"/serial", func(b *testing.B) {
			s, err := gen.findKey(context.Background(), "bench-"+alg.String())
			if err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				if _, err := s.Sign(rand.Reader, d, crypto.SHA256); err != nil {
					b.Fatal(err)
				}
			}
			reportOps(b)
		})
		for _, n := range []int{1, 2, 4, 8} {
			b.Run(fmt.Sprintf("%s/parallel/sessions=%d", alg, n), func(b *testing.B) {
				c := cfg
				c.Sessions = n
				tok := openTest(b, c)
				s, err := tok.findKey(context.Background(), "bench-"+alg.String())
				if err != nil {
					b.Fatal(err)
				}
				b.SetParallelism(4)
				b.ResetTimer()
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						if _, err := s.Sign(rand.Reader, d, crypto.SHA256); err != nil {
							b.Error(err)
							return
						}
					}
				})
				reportOps(b)
			})
		}
	}
}

// BenchmarkPoolOverhead is the pool's own cost per operation (acquire,
// release, error classification) with an operation that does nothing:
// it bounds what the pool can take from the token's throughput, and unlike
// the signing benchmarks it is not swamped by other load on the machine.
func BenchmarkPoolOverhead(b *testing.B) {
	tok := newTestToken(b, 4)
	nop := func(pkcs11.SessionHandle) error { return nil }
	b.Run("serial", func(b *testing.B) {
		for b.Loop() {
			if err := tok.do(context.Background(), time.Second, nop); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.SetParallelism(4)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := tok.do(context.Background(), time.Second, nop); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}
