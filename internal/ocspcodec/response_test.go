package ocspcodec

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
	"golang.org/x/crypto/ocsp"

	"github.com/trustline/trustline/internal/reason"
	"github.com/trustline/trustline/internal/status"
	"github.com/trustline/trustline/internal/testfix"
)

var (
	thisUpdate = time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	nextUpdate = thisUpdate.Add(4 * 24 * time.Hour)
	producedAt = thisUpdate.Add(time.Minute)
	revokedAt  = time.Date(2026, 2, 27, 8, 30, 15, 0, time.UTC)
)

type statusCase struct {
	name   string
	status status.Status
	reason reason.Reason
}

var statusCases = []statusCase{
	{"good", status.Good, reason.Unspecified},
	{"revoked-keyCompromise", status.Revoked, reason.KeyCompromise},
	{"revoked-unspecified", status.Revoked, reason.Unspecified},
	{"unknown", status.Unknown, reason.Unspecified},
}

func (sc statusCase) single(h HashAlg, serial []byte) Single {
	one := Single{ID: CertID{Hash: h, Serial: serial}, Status: sc.status, ThisUpdate: thisUpdate, NextUpdate: nextUpdate}
	if sc.status == status.Revoked {
		one.RevokedAt, one.Reason = revokedAt, sc.reason
	}
	return one
}

var xcryptoStatus = map[status.Status]int{status.Good: ocsp.Good, status.Revoked: ocsp.Revoked, status.Unknown: ocsp.Unknown}

// TestSignParsesWithXCrypto signs for every key type, signer, CertID hash
// and status, and checks that x/crypto/ocsp parses and verifies the
// response, and reads the same fields from it as from what
// ocsp.CreateResponse makes of the same input.
func TestSignParsesWithXCrypto(t *testing.T) {
	for _, kc := range []struct {
		name      string
		key, rkey func() crypto.Signer
		alg       x509.SignatureAlgorithm
	}{
		{"P-256", keyP256, keyP256R, x509.ECDSAWithSHA256},
		{"P-384", keyP384, keyP384R, x509.ECDSAWithSHA384},
		{"RSA-2048", keyRSA, keyRSAR, x509.SHA256WithRSA},
	} {
		p := newPKI(t, kc.key(), kc.rkey())
		for _, delegated := range []bool{false, true} {
			cfg := p.config(delegated)
			s, err := NewSigner(cfg)
			if err != nil {
				t.Fatal(err)
			}
			signerCert := p.issuer
			if delegated {
				signerCert = p.responder
			}
			for _, h := range hashAlgs {
				for _, sc := range statusCases {
					name := strings.Join([]string{kc.name, map[bool]string{false: "issuer", true: "delegated"}[delegated], h.String(), sc.name}, "/")
					t.Run(name, func(t *testing.T) {
						one := sc.single(h, p.leaf.SerialNumber.Bytes())
						der, err := s.Sign(nil, one, producedAt, rand.Reader)
						if err != nil {
							t.Fatal(err)
						}
						got, err := ocsp.ParseResponseForCert(der, p.leaf, p.issuer)
						if err != nil {
							t.Fatalf("x/crypto rejects the response: %v", err)
						}
						if got.SignatureAlgorithm != kc.alg {
							t.Errorf("signature algorithm %v, want %v", got.SignatureAlgorithm, kc.alg)
						}
						if !got.ProducedAt.Equal(producedAt) {
							t.Errorf("producedAt %v, want %v", got.ProducedAt, producedAt)
						}
						spk, _ := SubjectPublicKey(signerCert)
						if kh := sha1.Sum(spk); !bytes.Equal(got.ResponderKeyHash, kh[:]) || got.RawResponderName != nil {
							t.Errorf("responder id: key hash %x name %x, want key hash %x", got.ResponderKeyHash, got.RawResponderName, kh)
						}
						if delegated != (got.Certificate != nil) || delegated && !bytes.Equal(got.Certificate.Raw, p.responder.Raw) {
							t.Errorf("certs: got %v, delegated %v", got.Certificate != nil, delegated)
						}

						template := ocsp.Response{
							Status: xcryptoStatus[sc.status], SerialNumber: p.leaf.SerialNumber,
							ThisUpdate: thisUpdate, NextUpdate: nextUpdate, IssuerHash: h.CryptoHash(),
						}
						if sc.status == status.Revoked {
							template.RevokedAt, template.RevocationReason = revokedAt, int(sc.reason)
						}
						if delegated {
							template.Certificate = p.responder
						}
						xder, err := ocsp.CreateResponse(p.issuer, signerCert, template, cfg.Key)
						if err != nil {
							t.Fatal(err)
						}
						want, err := ocsp.ParseResponseForCert(xder, p.leaf, p.issuer)
						if err != nil {
							t.Fatal(err)
						}
						opts := cmp.Options{
							cmpopts.IgnoreFields(ocsp.Response{}, "Raw", "TBSResponseData", "Signature", "ProducedAt",
								"RawResponderName", "ResponderKeyHash", "Certificate"),
							cmpopts.EquateEmpty(),
							cmp.Comparer(func(a, b *big.Int) bool { return a.Cmp(b) == 0 }),
						}
						if diff := cmp.Diff(want, got, opts); diff != "" {
							t.Errorf("fields differ from ocsp.CreateResponse's (-xcrypto +ours):\n%s", diff)
						}
					})
				}
			}
		}
	}
}

