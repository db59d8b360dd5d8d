package api_test

import (
	"strings"
	"testing"

	"github.com/trustline/trustline/issuer/issuertest"
)

// TestSignUpRevealsNothing: the finding of issue #13 ("sign-up answers
// 409 'an account with this email address exists' (enumeration) and the
// address is never verified"). A second sign-up with the same address
// gets the same answer; the address gets a confirmation link, and nothing
// else until it is followed.
func TestSignUpRevealsNothing(t *testing.T) {
	e := newEnv(t)
	var answers []map[string]any
	for range 2 {
		c, out, _ := e.call(t, "POST", "/api/v1/accounts", "", map[string]string{"email": "carol@example.com"})
		if c != 201 || out["email_confirmation"] != "sent" {
			t.Fatalf("sign-up: %d %v", c, out)
		}
		answers = append(answers, out)
	}
	if answers[0]["id"] == answers[1]["id"] || len(answers[0]) != len(answers[1]) {
		t.Errorf("the two answers differ in shape or share an account: %v / %v", answers[0], answers[1])
	}
	key := answers[1]["api_key"].(string)
	if _, who, _ := e.call(t, "GET", "/api/v1/account", key, nil); who["email_verified"] != false {
		t.Fatalf("a new account: %v", who)
	}

	// Unconfirmed: the certificate is issued, but not mailed about.
	e.validate(t, key, "carol.example.com")
	before := len(issuertest.Mails(t, e.mailDir, "carol@example.com"))
	if c, out := e.order(t, key, "dv", nil, "www.carol.example.com"); c != 201 || out["status"] != "issued" {
		t.Fatalf("order: %d %v", c, out)
	}
	if after := issuertest.Mails(t, e.mailDir, "carol@example.com"); len(after) != before {
		t.Errorf("an unconfirmed address was mailed: %s", after[len(after)-1])
	}

	for _, bad := range []string{"", "x.y.z", strings.Repeat("a", 300), "acct_nope.99999999999.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"} {
		if c, out, _ := e.call(t, "POST", "/api/v1/email-confirmations", "", map[string]string{"token": bad}); c != 400 {
			t.Errorf("token %.20q: %d %v", bad, c, out)
		}
	}
	e.confirmAddress(t, "carol@example.com") // the newest link: the second account's
	if _, who, _ := e.call(t, "GET", "/api/v1/account", key, nil); who["email_verified"] != true {
		t.Fatalf("after the link: %v", who)
	}
	if _, who, _ := e.call(t, "GET", "/api/v1/account", answers[0]["api_key"].(string), nil); who["email_verified"] != false {
		t.Errorf("the other account with the address was confirmed by this one's link: %v", who)
	}
	if c, out := e.order(t, key, "dv", nil, "www.carol.example.com"); c != 201 || out["status"] != "issued" {
		t.Fatalf("order: %d %v", c, out)
	}
	if after := issuertest.Mails(t, e.mailDir, "carol@example.com"); !strings.Contains(after[len(after)-1], "is ready") {
		t.Errorf("the confirmed address got no issuance mail; last: %s", after[len(after)-1])
	}
	if c, out, _ := e.call(t, "POST", "/api/v1/account/email-confirmation", key, nil); c != 200 || out["email_confirmation"] != "confirmed already" {
		t.Errorf("resend after confirming: %d %v", c, out)
	}
}
