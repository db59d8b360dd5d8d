package portal

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/trustline/trustline/internal/store"
	"github.com/trustline/trustline/internal/store/sqlite"
	"github.com/trustline/trustline/internal/testfix"
)

// sharedFormKey is what cmd/ gives every instance (sharedSecret), so that
// a form served by one instance may be posted to another.
var sharedFormKey = bytes.Repeat([]byte("k"), 32)

// mailedLink asks for a sign-in link for addr through b and returns the
// link's path and token.
func mailedLink(t *testing.T, e *env, b *browser, addr string) (path, token string) {
	t.Helper()
	b.get(t, "/")
	wantStatus(t, "asking for a link", b.post(t, "/signin/email", url.Values{"email": {addr}, "next": {"/orders/new"}}), http.StatusOK)
	link := e.lastMatch(t, addr, linkRE)
	u, err := url.Parse(link)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimPrefix(link, e.srv.URL), u.Query().Get("token")
}

// on is e with its browsers pointed at srv, another instance's server.
func (e *env) on(srv *httptest.Server) *env {
	f := *e
	f.srv = srv
	return &f
}

// TestSignInLinkAcrossInstances: two API instances, each with its own
// connection to one database. A link mailed by the first is shown and
// redeemed by the second, which also knows that one was just mailed; the
// first then finds it used up.
func TestSignInLinkAcrossInstances(t *testing.T) {
	e := newEnvWith(t, envOpts{cfg: Config{FormKey: sharedFormKey}})
	e.account(t, "alice@example.com", store.RoleSubscriber)
	alice := e.accountByEmail(t, "alice@example.com")
	st2, err := sqlite.Open(t.Context(), sqlite.Config{Path: e.st.Path()}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st2.Close() })
	d := e.h.d
	d.Store = st2
	second, err := New(e.h.cfg, d)
	if err != nil {
		t.Fatal(err)
	}
	srv2 := httptest.NewServer(second)
	t.Cleanup(srv2.Close)

	path, token := mailedLink(t, e, e.browser(t), "alice@example.com")
	// The store has the token's hash, never the token.
	if l, err := st2.SignInLink(t.Context(), []byte(tableKey(token))); err != nil || l.AccountID != alice.ID {
		t.Errorf("the second's store, under the token's hash: %+v, %v; want alice's link", l, err)
	}
	if _, err := st2.SignInLink(t.Context(), []byte(token)); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("a link is stored under the token itself: %v", err)
	}

	b := e.on(srv2).browser(t)
	b.get(t, "/")
	b.post(t, "/signin/email", url.Values{"email": {"alice@example.com"}})
	if n := len(e.mails(t, "alice@example.com")); n != 1 {
		t.Errorf("%d mails after asking the first and then the second at once, want 1", n)
	}
	p := b.get(t, path)
	wantStatus(t, "the first's link, on the second", p, http.StatusOK)
	wantContains(t, "the first's link, on the second", p, "Sign in as alice@example.com?")
	p = b.post(t, "/signin/link", url.Values{"token": {token}, "next": {"/orders/new"}})
	wantStatus(t, "redeeming on the second", p, http.StatusSeeOther)
	if p.location() != "/orders/new" {
		t.Errorf("landing %q, want /orders/new", p.location())
	}
	wantContains(t, "signed in on the second", b.get(t, "/"), "alice@example.com")

	again := e.browser(t)
	again.get(t, "/")
	wantStatus(t, "the link again, posted to the first", again.post(t, "/signin/link", url.Values{"token": {token}}), http.StatusBadRequest)
	wantStatus(t, "the link page again, on the first", again.get(t, path), http.StatusBadRequest)
}

