package portal

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/trustline/trustline/internal/serial"
	"github.com/trustline/trustline/internal/status"
	"github.com/trustline/trustline/internal/store"
	"github.com/trustline/trustline/issuer"
	"github.com/trustline/trustline/issuer/profile"
)

// Fuzz tests for every parser of untrusted input the portal adds. Run one
// with e.g. go test ./issuer/portal -run '^$' -fuzz FuzzParseOrganization -fuzztime 20s.

func FuzzParseOrganization(f *testing.F) {
	f.Add("ov", "Example Ltd", "London", "", "gb", "", "", "", "", "")
	f.Add("ev", "Example Bank plc", "London", "", "GB", "GB", "", "", "Private Organization", "01234567")
	f.Add("ev", "x\x00", "\u202e", "p", "G", "gb", "\xff", "l", "Pirate", strings.Repeat("9", 65))
	f.Add("dv", "a", "b", "c", "d", "e", "f", "g", "h", "i")
	f.Fuzz(func(t *testing.T, prof, name, loc, prov, country, jc, jp, jl, cat, reg string) {
		vals := map[string]string{"org_name": name, "org_locality": loc, "org_province": prov, "org_country": country,
			"org_jurisdiction_country": jc, "org_jurisdiction_province": jp, "org_jurisdiction_locality": jl,
			"org_business_category": cat, "org_registration_number": reg}
		p := profile.Name(prof)
		org, errs := parseOrganization(func(k string) string { return vals[k] }, p)
		if !p.NeedsReview() {
			if org != nil || errs != nil {
				t.Fatalf("profile %q: got %+v, %v; want nothing", prof, org, errs)
			}
			return
		}
		if (org == nil) == (len(errs) == 0) {
			t.Fatalf("org %+v with errors %v: want exactly one", org, errs)
		}
		if org == nil {
			return
		}
		if err := org.Validate(p); err != nil {
			t.Fatalf("accepted an organization the issuer refuses: %v", err)
		}
		for _, v := range []string{org.Name, org.Locality, org.Province, org.Country, org.JurisdictionCountry,
			org.JurisdictionProvince, org.JurisdictionLocality, org.BusinessCategory, org.RegistrationNumber} {
			if len(v) > maxOrgField || !utf8.ValidString(v) || strings.IndexFunc(v, unicode.IsControl) >= 0 || v != strings.TrimSpace(v) {
				t.Fatalf("accepted field %q", v)
			}
		}
		if p == profile.OV && (org.JurisdictionCountry != "" || org.RegistrationNumber != "" || org.BusinessCategory != "") {
			t.Fatalf("OV kept EV fields: %+v", org)
		}
	})
}

func FuzzParseNames(f *testing.F) {
	f.Add("example.com www.example.com")
	f.Add("A.Example.COM., a.example.com\n*.example.com")
	f.Add(",,, \t\r\n")
	f.Add("x\x00y \xff")
	f.Fuzz(func(t *testing.T, s string) {
		names, err := parseNames(s)
		if err != nil {
			return
		}
		// One trailing dot is the fully qualified form and is dropped;
		// more is refused, as the API refuses it.
		for _, field := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || unicode.IsSpace(r) }) {
			if strings.HasSuffix(strings.TrimSuffix(field, "."), ".") || field == "." {
				t.Fatalf("accepted %q from %q: %q", field, s, names)
			}
		}
		if len(names) > maxNames {
			t.Fatalf("%d names", len(names))
		}
		seen := map[string]bool{}
		for _, n := range names {
			switch {
			case n == "", len(n) > maxNameLen, strings.ContainsAny(n, ", \t\r\n"), n != strings.ToLower(n),
				strings.HasSuffix(n, "."), !utf8.ValidString(n), strings.IndexFunc(n, unicode.IsControl) >= 0, seen[n]:
				t.Fatalf("bad name %q in %q", n, names)
			}
			seen[n] = true
		}
	})
}

