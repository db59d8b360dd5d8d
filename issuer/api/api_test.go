package api_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/trustline/trustline/internal/linter"
	"github.com/trustline/trustline/internal/mail"
	"github.com/trustline/trustline/internal/store"
	"github.com/trustline/trustline/internal/store/sqlite"
	"github.com/trustline/trustline/internal/testfix"
	"github.com/trustline/trustline/internal/testfix/dnstest"
	"github.com/trustline/trustline/issuer"
	"github.com/trustline/trustline/issuer/acme"
	"github.com/trustline/trustline/issuer/api"
	"github.com/trustline/trustline/issuer/caa"
	"github.com/trustline/trustline/issuer/issuertest"
	"github.com/trustline/trustline/issuer/pki"
	"github.com/trustline/trustline/issuer/validation"
)

type env struct {
	srv     *httptest.Server
	mailDir string
	pki     *pki.PKI
	lint    *linter.Linter
	admin   string
	admin2  string // a second admin: dual control is on
	h       *api.Handler
	st      store.Store
	zone    *dnstest.Zone // the DNS the CA's resolver sees
	web     *testWeb      // every name in zone with an A record serves from here
	whois   *testWhois    // nil unless envOpts.whois
	skew    *atomic.Int64
}

// envOpts vary the environment; the zero value is what most tests use.
type envOpts struct {
	whois        bool        // offer whois-email
	dnsTransport string      // "" (udp) or "tcp"
	resolver     string      // replaces the test zone as the CA's resolver
	store        store.Store // nil: a fresh SQLite file
}

func newEnv(t testing.TB) *env {
	t.Helper()
	return newEnvWith(t, envOpts{})
}

