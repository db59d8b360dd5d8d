package crlenc_test

// Clients no one here wrote: openssl and zlint.

import (
	"encoding/pem"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	zx509 "github.com/zmap/zcrypto/x509"
	"github.com/zmap/zlint/v3"
	"github.com/zmap/zlint/v3/lint"

	"github.com/trustline/trustline/crlgen/crlenc"
	"github.com/trustline/trustline/internal/reason"
)

// requireTool skips (or, in CI, fails) when a command is not installed.
func requireTool(t *testing.T, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err == nil {
		return path
	}
	msg := "!!! " + name + " is not installed: interoperability test NOT RUN (install it; in CI it must run) !!!"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// shardEntries has one entry for each reason a subscriber CRL may carry.
func shardEntries() []crlenc.Entry {
	at := time.Date(2026, 3, 13, 23, 0, 0, 0, time.UTC)
	return []crlenc.Entry{
		{Serial: "4e9f0c1d2e3f405162738495a6b7c8d9ea", RevokedAt: at, Reason: reason.KeyCompromise},
		{Serial: "4e00000000000000000000000000000001", RevokedAt: at.Add(time.Minute), Reason: reason.Unspecified},
		{Serial: "4e00000000000000000000000000000002", RevokedAt: at.Add(2 * time.Minute), Reason: reason.AffiliationChanged},
		{Serial: "4e00000000000000000000000000000003", RevokedAt: at.Add(3 * time.Minute), Reason: reason.Superseded},
		{Serial: "4e00000000000000000000000000000004", RevokedAt: at.Add(4 * time.Minute), Reason: reason.CessationOfOperation},
		{Serial: "4e00000000000000000000000000000005", RevokedAt: at.Add(5 * time.Minute), Reason: reason.PrivilegeWithdrawn},
		{Serial: "ff00000000000000000000000000000006", RevokedAt: at.Add(6 * time.Minute), Reason: reason.KeyCompromise},
	}
}

func TestOpenSSL(t *testing.T) {
	openssl := requireTool(t, "openssl")
	for _, kind := range []keyKind{keyP256, keyP384, keyRSA2048} {
		t.Run(string(kind), func(t *testing.T) {
			iss := newIssuer(t, kind)
			dir := t.TempDir()
			issuerPEM := filepath.Join(dir, "issuer.pem")
			if err := os.WriteFile(issuerPEM, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: iss.cert.Raw}), 0o600); err != nil {
				t.Fatal(err)
			}
			for _, tc := range []struct {
				name    string
				entries []crlenc.Entry
			}{
				{name: "shard", entries: shardEntries()},
				{name: "empty", entries: nil},
			} {
				t.Run(tc.name, func(t *testing.T) {
					crlDER := filepath.Join(dir, tc.name+".crl")
					if err := os.WriteFile(crlDER, encode(t, baseParams(iss), tc.entries, iss.key), 0o600); err != nil {
						t.Fatal(err)
					}
					out, err := exec.Command(openssl, "crl", "-inform", "DER", "-in", crlDER, "-CAfile", issuerPEM, "-noout").CombinedOutput()
					if err != nil || !strings.Contains(string(out), "verify OK") {
						t.Fatalf("openssl crl -CAfile: %v\n%s", err, out)
					}
					text, err := exec.Command(openssl, "crl", "-inform", "DER", "-in", crlDER, "-noout", "-text").CombinedOutput()
					if err != nil {
						t.Fatalf("openssl crl -text: %v\n%s", err, text)
					}
					want := []string{
						"Version 2 (0x1)",
						"X509v3 Issuing Distribution Point: critical",
						"URI:" + testIDP,
						"Only User Certificates",
						"X509v3 CRL Number:",
						"1001",
						"Last Update: Mar 14 15:09:26 2026 GMT",
						"Next Update: Mar 21 15:09:26 2026 GMT",
					}
					if len(tc.entries) == 0 {
						want = append(want, "No Revoked Certificates.")
					} else {
						want = append(want, "Serial Number: 4E9F0C1D2E3F405162738495A6B7C8D9EA",
							"Serial Number: FF00000000000000000000000000000006",
							"Key Compromise", "Affiliation Changed", "Superseded", "Cessation Of Operation",
							"Privilege Withdrawn")
					}
					for _, w := range want {
						if !strings.Contains(string(text), w) {
							t.Errorf("openssl crl -text lacks %q:\n%s", w, text)
						}
					}
					// unspecified is omitted: six reasonCodes for seven entries.
					if n := strings.Count(string(text), "X509v3 CRL Reason Code:"); len(tc.entries) > 0 && n != len(tc.entries)-1 {
						t.Errorf("openssl shows %d reason codes, want %d", n, len(tc.entries)-1)
					}
				})
			}
		})
	}
}

// TestZlint runs every zlint CRL lint on CRLs shaped like Trustline's shards
// and full CRLs: no error or fatal result is allowed.
func TestZlint(t *testing.T) {
	iss := newIssuer(t, keyP256)
	full := baseParams(iss)
	full.IDPURI = ""
	tests := []struct {
		name    string
		p       crlenc.Params
		entries []crlenc.Entry
	}{
		{name: "shard", p: baseParams(iss), entries: shardEntries()},
		{name: "empty shard", p: baseParams(iss)},
		{name: "full CRL", p: full, entries: shardEntries()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			crl, err := zx509.ParseRevocationList(encode(t, tt.p, tt.entries, iss.key))
			if err != nil {
				t.Fatalf("zcrypto ParseRevocationList: %v", err)
			}
			rs := zlint.LintRevocationList(crl)
			if len(rs.Results) == 0 {
				t.Fatal("zlint ran no lints")
			}
			for name, r := range rs.Results {
				switch r.Status {
				case lint.Error, lint.Fatal:
					t.Errorf("%s: %s %s", name, r.Status, r.Details)
				case lint.Warn, lint.Notice:
					t.Logf("%s: %s %s", name, r.Status, r.Details)
				}
			}
			for _, name := range []string{"e_crl_extensions_validity", "e_crl_next_update_invalid", "e_cab_crl_has_valid_reason_code"} {
				if r, ok := rs.Results[name]; !ok || (r.Status != lint.Pass && r.Status != lint.NA) {
					t.Errorf("lint %s did not pass: %+v", name, r)
				}
			}
		})
	}
}
