package acme

import (
	"context"
	"crypto"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/trustline/trustline/internal/mail"
	"github.com/trustline/trustline/internal/store"
	"github.com/trustline/trustline/internal/store/sqlite"
	"github.com/trustline/trustline/internal/testfix"
	"github.com/trustline/trustline/internal/testfix/dnstest"
	"github.com/trustline/trustline/issuer"
	"github.com/trustline/trustline/issuer/caa"
	"github.com/trustline/trustline/issuer/issuertest"
	"github.com/trustline/trustline/issuer/pki"
	"github.com/trustline/trustline/issuer/ratelimit"
	"github.com/trustline/trustline/issuer/review"
	"github.com/trustline/trustline/issuer/validation"
)

// env is the ACME server on a loopback HTTP server over the real
// services: a SQLite store, the dev hierarchy and CA, the validation
// service (its DNS a test zone, its http-01 and tls-alpn-01 dials sent to
// the test's web and TLS servers) and the order service.
type env struct {
	srv      *httptest.Server
	s        *Server
	st       *sqlite.Store
	pki      *pki.PKI
	clk      *testfix.Clock
	zone     *dnstest.Zone
	accounts *issuer.Accounts
	vals     *validation.Service
	reviews  *review.Service
	made     []string // emails NewAccount was called with
	eabKeyOf func(string) []byte
	// web is what the domain's web server answers at
	// /.well-known/acme-challenge/<token>: token → key authorization.
	web sync.Map
}

func newEnv(t *testing.T, cfg Config) *env { return newEnvWith(t, cfg, false) }

// withLimits gives the server rate limits lim (over the env's store).
func (e *env) withLimits(t *testing.T, lim ratelimit.Config) {
	t.Helper()
	l, err := ratelimit.New(e.st, lim, nil)
	if err != nil {
		t.Fatal(err)
	}
	e.s.d.Limits = l
}

// newEnvWith is newEnv with, if checkCAA, every order's names checked
// against their CAA records in the test zone for the issuer domain
// trustline.test.
func newEnvWith(t *testing.T, cfg Config, checkCAA bool) *env {
	t.Helper()
	e := &env{clk: testfix.NewClock(time.Now().UTC().Truncate(time.Second)), zone: dnstest.Start(t)}
	e.st = issuertest.SQLite(t)
	iss := issuertest.New(t, e.st, 0x41)
	e.pki = iss.PKI
	var h http.Handler
	e.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h.ServeHTTP(w, r) }))
	t.Cleanup(e.srv.Close)
	site := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ka, ok := e.web.Load(strings.TrimPrefix(r.URL.Path, validation.ACMEChallengePath))
		if !ok {
			http.NotFound(w, r)
			return
		}
		io.WriteString(w, ka.(string))
	}))
	t.Cleanup(site.Close)
	dial := func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, site.Listener.Addr().String())
	}
	log := slog.New(slog.DiscardHandler)
	var err error
	mailer := mail.Dir{Path: filepath.Join(t.TempDir(), "mail")}
	if e.vals, err = validation.New(validation.Config{Resolver: e.zone.Addr, HTTPTimeout: 3 * time.Second},
		validation.Deps{Store: e.st, Mail: mailer, Dial: dial, Log: log}); err != nil {
		t.Fatal(err)
	}
	var checker issuer.CAAChecker
	if checkCAA {
		c, err := caa.New(caa.Config{Identities: []string{"trustline.test"}, Resolver: e.zone.Addr})
		if err != nil {
			t.Fatal(err)
		}
		checker = c
	}
	wf := issuertest.NewWorkflowCAA(t, e.st, iss.CA, e.vals, mailer, log, checker)
	e.reviews = wf.Reviews
	e.accounts = issuer.NewAccounts(e.st, nil)
	nonces, err := NewNonces(NonceConfig{Key: make([]byte, 32)}, e.st, e.clk.Now, nil)
	if err != nil {
		t.Fatal(err)
	}
	secret := []byte("eab secret for tests")
	e.eabKeyOf = func(id string) []byte {
		m := hmac.New(sha256.New, secret)
		m.Write([]byte(id))
		return m.Sum(nil)
	}
	cfg.BaseURL = e.srv.URL
	e.s, err = New(cfg, Deps{Store: e.st, Nonces: nonces, EABKey: e.eabKeyOf, Validations: e.vals, Orders: wf.Orders, CA: iss.CA, PKI: iss.PKI, Log: log, Now: e.clk.Now,
		NewAccount: func(ctx context.Context, email string) (store.Account, error) {
			e.made = append(e.made, email)
			return e.accounts.CreateForACME(ctx, email)
		}})
	if err != nil {
		t.Fatal(err)
	}
	h = e.s
	return e
}