// walkResponse reads a response with cryptobyte, independently of
// x/crypto, and returns the parts the profile fixes.
type walked struct {
	hasVersion, hasRespExts, hasSingleExts                              bool
	responderID, producedAt, certID, certStatus, thisUpdate, nextUpdate []byte
	sigAlg, certs                                                       []byte
	tbs, sig                                                            []byte
}

func walkResponse(t *testing.T, der []byte) walked {
	t.Helper()
	var w walked
	in := cryptobyte.String(der)
	var resp, rb, rbs, basic, basicInner, tbs, responses, single cryptobyte.String
	var st int
	ok := in.ReadASN1(&resp, cbasn1.SEQUENCE) && in.Empty() &&
		resp.ReadASN1Enum(&st) && st == 0 &&
		resp.ReadASN1(&rb, cbasn1.Tag(0).Constructed().ContextSpecific()) && resp.Empty() &&
		rb.ReadASN1(&rbs, cbasn1.SEQUENCE) && rb.Empty() &&
		rbs.Skip(len(oidBasic)) && rbs.ReadASN1(&basic, cbasn1.OCTET_STRING) && rbs.Empty() &&
		basic.ReadASN1(&basicInner, cbasn1.SEQUENCE) && basic.Empty()
	if !ok {
		t.Fatalf("bad OCSPResponse framing: %x", der)
	}
	var tbsElem cryptobyte.String
	if !basicInner.ReadASN1Element(&tbsElem, cbasn1.SEQUENCE) {
		t.Fatal("no tbsResponseData")
	}
	w.tbs = tbsElem
	tbs = tbsElem
	tbs.ReadASN1(&tbs, cbasn1.SEQUENCE)
	w.hasVersion = tbs.PeekASN1Tag(cbasn1.Tag(0).Constructed().ContextSpecific())
	var rid, pat cryptobyte.String
	ok = tbs.ReadAnyASN1Element(&rid, nil) && tbs.ReadASN1Element(&pat, cbasn1.GeneralizedTime) &&
		tbs.ReadASN1(&responses, cbasn1.SEQUENCE) && responses.ReadASN1(&single, cbasn1.SEQUENCE) && responses.Empty()
	if !ok {
		t.Fatal("bad ResponseData")
	}
	w.responderID, w.producedAt = rid, pat
	w.hasRespExts = !tbs.Empty()
	var cid, cst, tu, nu cryptobyte.String
	ok = single.ReadASN1Element(&cid, cbasn1.SEQUENCE) && single.ReadAnyASN1Element(&cst, nil) &&
		single.ReadASN1Element(&tu, cbasn1.GeneralizedTime) &&
		single.ReadASN1Element(&nu, cbasn1.Tag(0).Constructed().ContextSpecific())
	if !ok {
		t.Fatal("bad SingleResponse")
	}
	w.certID, w.certStatus, w.thisUpdate, w.nextUpdate = cid, cst, tu, nu
	w.hasSingleExts = !single.Empty()
	var alg, sig cryptobyte.String
	if !basicInner.ReadASN1Element(&alg, cbasn1.SEQUENCE) || !basicInner.ReadASN1BitStringAsBytes((*[]byte)(&sig)) {
		t.Fatal("bad signature")
	}
	w.sigAlg, w.sig, w.certs = alg, sig, basicInner
	return w
}

