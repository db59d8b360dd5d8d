// Package hsmtest makes a throwaway SoftHSM2 token for tests that sign
// through internal/pkcs11key.
//
// Only _test.go files may import it. It needs softhsm2-util and the SoftHSM2
// PKCS#11 module (Debian package softhsm2); when either is missing the test
// is skipped with a loud message, or fails when CI=true, because integration
// tests must run in CI (DESIGN.md, Testing).
package hsmtest

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// modulePaths are where distributions install the SoftHSM2 module.
func modulePaths() []string {
	return []string{
		"/usr/lib/softhsm/libsofthsm2.so",
		"/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
		"/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
		"/usr/lib64/pkcs11/libsofthsm2.so",
		"/usr/local/lib/softhsm/libsofthsm2.so",
		"/opt/homebrew/lib/softhsm/libsofthsm2.so",
	}
}

// PIN and SOPIN are the fixed PINs of every token NewToken makes.
const (
	PIN   = "87654321"
	SOPIN = "12345678"
)

// NewToken initialises a fresh SoftHSM2 token in a temporary directory and
// returns the module path, the token's label and its user PIN.
//
// SoftHSM2 reads its configuration when the module is initialised, so
// NewToken points SOFTHSM2_CONF at the new directory with t.Setenv (which
// rules out t.Parallel), and every pkcs11key.Token opened on an earlier
// fixture must be closed before this one is opened: the module is finalised,
// and so re-reads the configuration, only when its last Token closes. Each
// token gets a unique label so that breaking this rule fails loudly with
// "no token labelled …" instead of silently using a stale token.
func NewToken(t testing.TB) (module, label, pin string) {
	t.Helper()
	module = findModule()
	if module == "" {
		unavailable(t, fmt.Sprintf("SoftHSM2 module not found (looked in %v)", modulePaths()))
	}
	util, err := exec.LookPath("softhsm2-util")
	if err != nil {
		unavailable(t, "softhsm2-util not found in PATH")
	}

	dir := t.TempDir()
	tokens := filepath.Join(dir, "tokens")
	if err := os.Mkdir(tokens, 0o700); err != nil {
		t.Fatalf("hsmtest: %v", err)
	}
	conf := filepath.Join(dir, "softhsm2.conf")
	body := fmt.Sprintf("directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n", tokens)
	if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
		t.Fatalf("hsmtest: %v", err)
	}
	t.Setenv("SOFTHSM2_CONF", conf)

	var suffix [4]byte
	if _, err := rand.Read(suffix[:]); err != nil {
		t.Fatalf("hsmtest: %v", err)
	}
	label = "trustline-test-" + hex.EncodeToString(suffix[:])
	cmd := exec.Command(util, "--init-token", "--free", "--label", label, "--pin", PIN, "--so-pin", SOPIN)
	cmd.Env = append(os.Environ(), "SOFTHSM2_CONF="+conf)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("hsmtest: softhsm2-util --init-token: %v\n%s", err, out)
	}
	return module, label, PIN
}

func findModule() string {
	for _, p := range modulePaths() {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return ""
}

// unavailable skips outside CI and fails in CI, per the project's rule for
// tests that need a real service.
func unavailable(t testing.TB, why string) {
	t.Helper()
	msg := "hsmtest: SoftHSM2 UNAVAILABLE, PKCS#11 TESTS NOT RUN: " + why + " (install the softhsm2 package)"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}
