package api_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/trustline/trustline/internal/store"
	"github.com/trustline/trustline/issuer/issuertest"
	"github.com/trustline/trustline/issuer/review"
	"github.com/trustline/trustline/issuer/validation"
)

// Acceptance tests of the CMS back end: review queue and decisions, EV
// two-person approval, the dns-txt, http-token and whois-email methods
// against loopback servers, notifications, roles, bad input, OpenAPI.

var (
	ovOrg = map[string]string{"name": "Example Ltd", "locality": "London", "country": "GB"}
	evOrg = map[string]string{"name": "Example Bank plc", "locality": "London", "country": "GB", "jurisdiction_country": "GB",
		"business_category": "Private Organization", "registration_number": "01234567"}
)

// reviewer has the admin create a reviewer account, the second admin
// approve the role, and returns its key.
func (e *env) reviewer(t testing.TB, email string) string {
	t.Helper()
	c, out, _ := e.call(t, "POST", "/api/v1/admin/accounts", e.admin, map[string]string{"email": email, "role": "reviewer"})
	if c != 201 {
		t.Fatalf("create reviewer: %d %v", c, out)
	}
	grant := out["grant"].(map[string]any)["id"].(string)
	if c, g, _ := e.call(t, "POST", "/api/v1/admin/role-grants/"+grant+"/approve", e.admin2, nil); c != 200 || g["status"] != "approved" {
		t.Fatalf("second admin approves the reviewer: %d %v", c, g)
	}
	return out["api_key"].(string)
}

// order posts a fresh P-256 CSR for names.
func (e *env) order(t testing.TB, key, prof string, org map[string]string, names ...string) (int, map[string]any) {
	t.Helper()
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	body := map[string]any{"csr": csrPEM(t, k, names...), "profile": prof}
	if org != nil {
		body["organization"] = org
	}
	c, out, _ := e.call(t, "POST", "/api/v1/orders", key, body)
	return c, out
}