func FuzzReviewEvidence(f *testing.F) {
	f.Add("Companies House", "01234567", "")
	f.Add("register", "", `{"registry_id": "1", "source": "overridden"}`)
	f.Add("", "x", "[1]")
	f.Add("s", "r", `{"a":1} {"b":2}`)
	f.Add("s", "r", "null")
	f.Fuzz(func(t *testing.T, source, ref, extra string) {
		raw, err := reviewEvidence(source, ref, extra)
		if err != nil {
			return
		}
		var obj map[string]any
		if err := json.Unmarshal(raw, &obj); err != nil || obj == nil {
			t.Fatalf("evidence %q is not a JSON object: %v", raw, err)
		}
		if obj["source"] != strings.TrimSpace(source) || strings.TrimSpace(source) == "" {
			t.Fatalf("source %v, want %q", obj["source"], strings.TrimSpace(source))
		}
		if len(raw) > 2*maxEvidenceRaw+4*maxShortField+64 {
			t.Fatalf("evidence of %d bytes", len(raw))
		}
	})
}

func FuzzSafeNext(f *testing.F) {
	for _, s := range []string{"/orders/new", "//evil.example", "/\\evil", "https://evil.example", "/%2F%2Fevil", "/a?b=//c", "/\t/evil"} {
		f.Add(s)
	}
	base, _ := url.Parse("http://portal.example/")
	f.Fuzz(func(t *testing.T, s string) {
		got := safeNext(s)
		if got == "" {
			return
		}
		if got != s {
			t.Fatalf("safeNext(%q) = %q: must return its input or nothing", s, got)
		}
		u, err := url.Parse(got)
		if err != nil {
			t.Fatal(err)
		}
		if r := base.ResolveReference(u); r.Host != "portal.example" || r.Scheme != "http" {
			t.Fatalf("safeNext(%q) leads to %s", s, r)
		}
		// Browsers treat a backslash like a slash: "/\evil" is another host.
		if strings.ContainsAny(got, "\\\r\n\t") || strings.HasPrefix(got, "//") {
			t.Fatalf("safeNext(%q) accepted", s)
		}
	})
}

func FuzzCSRNames(f *testing.F) {
	f.Add([]byte(csrPEM(f, "example.com", "www.example.com")))
	f.Add(csrDERFuzzSeed(f))
	f.Add([]byte("-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		names, ok := csrNames(in)
		if !ok && names != nil {
			t.Fatal("names from a CSR that does not parse")
		}
		for _, n := range names {
			if n == "" || n != strings.ToLower(n) {
				t.Fatalf("name %q", n)
			}
		}
	})
}

func csrDERFuzzSeed(f *testing.F) []byte {
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	return csrDER(f, k, "a.example.org")
}

// TestParseNamesTrailingDots pins the rule FuzzParseNames checks: one
// trailing dot (the fully qualified form) is dropped, as the API's
// validations drop it; more is refused with a message saying so.
func TestParseNamesTrailingDots(t *testing.T) {
	tests := []struct {
		in      string
		want    []string
		wantErr string
	}{
		{"Example.COM.", []string{"example.com"}, ""},
		{"*.example.com. example.com", []string{"*.example.com", "example.com"}, ""},
		{"00000000000000000000000000..", nil, `"00000000000000000000000000.." ends with more than one dot`},
		{"www.example.com... example.com", nil, `"www.example.com..." ends with more than one dot`},
		{"*..", nil, `"*.." ends with more than one dot`},
		{"example.com, .", nil, `"." on its own is not a name`},
		{strings.Repeat("a", 300) + "..", nil, `"…` + strings.Repeat("a", 30) + `.." ends with more than one dot`},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := parseNames(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("parseNames(%q) = %q, %v; want an error with %q", tt.in, got, err, tt.wantErr)
				}
				return
			}
			if err != nil || !slices.Equal(got, tt.want) {
				t.Fatalf("parseNames(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
			}
		})
	}
}