func newEnvWith(t testing.TB, o envOpts) *env {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	log := testfix.QuietLogger()
	st := o.store
	if st == nil {
		s, err := sqlite.Open(ctx, sqlite.Config{Path: filepath.Join(dir, "t.db")}, log)
		if err != nil {
			t.Fatal(err)
		}
		st = s
	}
	t.Cleanup(func() { st.Close() })
	iss := issuertest.New(t, st, 0x11)
	ca, p, lt := iss.CA, iss.PKI, iss.Linter
	mailDir := filepath.Join(dir, "mail")
	mailer := mail.Dir{Path: mailDir}
	accounts := issuer.NewAccounts(st, nil)
	zone, web := dnstest.Start(t), startWeb(t)
	// skew moves the validations' clock, to expire them.
	skew := new(atomic.Int64)
	vcfg := validation.Config{Resolver: zone.Addr, DNSTransport: o.dnsTransport, HTTPPort: mustAtoi(t, web.port()),
		AllowPrivateAddresses: true, HTTPTimeout: 5 * time.Second, DNSTimeout: 2 * time.Second}
	if o.resolver != "" {
		vcfg.Resolver = o.resolver
	}
	var who *testWhois
	if o.whois {
		who = startWhois(t)
		vcfg.WhoisEmail, vcfg.WhoisServer = true, who.ln.Addr().String()
	}
	vals, err := validation.New(vcfg, validation.Deps{Store: st, Mail: mailer, Log: log,
		Now: func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }})
	if err != nil {
		t.Fatal(err)
	}
	// Every order is checked against CAA records in the test zone, as a
	// publicly trusted CA's must be; no records there permits.
	checker, err := caa.New(caa.Config{Identities: []string{caaIdentity}, Resolver: zone.Addr, Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	wf := issuertest.NewWorkflowCAA(t, st, ca, vals, mailer, log, checker)
	eab, err := acme.NewEABKeys(st, make([]byte, 32), nil)
	if err != nil {
		t.Fatal(err)
	}
	h := api.New(api.Deps{Store: st, Accounts: accounts, EABKeys: eab, Plans: acme.NewRevocationPlans(st, nil), Keys: issuer.NewKeys(st, nil), Staff: issuer.NewStaff(st, nil, true), Confirmations: confirmations(t, st, mailer), Validations: vals, Orders: wf.Orders, Reviews: wf.Reviews, CA: ca, PKI: p, Log: log})
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	_, adminKey, err := accounts.Create(ctx, "root@example.net", store.RoleAdmin)
	if err != nil {
		t.Fatal(err)
	}
	_, admin2Key, err := accounts.Create(ctx, "second-admin@example.net", store.RoleAdmin)
	if err != nil {
		t.Fatal(err)
	}
	return &env{srv: srv, mailDir: mailDir, pki: p, lint: lt, admin: adminKey, admin2: admin2Key, h: h, st: st, zone: zone, web: web, whois: who, skew: skew}
}

func mustAtoi(t testing.TB, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// call sends a JSON request and decodes the JSON (or problem) answer.
// callClient gives up on an API that does not answer: no call in these
// tests should take more than a fraction of its timeout.
var callClient = &http.Client{Timeout: 30 * time.Second}

func (e *env) call(t testing.TB, method, path, key string, body any) (int, map[string]any, http.Header) {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		j, _ := json.Marshal(b)
		rd = bytes.NewReader(j)
	}
	req, _ := http.NewRequest(method, e.srv.URL+path, rd)
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := callClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	out := map[string]any{}
	if resp.StatusCode >= 400 {
		if ct := resp.Header.Get("Content-Type"); ct != "application/problem+json" {
			t.Errorf("%s %s: error with Content-Type %q", method, path, ct)
		}
	}
	json.Unmarshal(raw, &out)
	out["_raw"] = string(raw)
	return resp.StatusCode, out, resp.Header
}

// newAccount signs up with email and confirms the address by the mailed
// link, as a subscriber does before Trustline mails it anything else.
func (e *env) newAccount(t testing.TB, email string) string {
	t.Helper()
	key := e.newUnconfirmedAccount(t, email)
	e.confirmAddress(t, email)
	return key
}

func (e *env) newUnconfirmedAccount(t testing.TB, email string) string {
	t.Helper()
	code, out, _ := e.call(t, "POST", "/api/v1/accounts", "", map[string]string{"email": email})
	if code != 201 {
		t.Fatalf("create account: %d %v", code, out)
	}
	return out["api_key"].(string)
}

var confirmRE = regexp.MustCompile(`confirm-email\?token=(\S+)`)

// confirmAddress follows the newest confirmation link mailed to email.
func (e *env) confirmAddress(t testing.TB, email string) {
	t.Helper()
	ms := issuertest.Mails(t, e.mailDir, strings.ToLower(email))
	var token string
	for _, m := range ms {
		if mm := confirmRE.FindStringSubmatch(m); mm != nil {
			token = mm[1]
		}
	}
	if token == "" {
		t.Fatalf("no confirmation link mailed to %s", email)
	}
	if c, out, _ := e.call(t, "POST", "/api/v1/email-confirmations", "", map[string]string{"token": token}); c != 200 {
		t.Fatalf("confirming %s: %d %v", email, c, out)
	}
}

// confirmations builds the address confirmation service of the tests.
func confirmations(t testing.TB, st store.Store, m mail.Sender) *issuer.Confirmations {
	t.Helper()
	c, err := issuer.NewConfirmations(issuer.ConfirmConfig{Key: bytes.Repeat([]byte{7}, 32), BaseURL: "http://api.test"},
		issuer.ConfirmDeps{Store: st, Mail: m})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

var codeRE = regexp.MustCompile(`(?m)^Validation code: (\S+)\r?$`)

// lastCode reads the newest mailed code to addr.
func (e *env) lastCode(t testing.TB, addr string) string {
	t.Helper()
	ms := issuertest.Mails(t, e.mailDir, addr)
	for i := len(ms) - 1; i >= 0; i-- {
		if m := codeRE.FindStringSubmatch(ms[i]); m != nil {
			return m[1]
		}
	}
	t.Fatalf("no validation code mailed to %s", addr)
	return ""
}

func (e *env) validate(t testing.TB, key, domain string) {
	t.Helper()
	code, out, _ := e.call(t, "POST", "/api/v1/validations", key, map[string]string{"domain": domain, "method": "email", "email": "admin@" + domain})
	if code != 201 || out["status"] != "pending" {
		t.Fatalf("start validation: %d %v", code, out)
	}
	id := out["id"].(string)
	code, out, _ = e.call(t, "POST", "/api/v1/validations/"+id+"/confirm", key, map[string]string{"code": e.lastCode(t, "admin@"+domain)})
	if code != 200 || out["status"] != "valid" {
		t.Fatalf("confirm: %d %v", code, out)
	}
}

func csrPEM(t testing.TB, key crypto.Signer, names ...string) string {
	t.Helper()
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: names[0]}, DNSNames: names}, key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))
}

