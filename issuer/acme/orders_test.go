package acme

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/trustline/trustline/internal/serial"
	"github.com/trustline/trustline/internal/store"
	"github.com/trustline/trustline/issuer"
	"github.com/trustline/trustline/issuer/ratelimit"
	"github.com/trustline/trustline/issuer/review"
	"github.com/trustline/trustline/issuer/validation"
)

// path turns one of the server's URLs into the path to post to.
func (e *env) path(u any) string {
	s, _ := u.(string)
	return strings.TrimPrefix(s, e.srv.URL)
}

func (c *client) newOrder(t *testing.T, names ...string) answer {
	t.Helper()
	var ids []map[string]string
	for _, n := range names {
		ids = append(ids, map[string]string{"type": "dns", "value": n})
	}
	return c.post(t, "/acme/new-order", map[string]any{"identifiers": ids})
}

// keyAuthorization is the client's key authorization for a token.
func (c *client) keyAuthorization(t *testing.T, token string) string {
	return token + "." + mustThumb(t, c.key.Public())
}

// authzs reads an order's authorizations.
func (c *client) authzs(t *testing.T, order answer) []answer {
	t.Helper()
	var out []answer
	for _, u := range order.body["authorizations"].([]any) {
		a := c.post(t, c.e.path(u), nil)
		wantAnswer(t, "authz", a, 200, "")
		out = append(out, a)
	}
	return out
}

// challenge returns an authorization's challenge of type typ.
func challenge(t *testing.T, authz answer, typ string) map[string]any {
	t.Helper()
	for _, c := range authz.body["challenges"].([]any) {
		if m := c.(map[string]any); m["type"] == typ {
			return m
		}
	}
	t.Fatalf("no %s challenge in %v", typ, authz.body)
	return nil
}

// publish makes the domain answer a challenge: the TXT record of dns-01,
// the file of http-01.
func (c *client) publish(t *testing.T, domain string, ch map[string]any) {
	t.Helper()
	ka := c.keyAuthorization(t, ch["token"].(string))
	switch ch["type"] {
	case "dns-01":
		d := validation.KeyAuthorizationDigest(ka)
		c.e.zone.SetTXT("_acme-challenge."+domain, base64.RawURLEncoding.EncodeToString(d[:]))
	case "http-01":
		c.e.web.Store(ch["token"].(string), ka)
	}
}

func csrFor(t *testing.T, names ...string) string {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return csrWith(t, k, names...)
}

func csrWith(t *testing.T, k *ecdsa.PrivateKey, names ...string) string {
	t.Helper()
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: names[0]}, DNSNames: names}, k)
	if err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(der)
}

// download fetches a certificate URL and returns its PEM blocks.
func (c *client) download(t *testing.T, path string) ([]*x509.Certificate, http.Header) {
	t.Helper()
	body := c.body(t, path, nil, c.nonce(t))
	resp, err := http.Post(c.e.srv.URL+path, "application/jose+json", strings.NewReader(string(body)))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/pem-certificate-chain" {
		t.Fatalf("download %s: %d %s %s", path, resp.StatusCode, resp.Header.Get("Content-Type"), b)
	}
	var certs []*x509.Certificate
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			break
		}
		cert, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		certs = append(certs, cert)
	}
	return certs, resp.Header
}

