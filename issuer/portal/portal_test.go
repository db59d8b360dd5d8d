package portal

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/trustline/trustline/internal/serial"
	"github.com/trustline/trustline/internal/status"
	"github.com/trustline/trustline/internal/store"
	"github.com/trustline/trustline/internal/testfix"
	"github.com/trustline/trustline/issuer/ratelimit"
)

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		ok   bool
	}{
		{"minimal", Config{BaseURL: "http://127.0.0.1:8080"}, true},
		{"https with slash", Config{BaseURL: "https://ca.example/"}, true},
		{"no base", Config{}, false},
		{"base with path", Config{BaseURL: "http://127.0.0.1:8080/portal"}, false},
		{"base without scheme", Config{BaseURL: "127.0.0.1:8080"}, false},
		{"ftp", Config{BaseURL: "ftp://x.example"}, false},
		{"lifetime too long", Config{BaseURL: "http://a.example", SessionLifetime: 8 * 24 * time.Hour}, false},
		{"idle beyond lifetime", Config{BaseURL: "http://a.example", SessionLifetime: time.Hour, SessionIdle: 2 * time.Hour}, false},
		{"idle beyond default lifetime", Config{BaseURL: "http://a.example", SessionIdle: 9 * time.Hour}, false},
		{"link too long", Config{BaseURL: "http://a.example", LoginLinkLifetime: 2 * time.Hour}, false},
		{"upload too small", Config{BaseURL: "http://a.example", MaxUpload: 1024}, false},
		{"upload fine", Config{BaseURL: "http://a.example", MaxUpload: 128 << 10}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if (err == nil) != tc.ok {
				t.Errorf("Validate() = %v, want ok=%v", err, tc.ok)
			}
		})
	}
}

func TestNewRequiresDeps(t *testing.T) {
	if _, err := New(Config{BaseURL: "http://127.0.0.1:1"}, Deps{}); err == nil {
		t.Fatal("New with no services succeeded")
	}
}

func TestSignInWithAPIKey(t *testing.T) {
	e := newEnv(t)
	key := e.account(t, "alice@example.com", store.RoleSubscriber)
	b := e.browser(t)

	p := b.get(t, "/")
	wantStatus(t, "sign-in page", p, 200)
	wantContains(t, "sign-in page", p, `<label for="api_key">`, `action="/signin"`, `action="/signin/email"`, `action="/signup"`)

	p = b.post(t, "/signin", url.Values{"api_key": {"tl_0123456789abcdef_wrong"}})
	wantStatus(t, "bad key", p, http.StatusUnauthorized)
	wantContains(t, "bad key", p, "That API key is not valid")

	p = b.post(t, "/signin", url.Values{"api_key": {key}, "next": {"/orders/new"}})
	wantStatus(t, "good key", p, http.StatusSeeOther)
	if got := p.location(); got != "/orders/new" {
		t.Errorf("landing %q, want /orders/new", got)
	}
	for _, c := range p.header.Values("Set-Cookie") {
		if strings.Contains(c, key) || strings.Contains(c, strings.Split(key, "_")[2]) {
			t.Errorf("the API key is in a cookie: %s", c)
		}
	}
	p = b.get(t, "/")
	wantStatus(t, "dashboard", p, 200)
	wantContains(t, "dashboard", p, "alice@example.com", "<h1>Dashboard</h1>")

	// An open redirect through next is refused: the landing is the dashboard.
	b2 := e.browser(t)
	b2.get(t, "/")
	p = b2.post(t, "/signin", url.Values{"api_key": {key}, "next": {"//evil.example/x"}})
	if got := p.location(); got != "/" {
		t.Errorf("next=//evil.example: landing %q, want /", got)
	}
}

// TestSignInRateLimited: past the failed sign-ins a source may make, the
// sign-in page answers 429 and says when to try again, in Retry-After as
// the API does (RFC 6585 §4).
func TestSignInRateLimited(t *testing.T) {
	e := newEnvWith(t, envOpts{limits: &ratelimit.Config{FailedAuthPerSource: ratelimit.Rule{Max: 2, Per: time.Hour}}})
	b := e.browser(t)
	b.get(t, "/")
	for i := range 2 {
		p := b.post(t, "/signin", url.Values{"api_key": {"tl_0123456789abcdef_wrong"}})
		wantStatus(t, fmt.Sprintf("bad key %d", i+1), p, http.StatusUnauthorized)
	}
	p := b.post(t, "/signin", url.Values{"api_key": {"tl_0123456789abcdef_wrong"}})
	wantStatus(t, "bad key 3", p, http.StatusTooManyRequests)
	wantContains(t, "bad key 3", p, "failed sign-in attempts from your address")
	ra, err := strconv.Atoi(p.header.Get("Retry-After"))
	if err != nil || ra < 1 || ra > 3600 {
		t.Fatalf("Retry-After %q, want whole seconds up to the hour", p.header.Get("Retry-After"))
	}
}

func TestSessionCookieAttributes(t *testing.T) {
	e := newEnv(t)
	key := e.account(t, "alice@example.com", store.RoleSubscriber)
	b := e.browser(t)
	b.get(t, "/")
	p := b.post(t, "/signin", url.Values{"api_key": {key}})
	resp := &http.Response{Header: p.header}
	var sess *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == sessionCookie {
			sess = c
		}
	}
	if sess == nil {
		t.Fatal("no session cookie set")
	}
	if !sess.HttpOnly || sess.SameSite != http.SameSiteLaxMode || sess.Path != "/" {
		t.Errorf("session cookie %+v: want HttpOnly, SameSite=Lax, Path=/", sess)
	}
	// Plain HTTP on loopback: a Secure cookie would never come back.
	if sess.Secure {
		t.Error("session cookie is Secure on plain HTTP")
	}
	if len(sess.Value) != 43 {
		t.Errorf("session id %q is not 32 random octets in base64url", sess.Value)
	}

	// Over TLS, or with an https BaseURL, it is Secure.
	r := httptest.NewRequest("POST", "https://ca.example/signin", nil)
	rec := httptest.NewRecorder()
	e.h.setCookie(rec, r, sessionCookie, "x", http.SameSiteLaxMode)
	if !strings.Contains(rec.Header().Get("Set-Cookie"), "Secure") {
		t.Errorf("cookie over TLS lacks Secure: %s", rec.Header().Get("Set-Cookie"))
	}
}

