package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/trustline/trustline/internal/pkcs11key/hsmtest"
	"github.com/trustline/trustline/internal/testenv"
	"github.com/trustline/trustline/internal/testenv/pgtest"
)

// user drives a running `trustline dev` as a new user would: JSON over
// HTTP for the API, openssl for keys, CSRs and chain verification.
type user struct {
	t       *testing.T
	p       *devProc
	data    string
	key     string
	work    string
	revoked string
}

func (u *user) call(method, path string, body any, want int) map[string]any {
	u.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, u.p.api+path, rd)
	req.Header.Set("Content-Type", "application/json")
	if u.key != "" {
		req.Header.Set("Authorization", "Bearer "+u.key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		u.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		u.t.Fatalf("%s %s = %d, want %d: %s", method, path, resp.StatusCode, want, raw)
	}
	out := map[string]any{}
	json.Unmarshal(raw, &out)
	return out
}

func (u *user) openssl(args ...string) string {
	u.t.Helper()
	cmd := exec.Command("openssl", args...)
	cmd.Dir = u.work
	out, err := cmd.CombinedOutput()
	if err != nil {
		u.t.Fatalf("openssl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

var mailCodeRE = regexp.MustCompile(`(?m)^Validation code: (\S+)\r?$`)

func (u *user) mailedCode(to string) string {
	u.t.Helper()
	files, _ := filepath.Glob(filepath.Join(u.data, "mail", "*.eml"))
	for i := len(files) - 1; i >= 0; i-- {
		b, _ := os.ReadFile(files[i])
		if bytes.Contains(b, []byte("To: "+to+"\r\n")) {
			if m := mailCodeRE.FindSubmatch(b); m != nil {
				return string(m[1])
			}
		}
	}
	u.t.Fatalf("no code mailed to %s in %s/mail", to, u.data)
	return ""
}

// issueAndVerify runs the DV journey for one key type and verifies the
// chain with openssl against ca/root.pem.
func (u *user) issueAndVerify(keyName string, keyArgs ...string) string {
	u.t.Helper()
	u.openssl(append([]string{"req", "-new", "-nodes", "-keyout", keyName + ".key", "-out", keyName + ".csr",
		"-subj", "/CN=www.example.com", "-addext", "subjectAltName=DNS:www.example.com,DNS:example.com"}, keyArgs...)...)
	csr, _ := os.ReadFile(filepath.Join(u.work, keyName+".csr"))
	ord := u.call("POST", "/api/v1/orders", map[string]string{"csr": string(csr), "profile": "dv"}, 201)
	if ord["status"] != "issued" {
		u.t.Fatalf("order %v", ord)
	}
	sn := ord["serial"].(string)
	req, _ := http.NewRequest("GET", u.p.api+"/api/v1/certificates/"+sn, nil)
	req.Header.Set("Authorization", "Bearer "+u.key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		u.t.Fatal(err)
	}
	chain, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		u.t.Fatalf("GET certificate: %d %s", resp.StatusCode, chain)
	}
	blocks := strings.SplitAfter(string(chain), "-----END CERTIFICATE-----\n")
	os.WriteFile(filepath.Join(u.work, keyName+".pem"), []byte(blocks[0]), 0o600)
	os.WriteFile(filepath.Join(u.work, keyName+"-chain.pem"), chain, 0o600)
	out := u.openssl("verify", "-CAfile", filepath.Join(u.data, "ca", "root.pem"), "-untrusted", keyName+"-chain.pem", keyName+".pem")
	if !strings.Contains(out, ": OK") {
		u.t.Fatalf("openssl verify: %s", out)
	}
	text := u.openssl("x509", "-in", keyName+".pem", "-noout", "-text")
	for _, want := range []string{"2.23.140.1.2.1", "TLS Web Server Authentication", "OCSP - URI:" + u.p.ocsp + "/", "CA Issuers - URI:" + u.p.crl + "/", u.p.crl + "/int-"} {
		if !strings.Contains(text, want) {
			u.t.Errorf("%s certificate lacks %q:\n%s", keyName, want, text)
		}
	}
	return sn
}

// journey is the acceptance walk: account, validation by mailed code, DV
// orders for an ECDSA and an RSA CSR, chains verified by openssl, and a
// revocation.
func journey(t *testing.T, p *devProc, data string) *user {
	testenv.NeedCommand(t, "openssl")
	u := &user{t: t, p: p, data: data, work: t.TempDir()}
	acct := u.call("POST", "/api/v1/accounts", map[string]string{"email": "alice@example.com"}, 201)
	u.key = acct["api_key"].(string)
	issuers := u.call("GET", "/api/v1/issuers", nil, 200)
	_ = issuers
	v := u.call("POST", "/api/v1/validations", map[string]string{"domain": "example.com", "method": "email", "email": "admin@example.com"}, 201)
	u.call("POST", "/api/v1/validations/"+v["id"].(string)+"/confirm", map[string]string{"code": u.mailedCode("admin@example.com")}, 200)
	ec := u.issueAndVerify("ec", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256")
	u.issueAndVerify("rsa", "-newkey", "rsa:2048")
	u.ocspStatus("ec", "good")
	u.ocspStatus("rsa", "good")
	u.call("POST", "/api/v1/certificates/"+ec+"/revoke", map[string]string{"reason": "keyCompromise"}, 200)
	u.ocspStatus("ec", "revoked")
	u.call("POST", "/api/v1/certificates/"+ec+"/revoke", map[string]string{"reason": "keyCompromise"}, 409)

	out, err := exec.Command(binary, "audit", "verify", "--data", data).CombinedOutput()
	if p.postgres != "" {
		out, err = exec.Command(binary, "audit", "verify", "--data", data, "--postgres", p.postgres).CombinedOutput()
	}
	if err != nil || !strings.Contains(string(out), "audit chain OK") {
		t.Errorf("audit verify: %v\n%s", err, out)
	}
	u.revoked = ec
	return u
}

// ocspStatus asks the responder about a certificate with openssl ocsp,
// verifying the response against ca/root.pem.
func (u *user) ocspStatus(keyName, want string) {
	u.t.Helper()
	u.ocspStatusReason(keyName, want, "keyCompromise")
}

// ocspStatusReason is ocspStatus with the reason a revoked response must
// give.
func (u *user) ocspStatusReason(keyName, want, why string) {
	u.t.Helper()
	chain, _ := os.ReadFile(filepath.Join(u.work, keyName+"-chain.pem"))
	blocks := strings.SplitAfter(string(chain), "-----END CERTIFICATE-----\n")
	os.WriteFile(filepath.Join(u.work, keyName+"-issuer.pem"), []byte(blocks[1]), 0o600)
	out := u.openssl("ocsp", "-issuer", keyName+"-issuer.pem", "-cert", keyName+".pem", "-url", u.p.ocsp,
		"-CAfile", filepath.Join(u.data, "ca", "root.pem"), "-resp_text")
	if !strings.Contains(out, "Response verify OK") || !strings.Contains(out, keyName+".pem: "+want) {
		u.t.Fatalf("openssl ocsp for %s: want %s, verified:\n%s", keyName, want, out)
	}
	if want == "revoked" && !strings.Contains(out, "Reason: "+why) {
		u.t.Errorf("revoked response lacks its reason:\n%s", out)
	}
}

// checkCRL waits (dev mode: within 60 s) for the revoked certificate to
// appear in the shard its CRL distribution point names, and checks that
// CRL with openssl.
func (u *user) checkCRL() {
	u.t.Helper()
	u.checkCRLOf("ec.pem")
}

// checkCRLOf is checkCRL for the certificate in file (under u.work),
// revoked for keyCompromise, whose serial is u.revoked.
func (u *user) checkCRLOf(file string) {
	u.t.Helper()
	text := u.openssl("x509", "-in", file, "-noout", "-text")
	m := regexp.MustCompile(`URI:(http://\S+\.crl)`).FindStringSubmatch(text)
	if m == nil {
		u.t.Fatalf("no CRL distribution point in:\n%s", text)
	}
	crlURL := m[1]
	issuerID := strings.Split(strings.TrimPrefix(crlURL, u.p.crl+"/"), "/")[0]
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get(crlURL)
		if err != nil {
			u.t.Fatal(err)
		}
		der, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == 200 {
			if resp.Header.Get("Content-Type") != "application/pkix-crl" {
				u.t.Errorf("CRL Content-Type %q", resp.Header.Get("Content-Type"))
			}
			os.WriteFile(filepath.Join(u.work, "shard.crl"), der, 0o600)
			out := u.openssl("crl", "-inform", "DER", "-in", "shard.crl", "-CAfile", filepath.Join(u.data, "ca", issuerID+".pem"), "-noout", "-text")
			if !strings.Contains(out, "verify OK") {
				u.t.Fatalf("openssl crl does not verify the shard:\n%s", out)
			}
			if strings.Contains(strings.ToUpper(out), strings.ToUpper(u.revoked)) {
				if !strings.Contains(out, "Key Compromise") {
					u.t.Errorf("revoked entry lacks its reason:\n%s", out)
				}
				if !strings.Contains(out, crlURL) || !strings.Contains(out, "Only User Certificates") {
					u.t.Errorf("IDP does not name %s with onlyContainsUserCerts:\n%s", crlURL, out)
				}
				break
			}
		}
		if time.Now().After(deadline) {
			u.t.Fatalf("serial %s not on %s within 60 s", u.revoked, crlURL)
		}
		time.Sleep(500 * time.Millisecond)
	}
	resp, err := http.Get(u.p.crl + "/" + issuerID + "/crls.json")
	if err != nil {
		u.t.Fatal(err)
	}
	var urls []string
	json.NewDecoder(resp.Body).Decode(&urls)
	resp.Body.Close()
	found := false
	for _, x := range urls {
		found = found || x == crlURL
		r, err := http.Head(x)
		if err != nil || r.StatusCode != 200 {
			u.t.Errorf("HEAD %s: %v %v", x, err, r)
		}
	}
	if !found || len(urls) < 2 {
		u.t.Errorf("crls.json %v lacks %s", urls, crlURL)
	}
}

func TestJourneyEmbedded(t *testing.T) {
	data := filepath.Join(t.TempDir(), "dev")
	p := startDev(t, "--data", data)
	journey(t, p, data).checkCRL()
	for _, f := range []string{"admin.key", "reviewer.key", "keys/trustline-int-p256.key"} {
		st, err := os.Stat(filepath.Join(data, f))
		if err != nil || st.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v, mode %v; want 0600", f, err, st.Mode().Perm())
		}
	}
	p.stop(t)
}

func TestJourneyPostgres(t *testing.T) {
	url := freshDatabase(t)
	data := filepath.Join(t.TempDir(), "dev")
	p := startDev(t, "--data", data, "--postgres", url)
	p.postgres = url
	journey(t, p, data).checkCRL()
	p.stop(t)
}

func TestJourneyRedis(t *testing.T) {
	testenv.NeedTCP(t, "Redis", "127.0.0.1:6379")
	data := filepath.Join(t.TempDir(), "dev")
	// Database 7 is this test's; keys carry the data dir's instance prefix.
	p := startDev(t, "--data", data, "--redis", "redis://127.0.0.1:6379/7")
	t.Cleanup(func() { dropRedisKeys(t, 7, "trustline:ocsp:"+p.instance+":*") })
	journey(t, p, data)
	p.stop(t)
}

// dropRedisKeys removes what a test left in the shared Redis.
func dropRedisKeys(t *testing.T, db int, pattern string) {
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379", DB: db})
	defer c.Close()
	ctx := context.Background()
	iter := c.Scan(ctx, 0, pattern, 1000).Iterator()
	for iter.Next(ctx) {
		c.Del(ctx, iter.Val())
	}
}

func TestJourneyHSM(t *testing.T) {
	module, label, pin := hsmtest.NewToken(t) // sets SOFTHSM2_CONF for the child too
	data := filepath.Join(t.TempDir(), "dev")
	p := startDev(t, "--data", data, "--hsm-module", module, "--hsm-token", label, "--hsm-pin", pin)
	journey(t, p, data)
	p.stop(t)
	// No private key may be written under the data dir.
	filepath.Walk(data, func(path string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() {
			return nil
		}
		b, _ := os.ReadFile(path)
		if bytes.Contains(b, []byte("PRIVATE KEY")) {
			t.Errorf("%s holds a private key although keys live in the HSM", path)
		}
		return nil
	})
	if _, err := os.Stat(filepath.Join(data, "keys")); err == nil {
		t.Error("keys/ exists under the data dir with --hsm-module")
	}
	// A restart finds the keys in the token again.
	p = startDev(t, "--data", data, "--hsm-module", module, "--hsm-token", label, "--hsm-pin", pin)
	getOK(t, p.api+"/healthz")
	p.stop(t)
}

// freshDatabase creates an empty PostgreSQL database for one test.
func freshDatabase(t *testing.T) string { return pgtest.FreshDatabase(t) }

// TestCAInitCeremony runs the production ceremony on SoftHSM2: every key
// is generated in the token, certificates and a summary come out, no
// private key is written, and a second run refuses to overwrite.
func TestCAInitCeremony(t *testing.T) {
	module, label, pin := hsmtest.NewToken(t)
	dir := t.TempDir()
	out := filepath.Join(dir, "ceremony")
	cfg := filepath.Join(dir, "ceremony.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`out: %s
hsm:
  module: %s
  token: %s
organization: Example Trust Services
country: GB
common_prefix: Example TLS
root_key_alg: ecdsa-p384
issuers:
  - {id: int-e1, key_alg: ecdsa-p256}
  - {id: int-r1, key_alg: rsa-2048}
base_url: http://crl.example.com
responder_validity: 720h
`, out, module, label)), 0o600)
	cmd := exec.Command(binary, "ca", "init", "--config", cfg)
	cmd.Env = append(os.Environ(), "TRUSTLINE_HSM_PIN="+pin)
	stdout, err := cmd.Output()
	if err != nil {
		t.Fatalf("ca init: %v\n%s", err, stdout)
	}
	var raw map[string]any
	if err := json.Unmarshal(stdout, &raw); err != nil {
		t.Fatalf("summary is not JSON: %v\n%s", err, stdout)
	}
	certs, _ := raw["certificates"].([]any)
	if len(certs) != 5 {
		t.Fatalf("summary lists %d certificates, want root + 2 intermediates + 2 responders:\n%s", len(certs), stdout)
	}
	for _, c := range certs {
		m := c.(map[string]any)
		if !strings.HasPrefix(m["key_location"].(string), "pkcs11 token") || len(m["sha256_fingerprint"].(string)) != 64 {
			t.Errorf("summary entry %v", m)
		}
	}
	for _, f := range []string{"root.pem", "int-e1.pem", "int-r1.pem", "int-e1-ocsp.pem", "pki.json", "summary.json"} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			t.Errorf("missing %s: %v", f, err)
		}
	}
	u := &user{t: t, work: out}
	if v := u.openssl("verify", "-CAfile", "root.pem", "int-e1.pem"); !strings.Contains(v, "OK") {
		t.Errorf("intermediate does not verify: %s", v)
	}
	filepath.Walk(dir, func(path string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() {
			if b, _ := os.ReadFile(path); bytes.Contains(b, []byte("PRIVATE KEY")) {
				t.Errorf("%s holds a private key", path)
			}
		}
		return nil
	})
	again := exec.Command(binary, "ca", "init", "--config", cfg)
	again.Env = cmd.Env
	if err := again.Run(); err == nil {
		t.Error("a second ceremony into the same directory succeeded")
	}
}

// TestPurgesReachTheEdge: with a purge webhook configured, a revocation
// queues a purge of the certificate's OCSP responses (tag ocsp-<serial>)
// and the CRL publication that follows queues one of the shard's URL.
func TestPurgesReachTheEdge(t *testing.T) {
	var (
		mu     sync.Mutex
		events []map[string]any
	)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var ev map[string]any
		json.NewDecoder(r.Body).Decode(&ev)
		mu.Lock()
		events = append(events, ev)
		mu.Unlock()
	}))
	defer hook.Close()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "dev.yaml")
	os.WriteFile(cfg, []byte("purge:\n  webhook: "+hook.URL+"\n"), 0o600)
	data := filepath.Join(dir, "dev")
	p := startDev(t, "--data", data, "--config", cfg)
	u := journey(t, p, data)
	seen := func(event, field, want string) bool {
		mu.Lock()
		defer mu.Unlock()
		for _, ev := range events {
			if ev["event"] == event && strings.Contains(fmt.Sprint(ev[field]), want) {
				return true
			}
		}
		return false
	}
	deadline := time.Now().Add(60 * time.Second)
	for !(seen("tag.purge", "tag", "ocsp-"+u.revoked) && seen("crl.published", "url", "/int-p256/")) {
		if time.Now().After(deadline) {
			mu.Lock()
			t.Fatalf("purge events after 60 s: %v", events)
		}
		time.Sleep(200 * time.Millisecond)
	}
	p.stop(t)
}

// crlNumber reads openssl's rendering of a CRL number: decimal when it
// fits 64 bits, colon-separated hex beyond.
func crlNumber(s string) *big.Int {
	base := 10
	if strings.Contains(s, ":") {
		base = 16
	}
	n, _ := new(big.Int).SetString(strings.ReplaceAll(s, ":", ""), base)
	if n == nil {
		return new(big.Int)
	}
	return n
}

var crlNumberRE = regexp.MustCompile(`CRL Number:\s*\n\s*([0-9A-Fa-f:]+)`)

// TestCRLShardsAsAUserSeesThem revokes certificates with different reasons
// and follows each into the shard its CRL distribution point names: the
// CRL verifies, carries the reason (none for unspecified), and the shard's
// CRL number rises with each publication.
func TestCRLShardsAsAUserSeesThem(t *testing.T) {
	data := filepath.Join(t.TempDir(), "dev")
	p := startDev(t, "--data", data)
	u := journey(t, p, data)
	reasons := []struct{ api, text string }{{"superseded", "Superseded"}, {"cessationOfOperation", "Cessation Of Operation"}, {"unspecified", ""}}
	for i, r := range reasons {
		name := fmt.Sprintf("r%d", i)
		sn := u.issueAndVerify(name, "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256")
		u.call("POST", "/api/v1/certificates/"+sn+"/revoke", map[string]string{"reason": r.api}, 200)
		text := u.openssl("x509", "-in", name+".pem", "-noout", "-text")
		crlURL := regexp.MustCompile(`URI:(http://\S+\.crl)`).FindStringSubmatch(text)[1]
		issuerID := strings.Split(strings.TrimPrefix(crlURL, p.crl+"/"), "/")[0]
		var first string
		sawWithout := false // a CRL without the entry was seen first
		deadline := time.Now().Add(60 * time.Second)
		for {
			resp, err := http.Get(crlURL)
			if err != nil {
				t.Fatal(err)
			}
			der, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			os.WriteFile(filepath.Join(u.work, name+".crl"), der, 0o600)
			out := u.openssl("crl", "-inform", "DER", "-in", name+".crl", "-CAfile", filepath.Join(data, "ca", issuerID+".pem"), "-noout", "-text")
			m := crlNumberRE.FindStringSubmatch(out)
			if m == nil || !strings.Contains(out, "verify OK") {
				t.Fatalf("shard %s: no CRL number or does not verify:\n%s", crlURL, out)
			}
			if first == "" {
				first = m[1]
			}
			if i := strings.Index(strings.ToUpper(out), strings.ToUpper(sn)); i >= 0 {
				entry := out[i:]
				if next := strings.Index(entry[1:], "Serial Number"); next > 0 {
					entry = entry[:next]
				}
				if r.text != "" && !strings.Contains(entry, r.text) {
					t.Errorf("%s revoked for %s, entry says:\n%s", sn, r.api, entry)
				}
				if r.text == "" && strings.Contains(entry, "Reason Code") {
					t.Errorf("unspecified must be omitted (BR 7.2.2), entry says:\n%s", entry)
				}
				if first != m[1] && crlNumber(m[1]).Cmp(crlNumber(first)) <= 0 {
					t.Errorf("CRL number did not rise: %s then %s", first, m[1])
				}
				if first == m[1] && sawWithout {
					t.Errorf("the shard changed without a new CRL number %s", first)
				}
				break
			}
			sawWithout = true
			if time.Now().After(deadline) {
				t.Fatalf("%s not on %s within 60 s", sn, crlURL)
			}
			time.Sleep(500 * time.Millisecond)
		}
	}
	p.stop(t)
}

// TestInitOfflineRootInAnotherToken: init keeps the root key in its own
// token, the plant's token holds no root, and the ceremony signs the
// root's next CRL from the root's token only.
func TestInitOfflineRootInAnotherToken(t *testing.T) {
	module, label, pin := hsmtest.NewToken(t)
	rootLabel := label + "-root"
	util, err := exec.LookPath("softhsm2-util")
	if err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(util, "--init-token", "--free", "--label", rootLabel, "--pin", pin, "--so-pin", hsmtest.SOPIN).CombinedOutput(); err != nil {
		t.Fatalf("second token: %v\n%s", err, out)
	}
	dir := t.TempDir()
	pinFile := filepath.Join(dir, "pin")
	os.WriteFile(pinFile, []byte(pin+"\n"), 0o600)
	etc := filepath.Join(dir, "etc")
	out, err := exec.Command(binary, "init", "--dir", etc, "--postgres", freshDatabase(t), "--redis", "redis://127.0.0.1:6379",
		"--ocsp-url", "http://ocsp.example.com/", "--crl-url", "http://crl.example.com",
		"--hsm-module", module, "--hsm-token", label, "--hsm-pin-file", pinFile,
		"--root-hsm-token", rootLabel, "--root-hsm-pin-file", pinFile).CombinedOutput()
	if err != nil {
		t.Fatalf("init: %v\n%s", err, out)
	}
	if !bytes.Contains(out, []byte("--root-hsm-token "+rootLabel)) || !bytes.Contains(out, []byte("keep it offline")) {
		t.Errorf("init does not say how to run the root CRL ceremony:\n%s", out)
	}
	cfg := filepath.Join(etc, "trustline.yaml")
	ceremony := func(token string) ([]byte, error) {
		return exec.Command(binary, "ca", "root-crl", "--config", cfg, "--root-hsm-token", token, "--root-hsm-pin-file", pinFile, "--days", "90").CombinedOutput()
	}
	if out, err := ceremony(label); err == nil || !bytes.Contains(out, []byte("not there")) {
		t.Errorf("the plant's token gave a root key: %v\n%s", err, out)
	}
	out, err = ceremony(rootLabel)
	if err != nil || !regexp.MustCompile(`Root CRL \d+ signed and stored`).Match(out) {
		t.Fatalf("ceremony: %v\n%s", err, out)
	}
	if out, err := exec.Command(binary, "ca", "root-crl", "--config", cfg, "--root-hsm-token", rootLabel, "--root-hsm-pin-file", pinFile, "--days", "400").CombinedOutput(); err == nil {
		t.Errorf("a root CRL valid 400 days was signed:\n%s", out)
	}
}
