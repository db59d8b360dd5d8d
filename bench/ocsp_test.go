package bench

import (
	"crypto"
	"crypto/rand"
	"math"
	"math/big"
	mrand "math/rand/v2"
	"slices"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/valyala/fasthttp"
	"golang.org/x/crypto/ocsp"

	"github.com/trustline/trustline/internal/ocspcodec"
	"github.com/trustline/trustline/internal/status"
	"github.com/trustline/trustline/responder/floor"
)

func TestBuildRequest(t *testing.T) {
	f := newFixture(t, 1)
	k, err := newIssuerKey(f.issuer.Cert)
	if err != nil {
		t.Fatal(err)
	}
	sn := f.certs[0].SN
	for _, tc := range []struct {
		name  string
		hash  crypto.Hash
		nonce []byte
	}{
		{"sha1", crypto.SHA1, nil},
		{"sha256", crypto.SHA256, nil},
		{"sha1 nonce", crypto.SHA1, []byte("0123456789abcdef0123456789abcdef")},
		{"sha256 short nonce", crypto.SHA256, []byte{1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			der, err := buildRequest(k, tc.hash, sn, tc.nonce)
			if err != nil {
				t.Fatal(err)
			}
			// Two parsers no one here wrote agree on what it says.
			xr, err := ocsp.ParseRequest(der)
			if err != nil {
				t.Fatalf("x/crypto/ocsp: %v", err)
			}
			if xr.HashAlgorithm != tc.hash || xr.SerialNumber.Cmp(sn) != 0 {
				t.Errorf("x/crypto/ocsp reads hash %v serial %x", xr.HashAlgorithm, xr.SerialNumber)
			}
			var cr ocspcodec.Request
			if err := ocspcodec.ParseRequest(der, &cr); err != nil {
				t.Fatalf("ocspcodec: %v", err)
			}
			if !f.signer.MatchesIssuer(cr.CertIDs[0]) {
				t.Error("issuer hashes do not match the issuer")
			}
			if d := cmp.Diff(tc.nonce, cr.Nonce, cmp.Comparer(func(a, b []byte) bool { return string(a) == string(b) })); d != "" {
				t.Errorf("nonce (-want +got):\n%s", d)
			}
			if cr.HasNonce != (tc.nonce != nil) {
				t.Errorf("HasNonce = %v", cr.HasNonce)
			}
		})
	}
	if _, err := buildRequest(k, crypto.SHA1, big.NewInt(0), nil); err == nil {
		t.Error("serial 0 accepted")
	}
	if _, err := buildRequest(k, crypto.SHA1, sn, make([]byte, 33)); err == nil {
		t.Error("33-octet nonce accepted (RFC 8954 allows 32)")
	}
}

