package watch

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net/http"
	"testing"
	"time"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"

	"github.com/trustline/trustline/internal/reason"
	"github.com/trustline/trustline/internal/serial"
	"github.com/trustline/trustline/internal/status"
	"github.com/trustline/trustline/internal/store"
)

// idpExt is an issuingDistributionPoint naming uri, onlyContainsUserCerts.
func idpExt(uri string) pkix.Extension {
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1(cbasn1.Tag(0).Constructed().ContextSpecific(), func(b *cryptobyte.Builder) {
			b.AddASN1(cbasn1.Tag(0).Constructed().ContextSpecific(), func(b *cryptobyte.Builder) {
				b.AddASN1(cbasn1.Tag(6).ContextSpecific(), func(b *cryptobyte.Builder) { b.AddBytes([]byte(uri)) })
			})
		})
		b.AddASN1(cbasn1.Tag(1).ContextSpecific(), func(b *cryptobyte.Builder) { b.AddUint8(0xff) })
	})
	return pkix.Extension{Id: oidIDP, Critical: true, Value: b.BytesOrPanic()}
}

func (is *testIssuer) crl(t *testing.T, tmpl x509.RevocationList) []byte {
	t.Helper()
	der, err := x509.CreateRevocationList(rand.Reader, &tmpl, is.cert, is.key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func TestCRLCheck(t *testing.T) {
	is := newTestIssuer(t)
	srv := newFakeServer(t)
	now := time.Now().Truncate(time.Second)
	const idp = "http://crl.example/int-test/3.crl"
	revokedAt := now.Add(-time.Hour)
	stored := []store.CertSummary{
		{Serial: serial.Serial("0a01"), Status: status.Revoked, RevokedAt: revokedAt, Reason: reason.KeyCompromise, NotAfter: now.Add(30 * 24 * time.Hour)},
		{Serial: serial.Serial("0a02"), Status: status.Revoked, RevokedAt: revokedAt, Reason: reason.Unspecified, NotAfter: now.Add(30 * 24 * time.Hour)},
	}
	entries := []x509.RevocationListEntry{
		{SerialNumber: big.NewInt(0x0a01), RevocationTime: revokedAt, ReasonCode: int(reason.KeyCompromise)},
		{SerialNumber: big.NewInt(0x0a02), RevocationTime: revokedAt},
	}
	base := x509.RevocationList{Number: big.NewInt(100), ThisUpdate: now.Add(-10 * time.Minute), NextUpdate: now.Add(24 * time.Hour),
		RevokedCertificateEntries: entries, ExtraExtensions: []pkix.Extension{idpExt(idp)}}
	with := func(edit func(*x509.RevocationList)) x509.RevocationList {
		c := base
		c.RevokedCertificateEntries = append([]x509.RevocationListEntry(nil), entries...)
		edit(&c)
		return c
	}
	other := newTestIssuer(t)
	for _, tc := range []struct {
		name    string
		body    []byte
		header  http.Header
		revoked []store.CertSummary
		last    int64
		want    []Kind
	}{
		{"agrees", is.crl(t, base), http.Header{"Cache-Control": {"max-age=300"}}, stored, 99, nil},
		{"same number again", is.crl(t, base), nil, stored, 100, nil},
		{"number backwards", is.crl(t, base), nil, stored, 101, []Kind{NumberBackwards}},
		{"a revocation missing", is.crl(t, with(func(c *x509.RevocationList) { c.RevokedCertificateEntries = entries[:1] })), nil, stored, 0, []Kind{MissingEntry}},
		{"a recent revocation missing", is.crl(t, with(func(c *x509.RevocationList) { c.RevokedCertificateEntries = entries[:1] })), nil,
			[]store.CertSummary{stored[0], with3(stored[1], func(c *store.CertSummary) { c.RevokedAt = now.Add(-10 * time.Second) })}, 0, nil},
		{"an expired revocation dropped", is.crl(t, with(func(c *x509.RevocationList) { c.RevokedCertificateEntries = entries[:1] })), nil,
			[]store.CertSummary{stored[0], with3(stored[1], func(c *store.CertSummary) { c.NotAfter = now.Add(-time.Hour) })}, 0, nil},
		{"listed but good", is.crl(t, base), nil, stored[:1], 0, []Kind{StatusMismatch}},
		{"another reason", is.crl(t, with(func(c *x509.RevocationList) { c.RevokedCertificateEntries[0].ReasonCode = int(reason.Superseded) })), nil, stored, 0, []Kind{ReasonMismatch}},
		{"a CA reason", is.crl(t, with(func(c *x509.RevocationList) { c.RevokedCertificateEntries[0].ReasonCode = int(reason.CACompromise) })), nil, stored, 0, []Kind{BadReason}},
		{"another time", is.crl(t, with(func(c *x509.RevocationList) {
			c.RevokedCertificateEntries[0].RevocationTime = revokedAt.Add(time.Minute)
		})), nil, stored, 0, []Kind{TimeMismatch}},
		{"past nextUpdate", is.crl(t, with(func(c *x509.RevocationList) { c.ThisUpdate, c.NextUpdate = now.Add(-25*time.Hour), now.Add(-time.Hour) })), nil, stored, 0, []Kind{Expired}},
		{"eleven days", is.crl(t, with(func(c *x509.RevocationList) { c.NextUpdate = c.ThisUpdate.Add(11 * 24 * time.Hour) })), nil, stored, 0, []Kind{ValidityTooLong}},
		{"eight days old", is.crl(t, with(func(c *x509.RevocationList) {
			c.ThisUpdate, c.NextUpdate = now.Add(-8*24*time.Hour), now.Add(time.Hour)
		})), nil, stored, 0, []Kind{Stale}},
		{"cached past nextUpdate", is.crl(t, base), http.Header{"Cache-Control": {"max-age=172800"}}, stored, 0, []Kind{CacheOutlives}},
		{"another IDP", is.crl(t, with(func(c *x509.RevocationList) {
			c.ExtraExtensions = []pkix.Extension{idpExt("http://crl.example/int-test/4.crl")}
		})), nil, stored, 0, []Kind{WrongIDP}},
		{"no IDP", is.crl(t, with(func(c *x509.RevocationList) { c.ExtraExtensions = nil })), nil, stored, 0, []Kind{WrongIDP}},
		{"signed by another", other.crl(t, base), nil, stored, 0, []Kind{BadSignature}},
		{"garbage", []byte("nope"), nil, stored, 0, []Kind{Malformed}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv.set(200, tc.body, tc.header)
			c := &CRLCheck{RevocationDelay: 5 * time.Minute, Now: func() time.Time { return now }}
			var last *big.Int
			if tc.last != 0 {
				last = big.NewInt(tc.last)
			}
			n, got := c.Check(context.Background(), srv.srv.URL+"/int-test/3.crl", CRLSubject{Issuer: is.cert, IDP: idp, Revoked: tc.revoked, LastNumber: last})
			if !sameKinds(kinds(got), tc.want) {
				t.Fatalf("findings %v, want %v: %v", kinds(got), tc.want, got)
			}
			if tc.want == nil && (n == nil || n.Int64() != 100) {
				t.Errorf("number %v, want 100", n)
			}
		})
	}
	srv.set(503, nil, nil)
	if _, got := (&CRLCheck{}).Check(context.Background(), srv.srv.URL+"/x.crl", CRLSubject{Issuer: is.cert, IDP: idp}); !sameKinds(kinds(got), []Kind{Unreachable}) {
		t.Errorf("a 503: %v", got)
	}
}

func with3(c store.CertSummary, edit func(*store.CertSummary)) store.CertSummary { edit(&c); return c }

func TestCheckIndex(t *testing.T) {
	srv := newFakeServer(t)
	srv.set(200, []byte(`["http://crl.example/i/0.crl","http://crl.example/i/1.crl"]`), nil)
	c := &CRLCheck{}
	if got := c.CheckIndex(context.Background(), srv.srv.URL, []string{"http://crl.example/i/0.crl", "http://crl.example/i/1.crl"}); len(got) != 0 {
		t.Fatalf("a full index: %v", got)
	}
	got := c.CheckIndex(context.Background(), srv.srv.URL, []string{"http://crl.example/i/0.crl", "http://crl.example/i/2.crl"})
	if !sameKinds(kinds(got), []Kind{MissingShard}) {
		t.Fatalf("a shard missing: %v", got)
	}
	srv.set(200, []byte(`{`), nil)
	if got := c.CheckIndex(context.Background(), srv.srv.URL, nil); !sameKinds(kinds(got), []Kind{Malformed}) {
		t.Fatalf("a broken index: %v", got)
	}
}

// crlF is an empty, valid CRL of the issuer, for fuzz seeds.
func (is *testIssuer) crlF(t testing.TB) []byte {
	now := time.Now()
	der, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{Number: big.NewInt(2), ThisUpdate: now.Add(-time.Minute),
		NextUpdate: now.Add(time.Hour), ExtraExtensions: []pkix.Extension{idpExt("http://crl.example/i/0.crl")}}, is.cert, is.key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}
