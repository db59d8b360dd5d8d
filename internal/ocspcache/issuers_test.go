package ocspcache

// An internal test: the fuzz test reaches decodeIssuers, and cachetest
// (which imports this package) cannot be imported from here, so the
// Redis helpers are testenv's.

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/redis/go-redis/v9"

	"github.com/trustline/trustline/internal/issuerid"
	"github.com/trustline/trustline/internal/testenv"
)

// testCert returns a self-signed CA certificate named cn.
func testCert(t testing.TB, cn string) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// entryOf is one issuer's stored form.
func entryOf(id string, der []byte) string {
	return "issuer " + id + "\n" + string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

func TestDecodeIssuers(t *testing.T) {
	a, b := testCert(t, "Issuing CA A"), testCert(t, "Issuing CA B")
	ia, ib := IssuerCert{ID: "int-a", DER: a}, IssuerCert{ID: "int-b", DER: b}
	pemA := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: a}))
	for _, tc := range []struct {
		name    string
		value   string
		want    []IssuerCert
		wantErr string
	}{
		{name: "one", value: entryOf("int-a", a), want: []IssuerCert{ia}},
		{name: "two, in order", value: entryOf("int-b", b) + entryOf("int-a", a), want: []IssuerCert{ib, ia}},
		{name: "whitespace and CRLF", value: "\n issuer int-a \r\n\n" + pemA + "\r\n\n" + strings.TrimSuffix(entryOf("int-b", b), "\n"),
			want: []IssuerCert{ia, ib}},
		{name: "empty", value: "", wantErr: "empty"},
		{name: "blank", value: " \n", wantErr: "empty"},
		{name: "not the format", value: "hello", wantErr: `entry 0 does not start with an "issuer <id>" line`},
		{name: "PEM without id", value: pemA, wantErr: "entry 0 does not start"},
		{name: "id too long", value: entryOf(strings.Repeat("a", 65), a), wantErr: "entry 0 does not start"},
		{name: "bad id", value: entryOf("Int_A", a), wantErr: `entry 0: issuer id "Int_A" is invalid or repeated`},
		{name: "repeated id", value: entryOf("int-a", a) + entryOf("int-a", b), wantErr: `entry 1: issuer id "int-a" is invalid or repeated`},
		{name: "text after the id", value: "issuer int-a\nx\n" + pemA, wantErr: "issuer int-a: no PEM block after its line"},
		{name: "id without block", value: entryOf("int-a", a) + "issuer int-b\n", wantErr: "issuer int-b: no PEM block"},
		{name: "trailing text", value: entryOf("int-a", a) + "-----END", wantErr: "entry 1 does not start"},
		{name: "truncated", value: entryOf("int-a", a)[:100], wantErr: "issuer int-a: no PEM block"},
		{name: "malformed block before a good one", value: "issuer int-a\n-----BEGIN CERTIFICATE-----\n!!\n-----END CERTIFICATE-----\n" + pemA,
			wantErr: "issuer int-a: no PEM block"},
		{name: "other type", value: "issuer int-a\n" + string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: a})),
			wantErr: `issuer int-a: a "PRIVATE KEY" block`},
		{name: "headers", value: "issuer int-a\n" + string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Headers: map[string]string{"a": "b"}, Bytes: a})),
			wantErr: "with 1 headers"},
		{name: "not a certificate", value: entryOf("int-a", a) + entryOf("int-b", []byte{0x30, 0x00}), wantErr: "issuer int-b: x509:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := decodeIssuers([]byte(tc.value))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("decodeIssuers = %d issuers, %v; want an error containing %q", len(got), err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("decodeIssuers (-want +got):\n%s", diff)
			}
		})
	}
}

func TestEncodeIssuers(t *testing.T) {
	a := testCert(t, "Issuing CA A")
	for _, tc := range []struct {
		name    string
		issuers []IssuerCert
		wantErr string
	}{
		{"none", nil, "no issuer certificates"},
		{"junk certificate", []IssuerCert{{ID: "int-a", DER: a}, {ID: "int-b", DER: []byte("junk")}}, "issuer int-b certificate"},
		{"no id", []IssuerCert{{DER: a}}, `issuer 0: id "" is invalid`},
		{"repeated id", []IssuerCert{{ID: "int-a", DER: a}, {ID: "int-a", DER: a}}, `issuer 1: id "int-a" is invalid or repeated`},
	} {
		if _, err := encodeIssuers(tc.issuers); err == nil || !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("%s: encodeIssuers = %v, want an error containing %q", tc.name, err, tc.wantErr)
		}
	}
	many := make([]IssuerCert, maxIssuersValue/len(a)+1)
	for i := range many {
		many[i] = IssuerCert{ID: issuerid.ID(fmt.Sprintf("int-%d", i)), DER: a}
	}
	if _, err := encodeIssuers(many); err == nil || !strings.Contains(err.Error(), "over the 1048576") {
		t.Errorf("encodeIssuers of %d certificates: %v", len(many), err)
	}
}

// TestIssuersReadAsPEM: the stored form is a PEM file to openssl, which
// skips the id lines as explanatory text (RFC 7468 §5.2).
func TestIssuersReadAsPEM(t *testing.T) {
	openssl := testenv.NeedCommand(t, "openssl")
	a, b := testCert(t, "Issuing CA A"), testCert(t, "Issuing CA B")
	v, err := encodeIssuers([]IssuerCert{{ID: "int-a", DER: a}, {ID: "int-b", DER: b}})
	if err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(t.TempDir(), "issuers.pem")
	if err := os.WriteFile(f, v, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(openssl, "storeutl", "-noout", "-certs", f).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "Total found: 2") {
		t.Errorf("openssl storeutl: %v\n%s", err, out)
	}
}

