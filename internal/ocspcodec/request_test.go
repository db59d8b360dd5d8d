package ocspcodec

import (
	"bytes"
	"crypto"
	"encoding/hex"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/crypto/cryptobyte"
	"golang.org/x/crypto/cryptobyte/asn1"
	"golang.org/x/crypto/ocsp"
)

func mustHex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

// Hand-written request pieces.
var (
	algSHA1     = tlv(0x30, []byte(oidSHA1), []byte{0x05, 0x00})
	algSHA256   = tlv(0x30, []byte(oidSHA256), []byte{0x05, 0x00})
	algMD5      = tlv(0x30, mustHex("06082a864886f70d0205"), []byte{0x05, 0x00})
	hash20      = bytes.Repeat([]byte{0xaa}, 20)
	hash32      = bytes.Repeat([]byte{0xbb}, 32)
	serialBytes = mustHex("01ab23cd45ef67890123456789abcdef01")
)

func certIDElem(alg, name, key, serialContent []byte) []byte {
	return tlv(0x30, alg, tlv(0x04, name), tlv(0x04, key), tlv(0x02, serialContent))
}

func sha1CertID(serialContent []byte) []byte {
	return certIDElem(algSHA1, hash20, hash20, serialContent)
}

// oneReq is a Request element; extra goes after the CertID.
func oneReq(certID []byte, extra ...[]byte) []byte {
	return tlv(0x30, append([][]byte{certID}, extra...)...)
}

// ocspReq builds an OCSPRequest from the parts of its TBSRequest.
func ocspReq(tbsParts ...[]byte) []byte { return tlv(0x30, tlv(0x30, tbsParts...)) }

func reqList(reqs ...[]byte) []byte { return tlv(0x30, reqs...) }

func ext(oid []byte, critical []byte, value []byte) []byte {
	if critical != nil {
		return tlv(0x30, oid, critical, tlv(0x04, value))
	}
	return tlv(0x30, oid, tlv(0x04, value))
}

func exts(e ...[]byte) []byte { return tlv(0xa2, tlv(0x30, e...)) }

func nonceExt(n int) []byte { return ext([]byte(oidNonce), nil, tlv(0x04, bytes.Repeat([]byte{7}, n))) }

var (
	boolTrue   = []byte{0x01, 0x01, 0xff}
	boolFalse  = []byte{0x01, 0x01, 0x00}
	oidUnknown = mustHex("06032a0304") // 1.2.3.4
	simple     = ocspReq(reqList(oneReq(sha1CertID(serialBytes))))
	// A minimal well-formed optionalSignature: ecdsa-with-SHA256, a
	// 2-octet BIT STRING.
	sigElem = tlv(0xa0, tlv(0x30, tlv(0x30, mustHex("06082a8648ce3d040302")), []byte{0x03, 0x02, 0x00, 0x01}))
)