// client is an ACME client with one account key.
type client struct {
	e   *env
	alg jose.SignatureAlgorithm
	key crypto.Signer
	kid string // the account URL once it has one
}

func (e *env) client(t *testing.T) *client {
	return &client{e: e, alg: jose.ES256, key: ecKey(t, elliptic.P256())}
}

func (c *client) nonce(t *testing.T) string {
	t.Helper()
	resp, err := http.Head(c.e.srv.URL + "/acme/new-nonce")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.Header.Get("Replay-Nonce")
}

// body signs payload (nil: POST-as-GET) for path, with the account's
// kid or, before it has one, the jwk.
func (c *client) body(t *testing.T, path string, payload any, nonce string) []byte {
	t.Helper()
	p := []byte{} // POST-as-GET: "payload": "" (§6.3)
	if payload != nil {
		var err error
		if p, err = json.Marshal(payload); err != nil {
			t.Fatal(err)
		}
	}
	opts := &jose.SignerOptions{ExtraHeaders: map[jose.HeaderKey]any{"nonce": nonce, "url": c.e.srv.URL + path}}
	sk := jose.SigningKey{Algorithm: c.alg, Key: c.key}
	if c.kid != "" {
		sk.Key = jose.JSONWebKey{Key: c.key, KeyID: c.kid}
	} else {
		opts.EmbedJWK = true
	}
	s, err := jose.NewSigner(sk, opts)
	if err != nil {
		t.Fatal(err)
	}
	obj, err := s.Sign(p)
	if err != nil {
		t.Fatal(err)
	}
	return []byte(obj.FullSerialize())
}

type answer struct {
	status int
	header http.Header
	body   map[string]any
}

func (a answer) problem() string {
	if a.header.Get("Content-Type") != "application/problem+json" {
		return ""
	}
	typ, _ := a.body["type"].(string)
	return strings.TrimPrefix(typ, "urn:ietf:params:acme:error:")
}

func (c *client) send(t *testing.T, path string, body []byte) answer {
	t.Helper()
	resp, err := http.Post(c.e.srv.URL+path, "application/jose+json", strings.NewReader(string(body)))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	a := answer{status: resp.StatusCode, header: resp.Header}
	if len(b) > 0 {
		if err := json.Unmarshal(b, &a.body); err != nil {
			t.Fatalf("POST %s: %d %s: not JSON", path, resp.StatusCode, b)
		}
	}
	if resp.Header.Get("Replay-Nonce") == "" {
		t.Fatalf("POST %s: %d without a Replay-Nonce", path, resp.StatusCode)
	}
	return a
}

func (c *client) post(t *testing.T, path string, payload any) answer {
	t.Helper()
	return c.send(t, path, c.body(t, path, payload, c.nonce(t)))
}

func (c *client) register(t *testing.T, payload map[string]any) answer {
	t.Helper()
	a := c.post(t, "/acme/new-account", payload)
	if a.status == http.StatusCreated || a.status == http.StatusOK {
		c.kid = a.header.Get("Location")
	}
	return a
}

func wantAnswer(t *testing.T, what string, a answer, status int, problem string) {
	t.Helper()
	if a.status != status || a.problem() != problem {
		t.Fatalf("%s: %d %q (%v), want %d %q", what, a.status, a.problem(), a.body["detail"], status, problem)
	}
}

