// Package testenv lets tests that need a real service (PostgreSQL, Redis,
// SoftHSM2, openssl, Varnish) say so in one way: outside CI they skip with
// a loud message naming what is missing; under CI=true they fail, because
// CI must run them (STYLE.md §12).
//
// Only tests import it.
package testenv

import (
	"context"
	"net"
	"os"
	"os/exec"
	"testing"
	"time"
)

// InCI reports whether the CI environment variable is "true".
func InCI() bool { return os.Getenv("CI") == "true" }

// Missing skips (or, in CI, fails) the test because what is unavailable.
func Missing(t testing.TB, what string, err error) {
	t.Helper()
	if InCI() {
		t.Fatalf("CI=true and %s is unavailable: %v", what, err)
	}
	t.Skipf("SKIPPING: %s is unavailable (%v); CI runs this test", what, err)
}

// NeedTCP requires something listening at addr.
func NeedTCP(t testing.TB, what, addr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	c, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
	if err != nil {
		Missing(t, what+" at "+addr, err)
		return
	}
	c.Close()
}

// NeedCommand requires an executable on PATH and returns its path.
func NeedCommand(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		Missing(t, "command "+name, err)
	}
	return p
}

// FreeAddr returns a loopback host:port that was free a moment ago, for a
// child process (a role, varnishd) that must be told where to listen.
// Another process could take it first; the child's failure to start
// then says so.
func FreeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// PostgresURL is the server the tests use: TRUSTLINE_TEST_POSTGRES, or the
// machine's local PostgreSQL.
func PostgresURL() string {
	if u := os.Getenv("TRUSTLINE_TEST_POSTGRES"); u != "" {
		return u
	}
	return "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
}