func TestVerifyOCSP(t *testing.T) {
	f := newFixture(t, 5)
	now := time.Now()
	good, revoked := &f.certs[0], &f.certs[4]
	signAt := func(c Cert, h crypto.Hash, st status.Status, at time.Time) []byte {
		c.Status = st
		der, err := sign(f.signer, &c, h, at, rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return der
	}
	corrupt := func(b []byte) []byte { b = slices.Clone(b); b[len(b)-400] ^= 0x55; return b }
	for _, tc := range []struct {
		name string
		exp  expect
		body []byte
		kind string // "" for correct
	}{
		{"good", expect{sn: good.SN, status: status.Good, hash: crypto.SHA1}, signAt(*good, crypto.SHA1, status.Good, now), ""},
		{"revoked", expect{sn: revoked.SN, status: status.Revoked, hash: crypto.SHA256}, signAt(*revoked, crypto.SHA256, status.Revoked, now), ""},
		{"good for a revoked certificate", expect{sn: revoked.SN, status: status.Revoked, hash: crypto.SHA1}, signAt(*revoked, crypto.SHA1, status.Good, now), "status"},
		{"SHA-1 answer to a SHA-256 question", expect{sn: good.SN, status: status.Good, hash: crypto.SHA256}, signAt(*good, crypto.SHA1, status.Good, now), "hash"},
		{"another serial", expect{sn: good.SN, status: status.Good, hash: crypto.SHA1}, signAt(f.certs[1], crypto.SHA1, status.Good, now), "verify"},
		{"corrupted signature", expect{sn: good.SN, status: status.Good, hash: crypto.SHA1}, corrupt(signAt(*good, crypto.SHA1, status.Good, now)), "verify"},
		{"expired", expect{sn: good.SN, status: status.Good, hash: crypto.SHA1}, signAt(*good, crypto.SHA1, status.Good, now.Add(-80*time.Hour)), "stale"},
		{"unauthorized for a known certificate", expect{sn: good.SN, status: status.Good, hash: crypto.SHA1}, ocspcodec.Unauthorized, "ocsp_unauthorized"},
		{"unauthorized for an unknown serial", expect{sn: big.NewInt(99), unknown: true, hash: crypto.SHA1}, ocspcodec.Unauthorized, ""},
		{"tryLater", expect{sn: good.SN, status: status.Good, hash: crypto.SHA1}, ocspcodec.TryLater, "ocsp_try_later"},
		{"good for a never-issued serial", expect{sn: good.SN, unknown: true, hash: crypto.SHA1}, signAt(*good, crypto.SHA1, status.Good, now), "good_for_unknown"},
		{"unknown for a never-issued serial", expect{sn: good.SN, unknown: true, hash: crypto.SHA1}, signAt(*good, crypto.SHA1, status.Unknown, now), ""},
		{"not DER", expect{sn: good.SN, status: status.Good, hash: crypto.SHA1}, []byte("<html>"), "verify"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.exp.issuer = f.issuer
			err := verifyOCSP(&tc.exp, tc.body, now)
			got := ""
			if err != nil {
				got = kindOf(err)
			}
			if got != tc.kind {
				t.Errorf("kind %q, want %q (err %v)", got, tc.kind, err)
			}
		})
	}
}

func TestOCSPAgainstFloor(t *testing.T) {
	f := newFixture(t, 200)
	target := serveFloor(t, f.floorPairs(nil))
	for _, tc := range []struct {
		name string
		mix  Mix
	}{
		{"get sha1", plainMix()},
		{"post sha256", Mix{Method: "post", GetEncoding: "raw", SHA256: 1, Seed: 3}},
		{"mix zipf", Mix{Method: "mix", GetEncoding: "raw", Zipf: 1.1, SHA256: 0.5, Seed: 4}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := f.ocspRun(t, target, LoadConfig{Duration: 500 * time.Millisecond, Concurrency: 4}, tc.mix, 10)
			if r.Errors != 0 || r.Requests == 0 || r.Verified == 0 {
				t.Fatalf("requests %d errors %d verified %d: %v", r.Requests, r.Errors, r.Verified, r.FirstErrors)
			}
			if r.LatencyP50Ms <= 0 || r.RequestsPerSec <= 0 || len(r.LatencySpectrum) == 0 {
				t.Errorf("empty figures: %+v", r)
			}
		})
	}
}

