package api_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"mime"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/trustline/trustline/internal/serial"
	"github.com/trustline/trustline/internal/status"
	"github.com/trustline/trustline/internal/store"
	"github.com/trustline/trustline/issuer"
	"github.com/trustline/trustline/issuer/api"
)

// Fuzz targets for the JSON endpoints. Each builds one environment before
// f.Fuzz and sends fuzzed bodies, with a fuzzed Content-Type, straight
// into the handler (no network, so an exec costs what the endpoint does).
// Whatever arrives, the answer is 2xx or 4xx, never 5xx or a panic; a 4xx
// is application/problem+json whose detail says what was wrong; and a 4xx
// changes nothing that can be checked cheaply (no account, validation,
// order, pattern or review is created, no certificate revoked).
//
// Run one with go test -run '^$' -fuzz '^FuzzOrdersJSON$' -fuzztime 60s ./issuer/api
// (docs/fuzzing.md).

// serve sends one request to the handler.
func (e *env) serve(method, path, key string, body []byte, contentType string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, path, bytes.NewReader(body))
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	rec := httptest.NewRecorder()
	e.h.ServeHTTP(rec, req)
	return rec
}

// checkJSONAnswer fails unless rec is a 2xx JSON answer or a 4xx problem
// document with a detail.
func checkJSONAnswer(t *testing.T, what string, rec *httptest.ResponseRecorder) {
	t.Helper()
	code, body := rec.Code, rec.Body.Bytes()
	switch {
	case code >= 200 && code < 300:
		if !json.Valid(body) {
			t.Fatalf("%s: %d with a body that is not JSON: %.300q", what, code, body)
		}
	case code >= 400 && code < 500:
		if mt, _, _ := mime.ParseMediaType(rec.Header().Get("Content-Type")); mt != "application/problem+json" {
			t.Fatalf("%s: %d with Content-Type %q", what, code, rec.Header().Get("Content-Type"))
		}
		var p struct {
			Status int    `json:"status"`
			Detail string `json:"detail"`
		}
		if err := json.Unmarshal(body, &p); err != nil || p.Status != code || strings.TrimSpace(p.Detail) == "" {
			t.Fatalf("%s: %d with problem %.300q (%v): want its status and a detail", what, code, body, err)
		}
	default:
		t.Fatalf("%s: status %d: %.300q", what, code, body)
	}
}

// jsonRoute is an endpoint a fuzz target posts to, as the holder of key.
type jsonRoute struct {
	path, key string
}

// The content types a client may send; the fuzzer mutates them further.
var fuzzContentTypes = []string{"application/json", "", "text/plain", "application/x-www-form-urlencoded",
	"APPLICATION/JSON ; charset=utf-8", "multipart/form-data; boundary=x", "application/json;;"}

// Bodies every target is seeded with, whatever its fields: empty, not an
// object, two values, truncated, invalid UTF-8, one larger than MaxBody,
// and nesting past encoding/json's depth limit and within it.
func hostileBodies() [][]byte {
	deep := func(n int, open, close string) []byte {
		return []byte(`{"x": ` + strings.Repeat(open, n) + `1` + strings.Repeat(close, n) + `}`)
	}
	return [][]byte{
		nil, []byte("  \n"), []byte("null"), []byte("[]"), []byte(`"x"`), []byte("{}"), []byte("{} {}"), []byte(`{"a":`),
		[]byte("{\"\xff\": \"\xfe\"}"), []byte(`{"a": 1e999}`),
		[]byte(`{"x": "` + strings.Repeat("A", api.MaxBody) + `"}`),
		deep(12000, "[", "]"), deep(9000, "[", "]"), deep(6000, `{"a":`, "}"),
	}
}

// seed adds body for every route with a JSON content type, and the
// hostile bodies for every route with each content type in turn.
func seed(f *testing.F, nroutes int, bodies map[int][]string) {
	for which, bs := range bodies {
		for _, b := range bs {
			f.Add(uint8(which), []byte(b), "application/json")
		}
	}
	for which := range nroutes {
		for i, b := range hostileBodies() {
			f.Add(uint8(which), b, fuzzContentTypes[i%len(fuzzContentTypes)])
		}
	}
}