// The portal's forms, fuzzed whole. Each target posts arbitrary bodies
// with an arbitrary Content-Type straight into the handler, carrying a
// browser's cookies and this origin's Origin header so that the body gets
// past the same-origin check to the form's own reading. The form token is
// part of the body: the seeds carry the right one, so mutations explore
// the forms behind the token check as well as the check itself.
//
// Whatever arrives, the answer is a redirect that stays on this site, the
// success status the form documents, or a 4xx HTML page that says what
// was wrong; never a 5xx (the portal documents 503 only for a store it
// cannot reach, which an in-process SQLite store never is). A 4xx changes
// nothing that can be checked cheaply: no session starts, no account,
// validation or order is created, no certificate revoked, no order
// decided.

// formFuzzer posts as one browser.
type formFuzzer struct {
	e       *env
	cookies []*http.Cookie
}

func newFormFuzzer(e *env, b *browser) formFuzzer {
	u, _ := url.Parse(e.srv.URL)
	return formFuzzer{e: e, cookies: b.c.Jar.Cookies(u)}
}

// do serves req as the browser and returns the answer.
func (ff formFuzzer) do(req *http.Request) *httptest.ResponseRecorder {
	req.Host = strings.TrimPrefix(ff.e.srv.URL, "http://")
	for _, c := range ff.cookies {
		req.AddCookie(c)
	}
	rec := httptest.NewRecorder()
	ff.e.h.ServeHTTP(rec, req)
	return rec
}

// post serves a form and returns the answer and the request, whose
// PostForm then holds what the handler read.
func (ff formFuzzer) post(path string, body []byte, contentType string) (*httptest.ResponseRecorder, *http.Request) {
	req := httptest.NewRequest("POST", path, bytes.NewReader(body))
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("Origin", ff.e.srv.URL)
	return ff.do(req), req
}

var (
	errorItemRE = regexp.MustCompile(`<div class="errors"[^>]*>\s*<h2[^>]*>[^<]*</h2>\s*<ul><li>([^<]+)</li>`)
	errorPageRE = regexp.MustCompile(`<p class="status">Error \d+</p>\s*<p>([^<]+)</p>`)
)

// pageMessage returns the first problem a page states, or "".
func pageMessage(body string) string {
	for _, re := range []*regexp.Regexp{errorItemRE, errorPageRE} {
		if m := re.FindStringSubmatch(body); m != nil {
			return strings.TrimSpace(m[1])
		}
	}
	return ""
}

// checkAnswer fails unless rec is a redirect on this site, a status in
// ok, or a 4xx HTML page stating a problem that starts no session.
func checkAnswer(t *testing.T, what string, rec *httptest.ResponseRecorder, ok ...int) {
	t.Helper()
	code, body := rec.Code, rec.Body.String()
	switch {
	case slices.Contains(ok, code):
	case code >= 300 && code < 400:
		loc := rec.Header().Get("Location")
		if !strings.HasPrefix(loc, "/") || strings.HasPrefix(loc, "//") || strings.HasPrefix(loc, "/\\") {
			t.Fatalf("%s: %d redirects off the site, to %q", what, code, loc)
		}
	case code >= 400 && code < 500:
		if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
			t.Fatalf("%s: %d with Content-Type %q", what, code, ct)
		}
		if pageMessage(body) == "" {
			t.Fatalf("%s: %d page states no problem:\n%s", what, code, excerpt(body))
		}
		for _, c := range rec.Result().Cookies() {
			if c.Name == sessionCookie && c.Value != "" {
				t.Fatalf("%s: %d started a session", what, code)
			}
		}
	default:
		t.Fatalf("%s: status %d:\n%s", what, code, excerpt(body))
	}
}