// leaf fetches the certificate's chain and returns its leaf.
func (e *env) leaf(t testing.TB, key, sn string) *x509.Certificate {
	t.Helper()
	req, _ := http.NewRequest("GET", e.srv.URL+"/api/v1/certificates/"+sn, nil)
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	blk, _ := pem.Decode(raw)
	if resp.StatusCode != 200 || blk == nil {
		t.Fatalf("get certificate %s: %d %s", sn, resp.StatusCode, raw)
	}
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// mailTo returns the messages mailed to addr, oldest first.
func (e *env) mailTo(t testing.TB, addr string) []string {
	t.Helper()
	return issuertest.Mails(t, e.mailDir, addr)
}

// audits returns the audit entries of kind about subject.
func (e *env) audits(t testing.TB, kind, subject string) []store.AuditEntry {
	t.Helper()
	var out []store.AuditEntry
	err := e.st.ScanAudit(context.Background(), 0, func(a store.AuditEntry) error {
		if a.Kind == kind && (subject == "" || a.Subject == subject) {
			out = append(out, a)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// issuedFor counts certificate.issued audit entries naming the order.
func (e *env) issuedFor(t testing.TB, orderID string) int {
	t.Helper()
	n := 0
	for _, a := range e.audits(t, "certificate.issued", "") {
		var p struct{ Order string }
		json.Unmarshal(a.Payload, &p)
		if p.Order == orderID {
			n++
		}
	}
	return n
}

func (e *env) approve(t testing.TB, key, id string, body any) (int, map[string]any) {
	t.Helper()
	c, out, _ := e.call(t, "POST", "/api/v1/review/orders/"+id+"/approve", key, body)
	return c, out
}

func TestListedDVIssuesAfterApproval(t *testing.T) {
	e := newEnv(t)
	rev := e.reviewer(t, "rev@ca.example")
	if c, out, _ := e.call(t, "POST", "/api/v1/admin/review-list", e.admin, map[string]string{"pattern": "*bank*"}); c != 201 {
		t.Fatalf("add pattern: %d %v", c, out)
	}
	alice := e.newAccount(t, "alice@example.com")
	e.validate(t, alice, "mybank.com")
	c, out := e.order(t, alice, "dv", nil, "www.mybank.com")
	if c != 201 || out["status"] != "pending_review" {
		t.Fatalf("order: %d %v", c, out)
	}
	id := out["id"].(string)

	c, q, _ := e.call(t, "GET", "/api/v1/review/orders", rev, nil)
	raw := q["_raw"].(string)
	var queue []map[string]any
	json.Unmarshal([]byte(raw), &queue)
	if c != 200 || len(queue) != 1 || queue[0]["id"] != id {
		t.Fatalf("queue: %d %s", c, raw)
	}
	item := queue[0]
	if item["review_reason"] != "Manual Review List: *bank*" || item["approvals_required"] != 1.0 ||
		item["account"].(map[string]any)["email"] != "alice@example.com" {
		t.Errorf("queue item: %v", item)
	}
	ev := item["validations"].([]any)[0].(map[string]any)
	if ev["name"] != "www.mybank.com" || ev["covered"] != true || ev["method"] != "email" || ev["contact"] != "admin@mybank.com" ||
		len(ev["random_value_sha256"].(string)) != 64 || ev["validated_at"] == nil {
		t.Errorf("validation evidence: %v", ev)
	}

	c, got := e.approve(t, rev, id, map[string]any{"notes": "domain owner confirmed by phone", "evidence": map[string]string{"call": "+44 20 7946 0000"}})
	if c != 200 || got["status"] != "issued" || got["serial"] == nil || got["approvals"] != 1.0 {
		t.Fatalf("approve: %d %v", c, got)
	}
	sn := got["serial"].(string)
	mails := e.mailTo(t, "alice@example.com")
	if len(mails) == 0 || !strings.Contains(mails[len(mails)-1], sn) {
		t.Errorf("no mail to alice names serial %s", sn)
	}
	if n := len(e.audits(t, "review.approved", id)); n != 1 {
		t.Errorf("%d review.approved audit entries, want 1", n)
	}
	if c, _, _ := e.call(t, "GET", "/api/v1/review/orders", rev, nil); c != 200 {
		t.Errorf("queue after: %d", c)
	}
	if c, q, _ := e.call(t, "GET", "/api/v1/review/orders", rev, nil); c != 200 || q["_raw"] != "[]\n" {
		t.Errorf("queue after approval: %v", q["_raw"])
	}
	// Another account can neither see nor revoke it.
	bob := e.newAccount(t, "bob@example.org")
	for _, call := range [][2]string{{"GET", "/api/v1/orders/" + id}, {"GET", "/api/v1/certificates/" + sn}, {"POST", "/api/v1/certificates/" + sn + "/revoke"}} {
		var body any
		if call[0] == "POST" {
			body = map[string]string{"reason": "keyCompromise"}
		}
		if c, _, _ := e.call(t, call[0], call[1], bob, body); c != 404 {
			t.Errorf("bob %s %s: %d, want 404", call[0], call[1], c)
		}
	}
}

func TestOVIssuesAfterOneApproval(t *testing.T) {
	e := newEnv(t)
	rev := e.reviewer(t, "rev@ca.example")
	alice := e.newAccount(t, "alice@example.com")
	e.validate(t, alice, "example.com")
	c, out := e.order(t, alice, "ov", ovOrg, "example.com", "www.example.com")
	if c != 201 || out["status"] != "pending_review" {
		t.Fatalf("order: %d %v", c, out)
	}
	id := out["id"].(string)
	c, item, _ := e.call(t, "GET", "/api/v1/review/orders/"+id, rev, nil)
	if c != 200 || item["organization"].(map[string]any)["name"] != "Example Ltd" || item["review_reason"] != "profile ov" {
		t.Fatalf("review item: %d %v", c, item)
	}
	c, got := e.approve(t, rev, id, map[string]string{"notes": "Companies House record matches"})
	if c != 200 || got["status"] != "issued" {
		t.Fatalf("approve: %d %v", c, got)
	}
	leaf := e.leaf(t, alice, got["serial"].(string))
	if d := cmp.Diff([]string{"Example Ltd"}, leaf.Subject.Organization); d != "" {
		t.Errorf("O (-want +got):\n%s", d)
	}
	if !slices.ContainsFunc(leaf.Policies, func(o x509.OID) bool { return o.String() == "2.23.140.1.2.2" }) {
		t.Errorf("policies %v lack the OV OID", leaf.Policies)
	}
	if err := e.lint.Certificate(leaf.Raw); err != nil {
		t.Errorf("OV leaf: %v", err)
	}
	if c, _ := e.approve(t, rev, id, nil); c != 409 {
		t.Errorf("approving an issued order: %d, want 409", c)
	}
}

func TestEVNeedsTwoDifferentReviewers(t *testing.T) {
	e := newEnv(t)
	r1, r2 := e.reviewer(t, "r1@ca.example"), e.reviewer(t, "r2@ca.example")
	alice := e.newAccount(t, "alice@example.com")
	e.validate(t, alice, "example.com")
	c, out := e.order(t, alice, "ev", evOrg, "www.example.com")
	if c != 201 || out["status"] != "pending_review" {
		t.Fatalf("order: %d %v", c, out)
	}
	id := out["id"].(string)

	c, got := e.approve(t, r1, id, map[string]string{"notes": "registry checked"})
	if c != 200 || got["status"] != "pending_review" || got["approvals"] != 1.0 || got["approvals_required"] != 2.0 {
		t.Fatalf("first approval: %d %v", c, got)
	}
	// The same reviewer again: refused, and it does not count.
	if c, got := e.approve(t, r1, id, map[string]string{"notes": "again"}); c != 409 || !strings.Contains(got["detail"].(string), "different reviewers") {
		t.Errorf("second approval by r1: %d %v, want 409", c, got)
	}
	if _, o, _ := e.call(t, "GET", "/api/v1/orders/"+id, alice, nil); o["status"] != "pending_review" {
		t.Fatalf("after two approvals by one reviewer: %v", o)
	}
	c, got = e.approve(t, r2, id, map[string]string{"notes": "legal existence verified"})
	if c != 200 || got["status"] != "issued" || got["approvals"] != 2.0 {
		t.Fatalf("second reviewer: %d %v", c, got)
	}
	leaf := e.leaf(t, alice, got["serial"].(string))
	if !slices.ContainsFunc(leaf.Policies, func(o x509.OID) bool { return o.String() == "2.23.140.1.1" }) {
		t.Errorf("policies %v lack the EV OID", leaf.Policies)
	}
	subject := map[string]string{}
	for _, atv := range leaf.Subject.Names {
		subject[atv.Type.String()] = fmt.Sprint(atv.Value)
	}
	for oid, want := range map[string]string{
		"2.5.4.10": "Example Bank plc", "2.5.4.5": "01234567", "2.5.4.15": "Private Organization",
		"1.3.6.1.4.1.311.60.2.1.3": "GB", "2.5.4.6": "GB",
	} {
		if subject[oid] != want {
			t.Errorf("subject %s = %q, want %q", oid, subject[oid], want)
		}
	}
	if err := e.lint.Certificate(leaf.Raw); err != nil {
		t.Errorf("EV leaf: %v", err)
	}
	c, item, _ := e.call(t, "GET", "/api/v1/review/orders/"+id, r1, nil)
	if c != 200 || len(item["reviews"].([]any)) != 2 || len(item["approvers"].([]any)) != 2 {
		t.Errorf("reviews recorded: %v", item["reviews"])
	}
	if n := len(e.audits(t, "review.approved", id)); n != 2 {
		t.Errorf("%d review.approved audit entries, want 2", n)
	}
}

func TestConcurrentApprovalsIssueOnce(t *testing.T) {
	e := newEnv(t)
	revs := []string{e.reviewer(t, "r1@ca.example"), e.reviewer(t, "r2@ca.example"), e.reviewer(t, "r3@ca.example")}
	alice := e.newAccount(t, "alice@example.com")
	e.validate(t, alice, "example.com")
	for round := 0; round < 3; round++ {
		_, out := e.order(t, alice, "ev", evOrg, "example.com")
		id := out["id"].(string)
		if c, _ := e.approve(t, revs[0], id, nil); c != 200 {
			t.Fatalf("first approval: %d", c)
		}
		// r2 and r3 race to complete it; r3 also double-submits.
		var wg sync.WaitGroup
		codes := make([]int, 3)
		for i, key := range []string{revs[1], revs[2], revs[2]} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				codes[i], _ = e.approve(t, key, id, nil)
			}()
		}
		wg.Wait()
		if n := e.issuedFor(t, id); n != 1 {
			t.Fatalf("round %d: %d certificates issued for one order (codes %v)", round, n, codes)
		}
		if _, o, _ := e.call(t, "GET", "/api/v1/orders/"+id, alice, nil); o["status"] != "issued" {
			t.Errorf("round %d: order %v", round, o)
		}
		for _, c := range codes {
			if c != 200 && c != 409 {
				t.Errorf("round %d: approval answered %d", round, c)
			}
		}
	}
}

func TestRejectionEndsOrder(t *testing.T) {
	e := newEnv(t)
	r1, r2 := e.reviewer(t, "r1@ca.example"), e.reviewer(t, "r2@ca.example")
	alice := e.newAccount(t, "alice@example.com")
	e.validate(t, alice, "example.com")
	_, out := e.order(t, alice, "ev", evOrg, "example.com")
	id := out["id"].(string)
	e.approve(t, r1, id, nil)
	if c, got, _ := e.call(t, "POST", "/api/v1/review/orders/"+id+"/reject", r2, map[string]string{"reason": ""}); c != 400 || !strings.Contains(got["detail"].(string), "reason") {
		t.Errorf("reject without reason: %d %v", c, got)
	}
	c, got, _ := e.call(t, "POST", "/api/v1/review/orders/"+id+"/reject", r2, map[string]string{"reason": "registration number does not match the registry"})
	if c != 200 || got["status"] != "rejected" {
		t.Fatalf("reject: %d %v", c, got)
	}
	if _, o, _ := e.call(t, "GET", "/api/v1/orders/"+id, alice, nil); o["status"] != "rejected" || !strings.Contains(o["reject_reason"].(string), "registry") {
		t.Errorf("order after rejection: %v", o)
	}
	if c, _ := e.approve(t, r2, id, nil); c != 409 {
		t.Errorf("approving a rejected order: %d, want 409", c)
	}
	if c, _, _ := e.call(t, "POST", "/api/v1/review/orders/"+id+"/reject", r1, map[string]string{"reason": "again"}); c != 409 {
		t.Errorf("rejecting twice: %d, want 409", c)
	}
	mails := e.mailTo(t, "alice@example.com")
	if len(mails) == 0 || !strings.Contains(mails[len(mails)-1], "Reason: registration number does not match the registry") {
		t.Errorf("no rejection mail with the reason to alice: %q", mails)
	}
	if n := len(e.audits(t, "review.rejected", id)); n != 1 {
		t.Errorf("%d review.rejected audit entries, want 1", n)
	}
	if e.issuedFor(t, id) != 0 {
		t.Error("a rejected order was issued")
	}
}

func TestReviewRoles(t *testing.T) {
	e := newEnv(t)
	rev := e.reviewer(t, "rev@ca.example")
	alice := e.newAccount(t, "alice@example.com")
	e.validate(t, alice, "example.com")
	_, out := e.order(t, alice, "ov", ovOrg, "example.com")
	id := out["id"].(string)
	// The reviewer's own order.
	e.validate(t, rev, "example.net")
	_, own := e.order(t, rev, "ov", ovOrg, "example.net")
	ownID := own["id"].(string)

	endpoints := []struct{ method, path string }{
		{"GET", "/api/v1/review/orders"},
		{"GET", "/api/v1/review/orders/" + id},
		{"POST", "/api/v1/review/orders/" + id + "/approve"},
		{"POST", "/api/v1/review/orders/" + id + "/reject"},
	}
	for _, who := range []struct{ name, key string }{{"subscriber", alice}, {"admin", e.admin}} {
		for _, ep := range endpoints {
			t.Run(who.name+" "+ep.method+" "+ep.path, func(t *testing.T) {
				var body any
				if ep.method == "POST" {
					body = map[string]string{}
				}
				if c, _, _ := e.call(t, ep.method, ep.path, who.key, body); c != 403 {
					t.Errorf("%d, want 403", c)
				}
			})
		}
	}
	tests := []struct {
		name, path string
		body       any
		want       int
		detail     string
	}{
		{"own order", "/api/v1/review/orders/" + ownID + "/approve", map[string]string{}, 403, "own account"},
		{"own order reject", "/api/v1/review/orders/" + ownID + "/reject", map[string]string{"reason": "x"}, 403, "own account"},
		{"unknown order", "/api/v1/review/orders/ord_nope/approve", map[string]string{}, 404, "no such order"},
		{"evidence not an object", "/api/v1/review/orders/" + id + "/approve", `{"evidence": [1, 2]}`, 400, "JSON object"},
		{"unknown field", "/api/v1/review/orders/" + id + "/approve", `{"note": "typo"}`, 400, "note"},
		{"malformed JSON", "/api/v1/review/orders/" + id + "/reject", `{"reason": `, 400, "malformed JSON"},
		{"oversized notes", "/api/v1/review/orders/" + id + "/approve", map[string]string{"notes": strings.Repeat("n", review.MaxNotes+1)}, 400, "notes"},
		{"oversized body", "/api/v1/review/orders/" + id + "/approve", `{"notes": "` + strings.Repeat("n", 70<<10) + `"}`, 413, "larger than"},
		{"bad limit", "/api/v1/review/orders?limit=0", nil, 400, "limit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			method := "POST"
			if tt.body == nil {
				method = "GET"
			}
			c, out, _ := e.call(t, method, tt.path, rev, tt.body)
			if d, _ := out["detail"].(string); c != tt.want || !strings.Contains(d, tt.detail) {
				t.Errorf("%d %q, want %d with %q", c, d, tt.want, tt.detail)
			}
		})
	}
	if _, o, _ := e.call(t, "GET", "/api/v1/orders/"+id, alice, nil); o["status"] != "pending_review" {
		t.Errorf("refused calls changed the order: %v", o)
	}
	// An empty body approves (notes are optional).
	if c, got := e.approve(t, rev, id, nil); c != 200 || got["status"] != "issued" {
		t.Errorf("approve with an empty body: %d %v", c, got)
	}
}

func TestRevocationIsMailed(t *testing.T) {
	e := newEnv(t)
	alice := e.newAccount(t, "alice@example.com")
	e.validate(t, alice, "example.com")
	_, out := e.order(t, alice, "dv", nil, "example.com")
	sn := out["serial"].(string)
	if c, _, _ := e.call(t, "POST", "/api/v1/certificates/"+sn+"/revoke", alice, map[string]string{"reason": "superseded"}); c != 200 {
		t.Fatalf("revoke: %d", c)
	}
	mails := e.mailTo(t, "alice@example.com")
	last := mails[len(mails)-1]
	if !strings.Contains(last, "Subject: Your certificate "+sn+" was revoked") || !strings.Contains(last, "Reason: superseded") {
		t.Errorf("revocation mail: %q", last)
	}
}

func TestBadOrdersLeaveNothing(t *testing.T) {
	e := newEnv(t)
	alice := e.newAccount(t, "alice@example.com")
	e.validate(t, alice, "example.com")
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	csr := csrPEM(t, k, "example.com")
	noCountry := map[string]string{"name": "Example Ltd", "locality": "London"}
	evMissing := map[string]string{"name": "Example Ltd", "locality": "London", "country": "GB"}
	tests := []struct {
		name   string
		body   any
		want   int
		detail string
	}{
		{"malformed JSON", `{"csr": "x", `, 400, "malformed JSON"},
		{"not an object", `["csr"]`, 400, "malformed JSON"},
		{"unknown profile", map[string]any{"csr": csr, "profile": "platinum"}, 400, "profile"},
		{"ov without country", map[string]any{"csr": csr, "profile": "ov", "organization": noCountry}, 400, "organization.country"},
		{"ev without registration", map[string]any{"csr": csr, "profile": "ev", "organization": evMissing}, 400, "registration_number"},
		{"unknown organization field", map[string]any{"csr": csr, "profile": "ov", "organization": map[string]string{"name": "X", "country": "GB", "city": "London"}}, 400, "city"},
		{"dv with organization", map[string]any{"csr": csr, "profile": "dv", "organization": ovOrg}, 400, "organization"},
		{"lowercase country", map[string]any{"csr": csr, "profile": "ov", "organization": map[string]string{"name": "X", "locality": "L", "country": "gb"}}, 400, "ISO 3166"},
		{"oversized", `{"csr": "` + strings.Repeat("A", 80<<10) + `"}`, 413, "larger than"},
		{"wrong content type", "csr=x", 400, "Content-Type"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c int
			var out map[string]any
			if tt.name == "wrong content type" {
				req, _ := http.NewRequest("POST", e.srv.URL+"/api/v1/orders", strings.NewReader("csr=x"))
				req.Header.Set("Authorization", "Bearer "+alice)
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				out = map[string]any{}
				json.NewDecoder(resp.Body).Decode(&out)
				c = resp.StatusCode
			} else {
				c, out, _ = e.call(t, "POST", "/api/v1/orders", alice, tt.body)
			}
			if d, _ := out["detail"].(string); c != tt.want || !strings.Contains(d, tt.detail) {
				t.Errorf("%d %q, want %d with %q", c, d, tt.want, tt.detail)
			}
		})
	}
	if _, out, _ := e.call(t, "GET", "/api/v1/orders", alice, nil); out["_raw"] != "[]\n" {
		t.Errorf("refused orders left rows: %s", out["_raw"])
	}
}

// startPublished starts a dns-txt or http-token validation.
func (e *env) startPublished(t testing.TB, key, domain, method string) map[string]any {
	t.Helper()
	c, out, _ := e.call(t, "POST", "/api/v1/validations", key, map[string]string{"domain": domain, "method": method})
	if c != 201 || out["status"] != "pending" {
		t.Fatalf("start %s: %d %v", method, c, out)
	}
	return out
}

func (e *env) confirm(t testing.TB, key, id string, body any) (int, map[string]any) {
	t.Helper()
	c, out, _ := e.call(t, "POST", "/api/v1/validations/"+id+"/confirm", key, body)
	return c, out
}

func TestDNSTXTValidation(t *testing.T) {
	for _, transport := range []string{"udp", "tcp"} {
		t.Run(transport, func(t *testing.T) {
			e := newEnvWith(t, envOpts{dnsTransport: transport})
			alice := e.newAccount(t, "alice@example.com")
			v := e.startPublished(t, alice, "Example.COM", "dns-txt")
			dnsOut := v["dns"].(map[string]any)
			value := dnsOut["value"].(string)
			if dnsOut["record_name"] != "_pki-validation.example.com" || dnsOut["record_type"] != "TXT" || len(value) < 23 || v["random_value"] != value {
				t.Fatalf("what to publish: %v", v)
			}
			id := v["id"].(string)
			if c, _ := e.confirm(t, alice, id, map[string]string{"code": "ABC"}); c != 400 {
				t.Errorf("dns-txt confirm with a code: %d, want 400", c)
			}
			if c, out := e.confirm(t, alice, id, nil); c != 400 || !strings.Contains(out["detail"].(string), "no TXT record") ||
				!strings.Contains(out["detail"].(string), "4 attempt(s) left") {
				t.Errorf("before publishing: %d %v", c, out)
			}
			e.zone.SetTXT("_pki-validation.example.com", "v=spf1 -all", "not-the-value")
			if c, out := e.confirm(t, alice, id, nil); c != 400 || !strings.Contains(out["detail"].(string), "none of the 2 TXT record(s)") {
				t.Errorf("wrong value: %d %v", c, out)
			}
			e.zone.SetTXT("_pki-validation.example.com", "v=spf1 -all", " "+value+" ")
			c, out := e.confirm(t, alice, id, map[string]string{})
			if c != 200 || out["status"] != "valid" {
				t.Fatalf("published: %d %v", c, out)
			}
			ev := out["evidence"].(map[string]any)
			if ev["method"] != "dns-txt" || ev["br_section"] != "3.2.2.4.7" || ev["contact"] != "_pki-validation.example.com" ||
				ev["transport"] != transport || len(ev["random_value_sha256"].(string)) != 64 || ev["attempts"] != 3.0 {
				t.Errorf("evidence: %v", ev)
			}
			if _, has := out["random_value"]; has {
				t.Error("a valid validation still shows its random value")
			}
			if c, again := e.confirm(t, alice, id, nil); c != 200 || again["status"] != "valid" {
				t.Errorf("confirming again: %d %v", c, again)
			}
			// Wildcards need dns-txt; it covers them.
			if c, o := e.order(t, alice, "dv", nil, "*.example.com", "example.com"); c != 201 || o["status"] != "issued" {
				t.Errorf("wildcard after dns-txt: %d %v", c, o)
			}
		})
	}
}

func TestDNSTXTLookups(t *testing.T) {
	e := newEnv(t)
	alice := e.newAccount(t, "alice@example.com")
	t.Run("truncated UDP answer retried over TCP", func(t *testing.T) {
		v := e.startPublished(t, alice, "big.example.com", "dns-txt")
		var filler []string
		for i := 0; i < 20; i++ {
			filler = append(filler, strings.Repeat(fmt.Sprint(i%10), 200))
		}
		e.zone.SetTXT("_pki-validation.big.example.com", append(filler, v["random_value"].(string))...)
		tcpBefore := e.zone.TCPQueries()
		if c, out := e.confirm(t, alice, v["id"].(string), nil); c != 200 || out["evidence"].(map[string]any)["transport"] != "tcp" {
			t.Fatalf("large answer: %d %v", c, out)
		}
		if e.zone.TCPQueries() == tcpBefore {
			t.Error("no TCP query after a truncated UDP answer")
		}
	})
	t.Run("CNAME followed", func(t *testing.T) {
		v := e.startPublished(t, alice, "delegated.example.com", "dns-txt")
		e.zone.SetCNAME("_pki-validation.delegated.example.com", "delegated.dcv-provider.example.net")
		e.zone.SetTXT("delegated.dcv-provider.example.net", v["random_value"].(string))
		if c, out := e.confirm(t, alice, v["id"].(string), nil); c != 200 {
			t.Errorf("CNAME: %d %v", c, out)
		}
	})
	t.Run("SERVFAIL costs an attempt", func(t *testing.T) {
		v := e.startPublished(t, alice, "broken.example.com", "dns-txt")
		e.zone.SetFail("_pki-validation.broken.example.com", 2)
		if c, out := e.confirm(t, alice, v["id"].(string), nil); c != 400 || !strings.Contains(out["detail"].(string), "SERVFAIL") {
			t.Errorf("SERVFAIL: %d %v", c, out)
		}
	})
	t.Run("attempts are limited", func(t *testing.T) {
		v := e.startPublished(t, alice, "limited.example.com", "dns-txt")
		id := v["id"].(string)
		for i := 0; i < validation.MaxAttempts; i++ {
			e.confirm(t, alice, id, nil)
		}
		e.zone.SetTXT("_pki-validation.limited.example.com", v["random_value"].(string))
		if c, out := e.confirm(t, alice, id, nil); c != 409 {
			t.Errorf("after %d failures: %d %v, want 409", validation.MaxAttempts, c, out)
		}
	})
	t.Run("expired", func(t *testing.T) {
		v := e.startPublished(t, alice, "late.example.com", "dns-txt")
		e.zone.SetTXT("_pki-validation.late.example.com", v["random_value"].(string))
		e.skew.Store(int64(8 * 24 * time.Hour))
		defer e.skew.Store(0)
		if c, out := e.confirm(t, alice, v["id"].(string), nil); c != 409 || !strings.Contains(out["detail"].(string), "expired") {
			t.Errorf("expired: %d %v, want 409", c, out)
		}
	})
	t.Run("resolver down", func(t *testing.T) {
		pc, _ := net.ListenPacket("udp", "127.0.0.1:0")
		dead := pc.LocalAddr().String()
		pc.Close() // nothing answers there now
		e2 := newEnvWith(t, envOpts{resolver: dead})
		bob := e2.newAccount(t, "bob@example.com")
		v := e2.startPublished(t, bob, "example.com", "dns-txt")
		c, out := e2.confirm(t, bob, v["id"].(string), nil)
		if c != 503 || !strings.Contains(out["detail"].(string), "resolver") {
			t.Errorf("%d %v, want 503", c, out)
		}
		if _, got, _ := e2.call(t, "GET", "/api/v1/validations/"+v["id"].(string), bob, nil); got["attempts"] != 0.0 {
			t.Errorf("the CA's own failure cost an attempt: %v", got)
		}
	})
	t.Run("another account", func(t *testing.T) {
		v := e.startPublished(t, alice, "mine.example.com", "dns-txt")
		bob := e.newAccount(t, "bob@example.com")
		for _, p := range []string{"GET", "POST"} {
			var body any
			path := "/api/v1/validations/" + v["id"].(string)
			if p == "POST" {
				path += "/confirm"
			}
			if c, _, _ := e.call(t, p, path, bob, body); c != 404 {
				t.Errorf("bob %s %s: %d, want 404", p, path, c)
			}
		}
	})
}

func TestHTTPTokenValidation(t *testing.T) {
	e := newEnv(t)
	e.zone.SetA("example.org", "127.0.0.1")
	e.zone.SetA("www.example.org", "127.0.0.1")
	alice := e.newAccount(t, "alice@example.com")
	v := e.startPublished(t, alice, "example.org", "http-token")
	h := v["http"].(map[string]any)
	url, value := h["url"].(string), h["content"].(string)
	path, ok := strings.CutPrefix(url, "http://example.org/.well-known/pki-validation/")
	if !ok || len(path) != 32 || strings.Contains(url, value) {
		t.Fatalf("what to publish: %v (the value must not be in the URL)", h)
	}
	path = "/.well-known/pki-validation/" + path
	id := v["id"].(string)
	if c, out := e.confirm(t, alice, id, nil); c != 400 || !strings.Contains(out["detail"].(string), "answered 404") {
		t.Errorf("not served: %d %v", c, out)
	}
	e.web.serve(path, webAnswer{body: "something else"})
	if c, out := e.confirm(t, alice, id, nil); c != 400 || !strings.Contains(out["detail"].(string), "does not contain") {
		t.Errorf("wrong content: %d %v", c, out)
	}
	e.web.serve(path, webAnswer{body: value + "\n"})
	c, out := e.confirm(t, alice, id, nil)
	if c != 200 || out["status"] != "valid" {
		t.Fatalf("served: %d %v", c, out)
	}
	ev := out["evidence"].(map[string]any)
	if ev["br_section"] != "3.2.2.4.18" || ev["status"] != 200.0 || len(ev["remote_addrs"].([]any)) != 1 {
		t.Errorf("evidence: %v", ev)
	}
	if !slices.Contains(e.web.seenHosts(), "example.org:"+e.web.port()) {
		t.Errorf("Host headers seen: %v", e.web.seenHosts())
	}
	// It covers exactly the FQDN fetched (BR 3.2.2.4 table): no
	// subdomains, no wildcards.
	if c, o := e.order(t, alice, "dv", nil, "example.org"); c != 201 || o["status"] != "issued" {
		t.Errorf("order for the validated FQDN: %d %v", c, o)
	}
	for _, name := range []string{"www.example.org", "*.example.org"} {
		if c, _ := e.order(t, alice, "dv", nil, name); c != 403 {
			t.Errorf("order for %s after http-token: %d, want 403", name, c)
		}
	}
	// A wildcard after an email validation is refused too.
	e.validate(t, alice, "example.net")
	if c, _ := e.order(t, alice, "dv", nil, "*.example.net"); c != 403 {
		t.Errorf("wildcard after email: %d, want 403", c)
	}
}

func TestHTTPTokenRedirects(t *testing.T) {
	e := newEnv(t)
	e.zone.SetA("example.org", "127.0.0.1")
	e.zone.SetA("cdn.example.net", "127.0.0.1")
	alice := e.newAccount(t, "alice@example.com")
	port := e.web.port()
	tests := []struct {
		name    string
		status  int
		target  string // "" : the file itself at the redirect target
		wantErr string
	}{
		{"301 to another host", 301, "http://cdn.example.net:" + port + "/files/%s", ""},
		{"302", 302, "/files/%s", ""},
		{"307", 307, "/files/%s", ""},
		{"308", 308, "/files/%s", ""},
		{"303 is not allowed", 303, "/files/%s", "a status other than 301, 302, 307 or 308"},
		{"other port", 302, "http://cdn.example.net:1/files/%s", "led elsewhere than http on port"},
		{"ftp", 302, "ftp://cdn.example.net/files/%s", "led elsewhere than http on port"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := e.startPublished(t, alice, "example.org", "http-token")
			h := v["http"].(map[string]any)
			path := strings.TrimPrefix(h["url"].(string), "http://example.org")
			target := fmt.Sprintf(tt.target, fmt.Sprint(i))
			e.web.serve(path, webAnswer{status: tt.status, location: target})
			e.web.serve(fmt.Sprintf("/files/%d", i), webAnswer{body: h["content"].(string)})
			c, out := e.confirm(t, alice, v["id"].(string), nil)
			if tt.wantErr == "" {
				if c != 200 || len(out["evidence"].(map[string]any)["redirects"].([]any)) != 1 {
					t.Errorf("%d %v", c, out)
				}
				return
			}
			if d, _ := out["detail"].(string); c != 400 || !strings.Contains(d, tt.wantErr) {
				t.Errorf("%d %q, want 400 with %q", c, d, tt.wantErr)
			}
		})
	}
	t.Run("redirect loop is bounded", func(t *testing.T) {
		v := e.startPublished(t, alice, "example.org", "http-token")
		path := strings.TrimPrefix(v["http"].(map[string]any)["url"].(string), "http://example.org")
		e.web.serve(path, webAnswer{status: 302, location: path})
		if c, out := e.confirm(t, alice, v["id"].(string), nil); c != 400 || !strings.Contains(out["detail"].(string), "redirects") {
			t.Errorf("%d %v", c, out)
		}
	})
	t.Run("no address", func(t *testing.T) {
		v := e.startPublished(t, alice, "nowhere.example.com", "http-token")
		if c, out := e.confirm(t, alice, v["id"].(string), nil); c != 400 || !strings.Contains(out["detail"].(string), "fetching") {
			t.Errorf("%d %v", c, out)
		}
	})
}

