package portal

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/trustline/trustline/internal/store"
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

// FuzzOrderForm posts arbitrary bodies to the Certificates Wizard as a
// signed-in subscriber: whatever arrives, the answer is a page with a
// 3xx or 4xx status, never a 500 or a panic.
func FuzzOrderForm(f *testing.F) {
	e := newEnv(f)
	b := e.browser(f)
	b.signIn(f, e.account(f, "fuzz@example.com", store.RoleSubscriber))
	b.validate(f, "example.com")
	u, _ := url.Parse(e.srv.URL)
	var sid string
	for _, c := range b.c.Jar.Cookies(u) {
		if c.Name == sessionCookie {
			sid = c.Value
		}
	}
	sess, ok := e.h.sessions.touch(sid, e.h.now())
	if ok != sessionOK {
		f.Fatal("no session")
	}
	body, ct := multipartForm(url.Values{"csrf": {sess.csrf}, "domain": {"example.com"}, "profile": {"ov"}, "csr": {csrPEM(f, "example.com")},
		"org_name": {"Example Ltd"}, "org_country": {"GB"}, "org_locality": {"London"}}, nil)
	f.Add(body, ct)
	body, ct = multipartForm(url.Values{"csrf": {sess.csrf}, "profile": {"ev"}, "names": {"a b c"}}, []byte("garbage"))
	f.Add(body, ct)
	f.Add([]byte("csrf="+sess.csrf+"&domain=example.com&profile=dv&csr=x"), "application/x-www-form-urlencoded")
	f.Add([]byte("--x\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\n"+sess.csrf+"\r\n--x--"), "multipart/form-data; boundary=x")
	f.Fuzz(func(t *testing.T, body []byte, contentType string) {
		req := httptest.NewRequest("POST", "/orders", bytes.NewReader(body))
		req.Header.Set("Content-Type", contentType)
		req.Header.Set("Origin", e.srv.URL)
		req.Host = strings.TrimPrefix(e.srv.URL, "http://")
		req.AddCookie(&http.Cookie{Name: sessionCookie, Value: sid})
		rec := httptest.NewRecorder()
		e.h.ServeHTTP(rec, req)
		if rec.Code >= 500 || rec.Code < 300 {
			t.Fatalf("status %d for %q (%s)", rec.Code, body, contentType)
		}
	})
}