func TestDVEndToEnd(t *testing.T) {
	e := newEnv(t)
	key := e.newAccount(t, "alice@example.com")
	e.validate(t, key, "example.com")

	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	for _, k := range []crypto.Signer{ecKey, rsaKey} {
		code, out, _ := e.call(t, "POST", "/api/v1/orders", key, map[string]string{"csr": csrPEM(t, k, "www.example.com", "example.com"), "profile": "dv"})
		if code != 201 || out["status"] != "issued" {
			t.Fatalf("order: %d %v", code, out)
		}
		sn := out["serial"].(string)
		code, got, _ := e.call(t, "GET", "/api/v1/orders/"+out["id"].(string), key, nil)
		if code != 200 || got["serial"] != sn {
			t.Fatalf("get order: %d %v", code, got)
		}
		req, _ := http.NewRequest("GET", e.srv.URL+"/api/v1/certificates/"+sn, nil)
		req.Header.Set("Authorization", "Bearer "+key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		chain, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/pem-certificate-chain" {
			t.Fatalf("get certificate: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		certs := testfix.ParsePEMChain(t, chain)
		if len(certs) != 2 {
			t.Fatalf("chain has %d certificates, want leaf + intermediate", len(certs))
		}
		roots, inter := x509.NewCertPool(), x509.NewCertPool()
		roots.AddCert(e.pki.Root.Cert)
		inter.AddCert(certs[1])
		if _, err := certs[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, DNSName: "www.example.com"}); err != nil {
			t.Errorf("chain does not verify: %v", err)
		}
		if err := e.lint.Certificate(certs[0].Raw); err != nil {
			t.Errorf("leaf: %v", err)
		}
		if !strings.Contains(string(mustReadAllMail(t, e.mailDir)), sn) {
			t.Errorf("no mail names serial %s", sn)
		}
	}
}

func mustReadAllMail(t testing.TB, dir string) []byte {
	files, _ := filepath.Glob(filepath.Join(dir, "*.eml"))
	var all []byte
	for _, f := range files {
		b, _ := os.ReadFile(f)
		all = append(all, b...)
	}
	return all
}

func TestRevocationAndOwnership(t *testing.T) {
	e := newEnv(t)
	alice := e.newAccount(t, "alice@example.com")
	bob := e.newAccount(t, "bob@example.org")
	e.validate(t, alice, "example.com")
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	_, out, _ := e.call(t, "POST", "/api/v1/orders", alice, map[string]string{"csr": csrPEM(t, k, "example.com")})
	sn := out["serial"].(string)
	ordID := out["id"].(string)

	if code, _, _ := e.call(t, "GET", "/api/v1/certificates/"+sn, bob, nil); code != 404 {
		t.Errorf("bob reads alice's certificate: %d, want 404", code)
	}
	if code, _, _ := e.call(t, "GET", "/api/v1/orders/"+ordID, bob, nil); code != 404 {
		t.Errorf("bob reads alice's order: %d, want 404", code)
	}
	if code, _, _ := e.call(t, "POST", "/api/v1/certificates/"+sn+"/revoke", bob, map[string]string{"reason": "keyCompromise"}); code != 404 {
		t.Errorf("bob revokes alice's certificate: %d, want 404", code)
	}
	if code, out, _ := e.call(t, "POST", "/api/v1/certificates/"+sn+"/revoke", alice, map[string]string{"reason": "certificateHold"}); code != 400 || !strings.Contains(out["detail"].(string), "not allowed") {
		t.Errorf("certificateHold: %d %v", code, out)
	}
	if code, out, _ := e.call(t, "POST", "/api/v1/certificates/"+sn+"/revoke", alice, map[string]string{"reason": "keyCompromise"}); code != 200 || out["reason"] != "keyCompromise" {
		t.Errorf("revoke: %d %v", code, out)
	}
	if code, _, _ := e.call(t, "POST", "/api/v1/certificates/"+sn+"/revoke", alice, map[string]string{"reason": "superseded"}); code != 409 {
		t.Errorf("second revoke: %d, want 409", code)
	}
}

func TestRefusals(t *testing.T) {
	e := newEnv(t)
	alice := e.newAccount(t, "alice@example.com")
	e.validate(t, alice, "example.com")
	good, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	weak, _ := rsa.GenerateKey(rand.Reader, 1024)
	tests := []struct {
		name, method, path, key string
		body                    any
		wantCode                int
		wantDetail              string
	}{
		{"no key", "POST", "/api/v1/orders", "", map[string]string{"csr": csrPEM(t, good, "example.com")}, 401, "missing API key"},
		{"wrong key", "POST", "/api/v1/orders", "tl_0123456789abcdef_nope", map[string]string{"csr": csrPEM(t, good, "example.com")}, 401, "invalid API key"},
		{"garbage key", "GET", "/api/v1/orders", "garbage", nil, 401, "invalid API key"},
		{"subscriber on admin endpoint", "POST", "/api/v1/admin/accounts", alice, map[string]string{"email": "x@example.com", "role": "admin"}, 403, "admin"},
		{"unvalidated name", "POST", "/api/v1/orders", alice, map[string]string{"csr": csrPEM(t, good, "example.org")}, 403, "example.org"},
		{"weak key", "POST", "/api/v1/orders", alice, map[string]string{"csr": csrPEM(t, weak, "example.com")}, 400, "RSA"},
		{"not a CSR", "POST", "/api/v1/orders", alice, map[string]string{"csr": "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n"}, 400, ""},
		{"internal name", "POST", "/api/v1/validations", alice, map[string]string{"domain": "printer.local", "method": "email", "email": "admin@printer.local"}, 400, ""},
		{"bad constructed address", "POST", "/api/v1/validations", alice, map[string]string{"domain": "example.net", "method": "email", "email": "ceo@example.net"}, 400, "3.2.2.4.4"},
		{"malformed JSON", "POST", "/api/v1/orders", alice, `{"csr": `, 400, "malformed JSON"},
		{"unknown field", "POST", "/api/v1/orders", alice, `{"csr": "x", "colour": "red"}`, 400, "colour"},
		{"unknown profile", "POST", "/api/v1/orders", alice, map[string]string{"csr": csrPEM(t, good, "example.com"), "profile": "gold"}, 400, "profile"},
		{"ov without organization", "POST", "/api/v1/orders", alice, map[string]string{"csr": csrPEM(t, good, "example.com"), "profile": "ov"}, 400, "organization"},
		{"oversized body", "POST", "/api/v1/orders", alice, `{"csr": "` + strings.Repeat("A", api.MaxBody+10) + `"}`, 413, "larger than"},
		{"bad serial", "GET", "/api/v1/certificates/XYZ", alice, nil, 400, "serial"},
		{"unknown endpoint", "GET", "/api/v1/nope", alice, nil, 404, "no such endpoint"},
		{"bad email", "POST", "/api/v1/accounts", "", map[string]string{"email": "not-an-address"}, 400, "email"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, _ := e.call(t, tt.method, tt.path, tt.key, tt.body)
			detail, _ := out["detail"].(string)
			if code != tt.wantCode || !strings.Contains(detail, tt.wantDetail) {
				t.Errorf("%d %q, want %d with %q", code, detail, tt.wantCode, tt.wantDetail)
			}
			if code >= 400 && detail == "" {
				t.Errorf("no detail in problem: %s", out["_raw"])
			}
		})
	}
}

