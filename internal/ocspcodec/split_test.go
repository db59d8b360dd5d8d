package ocspcodec

import (
	"bytes"
	"crypto/rand"
	"testing"

	"golang.org/x/crypto/ocsp"
)

// splitSeeds signs a response for every signer kind and status.
func splitSeeds(t testing.TB) (resps [][]byte, pkis []*testPKI) {
	t.Helper()
	p := newPKI(t, keyP256(), keyP256R())
	pr := newPKI(t, keyRSA(), keyRSAR())
	for _, pki := range []*testPKI{p, pr} {
		for _, delegated := range []bool{true, false} {
			s, err := NewSigner(pki.config(delegated))
			if err != nil {
				t.Fatal(err)
			}
			for _, sc := range statusCases {
				resp, err := s.Sign(nil, sc.single(SHA256, pki.leaf.SerialNumber.Bytes()), producedAt, rand.Reader)
				if err != nil {
					t.Fatal(err)
				}
				resps, pkis = append(resps, resp), append(pkis, pki)
			}
		}
	}
	return resps, pkis
}

func TestSplitCertsRoundTrip(t *testing.T) {
	resps, pkis := splitSeeds(t)
	for i, resp := range resps {
		body, certs, ok := SplitCerts(resp)
		if !ok {
			t.Fatalf("response %d: SplitCerts refused a Signer's response", i)
		}
		parsed, err := ocsp.ParseResponse(resp, pkis[i].issuer)
		if err != nil {
			t.Fatalf("response %d: %v", i, err)
		}
		switch {
		case parsed.Certificate == nil && certs != nil:
			t.Errorf("response %d: issuer-signed, but SplitCerts found certs %x", i, certs)
		case parsed.Certificate != nil && !bytes.Contains(certs, parsed.Certificate.Raw):
			t.Errorf("response %d: certs do not hold the responder certificate", i)
		case parsed.Certificate != nil && len(certs) > len(parsed.Certificate.Raw)+8:
			t.Errorf("response %d: certs is %d bytes for a %d-byte certificate", i, len(certs), len(parsed.Certificate.Raw))
		}
		if !bytes.Contains(body, parsed.TBSResponseData) || !bytes.Contains(body, parsed.Signature) {
			t.Errorf("response %d: body lacks tbsResponseData or the signature", i)
		}
		if n := JoinedLen(len(body), len(certs)); n != len(resp) {
			t.Errorf("response %d: JoinedLen = %d, want %d", i, n, len(resp))
		}
		joined := JoinCerts([]byte("prefix"), body, certs)
		if !bytes.Equal(joined[len("prefix"):], resp) || string(joined[:len("prefix")]) != "prefix" {
			t.Errorf("response %d: JoinCerts does not give the response back", i)
		}
		// The rejoined response still verifies: the signature covers
		// tbsResponseData only.
		if _, err := ocsp.ParseResponse(joined[len("prefix"):], pkis[i].issuer); err != nil {
			t.Errorf("response %d: rejoined response: %v", i, err)
		}
	}
}

func TestSplitCertsRefuses(t *testing.T) {
	resps, _ := splitSeeds(t)
	good := resps[0]
	if good[1] != 0x82 {
		t.Fatalf("the first seed's length takes %#x: this test expects two octets", good[1])
	}
	// The outer SEQUENCE's length in three octets instead of two.
	long := append([]byte{0x30, 0x83, 0x00}, good[2:]...)
	cases := map[string][]byte{
		"tryLater":       TryLater,
		"unauthorized":   Unauthorized,
		"empty":          {},
		"trailing octet": append(bytes.Clone(good), 0),
		"truncated":      good[:len(good)-1],
		"other type":     bytes.Replace(bytes.Clone(good), []byte(oidBasic), []byte(oidBasic[:len(oidBasic)-1]+"\x02"), 1),
		"status 1":       append([]byte{good[0], good[1], good[2], good[3], 0x0a, 0x01, 0x01}, good[7:]...),
		"non-minimal":    long,
	}
	for name, in := range cases {
		if _, _, ok := SplitCerts(in); ok {
			t.Errorf("%s: SplitCerts accepted %x", name, in)
		}
	}
}

func FuzzSplitCerts(f *testing.F) {
	resps, _ := splitSeeds(f)
	for _, r := range resps {
		f.Add(r)
	}
	f.Add(TryLater)
	f.Fuzz(func(t *testing.T, in []byte) {
		body, certs, ok := SplitCerts(in)
		if !ok {
			return
		}
		if out := JoinCerts(nil, body, certs); !bytes.Equal(out, in) {
			t.Fatalf("JoinCerts(SplitCerts(%x)) = %x", in, out)
		}
	})
}