func TestSignUpShowsKeyOnce(t *testing.T) {
	e := newEnv(t)
	b := e.browser(t)
	b.get(t, "/")
	p := b.post(t, "/signup", url.Values{"email": {"new@example.com"}})
	wantStatus(t, "sign up", p, http.StatusCreated)
	m := regexpKey.FindStringSubmatch(p.body)
	if m == nil {
		t.Fatalf("no API key on the welcome page:\n%s", excerpt(p.body))
	}
	acct, err := e.accounts.Authenticate(context.Background(), m[1])
	if err != nil || acct.Email != "new@example.com" || acct.Role != store.RoleSubscriber {
		t.Fatalf("shown key authenticates as %+v, %v", acct, err)
	}
	// The new account is signed in.
	wantContains(t, "after sign-up", b.get(t, "/"), "new@example.com", "<h1>Dashboard</h1>")

	b2 := e.browser(t)
	b2.get(t, "/")
	// A second sign-up with the address reads the same: several accounts
	// may share an address, so nothing tells that one exists.
	p = b2.post(t, "/signup", url.Values{"email": {"new@example.com"}})
	wantStatus(t, "same address again", p, http.StatusCreated)
	wantContains(t, "same address again", p, "mailed a confirmation link to new@example.com")
	b3 := e.browser(t)
	b3.get(t, "/")
	p = b3.post(t, "/signup", url.Values{"email": {"not an address"}})
	wantStatus(t, "bad address", p, http.StatusBadRequest)
}

func TestEmailLinkSignIn(t *testing.T) {
	e := newEnv(t)
	e.account(t, "alice@example.com", store.RoleSubscriber)
	b := e.browser(t)
	b.get(t, "/")

	p := b.post(t, "/signin/email", url.Values{"email": {"nobody@example.com"}})
	wantStatus(t, "unknown address", p, 200)
	unknown := p.body
	if n := len(e.mails(t, "nobody@example.com")); n != 0 {
		t.Errorf("%d mails to an address without an account", n)
	}
	p = b.post(t, "/signin/email", url.Values{"email": {"Alice@Example.com"}, "next": {"/orders/new"}})
	wantStatus(t, "known address", p, 200)
	// The answer must not tell whether the address has an account.
	if strings.ReplaceAll(unknown, "nobody@example.com", "X") != strings.ReplaceAll(p.body, "alice@example.com", "X") {
		t.Error("the answers for a known and an unknown address differ")
	}
	link := e.lastMatch(t, "alice@example.com", linkRE)
	if !strings.HasPrefix(link, e.srv.URL+"/signin/link?") {
		t.Fatalf("link %q is not on the portal's BaseURL", link)
	}
	// A second request at once sends nothing (no inbox flooding).
	b.post(t, "/signin/email", url.Values{"email": {"alice@example.com"}})
	if n := len(e.mails(t, "alice@example.com")); n != 1 {
		t.Errorf("%d mails after two quick requests, want 1", n)
	}

	path := strings.TrimPrefix(link, e.srv.URL)
	// Fetching the link (as a mail scanner would) does not use it up.
	for i := 0; i < 2; i++ {
		p = b.get(t, path)
		wantStatus(t, "link page", p, 200)
		wantContains(t, "link page", p, "Sign in as alice@example.com?")
	}
	u, _ := url.Parse(link)
	p = b.post(t, "/signin/link", url.Values{"token": {u.Query().Get("token")}, "next": {u.Query().Get("next")}})
	wantStatus(t, "redeem", p, http.StatusSeeOther)
	if p.location() != "/orders/new" {
		t.Errorf("landing %q, want /orders/new", p.location())
	}
	wantContains(t, "signed in by link", b.get(t, "/"), "alice@example.com")

	// Used once.
	b3 := e.browser(t)
	b3.get(t, "/")
	p = b3.post(t, "/signin/link", url.Values{"token": {u.Query().Get("token")}})
	wantStatus(t, "reused link", p, http.StatusBadRequest)
	wantStatus(t, "reused link page", b3.get(t, path), http.StatusBadRequest)

	// Expired.
	e.skew.Add(int64(linkInterval + time.Second))
	b.post(t, "/signout", nil)
	b.get(t, "/")
	b.post(t, "/signin/email", url.Values{"email": {"alice@example.com"}})
	link2 := e.lastMatch(t, "alice@example.com", linkRE)
	if link2 == link {
		t.Fatal("no second link mailed")
	}
	e.skew.Add(int64(16 * time.Minute))
	wantStatus(t, "expired link", b.get(t, strings.TrimPrefix(link2, e.srv.URL)), http.StatusBadRequest)
}

func TestSignOut(t *testing.T) {
	e := newEnv(t)
	key := e.account(t, "alice@example.com", store.RoleSubscriber)
	b := e.browser(t)
	b.signIn(t, key)
	old := b.csrf
	p := b.post(t, "/signout", nil)
	wantStatus(t, "sign out", p, http.StatusSeeOther)
	wantContains(t, "after sign-out", b.follow(t, p), "You are signed out", `action="/signin"`)
	if n := e.h.sessions.len(); n != 0 {
		t.Errorf("%d sessions left after sign-out", n)
	}
	// The old session's token no longer does anything.
	p = b.post(t, "/validations", url.Values{"csrf": {old}, "domain": {"example.com"}, "method": {"email"}, "local": {"admin"}})
	wantStatus(t, "post after sign-out", p, http.StatusForbidden)
}

func TestSessionExpiry(t *testing.T) {
	e := newEnvWith(t, envOpts{cfg: Config{SessionLifetime: 2 * time.Hour, SessionIdle: 30 * time.Minute}})
	key := e.account(t, "alice@example.com", store.RoleSubscriber)

	t.Run("idle", func(t *testing.T) {
		b := e.browser(t)
		b.signIn(t, key)
		e.skew.Add(int64(20 * time.Minute))
		wantStatus(t, "used within the idle limit", b.get(t, "/orders/new"), 200)
		e.skew.Add(int64(31 * time.Minute))
		p := b.get(t, "/orders/new")
		wantStatus(t, "idle too long", p, http.StatusSeeOther)
		if want := "/?expired=1&next=%2Forders%2Fnew"; p.location() != want {
			t.Errorf("redirect to %q, want %q", p.location(), want)
		}
		wantContains(t, "sign-in after expiry", b.follow(t, p), "Your session has expired")
	})
	t.Run("lifetime", func(t *testing.T) {
		b := e.browser(t)
		b.signIn(t, key)
		for i := 0; i < 4; i++ { // busy, never idle
			e.skew.Add(int64(25 * time.Minute))
			wantContains(t, "busy session", b.get(t, "/"), "<h1>Dashboard</h1>")
		}
		e.skew.Add(int64(25 * time.Minute)) // 2 h 5 min after sign-in
		p := b.post(t, "/validations", url.Values{"domain": {"example.com"}, "method": {"email"}, "local": {"admin"}})
		wantStatus(t, "post after lifetime", p, http.StatusForbidden)
		wantContains(t, "post after lifetime", p, "Your session has expired", "Nothing was changed")
		if n := len(e.mails(t, "admin@example.com")); n != 0 {
			t.Errorf("an expired session started a validation (%d mails)", n)
		}
	})
}

