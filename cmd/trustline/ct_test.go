package main

import (
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	ctgo "github.com/google/certificate-transparency-go"
	"github.com/google/certificate-transparency-go/ctutil"
	cttls "github.com/google/certificate-transparency-go/tls"
	ctx509 "github.com/google/certificate-transparency-go/x509"
	zx509 "github.com/zmap/zcrypto/x509"
	"github.com/zmap/zlint/v3"
	"github.com/zmap/zlint/v3/lint"

	"github.com/trustline/trustline/internal/testenv"
	"github.com/trustline/trustline/internal/testfix/ctlog"
)

// TestCertificateTransparency is issue #15's acceptance: `trustline dev`
// logging to three real CT logs (TesseraCT) of three operators, with a
// policy of 2 SCTs from 2 operators. A DV order's certificate embeds two
// SCTs, each verifying against its log's key; its precertificate is in
// those logs' tiles, and the final certificate follows; zlint's CT lints
// pass and openssl shows the SCT list. With one log down the policy is
// still met; with two down the order fails with a clear error, the
// precertificate's serial is good at the responder, can be revoked, and
// then is on its CRL shard; once a log's breaker is open nothing is signed.
func TestCertificateTransparency(t *testing.T) {
	if testing.Short() {
		t.Skip("runs CT logs and trustline dev")
	}
	testenv.NeedCommand(t, "openssl")
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	// A first start makes the hierarchy the logs must trust.
	startDev(t, "--data", data).stop(t)
	rootPEM, err := os.ReadFile(filepath.Join(data, "ca", "root.pem"))
	if err != nil {
		t.Fatal(err)
	}
	root, _ := pem.Decode(rootPEM)
	logs := map[string]*ctlog.Log{}
	for _, name := range []string{"alpha", "beta", "gamma"} {
		logs[name] = ctlog.Start(t, ctlog.Options{Roots: [][]byte{root.Bytes}, Name: name})
	}
	list := filepath.Join(dir, "ct-logs.json")
	os.WriteFile(list, ctlog.LogListJSON(map[string][]*ctlog.Log{
		"Operator A": {logs["alpha"]}, "Operator B": {logs["beta"]}, "Operator C": {logs["gamma"]},
	}), 0o600)
	cfg := filepath.Join(dir, "dev.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf("ct:\n  log_list: %s\n  timeout: 5s\n  breaker_failures: 1\n  breaker_cooldown: 10m\n", list)), 0o600)
	p := startDev(t, "--data", data, "--config", cfg)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("trustline dev:\n%s", tail(p.logs.String(), 6000))
		}
	})
	if !strings.Contains(p.logs.String(), "certificates are logged to Certificate Transparency") {
		t.Fatalf("dev did not say CT is on:\n%s", tail(p.logs.String(), 3000))
	}

	u := &user{t: t, p: p, data: data, work: t.TempDir()}
	acct := u.call("POST", "/api/v1/accounts", map[string]string{"email": "alice@example.com"}, 201)
	u.key = acct["api_key"].(string)
	v := u.call("POST", "/api/v1/validations", map[string]string{"domain": "example.com", "method": "email", "email": "admin@example.com"}, 201)
	u.call("POST", "/api/v1/validations/"+v["id"].(string)+"/confirm", map[string]string{"code": u.mailedCode("admin@example.com")}, 200)

	// All three up: two SCTs, of two operators.
	u.issueAndVerify("ec", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256")
	used := checkSCTs(t, u, "ec", logs)
	u.ocspStatus("ec", "good")

	// One log down (one the first certificate used): the others still meet it.
	logs[used[0]].Stop()
	u.issueAndVerify("ec2", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256")
	for _, name := range checkSCTs(t, u, "ec2", logs) {
		if name == used[0] {
			t.Errorf("an SCT from the stopped log %s", name)
		}
	}

	// Two down: the order fails, naming the precertificate it leaves.
	for name, l := range logs {
		if name != used[0] {
			l.Stop()
			break
		}
	}
	u.openssl("req", "-new", "-nodes", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-keyout", "ec3.key", "-out", "ec3.csr",
		"-subj", "/CN=www.example.com", "-addext", "subjectAltName=DNS:www.example.com")
	csr, _ := os.ReadFile(filepath.Join(u.work, "ec3.csr"))
	failed := u.call("POST", "/api/v1/orders", map[string]string{"csr": string(csr), "profile": "dv"}, 503)
	detail := fmt.Sprint(failed["detail"])
	m := regexp.MustCompile(`precertificate ([0-9a-f]+) is covered by OCSP and CRLs`).FindStringSubmatch(detail)
	if m == nil || !strings.Contains(detail, "Certificate Transparency") {
		t.Fatalf("order with two logs down: %v", failed)
	}
	pre := m[1]
	u.callRaw("GET", "/api/v1/certificates/"+pre, 409)
	u.ocspSerial(pre, "good")
	u.call("POST", "/api/v1/certificates/"+pre+"/revoke", map[string]string{"reason": "superseded"}, 200)
	u.ocspSerial(pre, "revoked")
	crlStart := time.Now()
	u.waitOnCRL("int-p256", pre)
	t.Logf("the revoked precertificate was on its CRL shard after %v", time.Since(crlStart).Round(time.Millisecond))

	// The breaker of the failed log is open now: nothing is signed.
	again := u.call("POST", "/api/v1/orders", map[string]string{"csr": string(csr), "profile": "dv"}, 503)
	if !strings.Contains(fmt.Sprint(again["detail"]), "nothing was signed") {
		t.Fatalf("order with a log's breaker open: %v", again)
	}
}

// checkSCTs checks the certificate saved as name.pem: openssl lists its
// SCTs, two SCTs of two operators verify against their logs' keys, each
// of those logs holds its precertificate, the final certificate follows,
// and zlint's CT lints pass. It returns the names of the logs used.
func checkSCTs(t *testing.T, u *user, name string, logs map[string]*ctlog.Log) []string {
	t.Helper()
	text := u.openssl("x509", "-in", name+".pem", "-noout", "-text")
	if !strings.Contains(text, "CT Precertificate SCTs") || strings.Count(text, "Signed Certificate Timestamp:") != 2 {
		t.Fatalf("%s: openssl shows no list of two SCTs:\n%s", name, text)
	}
	chain, _ := os.ReadFile(filepath.Join(u.work, name+"-chain.pem"))
	var ders [][]byte
	for rest := chain; ; {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			break
		}
		ders = append(ders, b.Bytes)
	}
	cert, err := ctx509.ParseCertificate(ders[0])
	if err != nil {
		t.Fatal(err)
	}
	issuer, err := ctx509.ParseCertificate(ders[1])
	if err != nil {
		t.Fatal(err)
	}
	var used []string
	for _, raw := range cert.SCTList.SCTList {
		var sct ctgo.SignedCertificateTimestamp
		if _, err := cttls.Unmarshal(raw.Val, &sct); err != nil {
			t.Fatal(err)
		}
		var from string
		for n, l := range logs {
			if l.LogID == sct.LogID.KeyID {
				from = n
			}
		}
		if from == "" {
			t.Fatalf("%s: an SCT from an unknown log %x", name, sct.LogID.KeyID)
		}
		key, err := ctx509.ParsePKIXPublicKey(logs[from].PublicKeyDER)
		if err != nil {
			t.Fatal(err)
		}
		if err := ctutil.VerifySCT(key, []*ctx509.Certificate{cert, issuer}, &sct, true); err != nil {
			t.Errorf("%s: the SCT of %s does not verify: %v", name, from, err)
		}
		used = append(used, from)
		// The log's tiles hold the precertificate, and then the final
		// certificate, submitted in the background.
		var pre, final bool
		deadline := time.Now().Add(15 * time.Second)
		for !(pre && final) && time.Now().Before(deadline) {
			for _, e := range logs[from].Entries(t) {
				if e.Precert {
					if pc, err := ctx509.ParseCertificate(e.PreCertificate); err == nil && pc.SerialNumber.Cmp(cert.SerialNumber) == 0 {
						pre = true
					}
				} else if string(e.Certificate) == string(ders[0]) {
					final = true
				}
			}
			if !(pre && final) {
				time.Sleep(200 * time.Millisecond)
			}
		}
		if !pre || !final {
			t.Errorf("%s: log %s holds the precertificate %v, the final certificate %v", name, from, pre, final)
		}
	}
	if len(used) != 2 || used[0] == used[1] {
		t.Fatalf("%s: SCTs from %v, want two logs", name, used)
	}
	zc, err := zx509.ParseCertificate(ders[0])
	if err != nil {
		t.Fatal(err)
	}
	res := zlint.LintCertificate(zc)
	ran := 0
	for lname, r := range res.Results {
		if strings.Contains(lname, "_ct_") || strings.Contains(lname, "sct") {
			ran++
			if r.Status != lint.Pass && r.Status != lint.NA && r.Status != lint.NE {
				t.Errorf("%s: zlint %s: %s %s", name, lname, r.Status, r.Details)
			}
		}
	}
	if ran == 0 {
		t.Errorf("%s: zlint ran no CT lint", name)
	}
	return used
}