func TestWhoisEmail(t *testing.T) {
	t.Run("off by default", func(t *testing.T) {
		e := newEnv(t)
		alice := e.newAccount(t, "alice@example.com")
		c, out, _ := e.call(t, "POST", "/api/v1/validations", alice, map[string]string{"domain": "example.com", "method": "whois-email"})
		if d, _ := out["detail"].(string); c != 400 || !strings.Contains(d, "not offered") || strings.Contains(d, "offered: email, dns-txt, http-token, whois") {
			t.Errorf("%d %q", c, d)
		}
	})
	e := newEnvWith(t, envOpts{whois: true})
	e.whois.set("example.com", "Domain Name: EXAMPLE.COM\r\n"+
		"Registrar Abuse Contact Email: abuse@registrar.example\r\n"+
		"Registrant Email: owner@example.com\r\n"+
		"Admin Email: Hostmaster@Example.com\r\n"+
		"Tech Email: REDACTED FOR PRIVACY\r\n")
	alice := e.newAccount(t, "alice@example.com")
	c, out, _ := e.call(t, "POST", "/api/v1/validations", alice, map[string]string{"domain": "www.example.com", "method": "whois-email"})
	if c != 201 || out["contact"] != "hostmaster@example.com" || out["domain"] != "www.example.com" {
		t.Fatalf("start: %d %v", c, out)
	}
	if !slices.Contains(e.whois.asked(), "example.com") {
		t.Errorf("WHOIS asked %v, want the registered domain", e.whois.asked())
	}
	code := e.lastCode(t, "hostmaster@example.com")
	if c, _ := e.confirm(t, alice, out["id"].(string), map[string]string{"code": "WRONG"}); c != 400 {
		t.Errorf("wrong code: %d", c)
	}
	c, got := e.confirm(t, alice, out["id"].(string), map[string]string{"code": code})
	if c != 200 || got["status"] != "valid" {
		t.Fatalf("confirm: %d %v", c, got)
	}
	ev := got["evidence"].(map[string]any)
	if ev["method"] != "whois-email" || ev["whois_role"] != "admin" || ev["whois_query"] != "example.com" || len(ev["whois_hops"].([]any)) != 1 {
		t.Errorf("evidence: %v", ev)
	}
	if c, o := e.order(t, alice, "dv", nil, "www.example.com"); c != 201 || o["status"] != "issued" {
		t.Errorf("order after whois-email: %d %v", c, o)
	}
	tests := []struct {
		name, domain, email string
		want                int
		detail              string
	}{
		{"chosen contact", "example.com", "owner@example.com", 201, ""},
		{"not a contact", "example.com", "mallory@evil.example", 400, "not a WHOIS contact"},
		{"redacted", "example.org", "", 400, "no contact email"},
	}
	e.whois.set("example.org", "Registrant Email: Please query the RDDS service of the Registrar of Record\r\n")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, out, _ := e.call(t, "POST", "/api/v1/validations", alice, map[string]string{"domain": tt.domain, "method": "whois-email", "email": tt.email})
			if d, _ := out["detail"].(string); c != tt.want || !strings.Contains(d, tt.detail) {
				t.Errorf("%d %q, want %d with %q", c, d, tt.want, tt.detail)
			}
		})
	}
}

func TestOpenAPICoversRoutes(t *testing.T) {
	e := newEnv(t)
	resp, err := http.Get(e.srv.URL + "/api/v1/openapi.json") // no auth
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var doc struct {
		OpenAPI string                                `json:"openapi"`
		Paths   map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil || resp.StatusCode != 200 {
		t.Fatalf("openapi.json: %d %v", resp.StatusCode, err)
	}
	if doc.OpenAPI != "3.1.0" {
		t.Errorf("openapi %q, want 3.1.0", doc.OpenAPI)
	}
	var documented []string
	for p, ops := range doc.Paths {
		for m := range ops {
			documented = append(documented, strings.ToUpper(m)+" "+p)
		}
	}
	routes := e.h.Routes()
	sort.Strings(documented)
	sort.Strings(routes)
	if d := cmp.Diff(routes, documented); d != "" {
		t.Errorf("routes (-registered +documented):\n%s", d)
	}
}