// TestOrderFlow is §7.4 end to end: an order, its authorizations answered
// by dns-01 and http-01 through the validation service, finalization
// through the order service, and the certificate with its chains.
func TestOrderFlow(t *testing.T) {
	e := newEnv(t, Config{Profiles: []Profile{{Name: "classic", Description: "DV"}}})
	c := e.client(t)
	wantAnswer(t, "register", c.register(t, map[string]any{}), 201, "")

	o := c.newOrder(t, "Example.COM", "www.example.com", "example.com")
	wantAnswer(t, "new order", o, 201, "")
	if o.body["status"] != "pending" || len(o.body["authorizations"].([]any)) != 2 || o.body["profile"] != "classic" {
		t.Fatalf("new order: %v", o.body)
	}
	orderPath := e.path(o.header.Get("Location"))
	finalizePath := e.path(o.body["finalize"])
	wantAnswer(t, "finalize too early", c.post(t, finalizePath, map[string]any{"csr": csrFor(t, "example.com", "www.example.com")}), 403, "orderNotReady")

	authzs := c.authzs(t, o)
	for i, a := range authzs {
		domain := a.body["identifier"].(map[string]any)["value"].(string)
		if a.body["status"] != "pending" || len(a.body["challenges"].([]any)) != 3 {
			t.Fatalf("authz %s: %v", domain, a.body)
		}
		typ := []string{"dns-01", "http-01"}[i]
		ch := challenge(t, a, typ)
		c.publish(t, domain, ch)
		got := c.post(t, e.path(ch["url"]), map[string]any{})
		wantAnswer(t, "answer "+typ, got, 200, "")
		if got.body["status"] != "valid" || got.body["validated"] == nil || !strings.Contains(strings.Join(got.header.Values("Link"), " "), `rel="up"`) {
			t.Fatalf("answered %s for %s: %v %v", typ, domain, got.body, got.header)
		}
		after := c.post(t, e.path(o.body["authorizations"].([]any)[i]), nil)
		if after.body["status"] != "valid" {
			t.Fatalf("authz %s after its challenge: %v", domain, after.body)
		}
	}
	ready := c.post(t, orderPath, nil)
	if ready.body["status"] != "ready" {
		t.Fatalf("order after its authorizations: %v", ready.body)
	}
	wantAnswer(t, "CSR for other names", c.post(t, finalizePath, map[string]any{"csr": csrFor(t, "example.com", "mail.example.com")}), 400, "badCSR")
	wantAnswer(t, "CSR not base64url", c.post(t, finalizePath, map[string]any{"csr": "!!"}), 400, "badCSR")
	fin := c.post(t, finalizePath, map[string]any{"csr": csrFor(t, "www.example.com", "example.com")})
	wantAnswer(t, "finalize", fin, 200, "")
	if fin.body["status"] != "valid" || fin.body["certificate"] == nil {
		t.Fatalf("finalized: %v", fin.body)
	}
	wantAnswer(t, "finalize twice", c.post(t, finalizePath, map[string]any{"csr": csrFor(t, "example.com", "www.example.com")}), 403, "orderNotReady")
	certPath := e.path(fin.body["certificate"])
	chain, hdr := c.download(t, certPath)
	if len(chain) != 2 || !strings.Contains(strings.Join(hdr.Values("Link"), " "), certPath+`/1>;rel="alternate"`) {
		t.Fatalf("default chain: %d certificates, Link %q", len(chain), hdr.Values("Link"))
	}
	roots := x509.NewCertPool()
	roots.AddCert(e.pki.Root.Cert)
	inter := x509.NewCertPool()
	inter.AddCert(chain[1])
	if _, err := chain[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, DNSName: "www.example.com"}); err != nil {
		t.Fatalf("the chain does not verify: %v", err)
	}
	alt, _ := c.download(t, certPath+"/1")
	if len(alt) != 3 || !alt[2].Equal(e.pki.Root.Cert) {
		t.Fatalf("alternate chain: %d certificates", len(alt))
	}
	// Another account sees neither the order nor the certificate.
	other := e.client(t)
	wantAnswer(t, "other registers", other.register(t, map[string]any{}), 201, "")
	wantAnswer(t, "other reads the order", other.post(t, orderPath, nil), 404, "malformed")
	wantAnswer(t, "other downloads", other.post(t, certPath, nil), 404, "malformed")

	// The validations are reused under the same rules as any other: the
	// dns-01 of example.com covers the wildcard, the http-01 of www only
	// www.
	again := c.newOrder(t, "*.example.com", "www.example.com")
	wantAnswer(t, "order again", again, 201, "")
	if again.body["status"] != "ready" {
		t.Fatalf("order for validated names: %v", again.body)
	}
	fresh := c.newOrder(t, "api.example.com")
	if fresh.body["status"] != "ready" {
		t.Fatalf("order for a name under a dns-01 validated domain: %v", fresh.body)
	}
	sub := c.newOrder(t, "x.www.example.com", "other.example.net")
	if sub.body["status"] != "pending" {
		t.Fatalf("order for other names: %v", sub.body)
	}
	var list answer = c.post(t, e.path(c.kid)+"/orders", nil)
	if n := len(list.body["orders"].([]any)); n != 4 {
		t.Fatalf("the account lists %d orders, want 4", n)
	}
}