// TestCSRF posts to every state-changing route without the form token,
// with another session's token, and from another origin: each is refused
// with 403 and changes nothing.
func TestCSRF(t *testing.T) {
	e := newEnv(t)
	aliceKey := e.account(t, "alice@example.com", store.RoleSubscriber)
	revKey := e.account(t, "rev@example.net", store.RoleReviewer)
	alice := e.browser(t)
	alice.signIn(t, aliceKey)
	alice.validate(t, "example.com")
	p := alice.order(t, url.Values{"domain": {"example.com"}, "profile": {"dv"}, "csr": {csrPEM(t, "example.com")}}, nil)
	wantStatus(t, "dv order", p, http.StatusSeeOther)
	p = alice.follow(t, p)
	sn := serialOnPage(t, p)
	p = alice.order(t, url.Values{"domain": {"example.com"}, "profile": {"ov"}, "csr": {csrPEM(t, "www.example.com")},
		"org_name": {"Example Ltd"}, "org_locality": {"London"}, "org_country": {"GB"}}, nil)
	ovID := strings.TrimPrefix(p.location(), "/orders/")
	rev := e.browser(t)
	rev.signIn(t, revKey)

	mallory := e.browser(t)
	mallory.signIn(t, e.account(t, "mallory@example.org", store.RoleSubscriber))
	alienToken := mallory.csrf

	type route struct {
		name string
		b    *browser
		path string
		form url.Values
	}
	routes := []route{
		{"sign out", alice, "/signout", url.Values{}},
		{"start validation", alice, "/validations", url.Values{"domain": {"example.org"}, "method": {"email"}, "local": {"admin"}}},
		{"place order", alice, "/orders", url.Values{"domain": {"example.com"}, "profile": {"dv"}, "csr": {csrPEM(t, "example.com")}}},
		{"revoke", alice, "/certificates/" + sn + "/revoke", url.Values{"reason": {"keyCompromise"}, "confirm": {"yes"}}},
		{"approve", rev, "/review/orders/" + ovID + "/approve", url.Values{"evidence_source": {"register"}}},
		{"reject", rev, "/review/orders/" + ovID + "/reject", url.Values{"reason": {"no"}}},
	}
	attacks := []struct {
		name  string
		setup func(b *browser, f url.Values) (origin string, hdr map[string]string)
	}{
		{"no token", func(b *browser, f url.Values) (string, map[string]string) { f.Set("csrf", ""); return b.e.srv.URL, nil }},
		{"another session's token", func(b *browser, f url.Values) (string, map[string]string) {
			f.Set("csrf", alienToken)
			return b.e.srv.URL, nil
		}},
		{"cross-origin", func(b *browser, f url.Values) (string, map[string]string) {
			f.Set("csrf", b.csrf)
			return "http://evil.example", nil
		}},
		{"no origin or referer", func(b *browser, f url.Values) (string, map[string]string) { f.Set("csrf", b.csrf); return "", nil }},
		{"cross-site fetch metadata", func(b *browser, f url.Values) (string, map[string]string) {
			f.Set("csrf", b.csrf)
			return b.e.srv.URL, map[string]string{"Sec-Fetch-Site": "cross-site"}
		}},
		{"foreign referer", func(b *browser, f url.Values) (string, map[string]string) {
			f.Set("csrf", b.csrf)
			return "", map[string]string{"Referer": "http://evil.example/form"}
		}},
	}
	for _, rt := range routes {
		for _, at := range attacks {
			t.Run(rt.name+"/"+at.name, func(t *testing.T) {
				rt.b.get(t, "/") // a fresh token for this browser
				f := url.Values{}
				for k, v := range rt.form {
					f[k] = v
				}
				origin, hdr := at.setup(rt.b, f)
				req, _ := http.NewRequest("POST", e.srv.URL+rt.path, strings.NewReader(f.Encode()))
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				if origin != "" {
					req.Header.Set("Origin", origin)
				}
				for k, v := range hdr {
					req.Header.Set(k, v)
				}
				p := rt.b.do(t, req)
				wantStatus(t, "forged post", p, http.StatusForbidden)
			})
		}
	}
	// Nothing changed: still signed in, no new validation or order, the
	// certificate good, the OV order pending.
	wantContains(t, "still signed in", alice.get(t, "/"), "alice@example.com")
	if n := len(e.mails(t, "admin@example.org")); n != 0 {
		t.Error("a forged post started a validation")
	}
	if n := e.orderCount(t, e.accountByEmail(t, "alice@example.com")); n != 2 {
		t.Errorf("%d orders, want 2", n)
	}
	c, _ := e.st.Certificate(context.Background(), serial.Serial(sn))
	if c.Status != status.Good {
		t.Error("a forged post revoked the certificate")
	}
	o, _ := e.st.Order(context.Background(), ovID)
	if o.Status != store.OrderPendingReview {
		t.Errorf("a forged post decided the OV order: %s", o.Status)
	}

	// The pre-sign-in forms are guarded too.
	for _, path := range []string{"/signin", "/signin/email", "/signup", "/signin/link"} {
		t.Run("anonymous"+path, func(t *testing.T) {
			b := e.browser(t)
			b.get(t, "/")
			p := b.post(t, path, url.Values{"csrf": {"forged"}, "api_key": {aliceKey}, "email": {"x@example.com"}})
			wantStatus(t, "forged token", p, http.StatusForbidden)
			b.origin = "http://evil.example"
			p = b.post(t, path, url.Values{"api_key": {aliceKey}, "email": {"x@example.com"}})
			wantStatus(t, "cross-origin", p, http.StatusForbidden)
		})
	}
	if as, _ := e.st.AccountsByEmail(context.Background(), "x@example.com"); len(as) > 0 {
		t.Error("a forged sign-up created an account")
	}
}

