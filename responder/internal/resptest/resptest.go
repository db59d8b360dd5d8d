// Package resptest builds what the responder's tests need without the
// issuance code (which the responder must not import, even in tests): a
// small PKI, responses signed by ocspcodec, OCSPRequests in DER, and a
// settable clock.
//
// Only the responder's tests import it.
package resptest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/hex"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"

	"github.com/trustline/trustline/internal/ocspcache"
	"github.com/trustline/trustline/internal/ocspcodec"
	"github.com/trustline/trustline/internal/reason"
	"github.com/trustline/trustline/internal/status"
	"github.com/trustline/trustline/internal/testfix"
)

// PKI is root → issuer → delegated responder, all ECDSA P-256, valid from
// an hour ago for a year (so that openssl accepts them now).
type PKI struct {
	Root, Issuer, Responder *x509.Certificate
	IssuerKey, ResponderKey crypto.Signer
	Signer                  *ocspcodec.Signer

	issuerCA *testfix.CA // the issuer as a CA, for Leaf
}

var oidNoCheck = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 48, 1, 5}

// NewPKI builds a PKI whose names carry name, so that two PKIs differ.
func NewPKI(t testing.TB, name string) *PKI {
	t.Helper()
	now := time.Now()
	root := testfix.NewCA(t, name+" root", now.Add(-time.Hour), now.AddDate(1, 0, 0))
	issuerKey, responderKey := key(t), key(t)
	p := &PKI{Root: root.Cert, IssuerKey: issuerKey, ResponderKey: responderKey}
	p.Issuer = root.Issue(t, &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: name + " issuer"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.AddDate(1, 0, 0),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}, issuerKey.Public())
	p.issuerCA = &testfix.CA{Cert: p.Issuer, Key: issuerKey}
	p.Responder = p.issuerCA.Issue(t, &x509.Certificate{
		SerialNumber: big.NewInt(3), Subject: pkix.Name{CommonName: name + " responder"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.AddDate(0, 1, 0),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageOCSPSigning},
		ExtraExtensions: []pkix.Extension{{Id: oidNoCheck, Value: []byte{0x05, 0x00}}},
	}, responderKey.Public())
	s, err := ocspcodec.NewSigner(ocspcodec.Config{Issuer: p.Issuer, Responder: p.Responder, Key: p.ResponderKey})
	if err != nil {
		t.Fatal(err)
	}
	p.Signer = s
	return p
}

func key(t testing.TB) *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// Leaf issues an end-entity certificate with the given serial (hex).
func (p *PKI) Leaf(t testing.TB, serialHex string) *x509.Certificate {
	t.Helper()
	b, err := hex.DecodeString(serialHex)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	return p.issuerCA.Issue(t, &x509.Certificate{
		SerialNumber: new(big.Int).SetBytes(b), Subject: pkix.Name{CommonName: "leaf.example"},
		DNSNames: []string{"leaf.example"}, NotBefore: now.Add(-time.Hour), NotAfter: now.AddDate(0, 3, 0),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}, key(t).Public())
}

// WritePEM writes the root, issuer and responder certificates as
// root.pem, issuer.pem and responder.pem under dir (for openssl and
// ocsptool) and returns dir.
func (p *PKI) WritePEM(t testing.TB, dir string) string {
	t.Helper()
	for name, c := range map[string]*x509.Certificate{"root.pem": p.Root, "issuer.pem": p.Issuer, "responder.pem": p.Responder} {
		WriteCert(t, filepath.Join(dir, name), c)
	}
	return dir
}

// WriteCert writes c as PEM.
func WriteCert(t testing.TB, path string, c *x509.Certificate) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw}), 0o644); err != nil {
		t.Fatal(err)
	}
}

// Validity of the test responses: what the pipeline's defaults produce.
const (
	Validity     = 72 * time.Hour
	RefreshAfter = 36 * time.Hour
	Backdate     = time.Hour
)

// RevokedAt is the revocation time of revoked test responses.
var RevokedAt = time.Date(2026, 2, 27, 8, 30, 15, 0, time.UTC)

// Entry signs the response for serialHex with CertID hash h, as the
// pipeline would at now.
func (p *PKI) Entry(t testing.TB, serialHex string, h ocspcodec.HashAlg, st status.Status, now time.Time) ocspcache.Entry {
	t.Helper()
	sn, err := hex.DecodeString(serialHex)
	if err != nil {
		t.Fatal(err)
	}
	this := now.Truncate(time.Second).Add(-Backdate).UTC()
	one := ocspcodec.Single{ID: ocspcodec.CertID{Hash: h, Serial: sn}, Status: st,
		ThisUpdate: this, NextUpdate: this.Add(Validity)}
	if st == status.Revoked {
		one.RevokedAt, one.Reason = RevokedAt, reason.KeyCompromise
	}
	der, err := p.Signer.Sign(nil, one, now, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return ocspcache.Entry{DER: der, Status: st, ThisUpdate: this, NextUpdate: this.Add(Validity), RefreshAt: this.Add(RefreshAfter)}
}

// ID is one CertID to put in a request.
type ID struct {
	Hash      ocspcodec.HashAlg
	Issuer    *x509.Certificate
	SerialHex string
}

// Request encodes an OCSPRequest for ids, with a nonce extension if nonce
// is not nil. x/crypto/ocsp cannot make several CertIDs or nonces, hence
// this encoder.
func Request(t testing.TB, nonce []byte, ids ...ID) []byte {
	t.Helper()
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(req *cryptobyte.Builder) { // OCSPRequest
		req.AddASN1(cbasn1.SEQUENCE, func(tbs *cryptobyte.Builder) { // TBSRequest
			tbs.AddASN1(cbasn1.SEQUENCE, func(list *cryptobyte.Builder) {
				for _, id := range ids {
					list.AddASN1(cbasn1.SEQUENCE, func(one *cryptobyte.Builder) {
						one.AddASN1(cbasn1.SEQUENCE, func(cid *cryptobyte.Builder) {
							addCertID(t, cid, id)
						})
					})
				}
			})
			if nonce != nil {
				tbs.AddASN1(cbasn1.Tag(2).Constructed().ContextSpecific(), func(w *cryptobyte.Builder) {
					w.AddASN1(cbasn1.SEQUENCE, func(exts *cryptobyte.Builder) {
						exts.AddASN1(cbasn1.SEQUENCE, func(ext *cryptobyte.Builder) {
							ext.AddASN1ObjectIdentifier(asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 48, 1, 2})
							ext.AddASN1(cbasn1.OCTET_STRING, func(v *cryptobyte.Builder) {
								v.AddASN1OctetString(nonce)
							})
						})
					})
				})
			}
		})
	})
	der, err := b.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func addCertID(t testing.TB, b *cryptobyte.Builder, id ID) {
	ih, err := ocspcodec.HashIssuer(id.Issuer)
	if err != nil || !id.Hash.Valid() {
		t.Fatalf("issuer hashes: %v (hash %v)", err, id.Hash)
	}
	nameHash, keyHash := ih.Name[id.Hash-1], ih.Key[id.Hash-1]
	sn, err := hex.DecodeString(id.SerialHex)
	if err != nil {
		t.Fatal(err)
	}
	b.AddASN1(cbasn1.SEQUENCE, func(alg *cryptobyte.Builder) {
		alg.AddBytes(id.Hash.OID())
		alg.AddASN1NULL()
	})
	b.AddASN1OctetString(nameHash)
	b.AddASN1OctetString(keyHash)
	b.AddASN1BigInt(new(big.Int).SetBytes(sn))
}
