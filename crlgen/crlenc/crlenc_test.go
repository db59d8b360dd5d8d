package crlenc_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"iter"
	"math/big"
	mrand "math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"

	"github.com/trustline/trustline/crlgen/crlenc"
	"github.com/trustline/trustline/internal/reason"
	"github.com/trustline/trustline/internal/serial"
)

func TestTBSMatchesStdlib(t *testing.T) {
	iss := newIssuer(t, keyP256)
	r := mrand.New(mrand.NewPCG(1, 2))
	at := time.Date(2026, 3, 10, 8, 0, 0, 0, time.UTC)

	// Serials of every length 1..20, with and without the high bit.
	var lengths []crlenc.Entry
	for n := 1; n <= serial.MaxOctets; n++ {
		for _, high := range []bool{false, true} {
			lengths = append(lengths, crlenc.Entry{Serial: randomSerial(r, n, high), RevokedAt: at, Reason: reason.KeyCompromise})
		}
	}
	var allSubscriber, allFull []crlenc.Entry
	for i, rs := range subscriberReasons() {
		allSubscriber = append(allSubscriber, crlenc.Entry{Serial: randomSerial(r, 17, i%2 == 0), RevokedAt: at, Reason: rs})
	}
	for i, rs := range fullCRLReasons() {
		allFull = append(allFull, crlenc.Entry{Serial: randomSerial(r, 17, i%2 == 0), RevokedAt: at, Reason: rs})
	}
	edges := []time.Time{
		time.Date(1949, 12, 31, 23, 59, 59, 0, time.UTC),
		time.Date(1950, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(1999, 12, 31, 23, 59, 59, 0, time.UTC),
		time.Date(2000, 2, 29, 12, 0, 0, 0, time.UTC),
		time.Date(2049, 12, 31, 23, 59, 59, 999999999, time.UTC),
		time.Date(2050, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(2100, 2, 28, 1, 2, 3, 0, time.UTC),
		time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC),
		// Local times with fractions: encoded in UTC, truncated.
		time.Date(2026, 1, 1, 0, 30, 0, 500, time.FixedZone("UTC+1", 3600)),
		time.Date(2049, 12, 31, 20, 0, 0, 1, time.FixedZone("UTC-5", -5*3600)),
	}
	var dates []crlenc.Entry
	for i, d := range edges {
		dates = append(dates, crlenc.Entry{Serial: randomSerial(r, 16, i%2 == 1), RevokedAt: d, Reason: reason.Superseded})
	}

	full := func(p crlenc.Params) crlenc.Params { p.IDPURI = ""; return p }
	shard := baseParams(iss)
	// Revocations up to 9999 need a thisUpdate no earlier.
	farFuture := shard
	farFuture.ThisUpdate = time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC)
	farFuture.NextUpdate = farFuture.ThisUpdate
	tests := []struct {
		name    string
		p       crlenc.Params
		entries []crlenc.Entry
	}{
		{name: "empty shard", p: shard},
		{name: "empty full CRL", p: full(shard)},
		{name: "one entry", p: shard, entries: []crlenc.Entry{{Serial: "01", RevokedAt: at}}},
		{name: "one entry high bit", p: shard, entries: []crlenc.Entry{{Serial: "ff", RevokedAt: at, Reason: reason.KeyCompromise}}},
		{name: "serial lengths", p: shard, entries: lengths},
		{name: "subscriber reasons", p: shard, entries: allSubscriber},
		{name: "full CRL reasons", p: full(shard), entries: allFull},
		{name: "dates around 1950 and 2050", p: farFuture, entries: dates},
		{name: "many", p: shard, entries: randomEntries(r, 5000, subscriberReasons(), shard.ThisUpdate)},
		{name: "many far future", p: farFuture, entries: randomEntries(r, 5000, subscriberReasons(), farFuture.ThisUpdate)},
		{name: "nextUpdate after 2050", p: func() crlenc.Params {
			p := shard
			p.ThisUpdate = time.Date(2049, 12, 31, 23, 59, 59, 0, time.UTC)
			p.NextUpdate = time.Date(2050, 1, 6, 0, 0, 0, 0, time.UTC)
			return p
		}(), entries: dates[:5]},
		{name: "both updates after 2050", p: func() crlenc.Params {
			p := shard
			p.ThisUpdate = time.Date(2050, 1, 1, 0, 0, 0, 0, time.UTC)
			p.NextUpdate = time.Date(2050, 1, 6, 0, 0, 0, 0, time.UTC)
			return p
		}(), entries: dates[:6]},
		{name: "20-octet number", p: func() crlenc.Params {
			p := shard
			p.Number = new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 159), big.NewInt(1))
			return p
		}()},
		{name: "number with high bit", p: func() crlenc.Params {
			p := shard
			p.Number = big.NewInt(0x80)
			return p
		}()},
		{name: "long URI", p: func() crlenc.Params {
			p := shard
			p.IDPURI = "http://crl.trustline.test/" + strings.Repeat("a", 300) + ".crl"
			return p
		}()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			diffTBS(t, encode(t, tt.p, tt.entries, iss.key), stdlibCRL(t, tt.p, tt.entries, iss.key))
		})
	}
}