func TestRoles(t *testing.T) {
	e := newEnv(t)
	aliceKey := e.account(t, "alice@example.com", store.RoleSubscriber)
	alice := e.browser(t)
	alice.signIn(t, aliceKey)
	alice.validate(t, "example.com")
	p := alice.follow(t, alice.order(t, url.Values{"domain": {"example.com"}, "profile": {"dv"}, "csr": {csrPEM(t, "example.com")}}, nil))
	sn := serialOnPage(t, p)
	alicesOrders, _ := e.st.ListOrders(context.Background(), store.OrderFilter{AccountID: e.accountByEmail(t, "alice@example.com").ID})
	ordID := alicesOrders[0].ID

	bob := e.browser(t)
	bob.signIn(t, e.account(t, "bob@example.org", store.RoleSubscriber))
	rev := e.browser(t)
	rev.signIn(t, e.account(t, "rev@example.net", store.RoleReviewer))
	admin := e.browser(t)
	admin.signIn(t, e.account(t, "root@example.net", store.RoleAdmin))

	vals, _ := e.st.ValidValidations(context.Background(), e.accountByEmail(t, "alice@example.com").ID, time.Now())
	valID := vals[0].ID

	tests := []struct {
		name   string
		b      *browser
		path   string
		status int
	}{
		{"subscriber: console", alice, "/review", http.StatusForbidden},
		{"subscriber: console order", alice, "/review/orders/" + ordID, http.StatusForbidden},
		{"admin: console", admin, "/review", http.StatusForbidden},
		{"reviewer: console", rev, "/review", http.StatusOK},
		{"other subscriber: order", bob, "/orders/" + ordID, http.StatusNotFound},
		{"other subscriber: certificate", bob, "/certificates/" + sn, http.StatusNotFound},
		{"other subscriber: chain", bob, "/certificates/" + sn + "/chain.pem", http.StatusNotFound},
		{"other subscriber: validation", bob, "/validations/" + valID, http.StatusNotFound},
		{"owner: certificate", alice, "/certificates/" + sn, http.StatusOK},
		{"reviewer: certificate", rev, "/certificates/" + sn, http.StatusOK},
		{"admin: certificate", admin, "/certificates/" + sn, http.StatusOK},
		{"reviewer: other's validation", rev, "/validations/" + valID, http.StatusNotFound},
		{"bad serial", alice, "/certificates/ZZ", http.StatusNotFound},
		{"unknown page", alice, "/nope", http.StatusNotFound},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			wantStatus(t, tc.path, tc.b.get(t, tc.path), tc.status)
		})
	}
	t.Run("signed out", func(t *testing.T) {
		anon := e.browser(t)
		for _, path := range []string{"/review", "/orders/new", "/certificates/" + sn, "/validations/new"} {
			p := anon.get(t, path)
			wantStatus(t, path, p, http.StatusSeeOther)
			if !strings.HasPrefix(p.location(), "/?next=") {
				t.Errorf("%s: redirect to %q, want the sign-in page", path, p.location())
			}
		}
	})
	t.Run("reviewer may not revoke another's certificate", func(t *testing.T) {
		p := rev.get(t, "/certificates/"+sn)
		if strings.Contains(p.body, "/revoke") {
			t.Error("the revocation form is shown to a reviewer")
		}
		p = rev.post(t, "/certificates/"+sn+"/revoke", url.Values{"reason": {"keyCompromise"}, "confirm": {"yes"}})
		wantStatus(t, "reviewer revoke", p, http.StatusForbidden)
		p = bob.post(t, "/certificates/"+sn+"/revoke", url.Values{"reason": {"keyCompromise"}, "confirm": {"yes"}})
		wantStatus(t, "other subscriber revoke", p, http.StatusNotFound)
	})
	t.Run("only admins withdraw privilege", func(t *testing.T) {
		if strings.Contains(alice.get(t, "/certificates/"+sn).body, "privilegeWithdrawn") {
			t.Error("privilegeWithdrawn offered to a subscriber")
		}
		p := alice.post(t, "/certificates/"+sn+"/revoke", url.Values{"reason": {"privilegeWithdrawn"}, "confirm": {"yes"}})
		wantStatus(t, "subscriber privilegeWithdrawn", p, http.StatusBadRequest)
		wantContains(t, "admin page", admin.get(t, "/certificates/"+sn), `value="privilegeWithdrawn"`)
	})
}

var regexpKey = mustRegexp(`value="(tl_[0-9a-f]{16}_[A-Za-z0-9_-]+)"`)

// serialOnPage finds the certificate serial an order page shows.
func serialOnPage(t testing.TB, p page) string {
	t.Helper()
	m := mustRegexp(`/certificates/([0-9a-f]+)/chain\.pem`).FindStringSubmatch(p.body)
	if m == nil {
		t.Fatalf("no certificate on the page:\n%s", excerpt(p.body))
	}
	return m[1]
}

func TestOversizedBodies(t *testing.T) {
	e := newEnv(t)
	b := e.browser(t)
	b.signIn(t, e.account(t, "alice@example.com", store.RoleSubscriber))
	b.validate(t, "example.com")
	acct := e.accountByEmail(t, "alice@example.com")
	big := strings.Repeat("A", int(e.h.cfg.MaxUpload)+1)

	t.Run("order body over MaxUpload", func(t *testing.T) {
		b.get(t, "/orders/new")
		p := b.postMultipart(t, "/orders", url.Values{"domain": {"example.com"}, "profile": {"dv"}, "csr": {big}}, nil)
		wantStatus(t, "huge order form", p, http.StatusRequestEntityTooLarge)
		wantContains(t, "huge order form", p, "larger than this page accepts (96 KiB)")
	})
	t.Run("CSR file over the CSR limit", func(t *testing.T) {
		b.get(t, "/orders/new")
		p := b.postMultipart(t, "/orders", url.Values{"domain": {"example.com"}, "profile": {"dv"}}, []byte(strings.Repeat("B", 70<<10)))
		wantStatus(t, "huge CSR file", p, http.StatusRequestEntityTooLarge)
		wantContains(t, "huge CSR file", p, "CSR file you chose is larger than 64 KiB")
	})
	t.Run("plain form over MaxForm", func(t *testing.T) {
		b.get(t, "/")
		p := b.post(t, "/validations", url.Values{"domain": {strings.Repeat("a", MaxForm)}, "method": {"email"}})
		wantStatus(t, "huge form", p, http.StatusRequestEntityTooLarge)
	})
	t.Run("chunked body without a length", func(t *testing.T) {
		b.get(t, "/")
		body := "csrf=" + b.csrf + "&notes=" + strings.Repeat("n", MaxForm)
		req, _ := http.NewRequest("POST", e.srv.URL+"/validations", &onlyReader{strings.NewReader(body)})
		req.ContentLength = -1
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Origin", e.srv.URL)
		wantStatus(t, "chunked huge form", b.do(t, req), http.StatusRequestEntityTooLarge)
	})
	t.Run("anonymous form over MaxForm", func(t *testing.T) {
		a := e.browser(t)
		a.get(t, "/")
		p := a.post(t, "/signin", url.Values{"api_key": {strings.Repeat("k", MaxForm)}})
		wantStatus(t, "huge sign-in", p, http.StatusRequestEntityTooLarge)
	})
	if n := e.orderCount(t, acct); n != 0 {
		t.Errorf("%d orders created by oversized requests", n)
	}
}