// Acceptance: a responder that answers wrongly — fast — gets its wrong
// answers counted as errors, not as throughput.
func TestWrongAnswersAreErrors(t *testing.T) {
	f := newFixture(t, 100)
	for _, tc := range []struct {
		name   string
		mangle func(p signedPair) []byte
		kind   string
	}{
		{"corrupted signature", func(p signedPair) []byte {
			b := slices.Clone(p.Response)
			b[len(b)-400] ^= 0xff // inside the response signature, before the responder certificate
			return b
		}, "verify"},
		{"good for revoked", func(p signedPair) []byte {
			if p.cert.Status != status.Revoked {
				return p.Response
			}
			c := *p.cert
			c.Status = status.Good
			b, err := sign(f.signer, &c, p.hash, time.Now(), rand.Reader)
			if err != nil {
				t.Fatal(err)
			}
			return b
		}, "status"},
		{"another certificate's response", func(p signedPair) []byte {
			return f.pairs[0].Response
		}, "verify"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			target := serveFloor(t, f.floorPairs(tc.mangle))
			r := f.ocspRun(t, target, LoadConfig{Duration: 300 * time.Millisecond, Concurrency: 2}, plainMix(), 1)
			if r.ErrorsByKind[tc.kind] == 0 {
				t.Fatalf("no %q errors: %d requests, errors %v", tc.kind, r.Requests, r.ErrorsByKind)
			}
			if r.Errors > r.Requests || r.Verified != r.Requests {
				t.Errorf("errors %d verified %d of %d requests", r.Errors, r.Verified, r.Requests)
			}
		})
	}
	t.Run("not found", func(t *testing.T) {
		target := serve(t, func(ctx *fasthttp.RequestCtx) { ctx.SetStatusCode(404) })
		r := f.ocspRun(t, target, LoadConfig{Duration: 200 * time.Millisecond, Concurrency: 1}, plainMix(), 100)
		if r.Errors != r.Requests || r.ErrorsByKind["http_404"] != r.Requests {
			t.Errorf("errors %v of %d requests", r.ErrorsByKind, r.Requests)
		}
	})
	t.Run("connection refused", func(t *testing.T) {
		r := f.ocspRun(t, "http://127.0.0.1:1", LoadConfig{Duration: 100 * time.Millisecond, Concurrency: 1}, plainMix(), 100)
		if r.ErrorsByKind["transport"] == 0 {
			t.Errorf("errors %v", r.ErrorsByKind)
		}
	})
}

func TestCorpusMix(t *testing.T) {
	f := newFixture(t, 1000)
	m := Mix{Method: "mix", GetEncoding: "url", Zipf: 1, Unknown: 0.1, SHA256: 0.3, Nonce: 0.2, Seed: 9}
	ep, err := parseEndpoint("http://ocsp.example:8081/ocsp")
	if err != nil {
		t.Fatal(err)
	}
	c, err := buildCorpus(f.certs, f.issuers, m, ep)
	if err != nil {
		t.Fatal(err)
	}
	var post, unknown, sha256, nonce int
	for _, s := range c.slots {
		var r ocspcodec.Request
		if err := ocspcodec.ParseRequest(s.body, &r); err != nil {
			t.Fatal(err)
		}
		wantRaw := "GET " + string(s.target) + " HTTP/1.1\r\nHost: ocsp.example:8081\r\n\r\n"
		if s.post {
			post++
			if string(s.target) != "/ocsp/" {
				t.Fatalf("POST target %q", s.target)
			}
			wantRaw = "POST /ocsp/ HTTP/1.1\r\nHost: ocsp.example:8081\r\nContent-Type: application/ocsp-request\r\n" +
				"Content-Length: " + strconv.Itoa(len(s.body)) + "\r\n\r\n" + string(s.body)
		} else {
			dec, err := ocspcodec.DecodeGET(s.target[len("/ocsp"):], nil)
			if err != nil || string(dec) != string(s.body) {
				t.Fatalf("GET target %q does not decode to the request: %v", s.target, err)
			}
		}
		if string(s.raw) != wantRaw {
			t.Fatalf("rendered request %q, want %q", s.raw, wantRaw)
		}
		if s.exp.unknown {
			unknown++
		}
		if s.exp.hash == crypto.SHA256 {
			sha256++
		}
		if r.HasNonce {
			nonce++
		}
	}
	n := float64(len(c.slots))
	for _, tc := range []struct {
		name      string
		got, want float64
	}{{"post", float64(post) / n, 0.5}, {"unknown", float64(unknown) / n, 0.1}, {"sha256", float64(sha256) / n, 0.3}, {"nonce", float64(nonce) / n, 0.2}} {
		if tc.got < tc.want-0.02 || tc.got > tc.want+0.02 {
			t.Errorf("%s share %.3f, want %.2f", tc.name, tc.got, tc.want)
		}
	}
	// Same seed, same sequence.
	c2, _ := buildCorpus(f.certs, f.issuers, m, ep)
	for i := range c.slots {
		if string(c.slots[i].body) != string(c2.slots[i].body) {
			t.Fatal("the same seed built a different corpus")
		}
	}
}