// TestMatchesStdlibRandom is a property test: random parameters and entry
// sets encode to the standard library's TBSCertList.
func TestMatchesStdlibRandom(t *testing.T) {
	iss := newIssuer(t, keyP256)
	r := mrand.New(mrand.NewPCG(7, 11))
	for i := range 200 {
		p := baseParams(iss)
		p.ThisUpdate = time.Unix(r.Int64N(4e9), r.Int64N(1e9))
		p.NextUpdate = p.ThisUpdate.Add(time.Duration(r.Int64N(int64(400 * 24 * time.Hour))))
		p.Number = new(big.Int).SetBytes(randomSerial(r, 1+r.IntN(20), false).Bytes())
		reasons := subscriberReasons()
		if r.IntN(3) == 0 {
			p.IDPURI = ""
			reasons = fullCRLReasons()
		}
		entries := randomEntries(r, r.IntN(60), reasons, p.ThisUpdate)
		der := encode(t, p, entries, iss.key)
		diffTBS(t, der, stdlibCRL(t, p, entries, iss.key))
		if t.Failed() {
			t.Fatalf("case %d: params %+v, %d entries", i, p, len(entries))
		}
	}
}

func TestSignatureVerifies(t *testing.T) {
	type entry struct {
		Serial string
		At     time.Time
		Reason int
	}
	for _, kind := range []keyKind{keyP256, keyP384, keyRSA2048} {
		t.Run(string(kind), func(t *testing.T) {
			iss := newIssuer(t, kind)
			p := baseParams(iss)
			entries := randomEntries(mrand.New(mrand.NewPCG(3, 4)), 100, subscriberReasons(), p.ThisUpdate)
			crl := parseCRL(t, encode(t, p, entries, iss.key))
			if err := crl.CheckSignatureFrom(iss.cert); err != nil {
				t.Fatalf("CheckSignatureFrom: %v", err)
			}
			if crl.Number.Cmp(p.Number) != 0 || !crl.ThisUpdate.Equal(p.ThisUpdate) || !crl.NextUpdate.Equal(p.NextUpdate) {
				t.Errorf("number, thisUpdate, nextUpdate = %v, %v, %v; want %v, %v, %v",
					crl.Number, crl.ThisUpdate, crl.NextUpdate, p.Number, p.ThisUpdate, p.NextUpdate)
			}
			if diff := cmp.Diff(iss.cert.SubjectKeyId, crl.AuthorityKeyId); diff != "" {
				t.Errorf("AKI (-want +got):\n%s", diff)
			}
			var got, want []entry
			for _, e := range crl.RevokedCertificateEntries {
				got = append(got, entry{Serial: e.SerialNumber.Text(16), At: e.RevocationTime, Reason: e.ReasonCode})
			}
			for _, e := range entries {
				s := e.Serial.String()
				if s[0] == '0' {
					s = s[1:] // big.Int.Text drops the leading zero nibble
				}
				want = append(want, entry{Serial: s, At: e.RevokedAt.UTC().Truncate(time.Second), Reason: int(e.Reason)})
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("entries (-want +got):\n%s", diff)
			}
		})
	}
}