func TestValidationsWizard(t *testing.T) {
	e := newEnv(t)
	b := e.browser(t)
	b.signIn(t, e.account(t, "alice@example.com", store.RoleSubscriber))

	p := b.get(t, "/validations/new")
	wantStatus(t, "wizard", p, 200)
	wantContains(t, "wizard", p, `value="email"`, `value="dns-txt"`, `value="http-token"`, `<option value="hostmaster"`)

	t.Run("bad input", func(t *testing.T) {
		tests := []struct {
			name string
			form url.Values
			want string
		}{
			{"no domain", url.Values{"method": {"email"}, "local": {"admin"}}, "Enter the domain"},
			{"unknown method", url.Values{"domain": {"example.com"}, "method": {"carrier-pigeon"}}, "Choose one of the validation methods"},
			{"address not allowed", url.Values{"domain": {"example.com"}, "method": {"email"}, "local": {"alice"}}, "Choose the address"},
			{"wildcard", url.Values{"domain": {"*.example.com"}, "method": {"email"}, "local": {"admin"}}, "Validate the base domain"},
			{"internal name", url.Values{"domain": {"intranet.local"}, "method": {"dns-txt"}}, "There is a problem"},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				p := b.post(t, "/validations", tc.form)
				wantStatus(t, tc.name, p, http.StatusBadRequest)
				wantContains(t, tc.name, p, tc.want, `<form method="post" action="/validations"`)
			})
		}
	})

	t.Run("email", func(t *testing.T) {
		p := b.post(t, "/validations", url.Values{"domain": {"Example.COM."}, "method": {"email"}, "local": {"hostmaster"}})
		wantStatus(t, "start", p, http.StatusSeeOther)
		at := p.location()
		p = b.follow(t, p)
		wantContains(t, "pending", p, "We mailed a validation code to hostmaster@example.com", `<label for="code">`)
		wantContains(t, "dashboard lists it", b.get(t, "/"), `href="`+at+`"`)
		p = b.post(t, at+"/confirm", url.Values{"code": {"WRONGCODE"}})
		wantStatus(t, "wrong code", p, http.StatusBadRequest)
		wantContains(t, "wrong code", p, "Wrong code; 4 attempt(s) left")
		p = b.post(t, at+"/confirm", url.Values{"code": {e.lastMatch(t, "hostmaster@example.com", codeRE)}})
		wantStatus(t, "right code", p, http.StatusSeeOther)
		p = b.follow(t, p)
		wantContains(t, "valid", p, "example.com is validated", "Order a certificate for example.com", "random_value_sha256")
	})

	t.Run("dns-txt", func(t *testing.T) {
		p := b.post(t, "/validations", url.Values{"domain": {"example.org"}, "method": {"dns-txt"}})
		wantStatus(t, "start", p, http.StatusSeeOther)
		at := p.location()
		p = b.follow(t, p)
		wantContains(t, "what to publish", p, "_pki-validation.example.org", "I have published it")
		m := mustRegexp(`<dt>Value</dt><dd>([A-Z2-7]+)</dd>`).FindStringSubmatch(p.body)
		if m == nil {
			t.Fatalf("no value to publish:\n%s", excerpt(p.body))
		}
		p = b.post(t, at+"/confirm", nil)
		wantStatus(t, "not yet published", p, http.StatusBadRequest)
		wantContains(t, "not yet published", p, "attempt(s) left")
		e.zone.SetTXT("_pki-validation.example.org", m[1])
		p = b.post(t, at+"/confirm", nil)
		wantStatus(t, "published", p, http.StatusSeeOther)
		wantContains(t, "valid", b.follow(t, p), "example.org is validated")
	})

	t.Run("http-token shows the file to serve", func(t *testing.T) {
		p := b.follow(t, b.post(t, "/validations", url.Values{"domain": {"www.example.net"}, "method": {"http-token"}}))
		wantContains(t, "what to serve", p, "http://www.example.net/.well-known/pki-validation/", "<dt>Content</dt>")
	})
}