func FuzzDecodeIssuers(f *testing.F) {
	a, b := testCert(f, "A"), testCert(f, "B")
	f.Add([]byte(entryOf("int-a", a)))
	f.Add([]byte(entryOf("int-a", a) + entryOf("b", b)))
	f.Add([]byte(entryOf("int-a", a) + "junk"))
	f.Add([]byte("issuer x\n-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n"))
	f.Fuzz(func(t *testing.T, v []byte) {
		issuers, err := decodeIssuers(v)
		if err != nil {
			return
		}
		// What decodes re-encodes to what decodes the same.
		enc, err := encodeIssuers(issuers)
		if err != nil {
			t.Fatalf("decoded issuers do not encode: %v", err)
		}
		again, err := decodeIssuers(enc)
		if err != nil || !cmp.Equal(issuers, again) {
			t.Fatalf("round trip: %v", err)
		}
	})
}

// testIssuersOver runs the publish and load rules over client, under a
// prefix of its own.
func testIssuersOver(t *testing.T, client redis.UniversalClient, prefix string) {
	ctx := context.Background()
	a, b := testCert(t, "Issuing CA A"), testCert(t, "Issuing CA B")
	ia, ib := IssuerCert{ID: "int-a", DER: a}, IssuerCert{ID: "int-b", DER: b}
	key := issuersKey(prefix)

	if _, err := LoadIssuers(ctx, client, prefix); !errors.Is(err, ErrNoIssuers) {
		t.Fatalf("LoadIssuers before any publish = %v, want ErrNoIssuers", err)
	}
	if err := PublishIssuers(ctx, client, prefix, []IssuerCert{ia, ib}); err != nil {
		t.Fatal(err)
	}
	got, err := LoadIssuers(ctx, client, prefix)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]IssuerCert{ia, ib}, got); diff != "" {
		t.Errorf("LoadIssuers (-want +got):\n%s", diff)
	}

	// A new list replaces the old one, and clears an expiry.
	if err := client.Expire(ctx, key, time.Hour).Err(); err != nil {
		t.Fatal(err)
	}
	if err := PublishIssuers(ctx, client, prefix, []IssuerCert{ib}); err != nil {
		t.Fatal(err)
	}
	if got, err := LoadIssuers(ctx, client, prefix); err != nil || !cmp.Equal([]IssuerCert{ib}, got) {
		t.Errorf("LoadIssuers after a republish = %d certificates, %v", len(got), err)
	}
	if ttl, err := client.TTL(ctx, key).Result(); err != nil || ttl != -1 {
		t.Errorf("TTL of %s = %v, %v; want none (-1)", key, ttl, err)
	}

	// Refused: nothing to publish, a bad prefix.
	if err := PublishIssuers(ctx, client, prefix, nil); err == nil {
		t.Error("PublishIssuers of no certificates succeeded")
	}
	if _, err := LoadIssuers(ctx, client, "{x}"); err == nil {
		t.Error("LoadIssuers with a hash-tag prefix succeeded")
	}

	// Corrupt and oversized values are reported, not returned.
	for _, tc := range []struct {
		name, value, wantErr string
	}{
		{"corrupt", entryOf("int-a", a) + "junk", "issuers: entry 1 does not start with"},
		{"empty", "", "issuers: empty"},
		{"oversized", strings.Repeat("x", maxIssuersValue+1), "is over 1048576 bytes: not read"},
	} {
		if err := client.Set(ctx, key, tc.value, 0).Err(); err != nil {
			t.Fatal(err)
		}
		if got, err := LoadIssuers(ctx, client, prefix); err == nil || errors.Is(err, ErrNoIssuers) || !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("%s value: LoadIssuers = %d certificates, %v; want an error containing %q", tc.name, len(got), err, tc.wantErr)
		}
	}
	// Exactly at the bound is read (and then found corrupt).
	if err := client.Set(ctx, key, strings.Repeat(" ", maxIssuersValue), 0).Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadIssuers(ctx, client, prefix); err == nil || !strings.HasSuffix(err.Error(), "issuers: empty") {
		t.Errorf("LoadIssuers of %d spaces: %v", maxIssuersValue, err)
	}
}

// TestIssuersSingleNode uses the machine's Redis (database 8, as the
// other tests), under a random prefix whose key it deletes.
func TestIssuersSingleNode(t *testing.T) {
	const addr = "127.0.0.1:6379"
	testenv.NeedTCP(t, "Redis", addr)
	client, err := NewRedisClient("redis://"+addr+"/8", false)
	if err != nil {
		t.Fatal(err)
	}
	r := make([]byte, 6)
	rand.Read(r)
	prefix := "tltest:" + hex.EncodeToString(r) + ":"
	t.Cleanup(func() {
		if err := client.Del(context.Background(), issuersKey(prefix)).Err(); err != nil {
			t.Errorf("deleting %s from the shared Redis: %v", issuersKey(prefix), err)
		}
		client.Close()
	})
	testIssuersOver(t, client, prefix)
}

func TestIssuersCluster(t *testing.T) {
	cluster := testenv.StartRedisCluster(t, 3, 0)
	client, err := NewRedisClient(cluster.URL(), true)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	testIssuersOver(t, client, "tl:")
}