// newest returns the ids of acct's three newest validations and orders:
// a request that created one changes them.
func (e *env) newest(t testing.TB, acct store.Account) []string {
	t.Helper()
	ctx := context.Background()
	vals, err := e.st.ListValidations(ctx, acct.ID, 3)
	if err != nil {
		t.Fatal(err)
	}
	ords, err := e.st.ListOrders(ctx, store.OrderFilter{AccountID: acct.ID, Limit: 3})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, v := range vals {
		ids = append(ids, v.ID)
	}
	for _, o := range ords {
		ids = append(ids, o.ID)
	}
	return ids
}

// checkNothingNew fails if after holds an id before lacks.
func checkNothingNew(t *testing.T, what string, code int, before, after []string) {
	t.Helper()
	for _, id := range after {
		if !slices.Contains(before, id) {
			t.Fatalf("%s: answered %d but created %s", what, code, id)
		}
	}
}

// formRoute is a form the fuzz targets post to, and the success statuses
// it documents besides a redirect.
type formRoute struct {
	path string
	ok   []int
}

const formURLEncoded = "application/x-www-form-urlencoded"

// formBody encodes a urlencoded form with csrf and the pairs kv.
func formBody(csrf string, kv ...string) []byte {
	v := url.Values{}
	if csrf != "" {
		v.Set(csrfField, csrf)
	}
	for i := 0; i+1 < len(kv); i += 2 {
		v.Add(kv[i], kv[i+1])
	}
	return []byte(v.Encode())
}

// FuzzSignInForms posts to the four forms used before sign-in: API key
// sign-in, sign-in link request and redemption, and sign-up.
func FuzzSignInForms(f *testing.F) {
	e := newEnv(f)
	key := e.account(f, "fuzz@example.com", store.RoleSubscriber)
	b := e.browser(f)
	b.get(f, "/")
	ff := newFormFuzzer(e, b)
	routes := []formRoute{
		{"/signin", nil},
		{"/signin/email", []int{http.StatusOK}}, // the same page whether or not the address has an account
		{"/signin/link", nil},
		{"/signup", []int{http.StatusCreated}}, // the welcome page with the key
	}
	f.Add(uint8(0), formBody(b.csrf, "api_key", key, "next", "/orders/new"), formURLEncoded)
	f.Add(uint8(0), formBody(b.csrf, "api_key", "tl_0123456789abcdef_x", "next", "//evil.example"), formURLEncoded)
	f.Add(uint8(0), formBody(b.csrf, "api_key", " "+key+"\x00"), formURLEncoded)
	f.Add(uint8(1), formBody(b.csrf, "email", "fuzz@example.com", "next", "/\\evil.example"), formURLEncoded)
	f.Add(uint8(1), formBody(b.csrf, "email", "Fuzz <fuzz@example.com>"), formURLEncoded)
	f.Add(uint8(2), formBody(b.csrf, "token", "AAAA", "next", "/"), formURLEncoded)
	f.Add(uint8(3), formBody(b.csrf, "email", "new@example.com"), formURLEncoded)
	f.Add(uint8(3), formBody(b.csrf, "email", "FUZZ@Example.com"), formURLEncoded)
	f.Add(uint8(3), formBody(b.csrf, "email", "a@b@example.com", "email", "x@example.com"), formURLEncoded)
	body, ct := multipartForm(url.Values{csrfField: {b.csrf}, "email": {"multi@example.com"}}, []byte("file"))
	f.Add(uint8(3), body, ct)
	f.Add(uint8(0), formBody(b.csrf, "api_key", strings.Repeat("k", MaxForm)), formURLEncoded)
	f.Add(uint8(2), []byte("csrf=%zz&token=%"), formURLEncoded)
	f.Add(uint8(1), formBody(b.csrf, "email", "x@example.com"), "text/plain")
	known := map[string]bool{"fuzz@example.com": true} // addresses that have an account
	f.Fuzz(func(t *testing.T, which uint8, body []byte, contentType string) {
		rt := routes[int(which)%len(routes)]
		rec, req := ff.post(rt.path, body, contentType)
		checkAnswer(t, rt.path, rec, rt.ok...)
		if rt.path != "/signup" {
			return
		}
		email, err := issuer.NormalizeEmail(req.PostFormValue("email"))
		if err != nil {
			return
		}
		if rec.Code == http.StatusCreated {
			known[email] = true
			return
		}
		if as, _ := e.st.AccountsByEmail(context.Background(), email); len(as) > 0 && !known[email] {
			t.Fatalf("sign-up answered %d but created %s", rec.Code, email)
		}
	})
}