func TestWildcardAndFailedChallenge(t *testing.T) {
	e := newEnv(t, Config{})
	c := e.client(t)
	wantAnswer(t, "register", c.register(t, map[string]any{}), 201, "")
	w := c.newOrder(t, "*.wild.example.org")
	a := c.authzs(t, w)[0]
	chs := a.body["challenges"].([]any)
	if a.body["wildcard"] != true || len(chs) != 1 || chs[0].(map[string]any)["type"] != "dns-01" || a.body["identifier"].(map[string]any)["value"] != "wild.example.org" {
		t.Fatalf("wildcard authorization: %v", a.body)
	}
	wantAnswer(t, "http-01 of a wildcard", c.post(t, "/acme/chall/"+e.path(w.body["authorizations"].([]any)[0])[len("/acme/authz/"):]+"/http-01", map[string]any{}), 404, "malformed")

	// Nothing published: the challenge, the authorization and the order
	// are invalid, and the failure says why.
	o := c.newOrder(t, "fail.example.org")
	orderPath := e.path(o.header.Get("Location"))
	ch := challenge(t, c.authzs(t, o)[0], "http-01")
	got := c.post(t, e.path(ch["url"]), map[string]any{})
	wantAnswer(t, "failed challenge", got, 200, "")
	errDoc, _ := got.body["error"].(map[string]any)
	if got.body["status"] != "invalid" || errDoc["type"] != IncorrectResponse.URN() || !strings.Contains(errDoc["detail"].(string), "answered 404") {
		t.Fatalf("failed challenge: %v", got.body)
	}
	// Answering again changes nothing (§7.5.1: no retry).
	c.publish(t, "fail.example.org", ch)
	if again := c.post(t, e.path(ch["url"]), map[string]any{}); again.body["status"] != "invalid" {
		t.Fatalf("answered again: %v", again.body)
	}
	if ord := c.post(t, orderPath, nil); ord.body["status"] != "invalid" || ord.body["error"] == nil {
		t.Fatalf("order after a failed challenge: %v", ord.body)
	}
	// Deactivating an authorization invalidates its order.
	d := c.newOrder(t, "gone.example.org")
	authzPath := e.path(d.body["authorizations"].([]any)[0])
	wantAnswer(t, "bad status", c.post(t, authzPath, map[string]any{"status": "valid"}), 400, "malformed")
	if da := c.post(t, authzPath, map[string]any{"status": "deactivated"}); da.body["status"] != "deactivated" {
		t.Fatalf("deactivated: %v", da.body)
	}
	if ord := c.post(t, e.path(d.header.Get("Location")), nil); ord.body["status"] != "invalid" {
		t.Fatalf("order of a deactivated authorization: %v", ord.body)
	}
}

func TestNewOrderRefuses(t *testing.T) {
	e := newEnv(t, Config{Profiles: []Profile{{Name: "classic", Description: "DV"}}})
	c := e.client(t)
	wantAnswer(t, "register", c.register(t, map[string]any{}), 201, "")
	for _, tc := range []struct {
		name    string
		payload map[string]any
		status  int
		problem string
	}{
		{"no identifiers", map[string]any{"identifiers": []any{}}, 400, "malformed"},
		{"ip", map[string]any{"identifiers": []any{map[string]string{"type": "ip", "value": "192.0.2.1"}}}, 400, "unsupportedIdentifier"},
		{"bad name", map[string]any{"identifiers": []any{map[string]string{"type": "dns", "value": "-bad-.example.org"}}}, 400, "rejectedIdentifier"},
		{"two bad", map[string]any{"identifiers": []any{map[string]string{"type": "dns", "value": "a..example.org"}, map[string]string{"type": "ip", "value": "::1"}}}, 400, "rejectedIdentifier"},
		{"notAfter", map[string]any{"identifiers": []any{map[string]string{"type": "dns", "value": "a.example.org"}}, "notAfter": "2030-01-01T00:00:00Z"}, 400, "malformed"},
		{"unknown profile", map[string]any{"identifiers": []any{map[string]string{"type": "dns", "value": "a.example.org"}}, "profile": "forever"}, 400, "invalidProfile"},
		{"not an object", nil, 400, "malformed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var p any = tc.payload
			if tc.payload == nil {
				p = []string{"x"}
			}
			a := c.post(t, "/acme/new-order", p)
			wantAnswer(t, tc.name, a, tc.status, tc.problem)
			if tc.name == "two bad" && len(a.body["subproblems"].([]any)) != 2 {
				t.Fatalf("subproblems: %v", a.body)
			}
		})
	}
}

// TestEABSharesValidations: an ACME account bound to a Trustline account
// relies on the validations that account completed through the API.
func TestEABSharesValidations(t *testing.T) {
	e := newEnv(t, Config{})
	ctx := context.Background()
	owner, _, err := e.accounts.Create(ctx, "owner@example.com", store.RoleSubscriber)
	if err != nil {
		t.Fatal(err)
	}
	v, err := e.vals.Start(ctx, owner, validation.StartRequest{Domain: "bound.example.org", Method: validation.MethodDNSTXT})
	if err != nil {
		t.Fatal(err)
	}
	e.zone.SetTXT(v.Contact, string(v.Secret))
	if _, err := e.vals.Confirm(ctx, owner, v.ID, ""); err != nil {
		t.Fatal(err)
	}
	if err := e.st.CreateACMEEABKey(ctx, store.ACMEEABKey{ID: "kid-b", AccountID: owner.ID, CreatedBy: owner.ID, CreatedAt: e.clk.Now()}); err != nil {
		t.Fatal(err)
	}
	c := e.client(t)
	wantAnswer(t, "bound", c.register(t, map[string]any{"externalAccountBinding": c.eab(t, "kid-b", e.eabKeyOf("kid-b"), e.srv.URL+"/acme/new-account")}), 201, "")
	o := c.newOrder(t, "www.bound.example.org")
	if o.body["status"] != "ready" {
		t.Fatalf("order for a name the account validated through the API: %v", o.body)
	}
	fin := c.post(t, e.path(o.body["finalize"]), map[string]any{"csr": csrFor(t, "www.bound.example.org")})
	if fin.body["status"] != "valid" {
		t.Fatalf("finalized: %v", fin.body)
	}
	// The certificate is the Trustline account's, listed with its orders.
	ords, err := e.st.ListOrders(ctx, store.OrderFilter{AccountID: owner.ID})
	if err != nil || len(ords) != 1 || ords[0].Status != store.OrderIssued {
		t.Fatalf("the owner's orders: %v, %v", ords, err)
	}
}