// TestSignStructure checks the encoding byte by byte where the profile
// fixes it, with a reader independent of x/crypto.
func TestSignStructure(t *testing.T) {
	p := newPKI(t, keyP256(), keyP256R())
	s, err := NewSigner(p.config(true))
	if err != nil {
		t.Fatal(err)
	}
	name, key := issuerHashesOf(t, p.issuer, SHA256)
	serial := p.leaf.SerialNumber.Bytes()
	wantCertID := tlv(0x30, tlv(0x30, []byte(oidSHA256), []byte{0x05, 0x00}), tlv(0x04, name), tlv(0x04, key),
		tlv(0x02, append([]byte{0}, serial...)))
	tests := []struct {
		name       string
		one        Single
		wantStatus []byte
	}{
		{"good", statusCases[0].single(SHA256, serial), []byte{0x80, 0x00}},
		{"unknown", statusCases[3].single(SHA256, serial), []byte{0x82, 0x00}},
		{"revoked keyCompromise", statusCases[1].single(SHA256, serial),
			tlv(0xa1, []byte("\x18\x0f20260227083015Z"), []byte{0xa0, 0x03, 0x0a, 0x01, 0x01})},
		{"revoked unspecified: no reason", statusCases[2].single(SHA256, serial), tlv(0xa1, []byte("\x18\x0f20260227083015Z"))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Sub-second parts are dropped.
			tt.one.ThisUpdate = tt.one.ThisUpdate.Add(999 * time.Millisecond)
			der, err := s.Sign(nil, tt.one, producedAt.In(time.FixedZone("x", 3600)), rand.Reader)
			if err != nil {
				t.Fatal(err)
			}
			w := walkResponse(t, der)
			spk, _ := SubjectPublicKey(p.responder)
			kh := sha1.Sum(spk)
			got := map[string][]byte{
				"responderID": w.responderID, "producedAt": w.producedAt, "certID": w.certID,
				"certStatus": w.certStatus, "thisUpdate": w.thisUpdate, "nextUpdate": w.nextUpdate,
				"sigAlg": w.sigAlg, "certs": w.certs,
			}
			want := map[string][]byte{
				"responderID": tlv(0xa2, tlv(0x04, kh[:])),
				"producedAt":  []byte("\x18\x0f20260301100100Z"),
				"certID":      wantCertID,
				"certStatus":  tt.wantStatus,
				"thisUpdate":  []byte("\x18\x0f20260301100000Z"),
				"nextUpdate":  tlv(0xa0, []byte("\x18\x0f20260305100000Z")),
				"sigAlg":      []byte(algECDSASHA256),
				"certs":       tlv(0xa0, tlv(0x30, p.responder.Raw)),
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("response parts mismatch (-want +got):\n%s", diff)
			}
			if w.hasVersion || w.hasRespExts || w.hasSingleExts {
				t.Errorf("version %v, responseExtensions %v, singleExtensions %v: want none", w.hasVersion, w.hasRespExts, w.hasSingleExts)
			}
			digest := sha256.Sum256(w.tbs)
			if !ecdsa.VerifyASN1(p.responderKey.Public().(*ecdsa.PublicKey), digest[:], w.sig) {
				t.Errorf("signature does not verify over tbsResponseData")
			}
		})
	}
}

