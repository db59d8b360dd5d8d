package csrcheck

import (
	"crypto/sha1"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestWeakKeyFingerprint: an entry is what Debian's openssl-vulnkey
// computes, `openssl rsa -modulus | sha1sum | cut -c21-40`.
func TestWeakKeyFingerprint(t *testing.T) {
	k := rsa2048()
	fp := WeakKeyFingerprint(&k.PublicKey)
	if _, err := exec.LookPath("openssl"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("openssl is missing (CI installs it)")
		}
		t.Skip("SKIPPING the cross-check against openssl: not installed")
	}
	dir := t.TempDir()
	der, _ := x509.MarshalPKCS8PrivateKey(k)
	path := filepath.Join(dir, "k.pem")
	os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600)
	out, err := exec.Command("openssl", "rsa", "-in", path, "-noout", "-modulus").Output()
	if err != nil {
		t.Fatal(err)
	}
	sum := sha1.Sum(out)
	if want := hex.EncodeToString(sum[:])[20:]; hex.EncodeToString(fp[:]) != want {
		t.Fatalf("fingerprint %x, openssl's %s (modulus line %.30q…)", fp, want, out)
	}
}

func TestWeakKeysRefused(t *testing.T) {
	k := rsa2048()
	fp := WeakKeyFingerprint(&k.PublicKey)
	list := filepath.Join(t.TempDir(), "blacklist.RSA-2048")
	body := "# a list in openssl-blacklist's format\n0123456789abcdef0123\n" + hex.EncodeToString(fp[:]) + "\n\n"
	if err := os.WriteFile(list, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	w, err := LoadWeakKeys(list)
	if err != nil || w.Len() != 2 {
		t.Fatalf("LoadWeakKeys = %d keys, %v", w.Len(), err)
	}
	err = CheckPublicKey(&k.PublicKey, Policy{WeakKeys: w})
	var ce *Error
	if !errors.As(err, &ce) || ce.Kind != WeakKey || !strings.Contains(ce.Detail, "CVE-2008-0166") {
		t.Fatalf("a listed key: %v", err)
	}
	if err := CheckPublicKey(&k.PublicKey, Policy{}); err != nil {
		t.Fatalf("the same key without the list: %v", err)
	}
	bad := filepath.Join(t.TempDir(), "bad")
	os.WriteFile(bad, []byte("0123\n"), 0o600)
	if _, err := LoadWeakKeys(bad); err == nil || !strings.Contains(err.Error(), "line 1") {
		t.Errorf("a malformed list: %v", err)
	}
	if _, err := LoadWeakKeys(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Error("a missing list loaded")
	}
}