func TestEmptyOmitsRevokedCertificates(t *testing.T) {
	iss := newIssuer(t, keyP256)
	crl := parseCRL(t, encode(t, baseParams(iss), nil, iss.key))
	// Walk to after nextUpdate: only the [0] crlExtensions may follow.
	tbs := cryptobyte.String(crl.RawTBSRevocationList)
	if !tbs.ReadASN1(&tbs, cbasn1.SEQUENCE) ||
		!tbs.SkipASN1(cbasn1.INTEGER) || !tbs.SkipASN1(cbasn1.SEQUENCE) || !tbs.SkipASN1(cbasn1.SEQUENCE) ||
		!tbs.SkipASN1(cbasn1.UTCTime) || !tbs.SkipASN1(cbasn1.UTCTime) {
		t.Fatal("malformed TBSCertList")
	}
	if !tbs.PeekASN1Tag(cbasn1.Tag(0).Constructed().ContextSpecific()) {
		t.Fatal("something other than crlExtensions follows nextUpdate in an empty CRL")
	}
}

func TestRefusals(t *testing.T) {
	iss := newIssuer(t, keyP256)
	at := time.Date(2026, 3, 10, 8, 0, 0, 0, time.UTC)
	ok := crlenc.Entry{Serial: "4e01", RevokedAt: at, Reason: reason.KeyCompromise}
	withReason := func(r reason.Reason) []crlenc.Entry {
		return []crlenc.Entry{ok, {Serial: "4e02", RevokedAt: at, Reason: r}}
	}
	noSKI := *iss.cert
	noSKI.SubjectKeyId = nil
	noCRLSign := *iss.cert
	noCRLSign.KeyUsage = x509.KeyUsageCertSign
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	p521, _ := ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	rsa1024, _ := rsa.GenerateKey(rand.Reader, 1024)

	tests := []struct {
		name    string
		edit    func(*crlenc.Params)
		entries []crlenc.Entry
		signer  crypto.Signer
		want    string
	}{
		{name: "certificateHold", entries: withReason(reason.CertificateHold), want: "entry 1: serial 4e02: reason certificateHold is not allowed"},
		{name: "removeFromCRL", entries: withReason(reason.RemoveFromCRL), want: "reason removeFromCRL is not allowed"},
		{name: "aACompromise", entries: withReason(reason.AACompromise), want: "reason aACompromise is not allowed"},
		{name: "undefined reason", entries: withReason(reason.Reason(7)), want: "reason reason(7) is not allowed"},
		{name: "cACompromise on a subscriber CRL", entries: withReason(reason.CACompromise), want: "not allowed on a CRL of subscriber certificates"},
		{name: "no issuer", edit: func(p *crlenc.Params) { p.Issuer = nil }, want: "no issuer"},
		{name: "missing SKI", edit: func(p *crlenc.Params) { p.Issuer = &noSKI }, want: "no subject key identifier"},
		{name: "no cRLSign", edit: func(p *crlenc.Params) { p.Issuer = &noCRLSign }, want: "lacks the cRLSign key usage"},
		{name: "Ed25519 key", signer: ed, want: "unsupported signer key type ed25519.PublicKey"},
		{name: "P-521 key", signer: p521, want: "unsupported ECDSA curve P-521"},
		{name: "RSA-1024 key", signer: rsa1024, want: "RSA key of 1024 bits"},
		{name: "signer is not the issuer", signer: newKey(t, keyP256), want: "signer's public key is not the issuer certificate's"},
		{name: "nextUpdate before thisUpdate", edit: func(p *crlenc.Params) { p.NextUpdate = p.ThisUpdate.Add(-time.Second) }, want: "is before thisUpdate"},
		{name: "no nextUpdate", edit: func(p *crlenc.Params) { p.NextUpdate = time.Time{} }, want: "nextUpdate not set"},
		{name: "no thisUpdate", edit: func(p *crlenc.Params) { p.ThisUpdate = time.Time{} }, want: "thisUpdate not set"},
		{name: "year 10000", edit: func(p *crlenc.Params) { p.NextUpdate = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC) }, want: "year out of range"},
		{name: "nil number", edit: func(p *crlenc.Params) { p.Number = nil }, want: "CRL number must be positive"},
		{name: "zero number", edit: func(p *crlenc.Params) { p.Number = big.NewInt(0) }, want: "CRL number must be positive"},
		{name: "negative number", edit: func(p *crlenc.Params) { p.Number = big.NewInt(-3) }, want: "CRL number must be positive"},
		{name: "21-octet number", edit: func(p *crlenc.Params) { p.Number = new(big.Int).Lsh(big.NewInt(1), 159) }, want: "longer than 20 octets"},
		{name: "non-ASCII URI", edit: func(p *crlenc.Params) { p.IDPURI = "http://crl.trustline.test/é.crl" }, want: "outside printable ASCII"},
		{name: "relative URI", edit: func(p *crlenc.Params) { p.IDPURI = "/e1/17.crl" }, want: "not an absolute URI"},
		{name: "revoked after thisUpdate", entries: []crlenc.Entry{ok, {Serial: "4e02", RevokedAt: baseParams(iss).ThisUpdate.Add(time.Second)}},
			want: "entry 1: serial 4e02: revoked at 2026-03-14T15:09:27Z, after thisUpdate 2026-03-14T15:09:26Z"},
		{name: "zero revocation time", entries: []crlenc.Entry{{Serial: "4e01"}}, want: "revocation time not set"},
		{name: "uppercase serial", entries: []crlenc.Entry{{Serial: "4E01", RevokedAt: at}}, want: "not canonical lowercase hex"},
		{name: "odd serial", entries: []crlenc.Entry{{Serial: "4e0", RevokedAt: at}}, want: "not 1 to 20 octets"},
		{name: "leading zero serial", entries: []crlenc.Entry{{Serial: "004e", RevokedAt: at}}, want: "leading zero"},
		{name: "zero serial", entries: []crlenc.Entry{{Serial: "00", RevokedAt: at}}, want: "leading zero"},
		{name: "21-octet serial", entries: []crlenc.Entry{{Serial: serial.Serial(strings.Repeat("4e", 21)), RevokedAt: at}}, want: "not 1 to 20 octets"},
		{name: "empty serial", entries: []crlenc.Entry{{RevokedAt: at}}, want: "empty serial"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := baseParams(iss)
			if tt.edit != nil {
				tt.edit(&p)
			}
			signer := tt.signer
			if signer == nil {
				signer = iss.key
			}
			der, err := crlenc.Encode(context.Background(), p, slices.Values(tt.entries), signer, rand.Reader)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Encode = %d bytes, %v; want an error containing %q", len(der), err, tt.want)
			}
			if !strings.HasPrefix(err.Error(), "crlenc: ") {
				t.Errorf("error %q lacks the package prefix", err)
			}
		})
	}
}