// startValidation runs the first step of the Validations Wizard and
// returns the new validation's page.
func (b *browser) startValidation(t testing.TB, domain, method string) string {
	t.Helper()
	b.get(t, "/validations/new")
	p := b.post(t, "/validations", url.Values{"domain": {domain}, "method": {method}, "local": {"admin"}})
	if p.status != http.StatusSeeOther {
		t.Fatalf("start validation: %d %s", p.status, excerpt(p.body))
	}
	return p.location()
}

// FuzzValidationForms posts to the Validations Wizard: starting a
// validation, and confirming a pending email one (with a code) and a
// pending dns-txt one (the record is looked up in the test zone, which
// lacks it).
func FuzzValidationForms(f *testing.F) {
	e := newEnv(f)
	b := e.browser(f)
	b.signIn(f, e.account(f, "fuzz@example.com", store.RoleSubscriber))
	acct := e.accountByEmail(f, "fuzz@example.com")
	emailAt := b.startValidation(f, "example.org", "email")
	code := e.lastMatch(f, "admin@example.org", codeRE)
	dnsAt := b.startValidation(f, "example.net", "dns-txt")
	b.get(f, "/")
	ff := newFormFuzzer(e, b)
	routes := []formRoute{{"/validations", nil}, {emailAt + "/confirm", nil}, {dnsAt + "/confirm", nil}, {"/validations/val_nope/confirm", nil}}
	for _, kv := range [][]string{
		{"domain", "example.info", "method", "email", "local", "admin"},
		{"domain", "Example.COM.", "method", "dns-txt"},
		{"domain", "00000000000000000000000000..", "method", "dns-txt"},
		{"domain", "example.com..", "method", "email", "local", "webmaster"},
		{"domain", "*.example.com", "method", "http-token"},
		{"domain", "printer.local", "method", "email", "local", "admin"},
		{"domain", "example.com", "method", "email", "local", "ceo"},
		{"domain", "example.com", "method", "whois-email"},
		{"domain", "exa\x00mple.com", "method", "email", "local", "admin"},
		{"domain", strings.Repeat("a.", 200) + "com", "method", "dns-txt"},
	} {
		f.Add(uint8(0), formBody(b.csrf, kv...), formURLEncoded)
	}
	f.Add(uint8(1), formBody(b.csrf, "code", "WRONG"), formURLEncoded)
	f.Add(uint8(1), formBody(b.csrf, "code", code), formURLEncoded)
	f.Add(uint8(1), formBody(b.csrf, "code", strings.Repeat("c", 200)), formURLEncoded)
	f.Add(uint8(2), formBody(b.csrf), formURLEncoded)
	f.Add(uint8(3), formBody(b.csrf, "code", code), formURLEncoded)
	body, ct := multipartForm(url.Values{csrfField: {b.csrf}, "domain": {"example.biz"}, "method": {"dns-txt"}}, nil)
	f.Add(uint8(0), body, ct)
	f.Add(uint8(0), formBody(b.csrf, "domain", strings.Repeat("a", MaxForm)), formURLEncoded)
	f.Fuzz(func(t *testing.T, which uint8, body []byte, contentType string) {
		rt := routes[int(which)%len(routes)]
		before := e.newest(t, acct)
		rec, _ := ff.post(rt.path, body, contentType)
		checkAnswer(t, rt.path, rec, rt.ok...)
		if rec.Code >= 400 {
			checkNothingNew(t, rt.path, rec.Code, before, e.newest(t, acct))
		}
	})
}

