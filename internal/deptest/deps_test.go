package deptest

import (
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/trustline/trustline"

// forbidden lists, for each stateless part, the import-path prefixes it must
// not reach, directly or through another package: no database driver, no
// PKCS#11, no issuance code.
var forbidden = []string{
	"github.com/jackc/pgx",
	"github.com/miekg/pkcs11",
	"modernc.org/sqlite",
	module + "/issuer",
	module + "/internal/store/postgres",
	module + "/internal/store/sqlite",
	module + "/internal/pkcs11key",
	module + "/internal/keyfile",
}

func deps(t *testing.T, pkg string) []string {
	t.Helper()
	out, err := exec.Command("go", "list", "-deps", "-test", "-f", "{{.ImportPath}}", pkg).Output()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			t.Fatalf("go list %s: %v\n%s", pkg, err, ee.Stderr)
		}
		t.Fatalf("go list %s: %v", pkg, err)
	}
	return strings.Fields(string(out))
}

func violations(imports []string) []string {
	var bad []string
	for _, p := range imports {
		for _, f := range forbidden {
			if p == f || strings.HasPrefix(p, f+"/") {
				bad = append(bad, p)
			}
		}
	}
	return bad
}

func TestStatelessPartsStayStateless(t *testing.T) {
	for _, pkg := range []string{module + "/responder/...", module + "/origin/..."} {
		t.Run(pkg, func(t *testing.T) {
			if bad := violations(deps(t, pkg)); len(bad) > 0 {
				t.Errorf("%s imports forbidden packages: %v", pkg, bad)
			}
		})
	}
}

// The command wires everything, so it must trip the same check: this keeps
// the check itself honest.
func TestCheckCatchesTheWiring(t *testing.T) {
	if bad := violations(deps(t, module+"/cmd/trustline")); len(bad) == 0 {
		t.Error("cmd/trustline shows no forbidden import: the dependency check is broken")
	}
}

// rules say, per package, what it must not import (outside its tests)
// and why. The stateless parts are checked above with their tests too.
var rules = []struct {
	pkg       string
	forbidden []string
	why       string
}{
	{module + "/crlgen/...", []string{module + "/issuer"},
		"the CRL generator takes its issuers as crlgen.Issuer; cmd/ adapts the hierarchy (a crlgen role must not carry issuance code)"},
	{module + "/issuer/presign/...", []string{module + "/issuer/pki", module + "/issuer/api", module + "/issuer/portal"},
		"the pre-signer takes presign.Issuer; cmd/ adapts the hierarchy"},
	{module + "/origin/...", []string{"github.com/jackc/pgx", module + "/internal/store", module + "/issuer"},
		"the origin serves what it is handed; the plant's origin role reads the store in cmd/"},
	{module + "/responder/...", []string{"github.com/jackc/pgx", module + "/internal/store", module + "/issuer", "github.com/miekg/pkcs11"},
		"the responder needs only Redis: no database, no key, no issuance code"},
	{module + "/internal/ocspcache/...", []string{"github.com/jackc/pgx", module + "/issuer", module + "/internal/store"},
		"the cache is shared by the responder, which must stay free of the store"},
}

func TestDependencyRules(t *testing.T) {
	for _, r := range rules {
		t.Run(r.pkg, func(t *testing.T) {
			out, err := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}}", r.pkg).Output()
			if err != nil {
				t.Fatalf("go list %s: %v", r.pkg, err)
			}
			for _, p := range strings.Fields(string(out)) {
				for _, f := range r.forbidden {
					if p == f || strings.HasPrefix(p, f+"/") {
						t.Errorf("%s imports %s: %s", r.pkg, p, r.why)
					}
				}
			}
		})
	}
}
