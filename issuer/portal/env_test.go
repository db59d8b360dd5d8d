package portal

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"log/slog"
	"mime/multipart"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/trustline/trustline/internal/mail"
	"github.com/trustline/trustline/internal/store"
	"github.com/trustline/trustline/internal/store/sqlite"
	"github.com/trustline/trustline/internal/testfix/dnstest"
	"github.com/trustline/trustline/issuer"
	"github.com/trustline/trustline/issuer/acme"
	"github.com/trustline/trustline/issuer/issuertest"
	"github.com/trustline/trustline/issuer/pki"
	"github.com/trustline/trustline/issuer/ratelimit"
	"github.com/trustline/trustline/issuer/validation"
)

// env is the portal on a loopback server over a real SQLite store, the dev
// PKI, the real issuance services and mail delivered to a directory: the
// wiring of cmd/trustline, as in issuer/api's tests.
type env struct {
	srv      *httptest.Server
	h        *Handler
	st       *sqlite.Store
	accounts *issuer.Accounts
	pki      *pki.PKI
	mailDir  string
	zone     *dnstest.Zone
	// skew moves the portal's clock (sessions, sign-in links) only.
	skew *atomic.Int64
	// eabSecret is the secret ACME binding keys are derived from.
	eabSecret []byte
}

type envOpts struct {
	cfg    Config            // BaseURL is filled in
	limits *ratelimit.Config // nil: no rate limits
}

func newEnv(t testing.TB) *env { return newEnvWith(t, envOpts{}) }

func newEnvWith(t testing.TB, o envOpts) *env {
	t.Helper()
	dir := t.TempDir()
	log := slog.New(slog.DiscardHandler)
	st := issuertest.SQLite(t)
	iss := issuertest.New(t, st, 0x21)
	ca, p := iss.CA, iss.PKI
	mailDir := filepath.Join(dir, "mail")
	mailer := mail.Dir{Path: mailDir}
	accounts := issuer.NewAccounts(st, nil)
	zone := dnstest.Start(t)
	vals, err := validation.New(validation.Config{Resolver: zone.Addr, DNSTimeout: 2 * time.Second, AllowPrivateAddresses: true},
		validation.Deps{Store: st, Mail: mailer, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	wf := issuertest.NewWorkflow(t, st, ca, vals, mailer, log)
	skew := new(atomic.Int64)
	e := &env{st: st, accounts: accounts, pki: p, mailDir: mailDir, zone: zone, skew: skew}
	// The server starts first so that BaseURL can name its address.
	var handler http.Handler
	e.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { handler.ServeHTTP(w, r) }))
	t.Cleanup(e.srv.Close)
	cfg := o.cfg
	cfg.BaseURL = e.srv.URL
	cfg.ACMEDirectory = e.srv.URL + "/acme/directory"
	e.eabSecret = bytes.Repeat([]byte{7}, 32)
	eab, err := acme.NewEABKeys(st, e.eabSecret, nil)
	if err != nil {
		t.Fatal(err)
	}
	confirm, err := issuer.NewConfirmations(issuer.ConfirmConfig{Key: make([]byte, 32), BaseURL: e.srv.URL}, issuer.ConfirmDeps{Store: st, Mail: mailer})
	if err != nil {
		t.Fatal(err)
	}
	var limits *ratelimit.Limiter
	if o.limits != nil {
		if limits, err = ratelimit.New(st, *o.limits, nil); err != nil {
			t.Fatal(err)
		}
	}
	e.h, err = New(cfg, Deps{Store: st, Accounts: accounts, Confirmations: confirm, EABKeys: eab, Validations: vals, Orders: wf.Orders, Reviews: wf.Reviews, CA: ca,
		Issuers: p, Mail: mailer, Log: log, Limits: limits, Now: func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }})
	if err != nil {
		t.Fatal(err)
	}
	handler = e.h
	return e
}

// account makes an account with role and returns its API key.
func (e *env) account(t testing.TB, email string, role store.Role) string {
	t.Helper()
	acct, key, err := e.accounts.Create(context.Background(), email, role)
	if err != nil {
		t.Fatal(err)
	}
	// As if its owner had followed the confirmation link.
	if err := e.st.VerifyAccountEmail(context.Background(), acct.ID, acct.Email, time.Now()); err != nil {
		t.Fatal(err)
	}
	return key
}