func TestValidationCodeRules(t *testing.T) {
	e := newEnv(t)
	alice := e.newAccount(t, "alice@example.com")
	bob := e.newAccount(t, "bob@example.com")
	_, out, _ := e.call(t, "POST", "/api/v1/validations", alice, map[string]string{"domain": "example.com", "method": "email", "email": "hostmaster@example.com"})
	id := out["id"].(string)
	code := e.lastCode(t, "hostmaster@example.com")
	if c, _, _ := e.call(t, "POST", "/api/v1/validations/"+id+"/confirm", bob, map[string]string{"code": code}); c != 404 {
		t.Errorf("another account confirms: %d, want 404", c)
	}
	if c, out, _ := e.call(t, "POST", "/api/v1/validations/"+id+"/confirm", alice, map[string]string{"code": "WRONG"}); c != 400 || !strings.Contains(out["detail"].(string), "attempt") {
		t.Errorf("wrong code: %d %v", c, out)
	}
	if c, _, _ := e.call(t, "POST", "/api/v1/validations/"+id+"/confirm", alice, map[string]string{"code": code}); c != 200 {
		t.Errorf("right code: %d", c)
	}
	if c, _, _ := e.call(t, "POST", "/api/v1/validations/"+id+"/confirm", alice, map[string]string{"code": code}); c != 409 {
		t.Errorf("reused code: %d, want 409", c)
	}
	// Attempts are limited.
	_, out, _ = e.call(t, "POST", "/api/v1/validations", alice, map[string]string{"domain": "example.org", "method": "email", "email": "admin@example.org"})
	id = out["id"].(string)
	code = e.lastCode(t, "admin@example.org")
	for i := 0; i < validation.MaxAttempts; i++ {
		e.call(t, "POST", "/api/v1/validations/"+id+"/confirm", alice, map[string]string{"code": "WRONG"})
	}
	if c, _, _ := e.call(t, "POST", "/api/v1/validations/"+id+"/confirm", alice, map[string]string{"code": code}); c != 409 {
		t.Errorf("right code after attempts exhausted: %d, want 409", c)
	}
	// A validation covers subdomains, not other domains.
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if c, out, _ := e.call(t, "POST", "/api/v1/orders", alice, map[string]string{"csr": csrPEM(t, k, "deep.sub.example.com")}); c != 201 || out["status"] != "issued" {
		t.Errorf("subdomain order: %d %v", c, out)
	}
	if c, _, _ := e.call(t, "POST", "/api/v1/orders", alice, map[string]string{"csr": csrPEM(t, k, "*.example.com")}); c != 403 {
		t.Errorf("wildcard with email validation: %d, want 403", c)
	}
}