func TestCertificatesWizard(t *testing.T) {
	e := newEnv(t)
	b := e.browser(t)
	b.signIn(t, e.account(t, "alice@example.com", store.RoleSubscriber))
	acct := e.accountByEmail(t, "alice@example.com")

	wantContains(t, "no domains", b.get(t, "/orders/new"), "You have no validated domains yet")
	b.validate(t, "example.com")
	p := b.get(t, "/orders/new")
	wantContains(t, "wizard", p, `name="domain" value="example.com"`, `<label for="csr_file">`, `enctype="multipart/form-data"`)

	good := csrPEM(t, "example.com", "www.example.com")
	ov := url.Values{"org_name": {"Example Ltd"}, "org_locality": {"London"}, "org_country": {"gb"}}
	with := func(base url.Values, kv ...string) url.Values {
		out := url.Values{}
		for k, v := range base {
			out[k] = v
		}
		for i := 0; i+1 < len(kv); i += 2 {
			out.Set(kv[i], kv[i+1])
		}
		return out
	}
	tests := []struct {
		name   string
		form   url.Values
		file   []byte
		status int
		want   []string
	}{
		{"no domain chosen", url.Values{"profile": {"dv"}, "csr": {good}}, nil, 400, []string{"Choose at least one of your validated domains"}},
		{"unvalidated domain chosen", url.Values{"domain": {"example.org"}, "profile": {"dv"}, "csr": {good}}, nil, 400, []string{"Choose at least one"}},
		{"no CSR", url.Values{"domain": {"example.com"}, "profile": {"dv"}}, nil, 400, []string{"A CSR is required"}},
		{"both paste and file", url.Values{"domain": {"example.com"}, "profile": {"dv"}, "csr": {good}}, []byte(good), 400, []string{"paste it or upload a file, not both", "choose the CSR file again"}},
		{"bad profile", url.Values{"domain": {"example.com"}, "profile": {"gold"}, "csr": {good}}, nil, 400, []string{"Choose a certificate type"}},
		{"garbage CSR", url.Values{"domain": {"example.com"}, "profile": {"dv"}, "csr": {"hello"}}, nil, 400, []string{"Not a PEM or DER certificate request."}},
		{"private key pasted", url.Values{"domain": {"example.com"}, "profile": {"dv"}, "csr": {"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"}}, nil, 400, []string{"never the private key"}},
		{"name outside the chosen domain", url.Values{"domain": {"example.com"}, "profile": {"dv"}, "csr": {csrPEM(t, "example.com", "example.org")}}, nil, 400, []string{"The CSR names example.org, which is not under the domain(s) you chose"}},
		{"listed names differ", url.Values{"domain": {"example.com"}, "profile": {"dv"}, "csr": {good}, "names": {"example.com, mail.example.com"}}, nil, 400, []string{"does not contain these names you listed: mail.example.com", "names you did not list: www.example.com"}},
		{"OV without organization", url.Values{"domain": {"example.com"}, "profile": {"ov"}, "csr": {good}}, nil, 400, []string{"Organization name is required for ov", "Country is required for ov"}},
		{"OV with a bad country", with(ov, "domain", "example.com", "profile", "ov", "csr", good, "org_country", "Britain"), nil, 400, []string{"must be an ISO 3166-1 alpha-2 code"}},
		{"EV without EV fields", with(ov, "domain", "example.com", "profile", "ev", "csr", good), nil, 400, []string{"Jurisdiction country is required for ev", "Business category is required", "Registration number is required"}},
		{"EV with a made-up category", with(ov, "domain", "example.com", "profile", "ev", "csr", good, "org_jurisdiction_country", "GB", "org_registration_number", "1", "org_business_category", "Pirate Ship"), nil, 400, []string{"is not an EV Guidelines"}},
		{"organization field with a line break", with(ov, "domain", "example.com", "profile", "ov", "csr", good, "org_name", "Example\nLtd"), nil, 400, []string{"Organization name contains a control character"}},
		{"internal name", url.Values{"domain": {"example.com"}, "profile": {"dv"}, "csr": {csrPEM(t, "example.com", "host.example.com.local")}}, nil, 400, []string{"There is a problem"}},
		// Under the chosen domain, but email validation does not cover
		// wildcards (BR 3.2.2.6): the issuer's own check answers.
		{"name the validation does not cover", url.Values{"domain": {"example.com"}, "profile": {"dv"}, "csr": {csrPEM(t, "*.example.com")}}, nil, 403, []string{"No valid domain validation covers: *.example.com"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := b.order(t, tc.form, tc.file)
			wantStatus(t, tc.name, p, tc.status)
			wantContains(t, tc.name, p, tc.want...)
			wantContains(t, tc.name, p, `action="/orders"`) // the form again, filled in
		})
	}
	if n := e.orderCount(t, acct); n != 0 {
		t.Fatalf("%d orders created by bad input", n)
	}

	t.Run("DV pasted", func(t *testing.T) {
		p := b.order(t, url.Values{"domain": {"example.com"}, "profile": {"dv"}, "csr": {good}, "names": {"www.example.com example.com"}}, nil)
		wantStatus(t, "order", p, http.StatusSeeOther)
		p = b.follow(t, p)
		wantContains(t, "issued", p, "Your certificate is issued", `class="badge issued"`)
		serialOnPage(t, p)
	})
	t.Run("DV uploaded as DER", func(t *testing.T) {
		k, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
		p := b.order(t, url.Values{"domain": {"example.com"}, "profile": {"dv"}}, csrDER(t, k, "api.example.com"))
		wantStatus(t, "order", p, http.StatusSeeOther)
		wantContains(t, "issued", b.follow(t, p), "Your certificate is issued")
	})
	t.Run("OV goes to review", func(t *testing.T) {
		p := b.order(t, with(ov, "domain", "example.com", "profile", "ov", "csr", good,
			"org_jurisdiction_country", "ignored for OV"), nil)
		wantStatus(t, "order", p, http.StatusSeeOther)
		p = b.follow(t, p)
		wantContains(t, "pending", p, "waiting for review", "pending_review", "Example Ltd, London, GB")
	})
}

