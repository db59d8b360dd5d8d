package ocspcodec

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestDeps keeps this package a leaf (DESIGN: the responder never imports
// pgx, pkcs11 or issuer code, and it imports this package).
func TestDeps(t *testing.T) {
	goCmd, err := exec.LookPath("go")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("go command not found; CI must run the dependency check")
		}
		t.Skip("SKIPPING dependency check: go command not found in PATH")
	}
	out, err := exec.Command(goCmd, "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	const module = "github.com/trustline/trustline/"
	allowedInternal := map[string]bool{
		module + "internal/ocspcodec": true,
		module + "internal/status":    true,
		module + "internal/reason":    true,
		module + "internal/der":       true,
	}
	for _, pkg := range strings.Fields(string(out)) {
		switch {
		case strings.HasPrefix(pkg, module) && !allowedInternal[pkg]:
			t.Errorf("imports %s; only internal/status, internal/reason and internal/der are allowed", pkg)
		case strings.Contains(pkg, "jackc/pgx"), strings.Contains(pkg, "miekg/pkcs11"):
			t.Errorf("imports %s", pkg)
		case !strings.HasPrefix(pkg, module) && !strings.HasPrefix(pkg, "golang.org/x/crypto/"):
			t.Errorf("imports third-party %s; only golang.org/x/crypto is allowed", pkg)
		}
	}
}
