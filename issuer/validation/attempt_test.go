package validation_test

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/trustline/trustline/internal/store"
	"github.com/trustline/trustline/issuer/fault"
	"github.com/trustline/trustline/issuer/validation"
)

// evidenceOf reads a validation's evidence object.
func evidenceOf(t *testing.T, v store.Validation) map[string]any {
	t.Helper()
	var ev map[string]any
	if err := json.Unmarshal(v.Evidence, &ev); err != nil {
		t.Fatalf("evidence %s: %v", v.Evidence, err)
	}
	return ev
}

// TestFailedAttemptEvidence: a failed http-token attempt tells the
// subscriber what failed in generic words and keeps the raw error in the
// pending validation's evidence for reviewers; once the validation is
// valid (and its evidence shown to the subscriber) the raw text is gone.
func TestFailedAttemptEvidence(t *testing.T) {
	ctx := context.Background()
	st, acct := storeWithAccount(t)
	now := time.Date(2026, 5, 4, 3, 2, 1, 0, time.UTC)
	var value atomic.Value
	value.Store("")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Write([]byte(value.Load().(string)))
	}))
	defer srv.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refusing := ln.Addr().String()
	ln.Close()
	var target atomic.Value
	target.Store(refusing)
	dial := func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, target.Load().(string))
	}
	vals, err := validation.New(validation.Config{Resolver: "127.0.0.1:53"},
		validation.Deps{Store: st, Mail: &outbox{}, Now: func() time.Time { return now }, Dial: dial})
	if err != nil {
		t.Fatal(err)
	}
	val, err := vals.Start(ctx, acct, validation.StartRequest{Domain: "example.com", Method: validation.MethodHTTPToken})
	if err != nil {
		t.Fatal(err)
	}
	secret := string(val.Secret)

	_, err = vals.Confirm(ctx, acct, val.ID, "")
	var in *fault.InputError
	if !errors.As(err, &in) {
		t.Fatalf("Confirm: %v, want a *fault.InputError", err)
	}
	if want := "fetching " + val.Contact + " failed: the connection was refused; 4 attempt(s) left"; in.Detail != want {
		t.Errorf("subscriber told:\n %q\nwant %q", in.Detail, want)
	}
	got, err := vals.Get(ctx, acct, val.ID)
	if err != nil {
		t.Fatal(err)
	}
	lf, _ := evidenceOf(t, got)["last_failure"].(map[string]any)
	raw, _ := lf["detail_for_reviewers"].(string)
	if !strings.Contains(raw, refusing) || !strings.Contains(raw, "connection refused") {
		t.Errorf("detail_for_reviewers %q lacks the raw error", raw)
	}
	want := map[string]any{"at": now.Format(time.RFC3339), "method": "http-token",
		"detail": "fetching " + val.Contact + " failed: the connection was refused", "detail_for_reviewers": raw}
	if d := cmp.Diff(want, lf); d != "" {
		t.Errorf("last_failure (-want +got):\n%s", d)
	}
	if strings.Contains(string(got.Evidence), secret) {
		t.Errorf("evidence %s holds the random value", got.Evidence)
	}

	value.Store(secret)
	target.Store(srv.Listener.Addr().String())
	done, err := vals.Confirm(ctx, acct, val.ID, "")
	if err != nil {
		t.Fatal(err)
	}
	lf, _ = evidenceOf(t, done)["last_failure"].(map[string]any)
	if _, ok := lf["detail_for_reviewers"]; ok || lf["detail"] == nil {
		t.Errorf("a valid validation's last_failure %v keeps the raw text or loses the rest", lf)
	}
}

// TestWrongCodeEvidence: a wrong emailed code is a failed attempt too.
func TestWrongCodeEvidence(t *testing.T) {
	ctx := context.Background()
	st, acct := storeWithAccount(t)
	vals, err := validation.New(validation.Config{}, validation.Deps{Store: st, Mail: &outbox{}})
	if err != nil {
		t.Fatal(err)
	}
	val, err := vals.Start(ctx, acct, validation.StartRequest{Domain: "example.com", Method: validation.MethodEmail, Email: "admin@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := vals.Confirm(ctx, acct, val.ID, "NOTTHECODE"); err == nil {
		t.Fatal("a wrong code confirmed")
	}
	got, err := vals.Get(ctx, acct, val.ID)
	if err != nil {
		t.Fatal(err)
	}
	lf, _ := evidenceOf(t, got)["last_failure"].(map[string]any)
	if lf["detail"] != "wrong code" || lf["detail_for_reviewers"] != "wrong code" || lf["method"] != "email" || got.Attempts != 1 {
		t.Errorf("last_failure %v, attempts %d", lf, got.Attempts)
	}
}
