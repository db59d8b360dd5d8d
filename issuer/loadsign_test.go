package issuer

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/trustline/trustline/internal/linter"
	"github.com/trustline/trustline/internal/store"
	"github.com/trustline/trustline/internal/testfix"
	"github.com/trustline/trustline/issuer/pki"
)

var loadNow = time.Date(2026, 5, 4, 3, 2, 1, 0, time.UTC)

// newLoadCA is a CA over p for SignForLoad, with 8 shards and a fixed
// clock.
func newLoadCA(tb testing.TB, p *pki.PKI, lt *linter.Linter) *CA {
	tb.Helper()
	ca, err := New(Config{OCSPURL: "http://127.0.0.1:8081/", BaseURL: "http://127.0.0.1:8082", Shards: 8, SerialPrefix: 0x2b},
		Deps{Store: newFakeStore(), PKI: p, Linter: lt, Log: testfix.QuietLogger(), Now: func() time.Time { return loadNow }})
	if err != nil {
		tb.Fatal(err)
	}
	return ca
}

// createdForLoad is what x509.CreateCertificate makes for the request
// row answers, as SignForLoad did before it patched references.
func createdForLoad(t *testing.T, ca *CA, row store.Certificate, name string, pub crypto.PublicKey) *x509.Certificate {
	t.Helper()
	is, _ := ca.pki.Issuer(row.IssuerID)
	tmpl, err := ca.loadTemplate(is, row.Shard, row.Serial, name, pub, loadNow)
	if err != nil {
		t.Fatal(err)
	}
	return testfix.CreateCertificate(t, tmpl, is.Cert, pub, is.Signer)
}

// loadFields are the parts of a certificate compared field by field, for
// a readable diff before the TBSCertificates are compared whole.
type loadFields struct {
	Serial              string
	NotBefore, NotAfter time.Time
	Subject             pkix.Name
	DNSNames            []string
	RawIssuer, SPKI     []byte
	SignatureAlgorithm  x509.SignatureAlgorithm
	Extensions          []pkix.Extension
}

func fieldsOf(c *x509.Certificate) loadFields {
	return loadFields{
		Serial: c.SerialNumber.Text(16), NotBefore: c.NotBefore, NotAfter: c.NotAfter, Subject: c.Subject, DNSNames: c.DNSNames,
		RawIssuer: c.RawIssuer, SPKI: c.RawSubjectPublicKeyInfo, SignatureAlgorithm: c.SignatureAlgorithm, Extensions: c.Extensions,
	}
}