func TestReviewListAndAdmin(t *testing.T) {
	e := newEnv(t)
	if c, out, _ := e.call(t, "POST", "/api/v1/admin/review-list", e.admin, map[string]string{"pattern": "*bank*"}); c != 201 {
		t.Fatalf("add pattern: %d %v", c, out)
	}
	c, out, _ := e.call(t, "POST", "/api/v1/admin/accounts", e.admin, map[string]string{"email": "rev@example.com", "role": "reviewer"})
	if g, _ := out["grant"].(map[string]any); c != 201 || out["role"] != "subscriber" || g["status"] != "pending" || g["role"] != "reviewer" {
		t.Fatalf("admin asks for a reviewer: %d %v", c, out)
	}
	alice := e.newAccount(t, "alice@example.com")
	e.validate(t, alice, "mybank.com")
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if c, out, _ := e.call(t, "POST", "/api/v1/orders", alice, map[string]string{"csr": csrPEM(t, k, "www.mybank.com")}); c != 201 || out["status"] != "pending_review" {
		t.Errorf("listed name: %d %v, want pending_review", c, out)
	}
}

// TestContentTypes: JSON bodies are read as curl -d sends them; a body
// declared as something else is refused.
func TestContentTypes(t *testing.T) {
	e := newEnv(t)
	for _, tt := range []struct {
		ct   string
		want int
	}{
		{"application/json", 201},
		{"application/x-www-form-urlencoded", 201},
		{"", 201},
		{"application/json; charset=utf-8", 201},
		{"multipart/form-data; boundary=x", 400},
		{"application/xml", 400},
	} {
		req, _ := http.NewRequest("POST", e.srv.URL+"/api/v1/accounts", strings.NewReader(`{"email":"u`+strconv.Itoa(len(tt.ct))+`@example.com"}`))
		if tt.ct != "" {
			req.Header.Set("Content-Type", tt.ct)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tt.want {
			t.Errorf("Content-Type %q: %d, want %d", tt.ct, resp.StatusCode, tt.want)
		}
	}
}