func TestSignAppends(t *testing.T) {
	p := newPKI(t, keyRSA(), keyRSAR())
	s, err := NewSigner(p.config(false))
	if err != nil {
		t.Fatal(err)
	}
	one := statusCases[1].single(SHA1, p.leaf.SerialNumber.Bytes())
	// RSA PKCS#1 v1.5 is deterministic, so the output can be compared.
	plain, err := s.Sign(nil, one, producedAt, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []int{0, 4, 5000} { // with and without room to grow
		dst := append(make([]byte, 0, c), "head"...)
		got, err := s.Sign(dst, one, producedAt, rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got[:4], []byte("head")) || !bytes.Equal(got[4:], plain) {
			t.Errorf("cap %d: appended output differs from plain output", c)
		}
	}
}

// failingSigner fails every signature.
type failingSigner struct{ crypto.Signer }

func (failingSigner) Sign(io.Reader, []byte, crypto.SignerOpts) ([]byte, error) {
	return nil, errors.New("hsm unplugged")
}

func TestSignRejects(t *testing.T) {
	p := newPKI(t, keyP256(), keyP256R())
	s, err := NewSigner(p.config(true))
	if err != nil {
		t.Fatal(err)
	}
	serial := p.leaf.SerialNumber.Bytes()
	good := func(f func(*Single)) Single {
		one := statusCases[0].single(SHA1, serial)
		f(&one)
		return one
	}
	revoked := func(f func(*Single)) Single {
		one := statusCases[1].single(SHA1, serial)
		f(&one)
		return one
	}
	other := newPKI(t, keyP384(), keyP384R())
	otherName, otherKey := issuerHashesOf(t, other.issuer, SHA1)
	ownName, _ := issuerHashesOf(t, p.issuer, SHA1)
	tests := []struct {
		name       string
		one        Single
		producedAt time.Time
	}{
		{"no hash algorithm", good(func(o *Single) { o.ID.Hash = 0 }), producedAt},
		{"other issuer", good(func(o *Single) { o.ID.IssuerNameHash, o.ID.IssuerKeyHash = otherName, otherKey }), producedAt},
		{"name hash only", good(func(o *Single) { o.ID.IssuerNameHash = ownName }), producedAt},
		{"empty serial", good(func(o *Single) { o.ID.Serial = nil }), producedAt},
		{"serial with leading zero", good(func(o *Single) { o.ID.Serial = []byte{0, 0x8f} }), producedAt},
		{"good with revocation time", good(func(o *Single) { o.RevokedAt = revokedAt }), producedAt},
		{"good with reason", good(func(o *Single) { o.Reason = reason.Superseded }), producedAt},
		{"revoked without time", revoked(func(o *Single) { o.RevokedAt = time.Time{} }), producedAt},
		{"revoked with reason 7", revoked(func(o *Single) { o.Reason = 7 }), producedAt},
		{"status out of range", good(func(o *Single) { o.Status = 9 }), producedAt},
		{"no thisUpdate", good(func(o *Single) { o.ThisUpdate = time.Time{} }), producedAt},
		{"no nextUpdate", good(func(o *Single) { o.NextUpdate = time.Time{} }), producedAt},
		{"nextUpdate equal to thisUpdate", good(func(o *Single) { o.NextUpdate = o.ThisUpdate.Add(time.Millisecond) }), producedAt},
		{"nextUpdate before thisUpdate", good(func(o *Single) { o.NextUpdate = o.ThisUpdate.Add(-time.Hour) }), producedAt},
		{"year 10000", good(func(o *Single) { o.NextUpdate = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC) }), producedAt},
		{"no producedAt", good(func(*Single) {}), time.Time{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dst := []byte("head")
			got, err := s.Sign(dst, tt.one, tt.producedAt, rand.Reader)
			if err == nil {
				t.Fatal("Sign succeeded")
			}
			if !bytes.Equal(got, []byte("head")) {
				t.Errorf("dst changed on error: %q", got)
			}
		})
	}
	t.Run("signing fails", func(t *testing.T) {
		cfg := p.config(true)
		cfg.Key = failingSigner{cfg.Key}
		fs, err := NewSigner(cfg)
		if err != nil {
			t.Fatal(err)
		}
		got, err := fs.Sign([]byte("head"), good(func(*Single) {}), producedAt, rand.Reader)
		if err == nil || !strings.Contains(err.Error(), "hsm unplugged") || string(got) != "head" {
			t.Errorf("Sign = %q, %v; want dst unchanged and the key's error wrapped", got, err)
		}
	})
}