func TestSignForLoadMatchesCreateCertificate(t *testing.T) {
	ecKeys := make([]crypto.PublicKey, 2)
	for i := range ecKeys {
		k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		ecKeys[i] = k.Public()
	}
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	tests := []struct {
		family, wantIssuer string
		keys               []crypto.PublicKey
		n                  int
	}{
		{"ecdsa", "int-p256", ecKeys, 48},
		{"rsa", "int-rsa2048", []crypto.PublicKey{ecKeys[0], rsaKey.Public()}, 24},
	}
	for _, tt := range tests {
		t.Run(tt.family, func(t *testing.T) {
			p, lt := testPKI(t)
			ca := newLoadCA(t, p, lt)
			shards := map[int]bool{}
			for i := range tt.n {
				name := fmt.Sprintf("host-%04d.load.example.com", i)
				pub := tt.keys[i%len(tt.keys)]
				row, err := ca.SignForLoad(context.Background(), tt.family, name, pub)
				if err != nil {
					t.Fatal(err)
				}
				if string(row.IssuerID) != tt.wantIssuer {
					t.Fatalf("issuer %s, want %s", row.IssuerID, tt.wantIssuer)
				}
				shards[int(row.Shard)] = true
				got, err := x509.ParseCertificate(row.DER)
				if err != nil {
					t.Fatal(err)
				}
				is, _ := p.Issuer(row.IssuerID)
				if err := got.CheckSignatureFrom(is.Cert); err != nil {
					t.Errorf("%s: signature: %v", row.Serial, err)
				}
				if got.SerialNumber.Text(16) != string(row.Serial) || got.Subject.CommonName != name ||
					!got.NotBefore.Equal(row.NotBefore) || !got.NotAfter.Equal(row.NotAfter) || !got.NotBefore.Equal(loadNow) {
					t.Errorf("%s: serial %x, CN %q, validity %v to %v; want %s, %q, %v to %v", row.Serial, got.SerialNumber,
						got.Subject.CommonName, got.NotBefore, got.NotAfter, row.Serial, name, loadNow, row.NotAfter)
				}
				want := createdForLoad(t, ca, row, name, pub)
				if diff := cmp.Diff(fieldsOf(want), fieldsOf(got)); diff != "" {
					t.Fatalf("%s: differs from CreateCertificate's (-want +got):\n%s", row.Serial, diff)
				}
				if !bytes.Equal(got.RawTBSCertificate, want.RawTBSCertificate) {
					t.Fatalf("%s: TBSCertificate differs from CreateCertificate's", row.Serial)
				}
				if i%8 == 0 {
					if err := lt.Certificate(row.DER); err != nil {
						t.Errorf("%s: %v", row.Serial, err)
					}
				}
			}
			if len(shards) < 3 {
				t.Errorf("only shards %v signed for; want several", shards)
			}
			for k, e := range ca.load.refs {
				if e.ref == nil || !e.ref.verified.Load() {
					t.Errorf("reference for %s shard %d: %+v, want a checked one", k.issuer, k.shard, e.ref)
				}
			}
			if len(ca.load.refs) < len(shards) {
				t.Errorf("%d references for %d shards: not every certificate took the fast path", len(ca.load.refs), len(shards))
			}
		})
	}
}

func TestSignForLoadVariesSerialAndName(t *testing.T) {
	p, lt := testPKI(t)
	ca := newLoadCA(t, p, lt)
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	var certs []*x509.Certificate
	for _, name := range []string{"a1.example.com", "b2.example.com", "a1.example.com"} {
		row, err := ca.SignForLoad(context.Background(), "ecdsa", name, k.Public())
		if err != nil {
			t.Fatal(err)
		}
		c, err := x509.ParseCertificate(row.DER)
		if err != nil {
			t.Fatal(err)
		}
		if c.Subject.CommonName != name || len(c.DNSNames) != 1 || c.DNSNames[0] != name {
			t.Errorf("CN %q, SAN %v; want %s", c.Subject.CommonName, c.DNSNames, name)
		}
		certs = append(certs, c)
	}
	if certs[0].SerialNumber.Cmp(certs[1].SerialNumber) == 0 || certs[0].SerialNumber.Cmp(certs[2].SerialNumber) == 0 {
		t.Errorf("serials repeat: %x %x %x", certs[0].SerialNumber, certs[1].SerialNumber, certs[2].SerialNumber)
	}
	if bytes.Equal(certs[0].Raw, certs[2].Raw) {
		t.Error("two requests for one name made the same certificate")
	}
}

func TestSignForLoadOtherNames(t *testing.T) {
	p, lt := testPKI(t)
	ca := newLoadCA(t, p, lt)
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	is, _ := p.Issuer("int-p256")
	// Lengths the cache has not seen, and names the fast path leaves to
	// CreateCertificate: a wildcard and one that is not a PrintableString.
	for _, name := range []string{"www.example.com", "a-much-longer-name.example.com", "x.io", "*.example.com", "under_score.example.com"} {
		row, err := ca.SignForLoad(context.Background(), "ecdsa", name, k.Public())
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		c, err := x509.ParseCertificate(row.DER)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if err := c.CheckSignatureFrom(is.Cert); err != nil {
			t.Errorf("%s: %v", name, err)
		}
		if c.Subject.CommonName != name || len(c.DNSNames) != 1 || c.DNSNames[0] != name {
			t.Errorf("CN %q, SAN %v; want %s", c.Subject.CommonName, c.DNSNames, name)
		}
		want := createdForLoad(t, ca, row, name, k.Public())
		if !bytes.Equal(c.RawTBSCertificate, want.RawTBSCertificate) {
			t.Errorf("%s: TBSCertificate differs from CreateCertificate's", name)
		}
	}
}