// newestIDs returns the ids of the account's three newest validations and
// orders: a request that created one changes them.
func (e *env) newestIDs(t testing.TB, accountID string) []string {
	t.Helper()
	ctx := context.Background()
	vals, err := e.st.ListValidations(ctx, accountID, 3)
	if err != nil {
		t.Fatal(err)
	}
	ords, err := e.st.ListOrders(ctx, store.OrderFilter{AccountID: accountID, Limit: 3})
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

func checkNothingNew(t *testing.T, what string, code int, before, after []string) {
	t.Helper()
	for _, id := range after {
		if !slices.Contains(before, id) {
			t.Fatalf("%s: answered %d but created %s", what, code, id)
		}
	}
}

// accountIDOf is the id of the account key belongs to.
func (e *env) accountIDOf(t testing.TB, key string) string {
	t.Helper()
	acct, err := issuer.NewAccounts(e.st, nil).Authenticate(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	return acct.ID
}

// emailOf is the normalised email a body names, "" if none.
func emailOf(body []byte) string {
	var req struct {
		Email string `json:"email"`
	}
	if json.Unmarshal(body, &req) != nil {
		return ""
	}
	email, err := issuer.NormalizeEmail(req.Email)
	if err != nil {
		return ""
	}
	return email
}

// hasAccount reports whether an account has the address; "" has none.
func (e *env) hasAccount(t *testing.T, email string) bool {
	t.Helper()
	if email == "" {
		return false
	}
	accts, err := e.st.AccountsByEmail(context.Background(), email)
	if err != nil {
		t.Fatal(err)
	}
	return len(accts) > 0
}

// postAccount posts an account-creating body and fails if a 4xx answer
// created the account the body names.
func (e *env) postAccount(t *testing.T, path, key string, body []byte, contentType string) *httptest.ResponseRecorder {
	t.Helper()
	email := emailOf(body)
	existed := e.hasAccount(t, email)
	rec := e.serve("POST", path, key, body, contentType)
	checkJSONAnswer(t, path, rec)
	if rec.Code >= 400 && !existed && e.hasAccount(t, email) {
		t.Fatalf("%s: answered %d but created an account for %s", path, rec.Code, email)
	}
	return rec
}

// FuzzAccountsJSON: public sign-up. A 201 makes a subscriber, whatever
// else the body asks for.
func FuzzAccountsJSON(f *testing.F) {
	e := newEnv(f)
	seed(f, 1, map[int][]string{0: {
		`{"email": "new@example.com"}`, `{"email": "root@example.net"}`, `{"Email": "CASE@Example.com"}`,
		`{"email": "x@example.com", "role": "admin"}`, `{"email": "a@example.com", "email": "b@example.com"}`,
		`{"email": 1}`, `{"email": null}`, `{"email": "Alice <alice@example.com>"}`, `{"email": "\u0000@example.com"}`,
		`{"email": "` + strings.Repeat("Ⱥ", 100) + `@example.com"}`, `{"email": "x@example.com"} {"email": "y@example.com"}`,
	}})
	f.Fuzz(func(t *testing.T, _ uint8, body []byte, contentType string) {
		rec := e.postAccount(t, "/api/v1/accounts", "", body, contentType)
		if rec.Code == http.StatusCreated {
			var out struct{ Role string }
			if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil || out.Role != string(store.RoleSubscriber) {
				t.Fatalf("sign-up made a %q account from %q (%v)", out.Role, body, err)
			}
		}
	})
}

// FuzzAdminJSON: the admin endpoints that take a body, with an admin's
// key (account creation, the Manual Review List), and account creation
// with a subscriber's key, which is always refused.
func FuzzAdminJSON(f *testing.F) {
	e := newEnv(f)
	sub := e.newAccount(f, "sub@example.com")
	routes := []jsonRoute{{"/api/v1/admin/accounts", e.admin}, {"/api/v1/admin/review-list", e.admin}, {"/api/v1/admin/accounts", sub}}
	seed(f, len(routes), map[int][]string{
		0: {`{"email": "rev@example.com", "role": "reviewer"}`, `{"email": "adm@example.com", "role": "admin"}`,
			`{"email": "s@example.com"}`, `{"email": "x@example.com", "role": "root"}`, `{"email": "sub@example.com", "role": "admin"}`},
		1: {`{"pattern": "*bank*"}`, `{"pattern": "  *PAYPAL*  "}`, `{"pattern": ""}`, `{"pattern": "a/b"}`,
			`{"pattern": "` + strings.Repeat("a", 300) + `"}`, `{"pattern": "*bank*", "id": "rl_x"}`},
		2: {`{"email": "mallory@example.com", "role": "admin"}`},
	})
	patterns := func(t *testing.T) int {
		ps, err := e.st.ReviewPatterns(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return len(ps)
	}
	f.Fuzz(func(t *testing.T, which uint8, body []byte, contentType string) {
		rt := routes[int(which)%len(routes)]
		if rt.path == "/api/v1/admin/accounts" {
			rec := e.postAccount(t, rt.path, rt.key, body, contentType)
			if rt.key == sub && rec.Code != http.StatusForbidden {
				t.Fatalf("a subscriber on %s: %d, want 403", rt.path, rec.Code)
			}
			return
		}
		before := patterns(t)
		rec := e.serve("POST", rt.path, rt.key, body, contentType)
		checkJSONAnswer(t, rt.path, rec)
		if after := patterns(t); rec.Code >= 400 && after != before {
			t.Fatalf("%s: answered %d but the list went from %d patterns to %d", rt.path, rec.Code, before, after)
		}
	})
}

// FuzzValidationsJSON: starting validations, and confirming a pending
// email validation (with a code), a pending dns-txt one (no code; the
// record is missing from the test zone) and another account's.
func FuzzValidationsJSON(f *testing.F) {
	e := newEnv(f)
	alice, bob := e.newAccount(f, "alice@example.com"), e.newAccount(f, "bob@example.com")
	aliceID := e.accountIDOf(f, alice)
	_, out, _ := e.call(f, "POST", "/api/v1/validations", alice, map[string]string{"domain": "example.org", "method": "email", "email": "admin@example.org"})
	emailID, _ := out["id"].(string)
	code := e.lastCode(f, "admin@example.org")
	dnsID, _ := e.startPublished(f, alice, "example.net", "dns-txt")["id"].(string)
	routes := []jsonRoute{{"/api/v1/validations", alice}, {"/api/v1/validations/" + emailID + "/confirm", alice},
		{"/api/v1/validations/" + dnsID + "/confirm", alice}, {"/api/v1/validations/" + emailID + "/confirm", bob}}
	seed(f, len(routes), map[int][]string{
		0: {`{"domain": "example.info", "method": "email", "email": "admin@example.info"}`,
			`{"domain": "Example.COM.", "method": "dns-txt"}`, `{"domain": "00000000000000000000000000..", "method": "dns-txt"}`,
			`{"domain": "example.com..", "method": "http-token"}`, `{"domain": "*.example.com", "method": "dns-txt"}`,
			`{"domain": "printer.local", "method": "email", "email": "admin@printer.local"}`,
			`{"domain": "example.com", "method": "email", "email": "ceo@example.com"}`,
			`{"domain": "example.com", "method": "email", "email": "admin@example.com.."}`,
			`{"domain": "example.com", "method": "whois-email"}`, `{"domain": "example.com"}`, `{"method": "dns-txt"}`,
			`{"domain": "` + strings.Repeat("a.", 200) + `com", "method": "dns-txt"}`, `{"domain": ["example.com"], "method": "dns-txt"}`},
		1: {`{"code": "WRONG"}`, `{"code": "` + code + `"}`, `{"code": "` + strings.Repeat("c", 129) + `"}`, `{"code": 12345}`, ``},
		2: {``, `{}`, `{"code": "x"}`},
		3: {`{"code": "` + code + `"}`},
	})
	f.Fuzz(func(t *testing.T, which uint8, body []byte, contentType string) {
		rt := routes[int(which)%len(routes)]
		before := e.newestIDs(t, aliceID)
		rec := e.serve("POST", rt.path, rt.key, body, contentType)
		checkJSONAnswer(t, rt.path, rec)
		if rt.key == bob && rec.Code != http.StatusNotFound && rec.Code != http.StatusRequestEntityTooLarge && rec.Code != http.StatusBadRequest {
			t.Fatalf("another account confirms: %d", rec.Code)
		}
		if rec.Code >= 400 {
			checkNothingNew(t, rt.path, rec.Code, before, e.newestIDs(t, aliceID))
		}
	})
}

// FuzzOrdersJSON: orders from an account that has validated example.com,
// DV, OV and EV, with fuzzed CSRs and organizations.
func FuzzOrdersJSON(f *testing.F) {
	e := newEnv(f)
	alice := e.newAccount(f, "alice@example.com")
	aliceID := e.accountIDOf(f, alice)
	e.validate(f, alice, "example.com")
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	csr := func(names ...string) string {
		j, _ := json.Marshal(csrPEM(f, k, names...))
		return string(j)
	}
	ov, _ := json.Marshal(ovOrg)
	ev, _ := json.Marshal(evOrg)
	seed(f, 1, map[int][]string{0: {
		`{"csr": ` + csr("www.example.com") + `}`,
		`{"csr": ` + csr("example.com") + `, "profile": "ov", "organization": ` + string(ov) + `}`,
		`{"csr": ` + csr("secure.example.com") + `, "profile": "ev", "organization": ` + string(ev) + `}`,
		`{"csr": ` + csr("example.com") + `, "profile": "dv", "organization": ` + string(ov) + `}`,
		`{"csr": ` + csr("example.com") + `, "profile": "ov", "organization": {"name": "` + strings.Repeat("n", 65) + `", "country": "gb"}}`,
		`{"csr": ` + csr("example.com") + `, "profile": "ev", "organization": null}`,
		`{"csr": ` + csr("example.org") + `}`, `{"csr": ` + csr("*.example.com") + `}`,
		`{"csr": ` + csr("00000000000000000000000000.example.com") + `}`,
		`{"csr": ` + csr("example.com") + `, "profile": "gold"}`, `{"csr": ` + csr("example.com") + `, "colour": "red"}`,
		`{"csr": "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n"}`,
		`{"csr": "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"}`,
		`{"csr": ""}`, `{"csr": 1}`, `{"csr": ["x"]}`, `{"profile": "dv"}`,
	}})
	f.Fuzz(func(t *testing.T, _ uint8, body []byte, contentType string) {
		before := e.newestIDs(t, aliceID)
		rec := e.serve("POST", "/api/v1/orders", alice, body, contentType)
		checkJSONAnswer(t, "order", rec)
		if rec.Code >= 400 {
			checkNothingNew(t, "order", rec.Code, before, e.newestIDs(t, aliceID))
		}
	})
}

// FuzzRevocationsJSON: revocation by the owner, by an admin, by another
// subscriber (always 404), and of serials that do not exist or are
// malformed.
func FuzzRevocationsJSON(f *testing.F) {
	e := newEnv(f)
	alice, bob := e.newAccount(f, "alice@example.com"), e.newAccount(f, "bob@example.org")
	e.validate(f, alice, "example.com")
	var sns []string
	for range 2 {
		c, out := e.order(f, alice, "dv", nil, "www.example.com")
		sn, _ := out["serial"].(string)
		if c != http.StatusCreated || sn == "" {
			f.Fatalf("order: %d %v", c, out)
		}
		sns = append(sns, sn)
	}
	routes := []jsonRoute{
		{"/api/v1/certificates/" + sns[0] + "/revoke", alice}, {"/api/v1/certificates/" + sns[1] + "/revoke", e.admin},
		{"/api/v1/certificates/" + sns[1] + "/revoke", bob}, {"/api/v1/certificates/00/revoke", alice},
		{"/api/v1/certificates/XYZ/revoke", alice},
	}
	seed(f, len(routes), map[int][]string{
		0: {`{"reason": "keyCompromise"}`, `{"reason": "certificateHold"}`, `{"reason": "privilegeWithdrawn"}`, `{"reason": ""}`,
			`{"reason": "KEYCOMPROMISE"}`, `{"reason": 1}`, `{"reason": "removeFromCRL"}`, `{"reason": "superseded", "serial": "01"}`},
		1: {`{"reason": "privilegeWithdrawn"}`, `{"reason": "aACompromise"}`},
		2: {`{"reason": "keyCompromise"}`},
		3: {`{"reason": "superseded"}`},
		4: {`{"reason": "superseded"}`},
	})
	f.Fuzz(func(t *testing.T, which uint8, body []byte, contentType string) {
		rt := routes[int(which)%len(routes)]
		good := map[string]bool{}
		for _, sn := range sns {
			c, err := e.st.Certificate(context.Background(), serial.Serial(sn))
			if err != nil {
				t.Fatal(err)
			}
			good[sn] = c.Status == status.Good
		}
		rec := e.serve("POST", rt.path, rt.key, body, contentType)
		checkJSONAnswer(t, rt.path, rec)
		if rt.key == bob && rec.Code < 300 {
			t.Fatalf("another subscriber revoked: %d", rec.Code)
		}
		if rec.Code < 400 {
			return
		}
		for _, sn := range sns {
			c, err := e.st.Certificate(context.Background(), serial.Serial(sn))
			if err != nil || (good[sn] && c.Status != status.Good) {
				t.Fatalf("%s: answered %d but %s is now %v (%v)", rt.path, rec.Code, sn, c.Status, err)
			}
		}
	})
}

// FuzzReviewJSON: a reviewer's approve and reject decisions on OV and EV
// orders pending review, on an order that does not exist, and a
// subscriber's attempt (always 403).
func FuzzReviewJSON(f *testing.F) {
	e := newEnv(f)
	alice := e.newAccount(f, "alice@example.com")
	e.validate(f, alice, "example.com")
	rev := e.reviewer(f, "rev@ca.example")
	place := func(prof string, org map[string]string) string {
		c, out := e.order(f, alice, prof, org, "www.example.com")
		id, _ := out["id"].(string)
		if c != http.StatusCreated || out["status"] != "pending_review" {
			f.Fatalf("order %s: %d %v", prof, c, out)
		}
		return id
	}
	ov1, ov2, ev := place("ov", ovOrg), place("ov", ovOrg), place("ev", evOrg)
	routes := []jsonRoute{
		{"/api/v1/review/orders/" + ov1 + "/approve", rev}, {"/api/v1/review/orders/" + ov2 + "/reject", rev},
		{"/api/v1/review/orders/" + ev + "/approve", rev}, {"/api/v1/review/orders/" + ev + "/reject", rev},
		{"/api/v1/review/orders/ord_nope/approve", rev}, {"/api/v1/review/orders/" + ev + "/approve", alice},
	}
	ids := []string{ov1, ov2, ev, ev, "", ev}
	deepEvidence := `{"evidence": {"a": ` + strings.Repeat("[", 9000) + strings.Repeat("]", 9000) + `}}`
	seed(f, len(routes), map[int][]string{
		0: {`{"notes": "checked", "evidence": {"source": "Companies House", "registry_id": "01234567"}}`, ``, `{}`,
			`{"evidence": null}`, `{"evidence": [1, 2]}`, `{"evidence": "x"}`, `{"evidence": {"source": 1}}`,
			`{"notes": "` + strings.Repeat("n", 5000) + `"}`, `{"notes": "a\u0000b"}`, deepEvidence,
			`{"evidence": {"a": "` + strings.Repeat("e", 40000) + `"}}`},
		1: {`{"reason": "the register does not list this company"}`, `{"reason": ""}`, `{"reason": "  \n "}`,
			`{"reason": "` + strings.Repeat("r", 5000) + `"}`, `{}`, ``},
		2: {`{"notes": "first", "evidence": {"source": "register"}}`},
		3: {`{"reason": "no"}`},
		4: {`{"notes": "x"}`},
		5: {`{"notes": "self"}`},
	})
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
		rec := e.serve("POST", rt.path, rt.key, body, contentType)
		checkJSONAnswer(t, rt.path, rec)
		if rt.key == alice && rec.Code != http.StatusForbidden {
			t.Fatalf("a subscriber decides: %d, want 403", rec.Code)
		}
		if rec.Code >= 400 && ids[i] != "" {
			after, err := e.st.Reviews(context.Background(), ids[i])
			if err != nil || len(after) != len(before) {
				t.Fatalf("%s: answered %d but %d reviews became %d (%v)", rt.path, rec.Code, len(before), len(after), err)
			}
		}
	})
}

// FuzzPlansJSON: planning revocations with any body, and listing plans
// with any cursor. A refused plan records nothing; every answer is JSON
// or a problem document.
func FuzzPlansJSON(f *testing.F) {
	e := newEnv(f)
	sub := e.newAccount(f, "sub@example.com")
	e.validate(f, sub, "example.com")
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	_, out, _ := e.call(f, "POST", "/api/v1/orders", sub, map[string]any{"csr": csrPEM(f, k, "www.example.com"), "profile": "dv"})
	sn, _ := out["serial"].(string)
	if sn == "" {
		f.Fatalf("order: %v", out)
	}
	soon := time.Now().Add(48 * time.Hour).UTC().Format(time.RFC3339)
	routes := []jsonRoute{{"/api/v1/admin/planned-revocations", e.admin}, {"/api/v1/admin/planned-revocations", sub}, {"/api/v1/admin/planned-revocations?after=", e.admin}}
	seed(f, len(routes), map[int][]string{
		0: {`{"serials": ["` + sn + `"], "revoke_by": "` + soon + `"}`,
			`{"serials": ["` + sn + `", "01"], "revoke_by": "` + soon + `", "reason": "keyCompromise"}`,
			`{"serials": ["` + sn + `"], "revoke_by": "` + soon + `", "explanation_url": "https://x.example/a"}`,
			`{"serials": ["` + sn + `"], "revoke_by": "2020-01-01T00:00:00Z"}`, `{"serials": []}`},
		1: {`{"serials": ["` + sn + `"], "revoke_by": "` + soon + `"}`},
		2: {"MTcwMDAwMDAwMDAwMDAwMC4wMQ", "bm9wZQ", "", "!!"},
	})
	count := func(t *testing.T) int {
		ps, err := e.st.PlannedRevocations(context.Background(), store.PlannedRevocationCursor{}, 1000)
		if err != nil {
			t.Fatal(err)
		}
		return len(ps)
	}
	f.Fuzz(func(t *testing.T, which uint8, body []byte, contentType string) {
		rt := routes[int(which)%len(routes)]
		if strings.HasSuffix(rt.path, "after=") {
			rec := e.serve("GET", rt.path+url.QueryEscape(string(body)), rt.key, nil, "")
			checkJSONAnswer(t, rt.path, rec)
			if rec.Code != 200 && rec.Code != 400 {
				t.Fatalf("listing after %q: %d", body, rec.Code)
			}
			return
		}
		before := count(t)
		rec := e.serve("POST", rt.path, rt.key, body, contentType)
		checkJSONAnswer(t, rt.path, rec)
		if rt.key == sub && rec.Code != http.StatusForbidden {
			t.Fatalf("a subscriber planning: %d, want 403", rec.Code)
		}
		if after := count(t); rec.Code >= 400 && after != before {
			t.Fatalf("answered %d but the plans went from %d to %d", rec.Code, before, after)
		}
	})
}