// ocspSerial asks the responder about a serial of the ECDSA intermediate.
func (u *user) ocspSerial(sn, want string) {
	u.t.Helper()
	out := u.openssl("ocsp", "-issuer", filepath.Join(u.data, "ca", "int-p256.pem"), "-serial", "0x"+sn, "-url", u.p.ocsp,
		"-CAfile", filepath.Join(u.data, "ca", "root.pem"), "-resp_text")
	if !strings.Contains(out, "Response verify OK") || !strings.Contains(out, ": "+want) {
		u.t.Fatalf("openssl ocsp for serial %s: want %s:\n%s", sn, want, out)
	}
}

// callRaw makes an API call and checks only its status.
func (u *user) callRaw(method, path string, want int) {
	u.t.Helper()
	req, _ := http.NewRequest(method, u.p.api+path, nil)
	req.Header.Set("Authorization", "Bearer "+u.key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		u.t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != want {
		u.t.Fatalf("%s %s: %d %s, want %d", method, path, resp.StatusCode, body, want)
	}
}

// waitOnCRL waits (dev mode: within 60 s) for serial sn to be listed on
// one of the issuer's CRL shards, each verified with openssl.
func (u *user) waitOnCRL(issuerID, sn string) {
	u.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get(u.p.crl + "/" + issuerID + "/crls.json")
		if err != nil {
			u.t.Fatal(err)
		}
		var urls []string
		json.NewDecoder(resp.Body).Decode(&urls)
		resp.Body.Close()
		for _, x := range urls {
			r, err := http.Get(x)
			if err != nil {
				u.t.Fatal(err)
			}
			der, _ := io.ReadAll(r.Body)
			r.Body.Close()
			os.WriteFile(filepath.Join(u.work, "shard.crl"), der, 0o600)
			out := u.openssl("crl", "-inform", "DER", "-in", "shard.crl", "-CAfile", filepath.Join(u.data, "ca", issuerID+".pem"), "-noout", "-text")
			if strings.Contains(out, "verify OK") && strings.Contains(strings.ToUpper(out), strings.ToUpper(sn)) {
				return
			}
		}
		if time.Now().After(deadline) {
			u.t.Fatalf("serial %s on none of %s's CRL shards within 60 s", sn, issuerID)
		}
		time.Sleep(500 * time.Millisecond)
	}
}