func TestZipf(t *testing.T) {
	const n, draws = 100, 200000
	for _, tc := range []struct {
		name string
		s    float64
	}{{"uniform", 0}, {"s=1", 1}, {"s=1.5", 1.5}} {
		t.Run(tc.name, func(t *testing.T) {
			z := newZipf(n, tc.s)
			r := mrand.New(mrand.NewPCG(1, 2))
			counts := make([]int, n)
			for range draws {
				counts[z.draw(r)]++
			}
			// P(rank 0)/P(rank 9) = 10^s.
			want := 1.0
			if tc.s > 0 {
				want = math.Pow(10, tc.s)
			}
			got := float64(counts[0]) / float64(counts[9])
			if got < want*0.85 || got > want*1.15 {
				t.Errorf("rank 1 / rank 10 = %.2f, want ≈ %.2f", got, want)
			}
		})
	}
}

// The bench counts exactly the answers the server gave: no request is
// counted twice or lost.
func TestCountsMatchServer(t *testing.T) {
	f := newFixture(t, 50)
	fl, err := floor.New(f.floorPairs(nil), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	var served atomic.Int64
	target := serve(t, func(ctx *fasthttp.RequestCtx) { served.Add(1); fl.Serve(ctx) })
	r := f.ocspRun(t, target, LoadConfig{Duration: 500 * time.Millisecond, Concurrency: 8}, plainMix(), 100)
	if r.Requests != served.Load() || r.Errors != 0 {
		t.Errorf("bench counted %d answers (%d errors), the server gave %d", r.Requests, r.Errors, served.Load())
	}
	// And the rate is answers over the measured time.
	if got, want := r.RequestsPerSec, float64(served.Load())/0.5; got > want*1.01 {
		t.Errorf("rate %.0f/s for %d answers in 0.5 s", got, served.Load())
	}
}

// Answers not verified in full are still checked for their status: a
// tryLater among them is an error, not a success.
func TestResponseStatusOf(t *testing.T) {
	f := newFixture(t, 2)
	now := time.Now()
	c := f.certs[0]
	good, err := sign(f.signer, &c, crypto.SHA1, now, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		body []byte
		want ocsp.ResponseStatus
		ok   bool
	}{
		{"signed response (long-form length)", good, ocsp.Success, true},
		{"tryLater", ocspcodec.TryLater, ocsp.TryLater, true},
		{"unauthorized", ocspcodec.Unauthorized, ocsp.Unauthorized, true},
		{"malformedRequest", ocspcodec.MalformedRequest, ocsp.Malformed, true},
		{"empty", nil, 0, false},
		{"html", []byte("<html>"), 0, false},
		{"truncated", good[:3], 0, false},
		{"not ENUMERATED", []byte{0x30, 0x03, 0x02, 0x01, 0x00}, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := responseStatusOf(tc.body)
			if ok != tc.ok || (ok && got != tc.want) {
				t.Errorf("responseStatusOf = %v, %v; want %v, %v", got, ok, tc.want, tc.ok)
			}
		})
	}
}

// The responder under test may send anything.
func FuzzResponseStatusOf(f *testing.F) {
	f.Add(ocspcodec.TryLater)
	f.Add([]byte{0x30, 0x84, 0, 0, 0, 3, 0x0a, 0x01, 0x00})
	f.Fuzz(func(t *testing.T, b []byte) {
		st, ok := responseStatusOf(b)
		if ok && (len(b) < 5 || b[0] != 0x30) {
			t.Errorf("accepted %x as status %v", b, st)
		}
	})
}
