package crlpub

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/trustline/trustline/internal/shard"
)

func TestNames(t *testing.T) {
	tests := []struct {
		shard      int
		file, path string
	}{
		{0, "0.crl", "/int-p256/0.crl"},
		{4095, "4095.crl", "/int-p256/4095.crl"},
		{shard.Full, "full.crl", "/int-p256/full.crl"},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			if got := FileName(tc.shard); got != tc.file {
				t.Errorf("FileName(%d) = %q, want %q", tc.shard, got, tc.file)
			}
			if got := Path("int-p256", tc.shard); got != tc.path {
				t.Errorf("Path(%d) = %q, want %q", tc.shard, got, tc.path)
			}
		})
	}
	if got := CertName("root"); got != "root.cer" {
		t.Errorf("CertName = %q", got)
	}
}

// signer makes real CRLs: DirWriter reads the number of a CRL already on
// disk from its DER.
type signer struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

func newSigner(t *testing.T) signer {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "t"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageCRLSign | x509.KeyUsageCertSign, BasicConstraintsValid: true, IsCA: true, SubjectKeyId: []byte{1}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return signer{c, key}
}

func (s signer) crl(t *testing.T, shard int, n int64) CRL {
	t.Helper()
	now := time.Now().Truncate(time.Second)
	der, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{Number: big.NewInt(n), ThisUpdate: now, NextUpdate: now.Add(time.Hour)}, s.cert, s.key)
	if err != nil {
		t.Fatal(err)
	}
	return CRL{Issuer: "int-p256", Shard: shard, Number: n, DER: der,
		ShardURLs: []string{"http://x/int-p256/0.crl", "http://x/int-p256/1.crl"}}
}

func TestDirWriter(t *testing.T) {
	dir := t.TempDir()
	s := newSigner(t)
	ctx := context.Background()
	w, err := NewDirWriter(dir)
	if err != nil {
		t.Fatal(err)
	}
	read := func(rel string) string {
		b, err := os.ReadFile(filepath.Join(dir, rel))
		if err != nil {
			return ""
		}
		return string(b)
	}
	c5 := s.crl(t, 0, 5)
	if err := w.Published(ctx, c5); err != nil {
		t.Fatal(err)
	}
	if read("int-p256/0.crl") != string(c5.DER) {
		t.Fatal("CRL not written")
	}
	if got := read("int-p256/crls.json"); got != `["http://x/int-p256/0.crl","http://x/int-p256/1.crl"]` {
		t.Errorf("crls.json = %s", got)
	}
	if err := w.Published(ctx, s.crl(t, 0, 4)); err != nil {
		t.Fatal(err)
	}
	if read("int-p256/0.crl") != string(c5.DER) {
		t.Error("a lower number replaced the CRL")
	}
	full := s.crl(t, shard.Full, 1)
	full.Issuer = "root"
	if err := w.Published(ctx, full); err != nil || read("root/full.crl") != string(full.DER) {
		t.Errorf("full CRL: %v", err)
	}

	// A new writer (a restart) learns the number on disk from the file.
	w2, err := NewDirWriter(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := w2.Published(ctx, s.crl(t, 0, 3)); err != nil {
		t.Fatal(err)
	}
	if read("int-p256/0.crl") != string(c5.DER) {
		t.Error("after a restart, a lower number replaced the CRL")
	}
	c6 := s.crl(t, 0, 6)
	if err := w2.Published(ctx, c6); err != nil || read("int-p256/0.crl") != string(c6.DER) {
		t.Errorf("after a restart, a higher number was not written: %v", err)
	}

	if err := w.WriteIssuerCert("int-p256", s.cert.Raw); err != nil || read("int-p256.cer") != string(s.cert.Raw) {
		t.Errorf("WriteIssuerCert: %v", err)
	}
	for _, bad := range []CRL{{Issuer: "../x", DER: c5.DER}, {Issuer: "int-p256", Shard: -2, DER: c5.DER}} {
		if err := w.Published(ctx, bad); err == nil {
			t.Errorf("Published(%q, %d) accepted", bad.Issuer, bad.Shard)
		}
	}
	if err := w.WriteIssuerCert("int-p256", []byte("junk")); err == nil {
		t.Error("WriteIssuerCert accepted junk")
	}
	var left []string
	filepath.Walk(dir, func(p string, _ os.FileInfo, _ error) error {
		if filepath.Base(p)[0] == '.' {
			left = append(left, p)
		}
		return nil
	})
	if len(left) != 0 {
		t.Errorf("temporary files left: %v", left)
	}
}

// A writer starting over a directory removes what a killed writer left.
func TestDirWriterRemovesStaleTemps(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "int-p256"), 0o755)
	old, fresh := filepath.Join(dir, "int-p256", ".tmp-1"), filepath.Join(dir, "int-p256", ".tmp-2")
	for _, p := range []string{old, fresh} {
		if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	long := time.Now().Add(-time.Hour)
	os.Chtimes(old, long, long)
	if _, err := NewDirWriter(dir); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range []string{old, fresh} {
		if _, err := os.Stat(p); err == nil {
			got = append(got, filepath.Base(p))
		}
	}
	if d := cmp.Diff([]string{".tmp-2"}, got); d != "" {
		t.Errorf("left (-want +got):\n%s", d)
	}
}