// TestSignInLinkGoodOnce: of browsers posting one link at the same moment
// to either of two instances, exactly one is signed in; afterwards the
// link signs in nobody.
func TestSignInLinkGoodOnce(t *testing.T) {
	e := newEnvWith(t, envOpts{cfg: Config{FormKey: sharedFormKey}})
	e.account(t, "alice@example.com", store.RoleSubscriber)
	second, err := New(e.h.cfg, e.h.d)
	if err != nil {
		t.Fatal(err)
	}
	srv2 := httptest.NewServer(second)
	t.Cleanup(srv2.Close)
	path, token := mailedLink(t, e, e.browser(t), "alice@example.com")

	const racers = 8
	bs := make([]*browser, racers)
	reqs := make([]*http.Request, racers)
	for i := range bs {
		on := e
		if i%2 == 1 {
			on = e.on(srv2)
		}
		bs[i] = on.browser(t)
		wantStatus(t, "the link page", bs[i].get(t, path), http.StatusOK)
		form := url.Values{"token": {token}, "csrf": {bs[i].csrf}}
		reqs[i], _ = http.NewRequest("POST", on.srv.URL+"/signin/link", strings.NewReader(form.Encode()))
		reqs[i].Header.Set("Content-Type", "application/x-www-form-urlencoded")
		reqs[i].Header.Set("Origin", on.srv.URL)
	}
	statuses := make([]int, racers)
	errs := make([]error, racers)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range bs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			resp, err := bs[i].c.Do(reqs[i])
			if err != nil {
				errs[i] = err
				return
			}
			resp.Body.Close()
			statuses[i] = resp.StatusCode
		}()
	}
	close(start)
	wg.Wait()
	winner := -1
	for i, status := range statuses {
		switch {
		case errs[i] != nil:
			t.Fatalf("racer %d: %v", i, errs[i])
		case status == http.StatusSeeOther && winner >= 0:
			t.Fatalf("racers %d and %d were both signed in", winner, i)
		case status == http.StatusSeeOther:
			winner = i
		case status != http.StatusBadRequest:
			t.Errorf("racer %d: status %d, want 303 or 400", i, status)
		}
	}
	if winner < 0 {
		t.Fatalf("nobody was signed in: %v", statuses)
	}
	wantContains(t, "the winner", bs[winner].get(t, "/"), "alice@example.com")
	loser := bs[(winner+1)%racers]
	if p := loser.get(t, "/"); strings.Contains(p.body, "alice@example.com") {
		t.Error("a loser is signed in as alice")
	}
	wantStatus(t, "the link page after the race", loser.get(t, path), http.StatusBadRequest)
}

// unreachableLinks is a store whose sign-in links cannot be reached.
type unreachableLinks struct{ Store }

var errLinksDown = errors.New("dial tcp 10.0.0.5:5432: connection refused")

func (unreachableLinks) CreateSignInLink(context.Context, store.SignInLink, store.SignInLinkLimits) (bool, error) {
	return false, errLinksDown
}

func (unreachableLinks) SignInLink(context.Context, []byte) (store.SignInLink, error) {
	return store.SignInLink{}, errLinksDown
}

func (unreachableLinks) ConsumeSignInLink(context.Context, []byte) (store.SignInLink, error) {
	return store.SignInLink{}, errLinksDown
}

func (unreachableLinks) DeleteExpiredSignInLinks(context.Context, time.Time) (int64, error) {
	return 0, errLinksDown
}

// TestSignInLinkStoreUnavailable: when the store cannot be asked about
// links, the link pages answer a generic failure (not "bad link"), the
// request form answers as it always does (so it still tells nobody which
// addresses have accounts), and the error is logged without the token.
func TestSignInLinkStoreUnavailable(t *testing.T) {
	e := newEnvWith(t, envOpts{cfg: Config{FormKey: sharedFormKey}})
	e.account(t, "alice@example.com", store.RoleSubscriber)
	path, token := mailedLink(t, e, e.browser(t), "alice@example.com")

	logs := new(testfix.Buffer)
	d := e.h.d
	d.Store = unreachableLinks{e.st}
	d.Log = slog.New(slog.NewTextHandler(logs, nil))
	broken, err := New(e.h.cfg, d)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(broken)
	t.Cleanup(srv.Close)
	b := e.on(srv).browser(t)
	b.get(t, "/") // for a form token

	const failure = "Something went wrong on our side"
	p := b.get(t, path)
	wantStatus(t, "the link page", p, http.StatusInternalServerError)
	wantContains(t, "the link page", p, failure)
	p = b.post(t, "/signin/link", url.Values{"token": {token}})
	wantStatus(t, "redeeming", p, http.StatusInternalServerError)
	wantContains(t, "redeeming", p, failure)
	p = b.post(t, "/signin/email", url.Values{"email": {"alice@example.com"}})
	wantStatus(t, "asking for a link", p, http.StatusOK)
	wantContains(t, "asking for a link", p, "Check your mail")
	if n := len(e.mails(t, "alice@example.com")); n != 1 {
		t.Errorf("%d mails, want only the first", n)
	}

	got := logs.String()
	for _, tc := range []struct {
		msg  string
		want int
	}{
		{`msg="request failed"`, 2}, // the link page and redeeming
		{`msg="making a sign-in link"`, 1},
	} {
		n := 0
		for _, line := range strings.Split(got, "\n") {
			if strings.Contains(line, tc.msg) && strings.Contains(line, errLinksDown.Error()) {
				n++
			}
		}
		if n != tc.want {
			t.Errorf("%d lines with %s and the store's error, want %d:\n%s", n, tc.msg, tc.want, got)
		}
	}
	if strings.Contains(got, token) {
		t.Errorf("the log holds the token:\n%s", got)
	}
	// Nothing was used up: the link still works where the store answers.
	wantStatus(t, "the link page on a healthy instance", e.browser(t).get(t, path), http.StatusOK)
}