// issue orders and finalizes a certificate for names (validated by
// dns-01) with key k, and returns it.
func (c *client) issue(t *testing.T, k *ecdsa.PrivateKey, names ...string) *x509.Certificate {
	t.Helper()
	o := c.newOrder(t, names...)
	for _, a := range c.authzs(t, o) {
		if a.body["status"] == "valid" {
			continue
		}
		ch := challenge(t, a, "dns-01")
		c.publish(t, a.body["identifier"].(map[string]any)["value"].(string), ch)
		wantAnswer(t, "dns-01", c.post(t, c.e.path(ch["url"]), map[string]any{}), 200, "")
	}
	fin := c.post(t, c.e.path(o.body["finalize"]), map[string]any{"csr": csrWith(t, k, names...)})
	if fin.body["status"] != "valid" {
		t.Fatalf("finalize: %d %v", fin.status, fin.body)
	}
	chain, _ := c.download(t, c.e.path(fin.body["certificate"]))
	return chain[0]
}

func TestRevokeCert(t *testing.T) {
	e := newEnv(t, Config{})
	c := e.client(t)
	wantAnswer(t, "register", c.register(t, map[string]any{}), 201, "")
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	cert := c.issue(t, k, "revoke.example.org")
	b64 := base64.RawURLEncoding.EncodeToString(cert.Raw)

	other := e.client(t)
	wantAnswer(t, "other registers", other.register(t, map[string]any{}), 201, "")
	wantAnswer(t, "another account", other.post(t, "/acme/revoke-cert", map[string]any{"certificate": b64}), 403, "unauthorized")
	wantAnswer(t, "certificateHold", c.post(t, "/acme/revoke-cert", map[string]any{"certificate": b64, "reason": 6}), 400, "badRevocationReason")
	wantAnswer(t, "privilegeWithdrawn", c.post(t, "/acme/revoke-cert", map[string]any{"certificate": b64, "reason": 9}), 400, "badRevocationReason")
	wantAnswer(t, "not ours", c.post(t, "/acme/revoke-cert", map[string]any{"certificate": base64.RawURLEncoding.EncodeToString(e.pki.Root.Cert.Raw)}), 403, "unauthorized")
	wantAnswer(t, "superseded", c.post(t, "/acme/revoke-cert", map[string]any{"certificate": b64, "reason": 4}), 200, "")
	sn := cert.SerialNumber
	got, err := e.st.Certificate(context.Background(), mustSerial(t, sn))
	if err != nil || got.Status.String() != "revoked" || got.Reason.String() != "superseded" {
		t.Fatalf("stored certificate after revocation: %v %v %v", got.Status, got.Reason, err)
	}
	wantAnswer(t, "again", c.post(t, "/acme/revoke-cert", map[string]any{"certificate": b64}), 400, "alreadyRevoked")

	// Whoever holds the key may revoke with it; keyCompromise proven so
	// blocks the key for every later order.
	k2, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	cert2 := c.issue(t, k2, "key.example.org")
	holder := &client{e: e, alg: "ES256", key: k2}
	wrongKey := &client{e: e, alg: "ES256", key: ecKey(t, elliptic.P256())}
	b64 = base64.RawURLEncoding.EncodeToString(cert2.Raw)
	wantAnswer(t, "some other key", wrongKey.post(t, "/acme/revoke-cert", map[string]any{"certificate": b64, "reason": 1}), 403, "unauthorized")
	wantAnswer(t, "by its key", holder.post(t, "/acme/revoke-cert", map[string]any{"certificate": b64, "reason": 1}), 200, "")
	o := c.newOrder(t, "key.example.org")
	fin := c.post(t, e.path(o.body["finalize"]), map[string]any{"csr": csrWith(t, k2, "key.example.org")})
	if fin.problem() != "badCSR" || !strings.Contains(fmt.Sprint(fin.body["detail"]), "blocked") {
		t.Fatalf("an order for the blocked key: %d %v", fin.status, fin.body)
	}
}