func TestNewSignerValidate(t *testing.T) {
	p := newPKI(t, keyP256(), keyP256R())
	other := newPKI(t, keyP384(), keyP384R())
	now := time.Now()
	responder := func(eku []x509.ExtKeyUsage, exts []pkix.Extension) *x509.Certificate {
		return p.issue(t, &x509.Certificate{
			SerialNumber: big.NewInt(9), Subject: pkix.Name{CommonName: "r"}, NotBefore: now, NotAfter: now.Add(time.Hour),
			ExtKeyUsage: eku, ExtraExtensions: exts,
		}, p.responderKey)
	}
	_, edKey, _ := ed25519.GenerateKey(rand.Reader)
	p521 := mustKey(ecdsa.GenerateKey(elliptic.P521(), rand.Reader))
	rsa1024 := mustKey(rsa.GenerateKey(rand.Reader, 1024))
	selfSigned := func(key crypto.Signer) *x509.Certificate {
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "ca"},
			NotBefore: now, NotAfter: now.Add(time.Hour), IsCA: true, BasicConstraintsValid: true}
		return testfix.CreateCertificate(t, tmpl, tmpl, key.Public(), key)
	}
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"no issuer", Config{Key: p.issuerKey}, "Issuer is required"},
		{"no key", Config{Issuer: p.issuer}, "Key is required"},
		{"key not the issuer's", Config{Issuer: p.issuer, Key: p.responderKey}, "not the key of Issuer"},
		{"key not the responder's", Config{Issuer: p.issuer, Responder: p.responder, Key: p.issuerKey}, "not the key of Responder"},
		{"responder of another issuer", Config{Issuer: p.issuer, Responder: other.responder, Key: other.responderKey}, "not issued by Issuer"},
		{"responder without OCSPSigning", Config{Issuer: p.issuer, Responder: responder(nil, []pkix.Extension{oidNoCheckExt}), Key: p.responderKey},
			"id-kp-OCSPSigning"},
		{"responder without nocheck", Config{Issuer: p.issuer, Responder: responder([]x509.ExtKeyUsage{x509.ExtKeyUsageOCSPSigning}, nil), Key: p.responderKey},
			"id-pkix-ocsp-nocheck"},
		{"Ed25519", Config{Issuer: selfSigned(edKey), Key: edKey}, "not supported"},
		{"P-521", Config{Issuer: selfSigned(p521), Key: p521}, "not supported"},
		{"RSA-1024", Config{Issuer: selfSigned(rsa1024), Key: rsa1024}, "fewer than 2048"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := NewSigner(tt.cfg)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("NewSigner = %v, %v; want error containing %q", s, err, tt.want)
			}
		})
	}
}

// TestIssuerHashes checks the Signer's precomputed hashes against those
// x/crypto puts in a request, read back by ParseRequest, and MatchesIssuer.
func TestIssuerHashes(t *testing.T) {
	p := newPKI(t, keyP256(), keyP256R())
	s, err := NewSigner(p.config(false))
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range hashAlgs {
		t.Run(h.String(), func(t *testing.T) {
			der, err := ocsp.CreateRequest(p.leaf, p.issuer, &ocsp.RequestOptions{Hash: h.CryptoHash()})
			if err != nil {
				t.Fatal(err)
			}
			var r Request
			if err := ParseRequest(der, &r); err != nil {
				t.Fatal(err)
			}
			name, key := s.IssuerHashes(h)
			if !bytes.Equal(name, r.CertIDs[0].IssuerNameHash) || !bytes.Equal(key, r.CertIDs[0].IssuerKeyHash) {
				t.Errorf("IssuerHashes(%v) = %x, %x; request has %x, %x", h, name, key, r.CertIDs[0].IssuerNameHash, r.CertIDs[0].IssuerKeyHash)
			}
			if !s.MatchesIssuer(r.CertIDs[0]) {
				t.Errorf("MatchesIssuer = false for the issuer's own CertID")
			}
			name[0] ^= 1 // a copy: must not affect the Signer
			if !s.MatchesIssuer(r.CertIDs[0]) {
				t.Errorf("modifying IssuerHashes' result changed the Signer")
			}
			r.CertIDs[0].IssuerKeyHash[0] ^= 1
			if s.MatchesIssuer(r.CertIDs[0]) {
				t.Errorf("MatchesIssuer = true for a different key hash")
			}
		})
	}
	if n, k := s.IssuerHashes(0); n != nil || k != nil {
		t.Errorf("IssuerHashes(0) = %x, %x", n, k)
	}
}