// fickle yields first on the first range and second on every later one.
func fickle(first, second []crlenc.Entry) iter.Seq[crlenc.Entry] {
	calls := 0
	return func(yield func(crlenc.Entry) bool) {
		calls++
		es := first
		if calls > 1 {
			es = second
		}
		for _, e := range es {
			if !yield(e) {
				return
			}
		}
	}
}

func TestEntriesChangeBetweenPasses(t *testing.T) {
	iss := newIssuer(t, keyP256)
	at := time.Date(2026, 3, 10, 8, 0, 0, 0, time.UTC)
	a := crlenc.Entry{Serial: "4e01", RevokedAt: at, Reason: reason.KeyCompromise}
	b := crlenc.Entry{Serial: "4e02", RevokedAt: at}
	tests := []struct {
		name          string
		first, second []crlenc.Entry
	}{
		{name: "one more", first: []crlenc.Entry{a}, second: []crlenc.Entry{a, b}},
		{name: "one fewer", first: []crlenc.Entry{a, b}, second: []crlenc.Entry{a}},
		{name: "none the second time", first: []crlenc.Entry{a}, second: nil},
		{name: "longer serial", first: []crlenc.Entry{a, b}, second: []crlenc.Entry{{Serial: "4e0102", RevokedAt: at}, b}},
		{name: "same size, fewer entries", first: []crlenc.Entry{b, b}, second: []crlenc.Entry{{Serial: "4e0102030405060708", RevokedAt: at, Reason: reason.KeyCompromise}}},
		{name: "refused reason", first: []crlenc.Entry{a}, second: []crlenc.Entry{{Serial: "4e01", RevokedAt: at, Reason: reason.CertificateHold}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := crlenc.Encode(context.Background(), baseParams(iss), fickle(tt.first, tt.second), iss.key, rand.Reader)
			if err == nil || !strings.Contains(err.Error(), "different sequence") {
				t.Fatalf("Encode: %v; want a changed-sequence error", err)
			}
		})
	}
}