func (e *env) accountByEmail(t testing.TB, email string) store.Account {
	t.Helper()
	as, err := e.st.AccountsByEmail(context.Background(), email)
	if err != nil || len(as) == 0 {
		t.Fatalf("accounts of %s: %v, %v", email, as, err)
	}
	return as[len(as)-1]
}

// mails returns the messages mailed to addr, oldest first.
func (e *env) mails(t testing.TB, addr string) []string {
	t.Helper()
	return issuertest.Mails(t, e.mailDir, addr)
}

var (
	codeRE = regexp.MustCompile(`(?m)^Validation code: (\S+)\r?$`)
	linkRE = regexp.MustCompile(`(?m)^Sign-in link: (\S+)\r?$`)
	// confirmLinkRE finds an address confirmation link.
	confirmLinkRE = regexp.MustCompile(`(?m)^(http\S+/confirm-email\?token=\S+)\r?$`)
)

// lastMatch returns the first group of re in the newest mail to addr.
func (e *env) lastMatch(t testing.TB, addr string, re *regexp.Regexp) string {
	t.Helper()
	ms := e.mails(t, addr)
	for i := len(ms) - 1; i >= 0; i-- {
		if m := re.FindStringSubmatch(ms[i]); m != nil {
			return m[1]
		}
	}
	t.Fatalf("no mail to %s matching %s", addr, re)
	return ""
}

func (e *env) orderCount(t testing.TB, acct store.Account) int {
	t.Helper()
	ords, err := e.st.ListOrders(context.Background(), store.OrderFilter{AccountID: acct.ID})
	if err != nil {
		t.Fatal(err)
	}
	return len(ords)
}

// browser is an HTTP client with a cookie jar that behaves like a browser
// on this origin: it sends Origin on POSTs and does not follow redirects,
// so tests see them.
type browser struct {
	e      *env
	c      *http.Client
	origin string // sent as Origin on POSTs; "" sends none
	csrf   string // the form token of the last page read
}

func (e *env) browser(t testing.TB) *browser {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	return &browser{e: e, origin: e.srv.URL, c: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}}
}

// page is a response with its body read.
type page struct {
	status int
	body   string
	header http.Header
}

func (p page) location() string { return p.header.Get("Location") }

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]*)"`)

func (b *browser) do(t testing.TB, req *http.Request) page {
	t.Helper()
	resp, err := b.c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	p := page{status: resp.StatusCode, body: string(raw), header: resp.Header}
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") && (p.status < 300 || p.status >= 400) {
		checkPage(t, req.Method+" "+req.URL.Path, p.body)
	}
	if m := csrfRE.FindStringSubmatch(p.body); m != nil {
		b.csrf = m[1]
	}
	return p
}

func (b *browser) get(t testing.TB, path string) page {
	t.Helper()
	req, _ := http.NewRequest("GET", b.e.srv.URL+path, nil)
	return b.do(t, req)
}

