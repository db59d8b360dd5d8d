package deptest

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/trustline/trustline"

// forbid is an import a package must not reach, directly or through
// another package, and why. A pattern is a package ("x") or a package and
// everything under it ("x/..."), as go list reads them.
type forbid struct{ pattern, why string }

// The reasons shared by several rules.
const (
	stateless = "a stateless part holds no key and no database: it scales out behind the CDN (DESIGN.md)"
	noIssuer  = "no issuance code: cmd/ adapts the hierarchy into this package's own Issuer type"
)

// drivers are what the stateless parts must not reach, tests included.
var drivers = []forbid{
	{"github.com/jackc/pgx/...", stateless},
	{"modernc.org/sqlite/...", stateless},
	{"github.com/miekg/pkcs11/...", stateless},
	{module + "/internal/store/postgres/...", stateless},
	{module + "/internal/store/sqlite/...", stateless},
	{module + "/internal/pkcs11key/...", stateless},
	{module + "/internal/keyfile/...", stateless},
	{module + "/issuer/...", stateless},
}

// rules are the dependency rules of DESIGN.md and STYLE.md §13, per
// package pattern; tests says whether the package's tests are held to
// them too.
var rules = []struct {
	pkg    string
	tests  bool
	forbid []forbid
}{
	{module + "/responder/...", true, drivers},
	{module + "/responder/...", false, []forbid{
		{module + "/internal/store/...", "the responder needs only Redis: pre-signed responses, no CA state"},
	}},
	{module + "/origin/...", true, drivers},
	{module + "/origin/...", false, []forbid{
		{module + "/internal/store/...", "the origin serves what it is handed; the plant's origin role reads the store in cmd/"},
	}},
	{module + "/internal/ocspcache/...", false, []forbid{
		{"github.com/jackc/pgx/...", "the cache is shared by the responder, which must stay free of the store"},
		{module + "/internal/store/...", "the cache is shared by the responder, which must stay free of the store"},
		{module + "/issuer/...", "the cache is shared by the responder, which must stay free of issuance code"},
	}},
	{module + "/internal/follow/...", false, []forbid{
		{module + "/issuer/...", "a leaf that crlgen and the pre-signer share: it knows the event log, not what follows it"},
		{module + "/crlgen/...", "a leaf that crlgen and the pre-signer share: it knows the event log, not what follows it"},
	}},
	{module + "/crlgen/...", false, []forbid{
		{module + "/issuer/...", noIssuer + " (crlgen.Issuer): a crlgen role carries no issuance code"},
	}},
	{module + "/issuer/presign/...", false, []forbid{
		{module + "/issuer", noIssuer + " (presign.Issuer)"},
		{module + "/issuer/pki/...", noIssuer + " (presign.Issuer)"},
		{module + "/issuer/api/...", "the API calls the pre-signer (its sink), not the reverse"},
		{module + "/issuer/portal/...", "the portal is an edge; nothing below it imports it"},
		{module + "/issuer/validation/...", "the pre-signer signs OCSP for issued certificates; validation is before issuance"},
		{module + "/issuer/review/...", "the pre-signer signs OCSP for issued certificates; review is before issuance"},
	}},
	{module + "/issuer/validation/...", false, []forbid{
		{module + "/issuer", "orders use validation through their Coverage interface, not the reverse"},
		{module + "/issuer/review/...", "the review queue asks validation what an order's validations cover, not the reverse"},
		{module + "/issuer/pki/...", "domain validation signs nothing"},
		{module + "/issuer/presign/...", "domain validation signs nothing"},
		{module + "/issuer/api/...", "the edges use validation, not the reverse"},
		{module + "/issuer/portal/...", "the edges use validation, not the reverse"},
	}},
	{module + "/issuer/review/...", false, []forbid{
		{module + "/issuer", "the queue signs through its review.Orders interface, which *issuer.Orders fills in cmd/"},
		{module + "/issuer/pki/...", "the queue signs nothing itself"},
		{module + "/issuer/presign/...", "the queue signs nothing itself"},
		{module + "/issuer/api/...", "the edges use the queue, not the reverse"},
		{module + "/issuer/portal/...", "the edges use the queue, not the reverse"},
	}},
	{module + "/bench/...", false, []forbid{
		{module + "/issuer/...", "the bench drives a running Trustline or a peer from outside; populate reaches the CA through bench.LoadSigner"},
	}},
	{module + "/watch/...", false, []forbid{
		{module + "/issuer/...", "the watch checks what the CA serves from outside; it shares no code with what it checks"},
		{module + "/crlgen/...", "the watch parses CRLs itself: a bug in the generator's code must not hide in the check"},
		{module + "/responder/...", "the watch fetches OCSP as relying parties do"},
		{module + "/internal/ocspcodec/...", "the watch parses OCSP itself (golang.org/x/crypto/ocsp), apart from the responder's codec"},
	}},
	{module + "/issuer/ct/...", false, []forbid{
		{module + "/issuer", "the CA drives CT through its CTLogs interface, which *ct.Submitter fills in cmd/"},
		{module + "/internal/store/...", "CT submission keeps no state: the CA stores precertificates and SCTs"},
	}},
}