func TestParseRequestOpenSSL(t *testing.T) {
	issuer := readCert(t, "issuer.pem")
	s1 := mustHex("01ab23cd45ef67890123456789abcdef01")
	s2 := mustHex("8f00112233445566778899aabbccddeeff")
	tests := []struct {
		file    string
		hash    HashAlg
		serials [][]byte
		nonce   bool
		signed  bool
	}{
		{file: "req-sha1-nonce.der", hash: SHA1, serials: [][]byte{s1}, nonce: true},
		{file: "req-sha1-nononce.der", hash: SHA1, serials: [][]byte{s1}},
		{file: "req-sha256-nonce.der", hash: SHA256, serials: [][]byte{s1}, nonce: true},
		{file: "req-sha256-nononce.der", hash: SHA256, serials: [][]byte{s1}},
		{file: "req-sha384-nononce.der", hash: SHA384, serials: [][]byte{s2}},
		{file: "req-sha512-nonce.der", hash: SHA512, serials: [][]byte{s2}, nonce: true},
		{file: "req-two-cert.der", hash: SHA1, serials: [][]byte{s1, s2}, nonce: true},
		{file: "req-two-serial.der", hash: SHA1, serials: [][]byte{s1, s2}},
		{file: "req-signed.der", hash: SHA1, serials: [][]byte{s1}, nonce: true, signed: true},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			der := readTestdata(t, tt.file)
			var r Request
			if err := ParseRequest(der, &r); err != nil {
				t.Fatal(err)
			}
			name, key := issuerHashesOf(t, issuer, tt.hash)
			var want Request
			for i, s := range tt.serials {
				want.CertIDs[i] = CertID{Hash: tt.hash, IssuerNameHash: name, IssuerKeyHash: key, Serial: s}
			}
			want.N = len(tt.serials)
			want.HasNonce, want.Signed = tt.nonce, tt.signed
			if tt.nonce {
				if len(r.Nonce) != 16 { // openssl's default
					t.Errorf("nonce is %d octets, want 16", len(r.Nonce))
				}
				want.Nonce = r.Nonce
			}
			if diff := cmp.Diff(want, r); diff != "" {
				t.Errorf("ParseRequest mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseRequestXCryptoCreated(t *testing.T) {
	issuer, leaf := readCert(t, "issuer.pem"), readCert(t, "leaf2.pem")
	for _, h := range hashAlgs {
		t.Run(h.String(), func(t *testing.T) {
			der, err := ocsp.CreateRequest(leaf, issuer, &ocsp.RequestOptions{Hash: h.CryptoHash()})
			if err != nil {
				t.Fatal(err)
			}
			var r Request
			if err := ParseRequest(der, &r); err != nil {
				t.Fatal(err)
			}
			name, key := issuerHashesOf(t, issuer, h)
			want := Request{N: 1}
			want.CertIDs[0] = CertID{Hash: h, IssuerNameHash: name, IssuerKeyHash: key, Serial: leaf.SerialNumber.Bytes()}
			if diff := cmp.Diff(want, r); diff != "" {
				t.Errorf("ParseRequest mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseRequestAccepts(t *testing.T) {
	certID := func(serial []byte) CertID {
		return CertID{Hash: SHA1, IssuerNameHash: hash20, IssuerKeyHash: hash20, Serial: serial}
	}
	one := func(id CertID) Request { r := Request{N: 1}; r.CertIDs[0] = id; return r }
	withNonce := func(r Request, n int) Request {
		r.Nonce, r.HasNonce = bytes.Repeat([]byte{7}, n), true
		return r
	}
	five := Request{N: 5}
	for i := range 4 {
		five.CertIDs[i] = certID([]byte{byte(i + 1)})
	}
	tests := []struct {
		name string
		der  []byte
		want Request
	}{
		{"minimal", simple, one(certID(serialBytes))},
		{"sign pad removed", ocspReq(reqList(oneReq(sha1CertID([]byte{0, 0x80})))), one(certID([]byte{0x80}))},
		{"one-octet serial", ocspReq(reqList(oneReq(sha1CertID([]byte{0x7f})))), one(certID([]byte{0x7f}))},
		{"hash parameters absent", ocspReq(reqList(oneReq(certIDElem(tlv(0x30, []byte(oidSHA1)), hash20, hash20, []byte{1})))),
			one(certID([]byte{1}))},
		{"SHA-256", ocspReq(reqList(oneReq(certIDElem(algSHA256, hash32, hash32, []byte{1})))),
			one(CertID{Hash: SHA256, IssuerNameHash: hash32, IssuerKeyHash: hash32, Serial: []byte{1}})},
		{"explicit version v1", ocspReq(tlv(0xa0, []byte{0x02, 0x01, 0x00}), reqList(oneReq(sha1CertID([]byte{1})))),
			one(certID([]byte{1}))},
		{"requestorName dNSName", ocspReq(tlv(0xa1, tlv(0x82, []byte("a.example"))), reqList(oneReq(sha1CertID([]byte{1})))),
			one(certID([]byte{1}))},
		{"requestorName directoryName", ocspReq(tlv(0xa1, tlv(0xa4, tlv(0x30))), reqList(oneReq(sha1CertID([]byte{1})))),
			one(certID([]byte{1}))},
		{"nonce 1 octet", ocspReq(reqList(oneReq(sha1CertID([]byte{1}))), exts(nonceExt(1))), withNonce(one(certID([]byte{1})), 1)},
		{"nonce 32 octets", ocspReq(reqList(oneReq(sha1CertID([]byte{1}))), exts(nonceExt(32))), withNonce(one(certID([]byte{1})), 32)},
		{"critical nonce", ocspReq(reqList(oneReq(sha1CertID([]byte{1}))),
			exts(ext([]byte(oidNonce), boolTrue, tlv(0x04, []byte{7, 7})))), withNonce(one(certID([]byte{1})), 2)},
		{"unknown non-critical extension", ocspReq(reqList(oneReq(sha1CertID([]byte{1}))),
			exts(ext(oidUnknown, nil, nil), nonceExt(3))), withNonce(one(certID([]byte{1})), 3)},
		{"unknown extension with a long OID", ocspReq(reqList(oneReq(sha1CertID([]byte{1}))),
			exts(ext(tlv(0x06, append([]byte{0x2a}, bytes.Repeat([]byte{0x81, 0x01}, 70)...)), nil, nil))), one(certID([]byte{1}))},
		{"explicit critical FALSE", ocspReq(reqList(oneReq(sha1CertID([]byte{1}))), exts(ext(oidUnknown, boolFalse, []byte{1}))),
			one(certID([]byte{1}))},
		{"singleRequestExtensions", ocspReq(reqList(oneReq(sha1CertID([]byte{1}), tlv(0xa0, tlv(0x30, ext(oidUnknown, nil, nil)))))),
			one(certID([]byte{1}))},
		{"nonce in singleRequestExtensions is ignored", ocspReq(reqList(oneReq(sha1CertID([]byte{1}), tlv(0xa0, tlv(0x30, nonceExt(40)))))),
			one(certID([]byte{1}))},
		{"five requests", ocspReq(reqList(oneReq(sha1CertID([]byte{1})), oneReq(sha1CertID([]byte{2})),
			oneReq(sha1CertID([]byte{3})), oneReq(sha1CertID([]byte{4})), oneReq(sha1CertID([]byte{5})))), five},
		{"signed", append(simple[:0:0], tlv(0x30, simple[2:], sigElem)...), func() Request {
			r := one(certID(serialBytes))
			r.Signed = true
			return r
		}()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var r Request
			if err := ParseRequest(tt.der, &r); err != nil {
				t.Fatalf("ParseRequest(%x): %v", tt.der, err)
			}
			if diff := cmp.Diff(tt.want, r); diff != "" {
				t.Errorf("ParseRequest mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseRequestRejects(t *testing.T) {
	list := reqList(oneReq(sha1CertID([]byte{1})))
	tests := []struct {
		name string
		der  []byte
		want error
	}{
		{"empty", nil, errNotSequence},
		{"not a sequence", []byte{0x31, 0x00}, errNotSequence},
		{"trailing data", append(bytes.Clone(simple), 0), errTrailingData},
		{"indefinite length", append(append([]byte{0x30, 0x80}, simple[2:]...), 0, 0), errNotSequence},
		{"long-form length under 128", append([]byte{0x30, 0x81, simple[1]}, simple[2:]...), errNotSequence},
		{"truncated", simple[:len(simple)-1], errNotSequence},
		{"high tag number", ocspReq(list, tlv(0xbf, []byte{0x1f, 0x00})), errTrailingElement},
		{"tbsRequest not a sequence", tlv(0x30, tlv(0x31)), errTBSRequest},
		{"trailing element in OCSPRequest", tlv(0x30, simple[2:], []byte{0x05, 0x00}), errTrailingElement},
		{"version v2", ocspReq(tlv(0xa0, []byte{0x02, 0x01, 0x01}), list), errVersion},
		{"version non-minimal", ocspReq(tlv(0xa0, []byte{0x02, 0x02, 0x00, 0x00}), list), errVersion},
		{"requestorName bare Name", ocspReq(tlv(0xa1, tlv(0x30)), list), errRequestorName},
		{"requestorName primitive directoryName", ocspReq(tlv(0xa1, tlv(0x84)), list), errRequestorName},
		{"requestorName two names", ocspReq(tlv(0xa1, tlv(0x82), tlv(0x82)), list), errRequestorName},
		{"no requestList", ocspReq(), errRequestList},
		{"empty requestList", ocspReq(reqList()), errNoRequests},
		{"request not a sequence", ocspReq(reqList(tlv(0x04))), errRequestList},
		{"CertID missing", ocspReq(reqList(oneReq(tlv(0x04)))), errCertID},
		{"MD5 CertID", ocspReq(reqList(oneReq(certIDElem(algMD5, hash20, hash20, []byte{1})))), errHashAlg},
		{"MD5 second CertID", ocspReq(reqList(oneReq(sha1CertID([]byte{1})),
			oneReq(certIDElem(algMD5, hash20, hash20, []byte{1})))), errHashAlg},
		{"hash parameters not NULL", ocspReq(reqList(oneReq(certIDElem(tlv(0x30, []byte(oidSHA1), tlv(0x04)), hash20, hash20, []byte{1})))),
			errHashParams},
		{"hash parameters NULL with content", ocspReq(reqList(oneReq(certIDElem(tlv(0x30, []byte(oidSHA1), []byte{0x05, 0x01, 0x00}), hash20, hash20, []byte{1})))),
			errHashParams},
		{"SHA-1 name hash of 32 octets", ocspReq(reqList(oneReq(certIDElem(algSHA1, hash32, hash20, []byte{1})))), errHashLength},
		{"SHA-256 key hash of 20 octets", ocspReq(reqList(oneReq(certIDElem(algSHA256, hash32, hash20, []byte{1})))), errHashLength},
		{"serial empty", ocspReq(reqList(oneReq(sha1CertID(nil)))), errSerial},
		{"serial non-minimal", ocspReq(reqList(oneReq(sha1CertID([]byte{0, 1})))), errSerial},
		{"serial non-minimal negative", ocspReq(reqList(oneReq(sha1CertID([]byte{0xff, 0x80})))), errSerial},
		{"serial zero", ocspReq(reqList(oneReq(sha1CertID([]byte{0})))), errSerialSign},
		{"serial negative", ocspReq(reqList(oneReq(sha1CertID([]byte{0x80, 1})))), errSerialSign},
		{"serial not an INTEGER", ocspReq(reqList(oneReq(tlv(0x30, algSHA1, tlv(0x04, hash20), tlv(0x04, hash20), tlv(0x04, []byte{1}))))),
			errSerial},
		{"element after serial", ocspReq(reqList(oneReq(tlv(0x30, algSHA1, tlv(0x04, hash20), tlv(0x04, hash20), tlv(0x02, []byte{1}), tlv(0x05))))),
			errTrailingElement},
		{"element after CertID", ocspReq(reqList(oneReq(sha1CertID([]byte{1}), tlv(0x05)))), errTrailingElement},
		{"element after requestList", ocspReq(list, tlv(0x05)), errTrailingElement},
		{"empty Extensions", ocspReq(list, tlv(0xa2, tlv(0x30))), errExtensions},
		{"Extensions not a sequence", ocspReq(list, tlv(0xa2, tlv(0x31))), errExtensions},
		{"extension OID non-minimal", ocspReq(list, exts(ext(mustHex("06032a8003"), nil, nil))), errExtensions},
		{"extension OID unterminated", ocspReq(list, exts(ext(mustHex("06022a83"), nil, nil))), errExtensions},
		{"extension long OID non-minimal", ocspReq(list, exts(ext(tlv(0x06, append(bytes.Repeat([]byte{0x2a}, 130), 0x80, 0x01)), nil, nil))),
			errExtensions},
		{"extension BOOLEAN not DER", ocspReq(list, exts(ext(oidUnknown, []byte{0x01, 0x01, 0x01}, nil))), errExtensions},
		{"extension value not OCTET STRING", ocspReq(list, exts(tlv(0x30, oidUnknown, tlv(0x03, []byte{0})))), errExtensions},
		{"unknown critical extension", ocspReq(list, exts(ext(oidUnknown, boolTrue, nil))), errCritical},
		{"unknown critical single extension", ocspReq(reqList(oneReq(sha1CertID([]byte{1}), tlv(0xa0, tlv(0x30, ext(oidUnknown, boolTrue, nil)))))),
			errCritical},
		{"raw nonce", ocspReq(list, exts(ext([]byte(oidNonce), nil, bytes.Repeat([]byte{7}, 16)))), errNonce},
		{"nonce with trailing data", ocspReq(list, exts(ext([]byte(oidNonce), nil, append(tlv(0x04, []byte{1}), 0)))), errNonce},
		{"empty nonce", ocspReq(list, exts(nonceExt(0))), errNonceSize},
		{"33-octet nonce", ocspReq(list, exts(nonceExt(33))), errNonceSize},
		{"two nonces", ocspReq(list, exts(nonceExt(16), nonceExt(16))), errNonceTwice},
		{"signature not a sequence", tlv(0x30, simple[2:], tlv(0xa0, tlv(0x04))), errSignature},
		{"signature BIT STRING unused bits set", tlv(0x30, simple[2:], tlv(0xa0, tlv(0x30, tlv(0x30, oidUnknown), []byte{0x03, 0x02, 0x01, 0x01}))),
			errSignature},
		{"signature without algorithm", tlv(0x30, simple[2:], tlv(0xa0, tlv(0x30, []byte{0x03, 0x01, 0x00}))), errSignature},
		{"signature certs not certificates", tlv(0x30, simple[2:], tlv(0xa0, tlv(0x30, tlv(0x30, oidUnknown), []byte{0x03, 0x01, 0x00},
			tlv(0xa0, tlv(0x30, tlv(0x04)))))), errSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var r Request
			r.N = 99 // must be reset
			err := ParseRequest(tt.der, &r)
			if err != tt.want {
				t.Fatalf("ParseRequest(%x) = %v, want %v", tt.der, err, tt.want)
			}
			if !errors.Is(err, ErrMalformed) {
				t.Errorf("error %v does not match ErrMalformed", err)
			}
			if r.N == 99 {
				t.Errorf("Request not reset on error")
			}
		})
	}
}

// stricterThanXCrypto are the reasons for which ParseRequest refuses
// requests that x/crypto/ocsp.ParseRequest accepts; the fuzz test allows a
// disagreement only for these. x/crypto decodes with encoding/asn1, which
// ignores unknown trailing elements of a SEQUENCE, skips extensions, and
// looks at the first CertID only.
var stricterThanXCrypto = map[error]string{
	errTrailingElement: "encoding/asn1 ignores elements after the last field it knows",
	errVersion:         "x/crypto ignores the version value",
	errRequestorName:   "x/crypto reads requestorName as a bare Name, not a GeneralName",
	errHashAlg:         "x/crypto checks the hash algorithm of the first CertID only",
	errHashParams:      "x/crypto ignores AlgorithmIdentifier parameters",
	errHashLength:      "x/crypto does not check hash lengths",
	errSerialSign:      "x/crypto returns zero and negative serials as big.Int",
	errExtensions:      "x/crypto does not parse extensions",
	errCritical:        "x/crypto does not parse extensions",
	errNonce:           "x/crypto does not parse extensions",
	errNonceSize:       "x/crypto does not parse extensions (RFC 8954 wants 1..32 octets)",
	errNonceTwice:      "x/crypto does not parse extensions",
}

// TestDisagreementsWithXCrypto documents, one example each, where
// ParseRequest and x/crypto/ocsp.ParseRequest deliberately differ.
func TestDisagreementsWithXCrypto(t *testing.T) {
	list := reqList(oneReq(sha1CertID([]byte{1})))
	tests := []struct {
		name    string
		der     []byte
		ours    error // nil: we accept
		xcrypto bool  // whether x/crypto accepts
	}{
		{"negative serial", ocspReq(reqList(oneReq(sha1CertID([]byte{0x80, 1})))), errSerialSign, true},
		{"zero serial", ocspReq(reqList(oneReq(sha1CertID([]byte{0})))), errSerialSign, true},
		{"MD5 second CertID", ocspReq(reqList(oneReq(sha1CertID([]byte{1})), oneReq(certIDElem(algMD5, hash20, hash20, []byte{1})))),
			errHashAlg, true},
		{"garbage after requestList", ocspReq(list, tlv(0x05)), errTrailingElement, true},
		{"garbage after CertID", ocspReq(reqList(oneReq(sha1CertID([]byte{1}), tlv(0x05)))), errTrailingElement, true},
		{"hash parameters not NULL", ocspReq(reqList(oneReq(certIDElem(tlv(0x30, []byte(oidSHA1), tlv(0x04)), hash20, hash20, []byte{1})))),
			errHashParams, true},
		{"hash length wrong", ocspReq(reqList(oneReq(certIDElem(algSHA1, hash32, hash20, []byte{1})))), errHashLength, true},
		{"version v2", ocspReq(tlv(0xa0, []byte{0x02, 0x01, 0x01}), list), errVersion, true},
		{"33-octet nonce", ocspReq(list, exts(nonceExt(33))), errNonceSize, true},
		{"unknown critical extension", ocspReq(list, exts(ext(oidUnknown, boolTrue, nil))), errCritical, true},
		{"requestorName bare Name", ocspReq(tlv(0xa1, tlv(0x30)), list), errRequestorName, true},
		{"requestorName directoryName", ocspReq(tlv(0xa1, tlv(0xa4, tlv(0x30))), list), nil, false},
		{"signed", tlv(0x30, simple[2:], sigElem), nil, false},
		{"openssl signed", readTestdata(t, "req-signed.der"), nil, false},
		{"five CertIDs: x/crypto keeps the first only", ocspReq(reqList(oneReq(sha1CertID([]byte{1})), oneReq(sha1CertID([]byte{2})),
			oneReq(sha1CertID([]byte{3})), oneReq(sha1CertID([]byte{4})), oneReq(sha1CertID([]byte{5})))), nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var r Request
			if err := ParseRequest(tt.der, &r); err != tt.ours {
				t.Errorf("ParseRequest = %v, want %v", err, tt.ours)
			}
			if _, err := ocsp.ParseRequest(tt.der); (err == nil) != tt.xcrypto {
				t.Errorf("x/crypto ParseRequest error = %v, want accepted=%v", err, tt.xcrypto)
			}
			if tt.ours != nil && tt.xcrypto {
				if _, ok := stricterThanXCrypto[tt.ours]; !ok {
					t.Errorf("%v is not listed in stricterThanXCrypto", tt.ours)
				}
			}
			if tt.ours == nil && !tt.xcrypto && !r.Signed && !hasRequestorName(tt.der) {
				t.Errorf("accepted where x/crypto refuses, but neither signed nor with a requestorName")
			}
		})
	}
}

// hasRequestorName reports whether der, an OCSPRequest, has a
// requestorName, which x/crypto mis-reads (see stricterThanXCrypto).
func hasRequestorName(der []byte) bool {
	s := cryptobyte.String(der)
	var req, tbs cryptobyte.String
	if !s.ReadASN1(&req, asn1.SEQUENCE) || !req.ReadASN1(&tbs, asn1.SEQUENCE) {
		return false
	}
	if !tbs.SkipOptionalASN1(tagC0) {
		return false
	}
	return tbs.PeekASN1Tag(tagC1)
}

func TestParseRequestAllocs(t *testing.T) {
	for _, name := range []string{"req-sha1-nonce.der", "req-sha256-nononce.der", "req-two-cert.der", "req-signed.der"} {
		t.Run(name, func(t *testing.T) {
			der := readTestdata(t, name)
			var r Request
			allocs := testing.AllocsPerRun(100, func() {
				if err := ParseRequest(der, &r); err != nil {
					t.Fatal(err)
				}
			})
			if allocs != 0 {
				t.Errorf("ParseRequest allocates %v times per run, want 0", allocs)
			}
		})
	}
	t.Run("error", func(t *testing.T) {
		der := ocspReq(reqList(oneReq(sha1CertID([]byte{0x80}))))
		var r Request
		allocs := testing.AllocsPerRun(100, func() { _ = ParseRequest(der, &r) })
		if allocs != 0 {
			t.Errorf("failing ParseRequest allocates %v times per run, want 0", allocs)
		}
	})
}

// requestSeeds returns the openssl-made requests, x/crypto-made requests
// for each hash, and the hand-written ones of the tests above.
func requestSeeds(t testing.TB) [][]byte {
	var seeds [][]byte
	files, err := filepath.Glob(filepath.Join("testdata", "req-*.der"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no testdata requests: %v", err)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		seeds = append(seeds, b)
	}
	issuer, leaf := readCert(t, "issuer.pem"), readCert(t, "leaf1.pem")
	for _, h := range []crypto.Hash{crypto.SHA1, crypto.SHA256, crypto.SHA384, crypto.SHA512} {
		der, err := ocsp.CreateRequest(leaf, issuer, &ocsp.RequestOptions{Hash: h})
		if err != nil {
			t.Fatal(err)
		}
		seeds = append(seeds, der)
	}
	list := reqList(oneReq(sha1CertID([]byte{1})))
	seeds = append(seeds,
		simple,
		tlv(0x30, simple[2:], sigElem),
		ocspReq(tlv(0xa1, tlv(0xa4, tlv(0x30))), list),
		ocspReq(tlv(0xa1, tlv(0x30)), list),
		ocspReq(list, exts(nonceExt(33))),
		ocspReq(list, exts(ext(oidUnknown, boolTrue, nil))),
		ocspReq(reqList(oneReq(sha1CertID([]byte{0x80, 1})))),
		ocspReq(list, tlv(0x05)),
	)
	return seeds
}

// FuzzParseRequest is a differential test against x/crypto/ocsp: where
// both accept, the first CertID must agree; where only one accepts, the
// disagreement must be one of those documented above.
func FuzzParseRequest(f *testing.F) {
	for _, s := range requestSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, der []byte) {
		var r Request
		err := ParseRequest(der, &r)
		xr, xerr := ocsp.ParseRequest(der)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v does not match ErrMalformed", err)
			}
			if _, ok := stricterThanXCrypto[err]; xerr == nil && !ok {
				t.Fatalf("refused (%v) what x/crypto accepts: %x", err, der)
			}
			return
		}
		checkRequestInvariants(t, der, &r)
		if xerr != nil {
			if !r.Signed && !hasRequestorName(der) {
				t.Fatalf("accepted what x/crypto refuses (%v), neither signed nor with requestorName: %x", xerr, der)
			}
			return
		}
		id := r.CertIDs[0]
		if id.Hash.CryptoHash() != xr.HashAlgorithm {
			t.Errorf("hash %v, x/crypto %v", id.Hash, xr.HashAlgorithm)
		}
		if !bytes.Equal(id.IssuerNameHash, xr.IssuerNameHash) || !bytes.Equal(id.IssuerKeyHash, xr.IssuerKeyHash) {
			t.Errorf("issuer hashes %x %x, x/crypto %x %x", id.IssuerNameHash, id.IssuerKeyHash, xr.IssuerNameHash, xr.IssuerKeyHash)
		}
		if new(big.Int).SetBytes(id.Serial).Cmp(xr.SerialNumber) != 0 {
			t.Errorf("serial %x, x/crypto %v", id.Serial, xr.SerialNumber)
		}
	})
}

// checkRequestInvariants checks what ParseRequest promises of a Request it
// returns without error.
func checkRequestInvariants(t *testing.T, der []byte, r *Request) {
	t.Helper()
	if r.N < 1 {
		t.Fatalf("N = %d", r.N)
	}
	for i := range min(r.N, len(r.CertIDs)) {
		id := r.CertIDs[i]
		if !id.Hash.Valid() || len(id.IssuerNameHash) != id.Hash.Size() || len(id.IssuerKeyHash) != id.Hash.Size() {
			t.Fatalf("CertID %d: %+v", i, id)
		}
		if len(id.Serial) == 0 || id.Serial[0] == 0 {
			t.Fatalf("CertID %d: serial %x not minimal positive", i, id.Serial)
		}
		if !strings.Contains(string(der), string(id.Serial)) {
			t.Fatalf("CertID %d: serial not from the input", i)
		}
	}
	if r.HasNonce != (len(r.Nonce) > 0) || len(r.Nonce) > MaxNonce {
		t.Fatalf("nonce %x, HasNonce %v", r.Nonce, r.HasNonce)
	}
}

func BenchmarkParseRequest(b *testing.B) {
	for _, name := range []string{"req-sha1-nononce.der", "req-sha256-nonce.der", "req-signed.der"} {
		der := readTestdata(b, name)
		b.Run(strings.TrimSuffix(strings.TrimPrefix(name, "req-"), ".der"), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(der)))
			var r Request
			for b.Loop() {
				if err := ParseRequest(der, &r); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	b.Run("xcrypto-sha256-nonce", func(b *testing.B) {
		der := readTestdata(b, "req-sha256-nonce.der")
		b.ReportAllocs()
		for b.Loop() {
			if _, err := ocsp.ParseRequest(der); err != nil {
				b.Fatal(err)
			}
		}
	})
}