func TestCertificateDownloadAndRevoke(t *testing.T) {
	e := newEnv(t)
	b := e.browser(t)
	b.signIn(t, e.account(t, "alice@example.com", store.RoleSubscriber))
	b.validate(t, "example.com")
	p := b.follow(t, b.order(t, url.Values{"domain": {"example.com"}, "profile": {"dv"}, "csr": {csrPEM(t, "www.example.com")}}, nil))
	sn := serialOnPage(t, p)

	p = b.get(t, "/certificates/"+sn+"/chain.pem")
	wantStatus(t, "chain", p, 200)
	if ct := p.header.Get("Content-Type"); ct != "application/pem-certificate-chain" {
		t.Errorf("Content-Type %q", ct)
	}
	if cd := p.header.Get("Content-Disposition"); cd != `attachment; filename="`+sn+`.pem"` {
		t.Errorf("Content-Disposition %q", cd)
	}
	chain := testfix.ParsePEMChain(t, []byte(p.body))
	if len(chain) != 2 {
		t.Fatalf("chain has %d certificates, want leaf and intermediate", len(chain))
	}
	roots := x509.NewCertPool()
	roots.AddCert(e.pki.Root.Cert)
	inter := x509.NewCertPool()
	inter.AddCert(chain[1])
	if _, err := chain[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, DNSName: "www.example.com"}); err != nil {
		t.Errorf("downloaded chain does not verify: %v", err)
	}

	p = b.get(t, "/certificates/"+sn)
	wantContains(t, "details", p, "www.example.com", `<label for="reason">`, `value="keyCompromise"`, `value="unspecified"`)
	var offered []string
	for _, m := range mustRegexp(`<option value="([a-zA-Z]+)"`).FindAllStringSubmatch(p.body, -1) {
		offered = append(offered, m[1])
	}
	if diff := cmp.Diff([]string{"unspecified", "keyCompromise", "affiliationChanged", "superseded", "cessationOfOperation"}, offered); diff != "" {
		t.Errorf("reasons offered (-want +got):\n%s", diff)
	}

	tests := []struct {
		name   string
		form   url.Values
		status int
		want   string
	}{
		{"no reason", url.Values{"confirm": {"yes"}}, 400, "Choose one of the reasons listed"},
		{"reason the BR forbid", url.Values{"reason": {"certificateHold"}, "confirm": {"yes"}}, 400, "Choose one of the reasons listed"},
		{"CA reason", url.Values{"reason": {"cACompromise"}, "confirm": {"yes"}}, 400, "Choose one of the reasons listed"},
		{"not confirmed", url.Values{"reason": {"keyCompromise"}}, 400, "Tick the box to confirm"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := b.post(t, "/certificates/"+sn+"/revoke", tc.form)
			wantStatus(t, tc.name, p, tc.status)
			wantContains(t, tc.name, p, tc.want)
		})
	}
	p = b.post(t, "/certificates/"+sn+"/revoke", url.Values{"reason": {"keyCompromise"}, "confirm": {"yes"}})
	wantStatus(t, "revoke", p, http.StatusSeeOther)
	p = b.follow(t, p)
	wantContains(t, "revoked", p, "The certificate is revoked (keyCompromise)", `class="badge revoked"`)
	if strings.Contains(p.body, `action="/certificates/`+sn+`/revoke"`) {
		t.Error("the revocation form is still offered")
	}
	c, _ := e.st.Certificate(context.Background(), serial.Serial(sn))
	if c.Status != status.Revoked || c.Reason.String() != "keyCompromise" {
		t.Errorf("stored %v %v", c.Status, c.Reason)
	}
	if ms := e.mails(t, "alice@example.com"); !strings.Contains(ms[len(ms)-1], "was revoked") {
		t.Error("no revocation mail")
	}
	p = b.post(t, "/certificates/"+sn+"/revoke", url.Values{"reason": {"superseded"}, "confirm": {"yes"}})
	wantStatus(t, "again", p, http.StatusConflict)
}

func TestReviewConsole(t *testing.T) {
	e := newEnv(t)
	alice := e.browser(t)
	alice.signIn(t, e.account(t, "alice@example.com", store.RoleSubscriber))
	alice.validate(t, "example.com")
	ovOrg := url.Values{"org_name": {"Example Ltd"}, "org_locality": {"London"}, "org_country": {"GB"}}
	place := func(prof string, extra url.Values, names ...string) string {
		f := url.Values{"domain": {"example.com"}, "profile": {prof}, "csr": {csrPEM(t, names...)}}
		for k, v := range extra {
			f[k] = v
		}
		p := alice.order(t, f, nil)
		wantStatus(t, "order "+prof, p, http.StatusSeeOther)
		return strings.TrimPrefix(p.location(), "/orders/")
	}
	ovID := place("ov", ovOrg, "www.example.com")
	evOrg := url.Values{"org_name": {"Example Bank plc"}, "org_locality": {"London"}, "org_country": {"GB"},
		"org_jurisdiction_country": {"GB"}, "org_business_category": {"Private Organization"}, "org_registration_number": {"01234567"}}
	evID := place("ev", evOrg, "secure.example.com")
	rejID := place("ov", ovOrg, "shop.example.com")

	rev1 := e.browser(t)
	p := rev1.signIn(t, e.account(t, "rev1@example.net", store.RoleReviewer))
	wantContains(t, "landing is the queue", p, "<h1>Review queue</h1>", ovID, evID, "profile ov", "profile ev")
	if strings.Contains(p.body, "needs a second reviewer") {
		// Only EV orders with exactly one approval carry the badge.
		t.Error("badge shown before any approval")
	}

	p = rev1.get(t, "/review/orders/"+ovID)
	wantStatus(t, "order page", p, 200)
	wantContains(t, "order page", p, "Example Ltd", "www.example.com", "admin@example.com", "Approvals: 0 of 1",
		`<label for="evidence_source">`, `<label for="reason">`, "random_value_sha256")

	p = rev1.post(t, "/review/orders/"+ovID+"/approve", url.Values{"notes": {"looks fine"}})
	wantStatus(t, "approve without evidence", p, http.StatusBadRequest)
	wantContains(t, "approve without evidence", p, "Source consulted is required", "looks fine")
	p = rev1.post(t, "/review/orders/"+ovID+"/approve", url.Values{"evidence_source": {"Companies House"}, "evidence_extra": {"[1,2]"}})
	wantStatus(t, "approve with bad extra", p, http.StatusBadRequest)
	wantContains(t, "approve with bad extra", p, "must be one JSON object")

	p = rev1.post(t, "/review/orders/"+ovID+"/approve", url.Values{"notes": {"checked the register"},
		"evidence_source": {"Companies House"}, "evidence_reference": {"https://find-and-update.company-information.service.gov.uk/company/01234567"}})
	wantStatus(t, "approve", p, http.StatusSeeOther)
	p = rev1.follow(t, p)
	wantContains(t, "approved", p, "Approved (1 of 1). The certificate is issued", "Companies House", "checked the register")
	if strings.Contains(p.body, `action="/review/orders/`+ovID+`/approve"`) {
		t.Error("the approve form is still shown on an issued order")
	}
	o, _ := e.st.Order(context.Background(), ovID)
	if o.Status != store.OrderIssued {
		t.Fatalf("OV order %s after approval", o.Status)
	}
	wantContains(t, "subscriber sees it issued", alice.get(t, "/orders/"+ovID), "issued", "/chain.pem")

	// EV: two different reviewers.
	p = rev1.follow(t, rev1.post(t, "/review/orders/"+evID+"/approve", url.Values{"evidence_source": {"Companies House"}}))
	wantContains(t, "first EV approval", p, "Approved (1 of 2)", "needs 1 more approval(s) from a different reviewer",
		"You gave the first approval", "a different reviewer must give the second")
	if strings.Contains(p.body, `action="/review/orders/`+evID+`/approve"`) {
		t.Error("the approve form is offered to the reviewer who approved")
	}
	wantContains(t, "queue shows EV state", rev1.get(t, "/review"), "1 of 2", "needs a second reviewer")
	p = rev1.post(t, "/review/orders/"+evID+"/approve", url.Values{"evidence_source": {"again"}})
	wantStatus(t, "same reviewer twice", p, http.StatusConflict)
	wantContains(t, "same reviewer twice", p, "You have approved this order already")

	rev2 := e.browser(t)
	rev2.signIn(t, e.account(t, "rev2@example.net", store.RoleReviewer))
	p = rev2.get(t, "/review/orders/"+evID)
	wantContains(t, "second reviewer", p, "Approvals: 1 of 2", "One reviewer has approved; yours would be the second", "rev1@example.net", "Approve (second of two)")
	p = rev2.follow(t, rev2.post(t, "/review/orders/"+evID+"/approve", url.Values{"evidence_source": {"Companies House"}, "evidence_reference": {"01234567"}}))
	wantContains(t, "EV issued", p, "Approved (2 of 2). The certificate is issued")

	// Reject.
	p = rev2.post(t, "/review/orders/"+rejID+"/reject", url.Values{"reason": {"  "}})
	wantStatus(t, "reject without reason", p, http.StatusBadRequest)
	wantContains(t, "reject without reason", p, "A reason is required")
	p = rev2.follow(t, rev2.post(t, "/review/orders/"+rejID+"/reject", url.Values{"reason": {"The organization is not registered at that address."}}))
	wantContains(t, "rejected", p, "Rejected. The subscriber has been mailed the reason")
	wantContains(t, "subscriber sees why", alice.get(t, "/orders/"+rejID), "The organization is not registered at that address.")
	if ms := e.mails(t, "alice@example.com"); !strings.Contains(ms[len(ms)-1], "was rejected") {
		t.Error("no rejection mail")
	}
	p = rev1.post(t, "/review/orders/"+rejID+"/approve", url.Values{"evidence_source": {"x"}})
	wantStatus(t, "approve a rejected order", p, http.StatusConflict)
	wantContains(t, "queue now empty", rev1.get(t, "/review"), "The queue is empty")
	wantStatus(t, "unknown order", rev1.get(t, "/review/orders/ord_nope"), http.StatusNotFound)
}