// FuzzOrderForm posts to the Certificates Wizard: multipart bodies with
// a pasted or uploaded CSR (PEM or DER), names, profile and organization.
func FuzzOrderForm(f *testing.F) {
	e := newEnv(f)
	b := e.browser(f)
	b.signIn(f, e.account(f, "fuzz@example.com", store.RoleSubscriber))
	b.validate(f, "example.com")
	acct := e.accountByEmail(f, "fuzz@example.com")
	b.get(f, "/orders/new")
	ff := newFormFuzzer(e, b)
	csrf := b.csrf
	mp := func(file []byte, kv ...string) {
		v := url.Values{csrfField: {csrf}}
		for i := 0; i+1 < len(kv); i += 2 {
			v.Add(kv[i], kv[i+1])
		}
		body, ct := multipartForm(v, file)
		f.Add(body, ct)
	}
	mp(nil, "domain", "example.com", "profile", "ov", "csr", csrPEM(f, "example.com"),
		"org_name", "Example Ltd", "org_country", "GB", "org_locality", "London")
	mp(nil, "domain", "example.com", "profile", "dv", "names", "www.example.com.. example.com", "csr", csrPEM(f, "www.example.com", "example.com"))
	mp(csrDERFuzzSeed(f), "domain", "example.com", "profile", "dv")
	mp([]byte(csrPEM(f, "example.com")), "domain", "example.com", "domain", "example.com", "profile", "dv", "csr", "pasted too")
	mp([]byte("garbage"), "profile", "ev", "names", "a b c")
	mp([]byte(strings.Repeat("B", 70<<10)), "domain", "example.com", "profile", "dv")
	mp(nil, "domain", "example.com", "profile", "dv", "csr", strings.Repeat("A", 100<<10))
	f.Add([]byte("csrf="+csrf+"&domain=example.com&profile=dv&csr=x"), formURLEncoded)
	f.Add([]byte("--x\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\n"+csrf+"\r\n--x--"), "multipart/form-data; boundary=x")
	f.Add([]byte("--x\r\nContent-Disposition: form-data; name=\"csr_file\"; filename=\"a\"\r\n\r\n"), "multipart/form-data; boundary=x")
	f.Fuzz(func(t *testing.T, body []byte, contentType string) {
		before := e.newest(t, acct)
		rec, _ := ff.post("/orders", body, contentType)
		checkAnswer(t, "/orders", rec)
		if rec.Code >= 400 {
			checkNothingNew(t, "/orders", rec.Code, before, e.newest(t, acct))
		}
	})
}