func TestDirectoryAndNonces(t *testing.T) {
	e := newEnv(t, Config{TermsOfService: "https://ca.example/tos", CAAIdentities: []string{"ca.example"},
		Profiles: []Profile{{Name: "classic", Description: "90 days"}, {Name: "shortlived", Description: "6 days, no revocation information"}}})
	resp, err := http.Get(e.srv.URL + "/acme/directory")
	if err != nil {
		t.Fatal(err)
	}
	var dir map[string]any
	json.NewDecoder(resp.Body).Decode(&dir)
	resp.Body.Close()
	for k, p := range map[string]string{"newNonce": "/acme/new-nonce", "newAccount": "/acme/new-account", "newOrder": "/acme/new-order",
		"revokeCert": "/acme/revoke-cert", "keyChange": "/acme/key-change", "renewalInfo": "/acme/renewal-info"} {
		if dir[k] != e.srv.URL+p {
			t.Errorf("directory %s = %v", k, dir[k])
		}
	}
	meta, _ := dir["meta"].(map[string]any)
	profiles, _ := meta["profiles"].(map[string]any)
	if meta["termsOfService"] != "https://ca.example/tos" || meta["externalAccountRequired"] != false || profiles["shortlived"] != "6 days, no revocation information" {
		t.Errorf("meta %v", meta)
	}
	for _, m := range []string{"HEAD", "GET"} {
		req, _ := http.NewRequest(m, e.srv.URL+"/acme/new-nonce", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		want := map[string]int{"HEAD": 200, "GET": 204}[m]
		if resp.StatusCode != want || resp.Header.Get("Replay-Nonce") == "" || resp.Header.Get("Cache-Control") != "no-store" ||
			resp.Header.Get("Link") != "<"+e.srv.URL+`/acme/directory>;rel="index"` {
			t.Errorf("%s new-nonce: %d, headers %v", m, resp.StatusCode, resp.Header)
		}
	}
}

func TestNewAccount(t *testing.T) {
	e := newEnv(t, Config{TermsOfService: "https://ca.example/tos"})
	c := e.client(t)
	// The terms must be agreed to.
	wantAnswer(t, "no ToS", c.post(t, "/acme/new-account", map[string]any{}), 400, "malformed")
	// Only known accounts with onlyReturnExisting.
	wantAnswer(t, "onlyReturnExisting", c.post(t, "/acme/new-account", map[string]any{"onlyReturnExisting": true}), 400, "accountDoesNotExist")
	wantAnswer(t, "tel contact", c.post(t, "/acme/new-account", map[string]any{"termsOfServiceAgreed": true, "contact": []string{"tel:+1555"}}), 400, "unsupportedContact")
	for _, bad := range []string{"mailto:a@example.com?subject=hi", "mailto:a@example.com,b@example.com", "mailto:Alice <a@example.com>", "mailto:"} {
		wantAnswer(t, bad, c.post(t, "/acme/new-account", map[string]any{"termsOfServiceAgreed": true, "contact": []string{bad}}), 400, "invalidContact")
	}
	if len(e.made) != 0 {
		t.Fatalf("accounts made for refused requests: %v", e.made)
	}
	a := c.register(t, map[string]any{"termsOfServiceAgreed": true, "contact": []string{"mailto:admin@example.com", "mailto:ops@example.com"}})
	wantAnswer(t, "new account", a, 201, "")
	if !strings.HasPrefix(c.kid, e.srv.URL+"/acme/acct/") || a.body["status"] != "valid" || a.body["orders"] != c.kid+"/orders" {
		t.Fatalf("new account: Location %q, body %v", c.kid, a.body)
	}
	if !slices.Equal(e.made, []string{"admin@example.com"}) {
		t.Fatalf("NewAccount called with %v", e.made)
	}
	// The same key again: the same account, 200, no new Trustline account.
	again := &client{e: e, alg: c.alg, key: c.key}
	b := again.register(t, map[string]any{"onlyReturnExisting": true})
	wantAnswer(t, "existing account", b, 200, "")
	if again.kid != c.kid || len(e.made) != 1 {
		t.Fatalf("existing account at %q (want %q), %d accounts made", again.kid, c.kid, len(e.made))
	}
	// POST-as-GET, then updates.
	wantAnswer(t, "read account", c.post(t, strings.TrimPrefix(c.kid, e.srv.URL), nil), 200, "")
	u := c.post(t, strings.TrimPrefix(c.kid, e.srv.URL), map[string]any{"contact": []string{"mailto:new@example.com"}})
	wantAnswer(t, "update contact", u, 200, "")
	if cs, _ := u.body["contact"].([]any); len(cs) != 1 || cs[0] != "mailto:new@example.com" {
		t.Fatalf("contact after update: %v", u.body["contact"])
	}
	wantAnswer(t, "status valid", c.post(t, strings.TrimPrefix(c.kid, e.srv.URL), map[string]any{"status": "valid"}), 400, "malformed")
	orders := c.post(t, strings.TrimPrefix(c.kid, e.srv.URL)+"/orders", nil)
	if o, ok := orders.body["orders"].([]any); orders.status != 200 || !ok || len(o) != 0 {
		t.Fatalf("orders: %d %v", orders.status, orders.body)
	}
	// Another account cannot read this one.
	other := e.client(t)
	wantAnswer(t, "other account", other.register(t, map[string]any{"termsOfServiceAgreed": true}), 201, "")
	wantAnswer(t, "read another's account", other.post(t, strings.TrimPrefix(c.kid, e.srv.URL), nil), 403, "unauthorized")
	// Deactivation is final: the key no longer signs for anything.
	wantAnswer(t, "deactivate", c.post(t, strings.TrimPrefix(c.kid, e.srv.URL), map[string]any{"status": "deactivated"}), 200, "")
	wantAnswer(t, "after deactivation", c.post(t, strings.TrimPrefix(c.kid, e.srv.URL), nil), 403, "unauthorized")
	wantAnswer(t, "re-register after deactivation", (&client{e: e, alg: c.alg, key: c.key}).post(t, "/acme/new-account", map[string]any{"termsOfServiceAgreed": true}), 403, "unauthorized")
}

func TestRequestChecks(t *testing.T) {
	e := newEnv(t, Config{})
	c := e.client(t)
	wantAnswer(t, "register", c.register(t, map[string]any{}), 201, "")
	path := strings.TrimPrefix(c.kid, e.srv.URL)
	// A nonce works once.
	body := c.body(t, path, nil, c.nonce(t))
	wantAnswer(t, "first", c.send(t, path, body), 200, "")
	wantAnswer(t, "replayed", c.send(t, path, body), 400, "badNonce")
	// A nonce this server did not make.
	wantAnswer(t, "made-up nonce", c.send(t, path, c.body(t, path, nil, testNonce)), 400, "badNonce")
	// The url must be where the request goes (§6.4).
	wantAnswer(t, "wrong url", c.send(t, path+"/orders", c.body(t, path, nil, c.nonce(t))), 403, "unauthorized")
	// A kid that names no account.
	ghost := &client{e: e, alg: c.alg, key: c.key, kid: e.srv.URL + "/acme/acct/0000"}
	wantAnswer(t, "unknown kid", ghost.send(t, "/acme/acct/0000", ghost.body(t, "/acme/acct/0000", nil, c.nonce(t))), 400, "accountDoesNotExist")
	// newAccount takes a jwk, the rest a kid.
	wantAnswer(t, "kid on newAccount", c.post(t, "/acme/new-account", map[string]any{}), 400, "malformed")
	jwkOnly := &client{e: e, alg: c.alg, key: c.key}
	wantAnswer(t, "jwk on account", jwkOnly.post(t, path, nil), 400, "malformed")
	// Another key signing with this account's kid.
	forger := &client{e: e, alg: jose.ES256, key: ecKey(t, elliptic.P256()), kid: c.kid}
	wantAnswer(t, "forged", forger.post(t, path, nil), 400, "malformed")
	// The body's media type.
	resp, err := http.Post(e.srv.URL+path, "application/json", strings.NewReader(string(c.body(t, path, nil, c.nonce(t)))))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnsupportedMediaType || resp.Header.Get("Content-Type") != "application/problem+json" {
		t.Fatalf("wrong media type: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	// An unknown resource.
	wantAnswer(t, "unknown path", c.post(t, "/acme/nothing", nil), 404, "malformed")
}

// eab makes the externalAccountBinding of keyID for the client's key.
func (c *client) eab(t *testing.T, keyID string, hmacKey []byte, url string) json.RawMessage {
	t.Helper()
	jwk, err := json.Marshal(jose.JSONWebKey{Key: c.key.Public()})
	if err != nil {
		t.Fatal(err)
	}
	// As ACME clients do: the key id and url as extra header fields.
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.HS256, Key: hmacKey},
		&jose.SignerOptions{ExtraHeaders: map[jose.HeaderKey]any{"kid": keyID, "url": url}})
	if err != nil {
		t.Fatal(err)
	}
	obj, err := s.Sign(jwk)
	if err != nil {
		t.Fatal(err)
	}
	return json.RawMessage(obj.FullSerialize())
}

func TestExternalAccountBinding(t *testing.T) {
	e := newEnv(t, Config{ExternalAccountRequired: true})
	ctx := context.Background()
	owner, _, err := e.accounts.Create(ctx, "owner@example.com", store.RoleSubscriber)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []store.ACMEEABKey{
		{ID: "kid-1", AccountID: owner.ID, CreatedBy: owner.ID, CreatedAt: e.clk.Now()},
		{ID: "kid-old", AccountID: owner.ID, CreatedBy: owner.ID, CreatedAt: e.clk.Now(), ExpiresAt: e.clk.Now()},
	} {
		if err := e.st.CreateACMEEABKey(ctx, k); err != nil {
			t.Fatal(err)
		}
	}
	newAcct := e.srv.URL + "/acme/new-account"
	c := e.client(t)
	wantAnswer(t, "no EAB", c.post(t, "/acme/new-account", map[string]any{}), 400, "externalAccountRequired")
	wantAnswer(t, "wrong MAC key", c.post(t, "/acme/new-account", map[string]any{"externalAccountBinding": c.eab(t, "kid-1", make([]byte, 32), newAcct)}), 403, "unauthorized")
	wantAnswer(t, "unknown kid", c.post(t, "/acme/new-account", map[string]any{"externalAccountBinding": c.eab(t, "kid-2", e.eabKeyOf("kid-2"), newAcct)}), 403, "unauthorized")
	wantAnswer(t, "expired kid", c.post(t, "/acme/new-account", map[string]any{"externalAccountBinding": c.eab(t, "kid-old", e.eabKeyOf("kid-old"), newAcct)}), 403, "unauthorized")
	wantAnswer(t, "wrong url", c.post(t, "/acme/new-account", map[string]any{"externalAccountBinding": c.eab(t, "kid-1", e.eabKeyOf("kid-1"), newAcct+"x")}), 400, "malformed")
	other := e.client(t)
	wantAnswer(t, "another key bound", c.post(t, "/acme/new-account", map[string]any{"externalAccountBinding": other.eab(t, "kid-1", e.eabKeyOf("kid-1"), newAcct)}), 400, "malformed")
	a := c.register(t, map[string]any{"externalAccountBinding": c.eab(t, "kid-1", e.eabKeyOf("kid-1"), newAcct)})
	wantAnswer(t, "bound", a, 201, "")
	got, err := e.st.ACMEAccountByThumbprint(ctx, mustThumb(t, c.key.Public()))
	if err != nil || got.AccountID != owner.ID || got.EABKeyID != "kid-1" || len(e.made) != 0 {
		t.Fatalf("bound account %+v, %v; accounts made %v", got, err, e.made)
	}
	// A binding key binds one account.
	wantAnswer(t, "EAB reused", other.post(t, "/acme/new-account", map[string]any{"externalAccountBinding": other.eab(t, "kid-1", e.eabKeyOf("kid-1"), newAcct)}), 403, "unauthorized")
}

func mustThumb(t *testing.T, pub crypto.PublicKey) string {
	t.Helper()
	s, err := thumbprint(&jose.JSONWebKey{Key: pub})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// keyChangeBody is the inner JWS of a key change from c's key to next.
func (c *client) keyChangeBody(t *testing.T, next crypto.Signer, account string, oldKey crypto.PublicKey) map[string]any {
	t.Helper()
	old, _ := json.Marshal(jose.JSONWebKey{Key: oldKey})
	p, _ := json.Marshal(map[string]any{"account": account, "oldKey": json.RawMessage(old)})
	alg := jose.ES256
	if _, ok := next.(*rsa.PrivateKey); ok {
		alg = jose.RS256
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: next},
		&jose.SignerOptions{EmbedJWK: true, ExtraHeaders: map[jose.HeaderKey]any{"url": c.e.srv.URL + "/acme/key-change"}})
	if err != nil {
		t.Fatal(err)
	}
	obj, err := s.Sign(p)
	if err != nil {
		t.Fatal(err)
	}
	var inner map[string]any
	json.Unmarshal([]byte(obj.FullSerialize()), &inner)
	return inner
}

func TestKeyChange(t *testing.T) {
	e := newEnv(t, Config{})
	c := e.client(t)
	wantAnswer(t, "register", c.register(t, map[string]any{}), 201, "")
	next, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	// The inner JWS must name this account and its current key.
	wantAnswer(t, "wrong old key", c.post(t, "/acme/key-change", c.keyChangeBody(t, next, c.kid, ecKey(t, elliptic.P256()).Public())), 400, "malformed")
	wantAnswer(t, "wrong account", c.post(t, "/acme/key-change", c.keyChangeBody(t, next, c.kid+"0", c.key.Public())), 400, "malformed")
	wantAnswer(t, "rolled over", c.post(t, "/acme/key-change", c.keyChangeBody(t, next, c.kid, c.key.Public())), 200, "")
	path := strings.TrimPrefix(c.kid, e.srv.URL)
	wantAnswer(t, "old key", c.post(t, path, nil), 400, "badSignatureAlgorithm")
	c.key, c.alg = next, jose.RS256
	wantAnswer(t, "new key", c.post(t, path, nil), 200, "")
	// A key another account holds is refused with that account's URL.
	other := e.client(t)
	wantAnswer(t, "other", other.register(t, map[string]any{}), 201, "")
	a := c.post(t, "/acme/key-change", c.keyChangeBody(t, other.key, c.kid, c.key.Public()))
	if a.status != http.StatusConflict || a.header.Get("Location") != other.kid {
		t.Fatalf("rollover to another account's key: %d, Location %q (want %q)", a.status, a.header.Get("Location"), other.kid)
	}
}
