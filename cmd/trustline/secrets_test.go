package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestDevPINSources: the finding of issue #13 ("--hsm-pin shows in ps"):
// the PIN can come from a file, the environment variable is cleared once
// read, and the flag still works but warns.
func TestDevPINSources(t *testing.T) {
	hsm := []string{"--data", t.TempDir(), "--hsm-module", "/usr/lib/softhsm/libsofthsm2.so", "--hsm-token", "tok"}
	pinFile := filepath.Join(t.TempDir(), "pin")
	if err := os.WriteFile(pinFile, []byte("1234\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cfg, err := devFlags(append(hsm, "--hsm-pin-file", pinFile), &stderr)
	if err != nil || cfg.HSM.PIN != "1234" || stderr.Len() != 0 {
		t.Fatalf("from a file: PIN %q, %v, stderr %q", cfg.HSM.PIN, err, stderr.String())
	}

	t.Setenv("TRUSTLINE_HSM_PIN", "5678")
	cfg, err = devFlags(hsm, &stderr)
	if err != nil || cfg.HSM.PIN != "5678" {
		t.Fatalf("from the environment: PIN %q, %v", cfg.HSM.PIN, err)
	}
	if v, ok := os.LookupEnv("TRUSTLINE_HSM_PIN"); ok {
		t.Errorf("TRUSTLINE_HSM_PIN still set after reading: %q", v)
	}

	cfg, err = devFlags(append(hsm, "--hsm-pin", "9999"), &stderr)
	if err != nil || cfg.HSM.PIN != "9999" || !strings.Contains(stderr.String(), "--hsm-pin-file") {
		t.Fatalf("from the flag: PIN %q, %v, stderr %q", cfg.HSM.PIN, err, stderr.String())
	}
	if strings.Contains(stderr.String(), "9999") {
		t.Error("the warning repeats the PIN")
	}
}

// TestDataDirTightened: a data dir made before with a loose mode is
// tightened to 0700 at start.
func TestDataDirTightened(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	os.Chmod(dir, 0o755)
	if _, err := prepareDataDir(dir); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(dir); fi.Mode().Perm() != 0o700 {
		t.Errorf("data dir is %04o after start, want 0700", fi.Mode().Perm())
	}
}