// TestLinkTable: links over the fake store, judged by the portal's clock:
// the interval, the global bound, expiry (also by a lifetime lowered
// since), single use and the bound on tokens.
func TestLinkTable(t *testing.T) {
	fake := newFakeSessions()
	cfg := Config{LoginLinkLifetime: 15 * time.Minute, MaxSignInLinks: 2}.withDefaults()
	tbl := newLinks(fake, cfg, rand.Reader)
	ctx := t.Context()
	t0 := time.Unix(1_700_000_000, 0)

	tok, err := tbl.issue(ctx, "acct-1", t0)
	if err != nil || tok == "" {
		t.Fatalf("issue = %q, %v; want a token", tok, err)
	}
	if again, err := tbl.issue(ctx, "acct-1", t0.Add(linkInterval-time.Second)); again != "" || err != nil {
		t.Errorf("issue inside the interval = %q, %v; want nothing", again, err)
	}
	tok2, err := tbl.issue(ctx, "acct-2", t0)
	if err != nil || tok2 == "" {
		t.Fatalf("issue for another account = %q, %v; want a token", tok2, err)
	}
	if third, err := tbl.issue(ctx, "acct-3", t0.Add(time.Second)); third != "" || err != nil {
		t.Errorf("issue beyond MaxSignInLinks = %q, %v; want nothing", third, err)
	}

	shorter := newLinks(fake, Config{LoginLinkLifetime: 5 * time.Minute}.withDefaults(), rand.Reader)
	for _, tc := range []struct {
		name   string
		tbl    *linkTable
		tok    string
		at     time.Duration
		wantOK bool
	}{
		{"fresh", tbl, tok, 0, true},
		{"just before expiry", tbl, tok, 15*time.Minute - time.Nanosecond, true},
		{"at expiry", tbl, tok, 15 * time.Minute, false},
		{"lifetime lowered since", shorter, tok, 5 * time.Minute, false},
		{"just before the lowered lifetime", shorter, tok, 5*time.Minute - time.Nanosecond, true},
		{"unknown", tbl, "AAAA", 0, false},
		{"too long", tbl, strings.Repeat("A", 101), 0, false},
		{"empty", tbl, "", 0, false},
	} {
		id, ok, err := tc.tbl.peek(ctx, tc.tok, t0.Add(tc.at))
		if err != nil || ok != tc.wantOK || (ok && id != "acct-1") || (!ok && id != "") {
			t.Errorf("peek, %s: %q, %v, %v; want ok %v", tc.name, id, ok, err, tc.wantOK)
		}
	}

	if id, ok, err := tbl.redeem(ctx, tok, t0.Add(15*time.Minute)); ok || id != "" || err != nil {
		t.Errorf("redeeming an expired link: %q, %v, %v; want not ok", id, ok, err)
	}
	if _, ok, _ := tbl.redeem(ctx, tok, t0); ok {
		t.Error("an expired link, redeemed, is still there")
	}
	if id, ok, err := tbl.redeem(ctx, tok2, t0.Add(time.Minute)); !ok || id != "acct-2" || err != nil {
		t.Errorf("redeeming: %q, %v, %v; want acct-2", id, ok, err)
	}
	if _, ok, _ := tbl.redeem(ctx, tok2, t0.Add(time.Minute)); ok {
		t.Error("a link was redeemed twice")
	}
	if _, ok, _ := tbl.peek(ctx, tok2, t0.Add(time.Minute)); ok {
		t.Error("a redeemed link can still be peeked at")
	}
}

// TestSweepDeletesLinks: the sweep on sign-in deletes expired sign-in
// links along with expired sessions, at most once a sweepInterval.
func TestSweepDeletesLinks(t *testing.T) {
	fake := newFakeSessions()
	cfg := Config{LoginLinkLifetime: 15 * time.Minute}.withDefaults()
	tbl := newLinks(fake, cfg, rand.Reader)
	sw := &sweeper{sessions: fake, links: fake, log: slog.New(slog.DiscardHandler)}
	t0 := time.Unix(1_700_000_000, 0)
	for i, acct := range []string{"acct-1", "acct-2"} {
		if tok, err := tbl.issue(t.Context(), acct, t0.Add(time.Duration(i)*10*time.Minute)); tok == "" || err != nil {
			t.Fatalf("issue for %s = %q, %v", acct, tok, err)
		}
	}
	count := func() int {
		fake.mu.Lock()
		defer fake.mu.Unlock()
		return len(fake.links)
	}
	for _, tc := range []struct {
		at   time.Duration
		want int
	}{
		{14*time.Minute + 30*time.Second, 2},
		{15 * time.Minute, 2}, // link 1 has expired, but the last sweep was 30 s ago
		{15*time.Minute + 30*time.Second, 1},
		{25 * time.Minute, 0},
	} {
		sw.sweep(t.Context(), t0.Add(tc.at))
		if n := count(); n != tc.want {
			t.Errorf("after a sweep at t0+%v: %d links, want %d", tc.at, n, tc.want)
		}
	}
}