// TestSignForLoadChecksTheFirstCertificate breaks a reference: the first
// certificate made from it must not come out.
func TestSignForLoadChecksTheFirstCertificate(t *testing.T) {
	p, lt := testPKI(t)
	ca := newLoadCA(t, p, lt)
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	const name = "host-1.example.com"
	for i := 0; len(ca.load.refs) < ca.cfg.Shards; i++ { // a reference for every shard
		if i == 200 {
			t.Fatalf("%d references after %d certificates", len(ca.load.refs), i)
		}
		if _, err := ca.SignForLoad(context.Background(), "ecdsa", name, k.Public()); err != nil {
			t.Fatal(err)
		}
	}
	for _, e := range ca.load.refs {
		e.ref.hash = crypto.SHA384 // the algorithm identifier still says SHA-256
		e.ref.verified.Store(false)
	}
	if _, err := ca.SignForLoad(context.Background(), "ecdsa", name, k.Public()); err == nil {
		t.Fatal("SignForLoad returned a certificate whose signature does not verify")
	}
}

func TestPositions(t *testing.T) {
	tests := []struct {
		name    string
		b, v    string
		headers []string
		want    []int
	}{
		{"once", "xxHvalue", "value", []string{"H"}, []int{3}},
		{"twice", "Avalue..Bvalue", "value", []string{"A", "B"}, []int{1, 9}},
		{"missing", "xxHvalu", "value", []string{"H"}, nil},
		{"once too often", "HvalueHvalue", "value", []string{"H"}, nil},
		{"wrong header", "xxGvalue", "value", []string{"H"}, nil},
		{"headers swapped", "Avalue..Bvalue", "value", []string{"B", "A"}, nil},
		{"overlapping", "Haaa", "aa", []string{"H"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var headers [][]byte
			for _, h := range tt.headers {
				headers = append(headers, []byte(h))
			}
			got, err := positions([]byte(tt.b), []byte(tt.v), headers...)
			if (err != nil) != (tt.want == nil) {
				t.Fatalf("positions = %v, %v; want %v", got, err, tt.want)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("positions (-want +got):\n%s", diff)
			}
		})
	}
}

// BenchmarkSignForLoad signs load-test certificates the way Populate
// does (16 keys, names of one width), against x509.CreateCertificate for
// the same templates.
func BenchmarkSignForLoad(b *testing.B) {
	p, lt := testPKI(b)
	keys := make([]crypto.PublicKey, 16)
	for i := range keys {
		k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		keys[i] = k.Public()
	}
	for _, family := range []string{"ecdsa", "rsa"} {
		b.Run(family+"/patched", func(b *testing.B) {
			ca := newLoadCA(b, p, lt)
			i := 0
			for b.Loop() {
				if _, err := ca.SignForLoad(context.Background(), family, fmt.Sprintf("host-%010d.populate.example.com", i), keys[i%len(keys)]); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
		b.Run(family+"/CreateCertificate", func(b *testing.B) {
			ca := newLoadCA(b, p, lt)
			is, _ := p.Issuer(ca.cfg.Route[family])
			row, err := ca.SignForLoad(context.Background(), family, "host.populate.example.com", keys[0])
			if err != nil {
				b.Fatal(err)
			}
			i := 0
			for b.Loop() {
				tmpl, err := ca.loadTemplate(is, row.Shard, row.Serial, fmt.Sprintf("host-%010d.populate.example.com", i), keys[i%len(keys)], loadNow)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := x509.CreateCertificate(rand.Reader, tmpl, is.Cert, keys[i%len(keys)], is.Signer); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}