func TestErrorResponses(t *testing.T) {
	tests := []struct {
		name string
		der  []byte
		want ocsp.ResponseStatus
	}{
		{"MalformedRequest", MalformedRequest, ocsp.Malformed},
		{"InternalError", InternalError, ocsp.InternalError},
		{"TryLater", TryLater, ocsp.TryLater},
		{"Unauthorized", Unauthorized, ocsp.Unauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ocsp.ParseResponse(tt.der, nil)
			var re ocsp.ResponseError
			if !errors.As(err, &re) || re.Status != tt.want {
				t.Errorf("ParseResponse = %v, want ResponseError %v", err, tt.want)
			}
			if cap(tt.der) != len(tt.der) {
				t.Errorf("cap %d > len %d: an append could overwrite the constant", cap(tt.der), len(tt.der))
			}
		})
	}
}

func TestHashAlg(t *testing.T) {
	for _, h := range hashAlgs {
		t.Run(h.String(), func(t *testing.T) {
			if got := hashAlgFromOID(h.OID()); got != h {
				t.Errorf("hashAlgFromOID(OID()) = %v", got)
			}
			if h.New().Size() != h.Size() || h.CryptoHash().Size() != h.Size() {
				t.Errorf("sizes disagree")
			}
			if got, ok := ParseHashAlg(strings.ReplaceAll(strings.ToLower(h.String()), "-", "")); got != h || !ok {
				t.Errorf("ParseHashAlg of its name = %v, %v", got, ok)
			}
		})
	}
	for _, bad := range []string{"", "md5", "SHA1", "sha-256"} {
		if _, ok := ParseHashAlg(bad); ok {
			t.Errorf("ParseHashAlg(%q) succeeded", bad)
		}
	}
	if HashAlg(0).Valid() || HashAlg(5).Valid() || HashAlg(0).OID() != nil || HashAlg(9).String() != "HashAlg(9)" {
		t.Errorf("invalid HashAlg handled wrongly")
	}
}