func TestReviewerMayNotReviewOwnOrder(t *testing.T) {
	e := newEnv(t)
	rev := e.browser(t)
	rev.signIn(t, e.account(t, "rev@example.net", store.RoleReviewer))
	rev.validate(t, "example.net")
	p := rev.order(t, url.Values{"domain": {"example.net"}, "profile": {"ov"}, "csr": {csrPEM(t, "example.net")},
		"org_name": {"Rev Ltd"}, "org_locality": {"Leeds"}, "org_country": {"GB"}}, nil)
	id := strings.TrimPrefix(p.location(), "/orders/")
	p = rev.get(t, "/review/orders/"+id)
	wantContains(t, "own order", p, "Your own account placed this order")
	p = rev.post(t, "/review/orders/"+id+"/approve", url.Values{"evidence_source": {"me"}})
	wantStatus(t, "approve own order", p, http.StatusForbidden)
}

func TestPagesAndHeaders(t *testing.T) {
	e := newEnv(t)
	b := e.browser(t)
	p := b.get(t, "/static/portal.css")
	wantStatus(t, "css", p, 200)
	if ct := p.header.Get("Content-Type"); ct != "text/css; charset=utf-8" {
		t.Errorf("css Content-Type %q", ct)
	}
	p = b.get(t, "/")
	for k, want := range map[string]string{
		"Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
		"X-Frame-Options":         "DENY",
		"X-Content-Type-Options":  "nosniff",
		"Referrer-Policy":         "same-origin",
		"Cache-Control":           "no-store",
	} {
		if got := p.header.Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	p = b.get(t, "/nope")
	wantStatus(t, "404", p, 404)
	wantContains(t, "404", p, "Page not found")
	if strings.Contains(p.body, "<script") || strings.Contains(p.body, "http://") && strings.Contains(p.body, "src=\"http") {
		t.Error("a page loads script or remote assets")
	}
}

func TestSafeNext(t *testing.T) {
	tests := []struct{ in, want string }{
		{"/orders/new", "/orders/new"},
		{"/review?x=1", "/review?x=1"},
		{"", ""},
		{"orders", ""},
		{"//evil.example", ""},
		{"/\\evil.example", ""},
		{"https://evil.example/", ""},
		{"/a\r\nSet-Cookie: x", ""},
		{"/" + strings.Repeat("a", 600), ""},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			if got := safeNext(tc.in); got != tc.want {
				t.Errorf("safeNext(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestSessionTableBounded(t *testing.T) {
	tbl := newSessionTable(3, time.Hour, 10*time.Minute)
	now := time.Unix(1_700_000_000, 0)
	var ids []string
	for i := 0; i < 5; i++ {
		id, err := tbl.create("acct", now.Add(time.Duration(i)*time.Second), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	if n := tbl.len(); n != 3 {
		t.Fatalf("%d sessions, want 3", n)
	}
	if _, st := tbl.touch(ids[0], now.Add(5*time.Second)); st != sessionNone {
		t.Error("the least recently used session survived eviction")
	}
	if _, st := tbl.touch(ids[4], now.Add(5*time.Second)); st != sessionOK {
		t.Error("the newest session was evicted")
	}
	if _, st := tbl.touch(ids[4], now.Add(16*time.Minute)); st != sessionExpired {
		t.Error("idle session not expired")
	}
}

// TestPendingValidationSurvivesANewSession: a validation started in one
// session is listed on the dashboard of the next, until it completes.
func TestPendingValidationSurvivesANewSession(t *testing.T) {
	e := newEnv(t)
	key := e.account(t, "pat@example.com", store.RoleSubscriber)
	first := e.browser(t)
	first.signIn(t, key)
	first.get(t, "/validations/new")
	p := first.post(t, "/validations", url.Values{"domain": {"pendingco.com"}, "method": {"email"}, "local": {"admin"}})
	if p.status != http.StatusSeeOther {
		t.Fatalf("start validation: %d %s", p.status, excerpt(p.body))
	}
	second := e.browser(t)
	dash := second.signIn(t, key)
	wantContains(t, "dashboard in a new session", dash, "Validations waiting for you", "pendingco.com")
	other := e.browser(t)
	dash = other.signIn(t, e.account(t, "someone@example.com", store.RoleSubscriber))
	if strings.Contains(dash.body, "pendingco.com") {
		t.Error("another account's dashboard lists the pending validation")
	}
}