// leaves may import the standard library and only the listed packages
// (patterns as in rules), tests excluded: they are the vocabulary every
// part shares, the stateless responder included.
var leaves = []struct {
	pkg, why string
	allow    []string
}{
	{module + "/internal/der", "both hand-written encoders share it, and the responder imports ocspcodec", nil},
	{module + "/internal/ocspcodec", "the responder imports it: the OCSP wire format and nothing else",
		[]string{module + "/internal/der", module + "/internal/status", module + "/internal/reason", "golang.org/x/crypto/cryptobyte/..."}},
	{module + "/internal/status", "shared vocabulary", nil},
	{module + "/internal/reason", "shared vocabulary", nil},
	{module + "/internal/issuerid", "shared vocabulary", nil},
	{module + "/internal/serial", "shared vocabulary", nil},
	{module + "/internal/shard", "shared vocabulary", []string{module + "/internal/serial"}},
	{module + "/internal/testfix", "the fixtures every package's tests share, origin's and the responder's included", []string{module + "/internal/issuerid"}},
	{module + "/internal/testenv", "how every package's tests find a service", []string{module + "/internal/pgserver"}},
	{module + "/internal/pgserver", "the private PostgreSQL server of tests and benchmarks", nil},
	{module + "/internal/dnsanswer", "how validation and CAA read a resolver's answer", []string{"github.com/miekg/dns", "golang.org/x/..."}},
}

func TestLeaves(t *testing.T) {
	for _, l := range leaves {
		t.Run(l.pkg, func(t *testing.T) {
			out, err := exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", l.pkg).Output()
			if err != nil {
				t.Fatalf("go list %s: %v", l.pkg, err)
			}
			for _, p := range strings.Fields(string(out)) {
				if p == l.pkg || slices.ContainsFunc(l.allow, func(a string) bool { return matches(a, p) }) {
					continue
				}
				t.Errorf("%s imports %s: a leaf (%s) imports only the standard library and %v", l.pkg, p, l.why, l.allow)
			}
		})
	}
}

// matches reports whether the import path p matches pattern.
func matches(pattern, p string) bool {
	if base, ok := strings.CutSuffix(pattern, "/..."); ok {
		return p == base || strings.HasPrefix(p, base+"/")
	}
	return p == pattern
}

func deps(t *testing.T, pkg string, tests bool) []string {
	t.Helper()
	args := []string{"list", "-deps", "-f", "{{.ImportPath}}"}
	if tests {
		args = append(args, "-test")
	}
	out, err := exec.Command("go", append(args, pkg)...).Output()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			t.Fatalf("go list %s: %v\n%s", pkg, err, ee.Stderr)
		}
		t.Fatalf("go list %s: %v", pkg, err)
	}
	return strings.Fields(string(out))
}

func TestDependencyRules(t *testing.T) {
	for _, r := range rules {
		name := r.pkg
		if r.tests {
			name += "+tests"
		}
		t.Run(name, func(t *testing.T) {
			for _, p := range deps(t, r.pkg, r.tests) {
				// go list -test names a test variant "x [y.test]".
				path, _, _ := strings.Cut(p, " ")
				for _, f := range r.forbid {
					if matches(f.pattern, path) {
						t.Errorf("%s imports %s: %s", r.pkg, p, f.why)
					}
				}
			}
		})
	}
}

// The command wires everything, so every forbidden pattern must name
// something it imports: a pattern that matches nothing (a typo, a package
// that moved) would make its rule pass silently.
func TestRulesNameRealPackages(t *testing.T) {
	wired := deps(t, module+"/cmd/trustline", false)
	for _, r := range rules {
		for _, f := range r.forbid {
			if !slices.ContainsFunc(wired, func(p string) bool { return matches(f.pattern, p) }) {
				t.Errorf("rule for %s forbids %s, which cmd/trustline does not import: a misspelled or moved package?", r.pkg, f.pattern)
			}
		}
		if !slices.ContainsFunc(wired, func(p string) bool { return matches(r.pkg, p) }) {
			t.Errorf("rule for %s names no package cmd/trustline imports", r.pkg)
		}
	}
}