// FuzzRevokeForm posts to a certificate's revocation form, as its owner,
// and to the form of certificates that do not exist.
func FuzzRevokeForm(f *testing.F) {
	e := newEnv(f)
	b := e.browser(f)
	b.signIn(f, e.account(f, "fuzz@example.com", store.RoleSubscriber))
	b.validate(f, "example.com")
	sn := serialOnPage(f, b.follow(f, b.order(f, url.Values{"domain": {"example.com"}, "profile": {"dv"}, "csr": {csrPEM(f, "www.example.com")}}, nil)))
	b.get(f, "/certificates/"+sn)
	ff := newFormFuzzer(e, b)
	routes := []formRoute{{"/certificates/" + sn + "/revoke", nil}, {"/certificates/00/revoke", nil}, {"/certificates/ABC/revoke", nil}}
	f.Add(uint8(0), formBody(b.csrf, "reason", "keyCompromise"), formURLEncoded)
	f.Add(uint8(0), formBody(b.csrf, "reason", "privilegeWithdrawn", "confirm", "yes"), formURLEncoded)
	f.Add(uint8(0), formBody(b.csrf, "reason", "certificateHold", "confirm", "yes"), formURLEncoded)
	f.Add(uint8(0), formBody(b.csrf, "reason", "superseded", "reason", "keyCompromise", "confirm", "yes"), formURLEncoded)
	f.Add(uint8(1), formBody(b.csrf, "reason", "superseded", "confirm", "yes"), formURLEncoded)
	f.Add(uint8(2), formBody(b.csrf, "reason", "superseded", "confirm", "yes"), formURLEncoded)
	body, ct := multipartForm(url.Values{csrfField: {b.csrf}, "reason": {"cessationOfOperation"}, "confirm": {"yes"}}, nil)
	f.Add(uint8(0), body, ct)
	f.Fuzz(func(t *testing.T, which uint8, body []byte, contentType string) {
		rt := routes[int(which)%len(routes)]
		c, err := e.st.Certificate(context.Background(), serial.Serial(sn))
		if err != nil {
			t.Fatal(err)
		}
		rec, _ := ff.post(rt.path, body, contentType)
		checkAnswer(t, rt.path, rec)
		if rec.Code >= 400 && c.Status == status.Good {
			if c, err = e.st.Certificate(context.Background(), serial.Serial(sn)); err != nil || c.Status != status.Good {
				t.Fatalf("%s: answered %d but the certificate is now %v (%v)", rt.path, rec.Code, c.Status, err)
			}
		}
	})
}

// FuzzReviewForms posts a reviewer's approve and reject forms for OV and
// EV orders pending review.
func FuzzReviewForms(f *testing.F) {
	e := newEnv(f)
	alice := e.browser(f)
	alice.signIn(f, e.account(f, "alice@example.com", store.RoleSubscriber))
	alice.validate(f, "example.com")
	org := []string{"org_name", "Example Ltd", "org_locality", "London", "org_country", "GB"}
	place := func(prof string, extra ...string) string {
		v := url.Values{"domain": {"example.com"}, "profile": {prof}, "csr": {csrPEM(f, "www.example.com")}}
		for i := 0; i+1 < len(org); i += 2 {
			v.Set(org[i], org[i+1])
		}
		for i := 0; i+1 < len(extra); i += 2 {
			v.Set(extra[i], extra[i+1])
		}
		p := alice.order(f, v, nil)
		if p.status != http.StatusSeeOther {
			f.Fatalf("order %s: %d %s", prof, p.status, excerpt(p.body))
		}
		return strings.TrimPrefix(p.location(), "/orders/")
	}
	ov1, ov2 := place("ov"), place("ov")
	ev := place("ev", "org_jurisdiction_country", "GB", "org_business_category", "Private Organization", "org_registration_number", "01234567")
	rev := e.browser(f)
	rev.signIn(f, e.account(f, "rev@example.net", store.RoleReviewer))
	ff := newFormFuzzer(e, rev)
	routes := []formRoute{
		{"/review/orders/" + ov1 + "/approve", nil}, {"/review/orders/" + ov2 + "/reject", nil},
		{"/review/orders/" + ev + "/approve", nil}, {"/review/orders/" + ev + "/reject", nil},
		{"/review/orders/ord_nope/approve", nil},
	}
	ids := []string{ov1, ov2, ev, ev, ""}
	f.Add(uint8(0), formBody(rev.csrf, "notes", "checked", "evidence_source", "Companies House", "evidence_reference", "01234567"), formURLEncoded)
	f.Add(uint8(0), formBody(rev.csrf, "notes", "x\x00y", "evidence_source", "register"), formURLEncoded)
	f.Add(uint8(0), formBody(rev.csrf, "evidence_source", "register", "evidence_extra", `{"registry_id": "1", "source": "overridden"}`), formURLEncoded)
	f.Add(uint8(0), formBody(rev.csrf, "evidence_source", "register", "evidence_extra", strings.Repeat("[", 5000)), formURLEncoded)
	f.Add(uint8(0), formBody(rev.csrf, "evidence_source", " ", "evidence_extra", "null"), formURLEncoded)
	f.Add(uint8(1), formBody(rev.csrf, "reason", "the register does not list this company"), formURLEncoded)
	f.Add(uint8(1), formBody(rev.csrf, "reason", "  \r\n\t "), formURLEncoded)
	f.Add(uint8(2), formBody(rev.csrf, "evidence_source", "register", "notes", strings.Repeat("n", 5000)), formURLEncoded)
	f.Add(uint8(3), formBody(rev.csrf, "reason", strings.Repeat("r", 1001)), formURLEncoded)
	f.Add(uint8(4), formBody(rev.csrf, "evidence_source", "register"), formURLEncoded)
	body, ct := multipartForm(url.Values{csrfField: {rev.csrf}, "evidence_source": {"register"}, "evidence_extra": {`{"a": 1}`}}, []byte("{}"))
	f.Add(uint8(2), body, ct)
	f.Fuzz(func(t *testing.T, which uint8, body []byte, contentType string) {
		i := int(which) % len(routes)
		rt := routes[i]
		var before []store.Review
		if ids[i] != "" {
			var err error
			if before, err = e.st.Reviews(context.Background(), ids[i]); err != nil {
				t.Fatal(err)
			}
		}
		rec, _ := ff.post(rt.path, body, contentType)
		checkAnswer(t, rt.path, rec)
		if rec.Code >= 400 && ids[i] != "" {
			after, err := e.st.Reviews(context.Background(), ids[i])
			if err != nil || len(after) != len(before) {
				t.Fatalf("%s: answered %d but %d reviews became %d (%v)", rt.path, rec.Code, len(before), len(after), err)
			}
		}
	})
}