// post sends a urlencoded form with the current form token (unless the
// form sets csrf itself).
func (b *browser) post(t testing.TB, path string, form url.Values) page {
	t.Helper()
	if form == nil {
		form = url.Values{}
	}
	if _, ok := form["csrf"]; !ok {
		form.Set("csrf", b.csrf)
	}
	req, _ := http.NewRequest("POST", b.e.srv.URL+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if b.origin != "" {
		req.Header.Set("Origin", b.origin)
	}
	return b.do(t, req)
}

// postMultipart sends the order form with an optional CSR file.
func (b *browser) postMultipart(t testing.TB, path string, form url.Values, file []byte) page {
	t.Helper()
	if _, ok := form["csrf"]; !ok {
		form.Set("csrf", b.csrf)
	}
	body, contentType := multipartForm(form, file)
	req, _ := http.NewRequest("POST", b.e.srv.URL+path, bytes.NewReader(body))
	req.Header.Set("Content-Type", contentType)
	if b.origin != "" {
		req.Header.Set("Origin", b.origin)
	}
	return b.do(t, req)
}

// multipartForm encodes the order form as multipart/form-data, with file,
// when not nil, as the uploaded CSR.
func multipartForm(form url.Values, file []byte) (body []byte, contentType string) {
	var b bytes.Buffer
	mw := multipart.NewWriter(&b)
	for k, vs := range form {
		for _, v := range vs {
			mw.WriteField(k, v)
		}
	}
	if file != nil {
		fw, _ := mw.CreateFormFile("csr_file", "request.csr")
		fw.Write(file)
	}
	mw.Close()
	return b.Bytes(), mw.FormDataContentType()
}

// follow GETs a redirect's target.
func (b *browser) follow(t testing.TB, p page) page {
	t.Helper()
	if p.status != http.StatusSeeOther && p.status != http.StatusFound {
		t.Fatalf("want a redirect, got %d: %s", p.status, excerpt(p.body))
	}
	return b.get(t, p.location())
}

// signIn signs the browser in with key and returns the landing page.
func (b *browser) signIn(t testing.TB, key string) page {
	t.Helper()
	b.get(t, "/")
	p := b.post(t, "/signin", url.Values{"api_key": {key}})
	if p.status != http.StatusSeeOther {
		t.Fatalf("sign in: %d %s", p.status, excerpt(p.body))
	}
	return b.follow(t, p)
}

// validate runs the email validation of domain through the wizard.
func (b *browser) validate(t testing.TB, domain string) {
	t.Helper()
	b.get(t, "/validations/new")
	p := b.post(t, "/validations", url.Values{"domain": {domain}, "method": {"email"}, "local": {"admin"}})
	if p.status != http.StatusSeeOther {
		t.Fatalf("start validation: %d %s", p.status, excerpt(p.body))
	}
	at := p.location()
	b.follow(t, p)
	p = b.post(t, at+"/confirm", url.Values{"code": {b.e.lastMatch(t, "admin@"+domain, codeRE)}})
	if p.status != http.StatusSeeOther {
		t.Fatalf("confirm validation: %d %s", p.status, excerpt(p.body))
	}
	b.follow(t, p)
}

// order places an order through the wizard and returns the final page.
func (b *browser) order(t testing.TB, form url.Values, file []byte) page {
	t.Helper()
	b.get(t, "/orders/new")
	return b.postMultipart(t, "/orders", form, file)
}

// excerpt is the part of a page worth printing in a failure: the error
// box if there is one.
func excerpt(body string) string {
	if i := strings.Index(body, `class="errors"`); i >= 0 {
		return body[i:min(len(body), i+800)]
	}
	if i := strings.Index(body, "<main"); i >= 0 {
		return body[i:min(len(body), i+800)]
	}
	return body[:min(len(body), 800)]
}

func csrDER(t testing.TB, key crypto.Signer, names ...string) []byte {
	t.Helper()
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: names[0]}, DNSNames: names}, key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func csrPEM(t testing.TB, names ...string) string {
	t.Helper()
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: csrDER(t, k, names...)}))
}

// wantStatus fails the test unless p has the status, printing the page.
func wantStatus(t testing.TB, what string, p page, status int) {
	t.Helper()
	if p.status != status {
		t.Fatalf("%s: status %d, want %d\n%s", what, p.status, status, excerpt(p.body))
	}
}

func wantContains(t testing.TB, what string, p page, subs ...string) {
	t.Helper()
	for _, s := range subs {
		if !strings.Contains(p.body, s) {
			t.Errorf("%s: page lacks %q\n%s", what, s, excerpt(p.body))
		}
	}
}

func mustRegexp(s string) *regexp.Regexp { return regexp.MustCompile(s) }

// onlyReader hides a reader's type so that net/http cannot learn the
// body's length and sends it chunked.
type onlyReader struct{ io.Reader }

// What cmd/ passes satisfies the portal's small interfaces.
var (
	_ Store   = store.Store(nil)
	_ Issuers = (*pki.PKI)(nil)
	_ Revoker = (*issuer.CA)(nil)
)