// badSigner corrupts its key's signatures, as a faulty HSM might.
type badSigner struct{ crypto.Signer }

func (s badSigner) Sign(rand io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	sig, err := s.Signer.Sign(rand, digest, opts)
	if err == nil {
		sig[len(sig)-1] ^= 1
	}
	return sig, err
}

// failingSigner fails as an unreachable HSM does.
type failingSigner struct{ crypto.Signer }

func (failingSigner) Sign(io.Reader, []byte, crypto.SignerOpts) ([]byte, error) {
	return nil, errors.New("token removed")
}

func TestSignerFaults(t *testing.T) {
	iss := newIssuer(t, keyP256)
	tests := []struct {
		name   string
		signer crypto.Signer
		want   string
	}{
		{name: "bad signature", signer: badSigner{iss.key}, want: "does not verify"},
		{name: "signer error", signer: failingSigner{iss.key}, want: "crlenc: signing CRL: token removed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := crlenc.Encode(context.Background(), baseParams(iss), slices.Values([]crlenc.Entry(nil)), tt.signer, rand.Reader)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Encode: %v; want %q", err, tt.want)
			}
		})
	}
}

func TestCanceledContext(t *testing.T) {
	iss := newIssuer(t, keyP256)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := crlenc.Encode(ctx, baseParams(iss), slices.Values([]crlenc.Entry(nil)), iss.key, rand.Reader)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Encode with a canceled context: %v", err)
	}
}

// TestOuterHeaderShrinks sweeps CRL sizes across the 65536-byte boundary of
// the length encoding. The outer header is sized for the longest signature;
// when a shorter one makes it a byte shorter, the CRL starts later in the
// buffer, and that path must produce valid DER too.
func TestOuterHeaderShrinks(t *testing.T) {
	iss := newIssuer(t, keyP256)
	at := time.Date(2026, 3, 10, 8, 0, 0, 0, time.UTC)
	// 36 bytes per entry: 17-octet serial, UTCTime, no reasonCode.
	entries := make([]crlenc.Entry, (65536-400)/36)
	for i := range entries {
		entries[i] = crlenc.Entry{Serial: serial.Serial(fmt.Sprintf("4e%032x", i+1)), RevokedAt: at}
	}
	shifted, lo, hi := 0, 1<<30, 0
	for k := range 60 {
		p := baseParams(iss)
		p.IDPURI = "http://crl.trustline.test/" + strings.Repeat("x", 40+k) + ".crl"
		for range 8 {
			der := encode(t, p, entries, iss.key)
			crl := parseCRL(t, der)
			if err := crl.CheckSignatureFrom(iss.cert); err != nil {
				t.Fatalf("URI length %d: %v", len(p.IDPURI), err)
			}
			// With the longest P-256 signature (72 bytes), would the header
			// have been longer?
			h := headerLen(len(der) - 4) // right for contents in [2^8, 2^24)
			if content := len(der) - h; headerLen(content+72-len(crl.Signature)) > h {
				shifted++
			}
			lo, hi = min(lo, len(der)), max(hi, len(der))
		}
	}
	if shifted == 0 {
		t.Error("the sweep never produced a shorter outer header; adjust the sizes")
	}
	t.Logf("%d CRLs of %d to %d bytes had a shortened outer header", shifted, lo, hi)
}

// headerLen is the size of a SEQUENCE header for n content bytes (n < 2^24).
func headerLen(n int) int {
	switch {
	case n < 0x80:
		return 2
	case n < 0x100:
		return 3
	case n < 0x10000:
		return 4
	}
	return 5
}