// FuzzPages GETs arbitrary request targets, query included, anonymously
// and signed in: pages read ?next=, ?token=, ?domain=, ?expired= and path
// values. The answer is 200, a redirect on this site, or a 4xx page that
// says what was wrong.
func FuzzPages(f *testing.F) {
	e := newEnv(f)
	b := e.browser(f)
	b.signIn(f, e.account(f, "fuzz@example.com", store.RoleSubscriber))
	b.validate(f, "example.com")
	o := b.order(f, url.Values{"domain": {"example.com"}, "profile": {"dv"}, "csr": {csrPEM(f, "www.example.com")}}, nil)
	orderAt := o.location()
	sn := serialOnPage(f, b.follow(f, o))
	anon := e.browser(f)
	anon.get(f, "/")
	as := [2]formFuzzer{newFormFuzzer(e, anon), newFormFuzzer(e, b)}
	for _, s := range []string{
		"/", "/?next=//evil.example&expired=1&signedout=1", "/?next=/orders/new", "/signin/link?token=AAAA&next=/review",
		"/signin/link?token=%zz", "/validations/new?domain=Example.COM..", "/orders/new?domain=%00", "/certificates/" + sn,
		"/certificates/" + sn + "/chain.pem", "/certificates/" + strings.ToUpper(sn), "/certificates/XYZ/chain.pem",
		"/validations/val_nope", "/orders/ord_nope", "/review", "/review/orders/x", "/static/portal.css",
		"/a/../orders/new", "/%2e%2e/", "//evil.example/", "/orders/new?" + strings.Repeat("domain=x&", 500), orderAt,
	} {
		f.Add(s, false)
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, target string, signedIn bool) {
		u, err := url.ParseRequestURI(target)
		if err != nil || !strings.HasPrefix(target, "/") {
			return // not a request line net/http would pass on
		}
		req := httptest.NewRequest("GET", "/", nil)
		req.URL, req.RequestURI = u, target
		who := 0
		if signedIn {
			who = 1
		}
		rec := as[who].do(req)
		checkAnswer(t, target, rec, http.StatusOK)
	})
}
