package crlenc_test

// Test data made at test time: a root and an intermediate CA shaped like
// Trustline's issuers, entry sets, and the standard library's encoding of the
// same CRL to compare against.

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
	"encoding/asn1"
	"encoding/hex"
	"math/big"
	mrand "math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/trustline/trustline/crlgen/crlenc"
	"github.com/trustline/trustline/internal/reason"
	"github.com/trustline/trustline/internal/serial"
	"github.com/trustline/trustline/internal/testfix"
)

// testIssuer is an intermediate CA and its key.
type testIssuer struct {
	cert *x509.Certificate
	key  crypto.Signer
}

type keyKind string

const (
	keyP256    keyKind = "P-256"
	keyP384    keyKind = "P-384"
	keyRSA2048 keyKind = "RSA-2048"
)

func newKey(t testing.TB, kind keyKind) crypto.Signer {
	t.Helper()
	var (
		k   crypto.Signer
		err error
	)
	switch kind {
	case keyP256:
		k, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case keyP384:
		k, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	case keyRSA2048:
		k, err = rsa.GenerateKey(rand.Reader, 2048)
	default:
		t.Fatalf("unknown key kind %q", kind)
	}
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// newIssuer makes a root and, under it, a realistic issuing intermediate
// with a key of the given kind: keyUsage digitalSignature, keyCertSign and
// cRLSign (critical), pathLen 0, SKI/AKI, CRLDP and AIA, serverAuth EKU.
func newIssuer(t testing.TB, kind keyKind) testIssuer {
	t.Helper()
	now := time.Now().Truncate(time.Second)
	root := testfix.NewCA(t, "Trustline Test Root X1", now.Add(-48*time.Hour), now.AddDate(20, 0, 0))

	key := newKey(t, kind)
	tmpl := &x509.Certificate{
		SerialNumber: new(big.Int).SetBytes([]byte{0x4e, 0x1f, 0x2a, 0x9c, 0x07, 0x11, 0x5d, 0xe3, 0x80, 0x42, 0x13, 0x6b, 0x9f, 0x01, 0x22, 0x33}),
		Subject: pkix.Name{Country: []string{"US"}, Organization: []string{"Trustline Test"},
			CommonName: "Trustline Test Issuing CA " + string(kind)},
		NotBefore:             now.Add(-24 * time.Hour),
		NotAfter:              now.AddDate(5, 0, 0),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
		CRLDistributionPoints: []string{"http://crl.trustline.test/root-x1.crl"},
		IssuingCertificateURL: []string{"http://certs.trustline.test/root-x1.der"},
		PolicyIdentifiers:     []asn1.ObjectIdentifier{{2, 23, 140, 1, 2, 1}},
	}
	cert := root.Issue(t, tmpl, key.Public())
	if len(cert.SubjectKeyId) == 0 {
		t.Fatal("test issuer has no SKI")
	}
	return testIssuer{cert: cert, key: key}
}

const testIDP = "http://crl.trustline.test/e1/17.crl"

// baseParams is a subscriber shard CRL valid for 7 days.
func baseParams(iss testIssuer) crlenc.Params {
	this := time.Date(2026, 3, 14, 15, 9, 26, 0, time.UTC)
	return crlenc.Params{
		Issuer:     iss.cert,
		Number:     big.NewInt(1001),
		ThisUpdate: this,
		NextUpdate: this.Add(7 * 24 * time.Hour),
		IDPURI:     testIDP,
	}
}

// subscriberReasons are the reasons BR §7.2.2 allows for subscriber
// certificates.
func subscriberReasons() []reason.Reason {
	return []reason.Reason{reason.Unspecified, reason.KeyCompromise, reason.AffiliationChanged,
		reason.Superseded, reason.CessationOfOperation, reason.PrivilegeWithdrawn}
}

// fullCRLReasons adds cACompromise, allowed on a CRL that may list CAs.
func fullCRLReasons() []reason.Reason { return append(subscriberReasons(), reason.CACompromise) }

// randomSerial returns a canonical serial of n octets; highBit chooses the
// top bit of the first octet (which then needs a 0x00 in DER).
func randomSerial(r *mrand.Rand, n int, highBit bool) serial.Serial {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	b[0] &= 0x7f
	if highBit {
		b[0] |= 0x80
	}
	if b[0] == 0 {
		b[0] = 1
	}
	s, err := serial.FromBytes(b)
	if err != nil {
		panic(err)
	}
	return s
}

// randomEntries makes n entries with serials of 1–20 octets, revocation
// times from 1950 to latest, and the given reasons.
func randomEntries(r *mrand.Rand, n int, reasons []reason.Reason, latest time.Time) []crlenc.Entry {
	lo := time.Date(1950, 1, 1, 0, 0, 0, 0, time.UTC).Unix()
	hi := latest.Unix()
	es := make([]crlenc.Entry, n)
	for i := range es {
		es[i] = crlenc.Entry{
			Serial:    randomSerial(r, 1+r.IntN(serial.MaxOctets), r.IntN(2) == 0),
			RevokedAt: time.Unix(lo+r.Int64N(hi-lo), r.Int64N(1e9)),
			Reason:    reasons[r.IntN(len(reasons))],
		}
	}
	return es
}

// idpValue is the issuingDistributionPoint extension value, encoded by
// encoding/asn1 independently of the package's hand-written DER.
func idpValue(t testing.TB, uri string) []byte {
	t.Helper()
	type distributionPointName struct {
		FullName []asn1.RawValue `asn1:"optional,tag:0"`
	}
	type issuingDistributionPoint struct {
		DistributionPoint     distributionPointName `asn1:"optional,tag:0"`
		OnlyContainsUserCerts bool                  `asn1:"optional,tag:1"`
	}
	v, err := asn1.Marshal(issuingDistributionPoint{
		DistributionPoint: distributionPointName{
			FullName: []asn1.RawValue{{Class: asn1.ClassContextSpecific, Tag: 6, Bytes: []byte(uri)}},
		},
		OnlyContainsUserCerts: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// stdlibCRL is x509.CreateRevocationList for the same input.
func stdlibCRL(t testing.TB, p crlenc.Params, entries []crlenc.Entry, signer crypto.Signer) []byte {
	t.Helper()
	tmpl := &x509.RevocationList{Number: p.Number, ThisUpdate: p.ThisUpdate, NextUpdate: p.NextUpdate}
	tmpl.RevokedCertificateEntries = make([]x509.RevocationListEntry, len(entries))
	for i, e := range entries {
		tmpl.RevokedCertificateEntries[i] = x509.RevocationListEntry{
			SerialNumber:   e.Serial.BigInt(),
			RevocationTime: e.RevokedAt,
			ReasonCode:     int(e.Reason),
		}
	}
	if p.IDPURI != "" {
		tmpl.ExtraExtensions = []pkix.Extension{{Id: asn1.ObjectIdentifier{2, 5, 29, 28}, Critical: true, Value: idpValue(t, p.IDPURI)}}
	}
	der, err := x509.CreateRevocationList(rand.Reader, tmpl, p.Issuer, signer)
	if err != nil {
		t.Fatalf("x509.CreateRevocationList: %v", err)
	}
	return der
}

// encode is Encode over a slice, failing the test on error.
func encode(t testing.TB, p crlenc.Params, entries []crlenc.Entry, signer crypto.Signer) []byte {
	t.Helper()
	der, err := crlenc.Encode(context.Background(), p, slices.Values(entries), signer, rand.Reader)
	if err != nil {
		t.Fatalf("Encode: %v", err)
	}
	return der
}

func parseCRL(t testing.TB, der []byte) *x509.RevocationList {
	t.Helper()
	crl, err := x509.ParseRevocationList(der)
	if err != nil {
		t.Fatalf("x509.ParseRevocationList: %v", err)
	}
	return crl
}

// diffTBS compares our TBSCertList with the standard library's, as hex dumps
// so a difference shows where it is.
func diffTBS(t testing.TB, ours, std []byte) {
	t.Helper()
	a, b := parseCRL(t, ours).RawTBSRevocationList, parseCRL(t, std).RawTBSRevocationList
	if bytes.Equal(a, b) {
		return
	}
	i := 0
	for i < len(a) && i < len(b) && a[i] == b[i] {
		i++
	}
	lo, hi := max(0, i-64), i+64
	t.Errorf("TBSCertList differs from x509.CreateRevocationList's at offset %d (lengths %d, %d); around it (-ours +stdlib):\n%s",
		i, len(a), len(b), cmp.Diff(hex.Dump(a[lo:min(hi, len(a))]), hex.Dump(b[lo:min(hi, len(b))])))
}