// TestSignOpenSSL has `openssl ocsp` verify responses against the root.
func TestSignOpenSSL(t *testing.T) {
	openssl, err := exec.LookPath("openssl")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("openssl not found in PATH; CI must run this test")
		}
		t.Skip("SKIPPING openssl verification: openssl not found in PATH (install openssl)")
	}
	for _, kc := range []struct {
		name      string
		key, rkey func() crypto.Signer
	}{{"P-256", keyP256, keyP256R}, {"RSA-2048", keyRSA, keyRSAR}} {
		p := newPKI(t, kc.key(), kc.rkey())
		dir := t.TempDir()
		writePEM(t, filepath.Join(dir, "root.pem"), p.root)
		writePEM(t, filepath.Join(dir, "issuer.pem"), p.issuer)
		for _, delegated := range []bool{false, true} {
			s, err := NewSigner(p.config(delegated))
			if err != nil {
				t.Fatal(err)
			}
			for _, h := range []HashAlg{SHA1, SHA256} {
				for _, sc := range statusCases[:2] {
					name := strings.Join([]string{kc.name, map[bool]string{false: "issuer", true: "delegated"}[delegated], h.String(), sc.name}, "/")
					t.Run(name, func(t *testing.T) {
						now := time.Now().Truncate(time.Second)
						one := sc.single(h, p.leaf.SerialNumber.Bytes())
						one.ThisUpdate, one.NextUpdate = now.Add(-time.Hour), now.Add(72*time.Hour)
						der, err := s.Sign(nil, one, now, rand.Reader)
						if err != nil {
							t.Fatal(err)
						}
						respFile := filepath.Join(dir, "resp.der")
						if err := os.WriteFile(respFile, der, 0o600); err != nil {
							t.Fatal(err)
						}
						out, err := exec.Command(openssl, "ocsp", "-respin", respFile, "-issuer", filepath.Join(dir, "issuer.pem"),
							"-CAfile", filepath.Join(dir, "root.pem"), "-resp_text").CombinedOutput()
						if err != nil {
							t.Fatalf("openssl ocsp: %v\n%s", err, out)
						}
						text := string(out)
						want := []string{"Response verify OK", "Responder Id: ", "Hash Algorithm: " + strings.ToLower(strings.ReplaceAll(h.String(), "-", "")),
							"Serial Number: 8F00112233445566778899AABBCCDDEEFF", "Cert Status: " + sc.status.String()}
						if sc.status == status.Revoked {
							want = append(want, "Revocation Reason: keyCompromise (0x1)")
						}
						for _, w := range want {
							if !strings.Contains(text, w) {
								t.Errorf("openssl output lacks %q:\n%s", w, text)
							}
						}
						// The same response with one signature bit flipped must fail,
						// or this test proves nothing.
						der[len(der)-len(s.certs)-5] ^= 1
						if err := os.WriteFile(respFile, der, 0o600); err != nil {
							t.Fatal(err)
						}
						out, err = exec.Command(openssl, "ocsp", "-respin", respFile, "-issuer", filepath.Join(dir, "issuer.pem"),
							"-CAfile", filepath.Join(dir, "root.pem"), "-resp_text").CombinedOutput()
						if err == nil && !strings.Contains(string(out), "Response Verify Failure") || strings.Contains(string(out), "Response verify OK") {
							t.Errorf("openssl accepts a tampered response: %v\n%s", err, out)
						}
					})
				}
			}
		}
	}
}

func writePEM(t *testing.T, path string, c *x509.Certificate) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// Benchmarks: Sign against the bare signature it wraps (target ≥ 0.9 ×
// RawSign's rate) and against ocsp.CreateResponse for the same input.

var benchKeys = []struct {
	name      string
	key, rkey func() crypto.Signer
}{{"P-256", keyP256, keyP256R}, {"RSA-2048", keyRSA, keyRSAR}}

func BenchmarkSign(b *testing.B) {
	for _, kc := range benchKeys {
		b.Run(kc.name, func(b *testing.B) {
			p := newPKI(b, kc.key(), kc.rkey())
			s, err := NewSigner(p.config(true))
			if err != nil {
				b.Fatal(err)
			}
			one := statusCases[0].single(SHA256, p.leaf.SerialNumber.Bytes())
			var dst []byte
			b.ReportAllocs()
			for b.Loop() {
				if dst, err = s.Sign(dst[:0], one, producedAt, rand.Reader); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkRawSign(b *testing.B) {
	digest := sha256.Sum256([]byte("tbsResponseData"))
	for _, kc := range benchKeys {
		b.Run(kc.name, func(b *testing.B) {
			key := kc.rkey()
			b.ReportAllocs()
			for b.Loop() {
				var err error
				switch k := key.(type) {
				case *ecdsa.PrivateKey:
					_, err = ecdsa.SignASN1(rand.Reader, k, digest[:])
				case *rsa.PrivateKey:
					_, err = rsa.SignPKCS1v15(rand.Reader, k, crypto.SHA256, digest[:])
				}
				if err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkXCryptoCreateResponse(b *testing.B) {
	for _, kc := range benchKeys {
		b.Run(kc.name, func(b *testing.B) {
			p := newPKI(b, kc.key(), kc.rkey())
			template := ocsp.Response{Status: ocsp.Good, SerialNumber: p.leaf.SerialNumber, ThisUpdate: thisUpdate,
				NextUpdate: nextUpdate, IssuerHash: crypto.SHA256, Certificate: p.responder}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := ocsp.CreateResponse(p.issuer, p.responder, template, p.responderKey); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