func mustSerial(t *testing.T, n *big.Int) serial.Serial {
	t.Helper()
	s, err := serial.FromBigInt(n)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestReviewedOrder: an order a Manual Review List pattern matches stays
// processing after finalize until a reviewer decides; then it is valid
// with its certificate, or invalid with the reason.
func TestReviewedOrder(t *testing.T) {
	e := newEnv(t, Config{})
	ctx := context.Background()
	if err := e.st.AddReviewPattern(ctx, store.ReviewPattern{ID: "rp_1", Pattern: "*bank*", CreatedBy: "test", CreatedAt: e.clk.Now()}); err != nil {
		t.Fatal(err)
	}
	reviewer, _, err := e.accounts.Create(ctx, "reviewer@example.net", store.RoleReviewer)
	if err != nil {
		t.Fatal(err)
	}
	c := e.client(t)
	wantAnswer(t, "register", c.register(t, map[string]any{}), 201, "")
	finalize := func(name string) (string, answer) {
		o := c.newOrder(t, name)
		a := c.authzs(t, o)[0]
		ch := challenge(t, a, "dns-01")
		c.publish(t, name, ch)
		wantAnswer(t, "dns-01", c.post(t, e.path(ch["url"]), map[string]any{}), 200, "")
		fin := c.post(t, e.path(o.body["finalize"]), map[string]any{"csr": csrFor(t, name)})
		wantAnswer(t, "finalize "+name, fin, 200, "")
		if fin.body["status"] != "processing" || fin.header.Get("Retry-After") != "30" || fin.body["certificate"] != nil {
			t.Fatalf("finalized %s: %v %v", name, fin.body, fin.header)
		}
		return e.path(o.header.Get("Location")), fin
	}
	trustlineOrder := func(name string) string {
		acct, err := e.st.ACMEAccount(ctx, e.path(c.kid)[len("/acme/acct/"):])
		if err != nil {
			t.Fatal(err)
		}
		ords, err := e.st.ListOrders(ctx, store.OrderFilter{AccountID: acct.AccountID})
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range ords {
			if o.Names[0] == name {
				return o.ID
			}
		}
		t.Fatalf("no Trustline order for %s", name)
		return ""
	}
	approved, _ := finalize("mybank.example.org")
	if still := c.post(t, approved, nil); still.body["status"] != "processing" {
		t.Fatalf("before review: %v", still.body)
	}
	if _, err := e.reviews.Approve(ctx, reviewer, trustlineOrder("mybank.example.org"), review.Decision{Notes: "checked"}); err != nil {
		t.Fatal(err)
	}
	done := c.post(t, approved, nil)
	if done.body["status"] != "valid" || done.body["certificate"] == nil {
		t.Fatalf("after approval: %v", done.body)
	}
	rejected, _ := finalize("yourbank.example.org")
	if _, err := e.reviews.Reject(ctx, reviewer, trustlineOrder("yourbank.example.org"), "looks like phishing"); err != nil {
		t.Fatal(err)
	}
	no := c.post(t, rejected, nil)
	if no.body["status"] != "invalid" || !strings.Contains(fmt.Sprint(no.body["error"]), "looks like phishing") {
		t.Fatalf("after rejection: %v", no.body)
	}
}

// renewalInfo GETs a certificate's renewal information.
func (e *env) renewalInfo(t *testing.T, id string) (int, map[string]any, http.Header) {
	t.Helper()
	resp, err := http.Get(e.srv.URL + "/acme/renewal-info/" + id)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	json.NewDecoder(resp.Body).Decode(&body)
	return resp.StatusCode, body, resp.Header
}

// TestRenewalInfo is RFC 9773: a window in the last third of the
// certificate's life, moved to the past once it is revoked; an order that
// replaces a certificate names one of the account's, once.
func TestRenewalInfo(t *testing.T) {
	e := newEnv(t, Config{})
	c := e.client(t)
	wantAnswer(t, "register", c.register(t, map[string]any{}), 201, "")
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	cert := c.issue(t, k, "ari.example.org")
	id := CertID(cert)
	code, body, hdr := e.renewalInfo(t, id)
	win, _ := body["suggestedWindow"].(map[string]any)
	life := cert.NotAfter.Sub(cert.NotBefore)
	if code != 200 || hdr.Get("Retry-After") != "21600" || win["start"] != cert.NotBefore.Add(life*2/3).UTC().Format(time.RFC3339) ||
		win["end"] != cert.NotBefore.Add(life*5/6).UTC().Format(time.RFC3339) {
		t.Fatalf("renewal info: %d %v %v", code, body, hdr)
	}
	for _, bad := range []string{"x", id + "x", strings.Replace(id, ".", ".AA", 1), "AAAA.AQ"} {
		if code, _, _ := e.renewalInfo(t, bad); code != 400 && code != 404 {
			t.Errorf("renewal info of %q: %d", bad, code)
		}
	}
	// An order replacing it, once.
	ids := []map[string]string{{"type": "dns", "value": "ari.example.org"}}
	wantAnswer(t, "replaces", c.post(t, "/acme/new-order", map[string]any{"identifiers": ids, "replaces": id}), 201, "")
	wantAnswer(t, "replaces again", c.post(t, "/acme/new-order", map[string]any{"identifiers": ids, "replaces": id}), 409, "alreadyReplaced")
	other := e.client(t)
	wantAnswer(t, "other registers", other.register(t, map[string]any{}), 201, "")
	wantAnswer(t, "replaces another's", other.post(t, "/acme/new-order", map[string]any{"identifiers": ids, "replaces": id}), 403, "unauthorized")
	wantAnswer(t, "replaces garbage", c.post(t, "/acme/new-order", map[string]any{"identifiers": ids, "replaces": "nope"}), 400, "malformed")
	// Revoked: renew now.
	wantAnswer(t, "revoke", c.post(t, "/acme/revoke-cert", map[string]any{"certificate": base64.RawURLEncoding.EncodeToString(cert.Raw), "reason": 4}), 200, "")
	_, body, _ = e.renewalInfo(t, id)
	win, _ = body["suggestedWindow"].(map[string]any)
	end, err := time.Parse(time.RFC3339, fmt.Sprint(win["end"]))
	if err != nil || end.After(time.Now()) {
		t.Fatalf("a revoked certificate's window ends at %v, not in the past", win["end"])
	}
}

// TestProfiles: an order names a profile from the directory's meta, and
// its certificate has that profile's lifetime.
func TestProfiles(t *testing.T) {
	e := newEnv(t, Config{Profiles: []Profile{{Name: "classic", Description: "90 days"}, {Name: "shortlived", Description: "6 days", Validity: 6 * 24 * time.Hour}}})
	c := e.client(t)
	wantAnswer(t, "register", c.register(t, map[string]any{}), 201, "")
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	classic := c.issue(t, k, "classic.example.org")
	if got := classic.NotAfter.Sub(classic.NotBefore) + time.Second; got != 90*24*time.Hour {
		t.Fatalf("the default profile's certificate runs %v", got)
	}
	o := c.post(t, "/acme/new-order", map[string]any{"identifiers": []map[string]string{{"type": "dns", "value": "classic.example.org"}}, "profile": "shortlived"})
	if o.body["profile"] != "shortlived" || o.body["status"] != "ready" {
		t.Fatalf("short-lived order: %v", o.body)
	}
	fin := c.post(t, e.path(o.body["finalize"]), map[string]any{"csr": csrWith(t, k, "classic.example.org")})
	chain, _ := c.download(t, e.path(fin.body["certificate"]))
	if got := chain[0].NotAfter.Sub(chain[0].NotBefore) + time.Second; got != 6*24*time.Hour {
		t.Fatalf("the short-lived profile's certificate runs %v", got)
	}
	if _, err := New(Config{BaseURL: "http://x.example", Profiles: []Profile{{Name: "tiny", Validity: time.Hour}}}, Deps{}); err == nil {
		t.Fatal("a profile of an hour is accepted")
	}
}

// TestBoundOVOrder: an account bound with an OV binding key orders OV
// certificates for the key's organization; each waits for a reviewer,
// then carries the organization in its subject.
func TestBoundOVOrder(t *testing.T) {
	e := newEnv(t, Config{})
	ctx := context.Background()
	owner, _, err := e.accounts.Create(ctx, "org-owner@example.com", store.RoleSubscriber)
	if err != nil {
		t.Fatal(err)
	}
	reviewer, _, err := e.accounts.Create(ctx, "reviewer@example.net", store.RoleReviewer)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.st.CreateACMEEABKey(ctx, store.ACMEEABKey{ID: "kid-ov", AccountID: owner.ID, CreatedBy: owner.ID, CreatedAt: e.clk.Now(),
		CertProfile: "ov", Organization: []byte(`{"name":"Example Ltd","locality":"London","country":"GB"}`)}); err != nil {
		t.Fatal(err)
	}
	c := e.client(t)
	wantAnswer(t, "bound", c.register(t, map[string]any{"externalAccountBinding": c.eab(t, "kid-ov", e.eabKeyOf("kid-ov"), e.srv.URL+"/acme/new-account")}), 201, "")
	o := c.newOrder(t, "shop.example.org")
	ch := challenge(t, c.authzs(t, o)[0], "dns-01")
	c.publish(t, "shop.example.org", ch)
	wantAnswer(t, "dns-01", c.post(t, e.path(ch["url"]), map[string]any{}), 200, "")
	fin := c.post(t, e.path(o.body["finalize"]), map[string]any{"csr": csrFor(t, "shop.example.org")})
	if fin.body["status"] != "processing" {
		t.Fatalf("an OV order after finalize: %v", fin.body)
	}
	ords, err := e.st.ListOrders(ctx, store.OrderFilter{AccountID: owner.ID})
	if err != nil || len(ords) != 1 || ords[0].Profile != "ov" || ords[0].Status != store.OrderPendingReview {
		t.Fatalf("the owner's orders: %+v, %v", ords, err)
	}
	if _, err := e.reviews.Approve(ctx, reviewer, ords[0].ID, review.Decision{Notes: "registry checked"}); err != nil {
		t.Fatal(err)
	}
	done := c.post(t, e.path(o.header.Get("Location")), nil)
	if done.body["status"] != "valid" {
		t.Fatalf("after approval: %v", done.body)
	}
	chain, _ := c.download(t, e.path(done.body["certificate"]))
	if got := chain[0].Subject.Organization; len(got) != 1 || got[0] != "Example Ltd" {
		t.Fatalf("the OV certificate's organization: %v", got)
	}
}

// TestInterruptedFinalization: an order claimed for finalization whose
// instance stopped before the order service saw it turns invalid once it
// expires, instead of staying processing for ever.
func TestInterruptedFinalization(t *testing.T) {
	e := newEnv(t, Config{})
	ctx := context.Background()
	c := e.client(t)
	wantAnswer(t, "register", c.register(t, map[string]any{}), 201, "")
	claim := func(name, orderID string) string {
		o := c.newOrder(t, name)
		path := e.path(o.header.Get("Location"))
		stored, err := e.st.ACMEOrder(ctx, path[len("/acme/order/"):])
		if err != nil {
			t.Fatal(err)
		}
		// As a finalize that stopped after its claim leaves it.
		stored.Status, stored.OrderID = store.ACMEOrderProcessing, orderID
		if orderID != "" {
			stored.FinalizedAt = e.clk.Now()
		}
		if _, err := e.st.UpdateACMEOrder(ctx, stored); err != nil {
			t.Fatal(err)
		}
		return path
	}
	named := claim("cut.example.org", issuer.NewID("ord_")) // its Trustline order never made
	legacy := claim("stuck.example.org", "")                // claimed by a version that named no order
	for _, path := range []string{named, legacy} {
		if got := c.post(t, path, nil); got.body["status"] != "processing" {
			t.Fatalf("%s at once: %v", path, got.body)
		}
	}
	e.clk.Advance(finalizeGrace)
	if got := c.post(t, named, nil); got.body["status"] != "invalid" || got.body["error"] == nil {
		t.Fatalf("past the grace: %v", got.body)
	}
	if got := c.post(t, legacy, nil); got.body["status"] != "processing" {
		t.Fatalf("an unnamed claim past the grace: %v", got.body)
	}
	e.clk.Advance(OrderLifetime)
	if got := c.post(t, legacy, nil); got.body["status"] != "invalid" || got.body["error"] == nil {
		t.Fatalf("after expiry: %v", got.body)
	}
}

// TestFinalizedOrderFollowed: the claim names the Trustline order, so an
// ACME order whose last write was lost after its certificate was signed
// still leads its client to the certificate.
func TestFinalizedOrderFollowed(t *testing.T) {
	e := newEnv(t, Config{})
	ctx := context.Background()
	c := e.client(t)
	wantAnswer(t, "register", c.register(t, map[string]any{}), 201, "")
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	cert := c.issue(t, k, "lost.example.org")
	orders, err := e.st.ACMEOrders(ctx, c.accountID(t), 0)
	if err != nil || len(orders) != 1 {
		t.Fatalf("orders: %v %v", orders, err)
	}
	o := orders[0]
	ord, err := e.st.Order(ctx, o.OrderID)
	if err != nil || ord.Serial != mustSerial(t, cert.SerialNumber) || !o.FinalizedAt.Equal(e.clk.Now()) {
		t.Fatalf("the ACME order names %q (finalized at %v), whose order is %+v (%v)", o.OrderID, o.FinalizedAt, ord, err)
	}
	o.Status = store.ACMEOrderProcessing // the write after signing, lost
	if _, err := e.st.UpdateACMEOrder(ctx, o); err != nil {
		t.Fatal(err)
	}
	got := c.post(t, "/acme/order/"+o.ID, nil)
	if got.body["status"] != "valid" || !strings.HasSuffix(fmt.Sprint(got.body["certificate"]), ord.Serial.String()) {
		t.Fatalf("the order after a lost write: %v", got.body)
	}
	if o, _ := e.st.ACMEOrder(ctx, o.ID); o.Status != store.ACMEOrderValid {
		t.Errorf("stored as %s, want valid", o.Status)
	}
}

// TestPlannedRevocationRenewal: a certificate the CA plans to revoke gets
// a renewal window that opens when the plan is made and closes halfway to
// the deadline, with the incident's page and a shorter Retry-After;
// cancelling the plan restores the normal window.
func TestPlannedRevocationRenewal(t *testing.T) {
	e := newEnv(t, Config{})
	ctx := context.Background()
	c := e.client(t)
	wantAnswer(t, "register", c.register(t, map[string]any{}), 201, "")
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	cert := c.issue(t, k, "planned.example.org")
	id := CertID(cert)
	sn := mustSerial(t, cert.SerialNumber)
	plans := NewRevocationPlans(e.st, e.clk.Now)
	admin, err := e.st.Account(ctx, c.trustlineAccount(t))
	if err != nil {
		t.Fatal(err)
	}
	e.clk.Advance(time.Hour)
	deadline := e.clk.Now().Add(5 * 24 * time.Hour)
	const page = "https://status.example.net/incident-7"
	if _, err := plans.Plan(ctx, admin, PlanRequest{Serials: []string{sn.String()}, RevokeBy: deadline, Reason: "superseded", ExplanationURL: page}); err != nil {
		t.Fatal(err)
	}
	code, body, hdr := e.renewalInfo(t, id)
	win, _ := body["suggestedWindow"].(map[string]any)
	wantStart, wantEnd := e.clk.Now(), e.clk.Now().Add(60*time.Hour)
	if code != 200 || win["start"] != rfc3339(wantStart) || win["end"] != rfc3339(wantEnd) || body["explanationURL"] != page || hdr.Get("Retry-After") != "3600" {
		t.Fatalf("planned: %d %v %v; want %v–%v", code, body, hdr.Get("Retry-After"), wantStart, wantEnd)
	}
	if err := plans.Cancel(ctx, admin, sn); err != nil {
		t.Fatal(err)
	}
	_, body, hdr = e.renewalInfo(t, id)
	win, _ = body["suggestedWindow"].(map[string]any)
	life := cert.NotAfter.Sub(cert.NotBefore)
	if win["start"] != rfc3339(cert.NotBefore.Add(life*2/3)) || body["explanationURL"] != nil || hdr.Get("Retry-After") != "21600" {
		t.Fatalf("cancelled: %v %v", body, hdr.Get("Retry-After"))
	}
	if err := plans.Cancel(ctx, admin, sn); err == nil {
		t.Error("cancelling twice succeeded")
	}
}

// TestCAAAccountURI: a CAA record's accounturi (RFC 8657) names the ACME
// account, by its URL: an order of that account is signed, another
// account's is refused with a caa problem.
func TestCAAAccountURI(t *testing.T) {
	e := newEnvWith(t, Config{}, true)
	c := e.client(t)
	wantAnswer(t, "register", c.register(t, map[string]any{}), 201, "")
	other := e.client(t)
	wantAnswer(t, "other registers", other.register(t, map[string]any{}), 201, "")
	e.zone.SetCAA("pinned.example.org", `0 issue "trustline.test; accounturi=`+c.kid+`"`)
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	c.issue(t, k, "pinned.example.org")

	o := other.newOrder(t, "pinned.example.org")
	ch := challenge(t, other.authzs(t, o)[0], "dns-01")
	other.publish(t, "pinned.example.org", ch)
	wantAnswer(t, "dns-01", other.post(t, e.path(ch["url"]), map[string]any{}), 200, "")
	fin := other.post(t, e.path(o.body["finalize"]), map[string]any{"csr": csrFor(t, "pinned.example.org")})
	wantAnswer(t, "another account's order", fin, 400, "caa")
}

// TestOpenOrdersLimited: an ACME account may have so many orders open at
// once; the next is refused with rateLimited and Retry-After, and a new
// account is limited by sign-ups per source.
func TestOpenOrdersLimited(t *testing.T) {
	e := newEnv(t, Config{})
	e.withLimits(t, ratelimit.Config{PendingACMEOrdersPerAccount: 2, SignUpsPerSource: ratelimit.Rule{Max: 2, Per: time.Hour}})
	c := e.client(t)
	wantAnswer(t, "register", c.register(t, map[string]any{}), 201, "")
	for _, n := range []string{"a.example.org", "b.example.org"} {
		wantAnswer(t, "order "+n, c.newOrder(t, n), 201, "")
	}
	third := c.newOrder(t, "c.example.org")
	wantAnswer(t, "third open order", third, 429, "rateLimited")
	if third.header.Get("Retry-After") == "" {
		t.Fatal("rateLimited without Retry-After")
	}
	wantAnswer(t, "second account", e.client(t).register(t, map[string]any{}), 201, "")
	wantAnswer(t, "third account from one address", e.client(t).register(t, map[string]any{}), 429, "rateLimited")
}

// accountID is the client's ACME account id (its URL's last segment).
func (c *client) accountID(t *testing.T) string {
	t.Helper()
	if c.kid == "" {
		t.Fatal("the client has no account")
	}
	return c.kid[strings.LastIndex(c.kid, "/")+1:]
}

// trustlineAccount is the Trustline account the client's ACME account acts for.
func (c *client) trustlineAccount(t *testing.T) string {
	t.Helper()
	a, err := c.e.st.ACMEAccount(context.Background(), c.accountID(t))
	if err != nil {
		t.Fatal(err)
	}
	return a.AccountID
}
