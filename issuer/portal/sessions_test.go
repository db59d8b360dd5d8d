package portal

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/trustline/trustline/internal/store"
)

// TestSessionsAcrossInstances: two Handlers over one store, as two API
// instances behind a load balancer are. A browser signs in through one,
// is served by the other, gets a notice left by one from the other, signs
// out on the other, and the first then knows the session no more.
func TestSessionsAcrossInstances(t *testing.T) {
	e := newEnv(t)
	key := e.account(t, "alice@example.com", store.RoleSubscriber)
	second, err := New(e.h.cfg, e.h.d)
	if err != nil {
		t.Fatal(err)
	}
	instances := map[string]*Handler{"first": e.h, "second": second}
	var serving atomic.Pointer[Handler]
	use := func(name string) { serving.Store(instances[name]) }
	lb := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { serving.Load().ServeHTTP(w, r) }))
	t.Cleanup(lb.Close)
	front := *e
	front.srv = lb
	b := front.browser(t)

	// Sign-in forms are checked with a per-instance key, so the form and
	// its post go to one instance (see doc.go).
	use("first")
	wantContains(t, "signed in on the first", b.signIn(t, key), "<h1>Dashboard</h1>")
	lbURL, _ := url.Parse(lb.URL)
	var token string
	for _, c := range b.c.Jar.Cookies(lbURL) {
		if c.Name == sessionCookie {
			token = c.Value
		}
	}
	if token == "" {
		t.Fatal("no session cookie")
	}

	use("second")
	wantStatus(t, "the second serves the session", b.get(t, "/orders/new"), http.StatusOK)
	b.get(t, "/validations/new")
	p := b.post(t, "/validations", url.Values{"domain": {"example.com"}, "method": {"email"}, "local": {"admin"}})
	wantStatus(t, "starting a validation on the second", p, http.StatusSeeOther)
	use("first")
	wantContains(t, "the second's notice, shown by the first", b.follow(t, p), "We mailed a validation code to admin@example.com")

	// The store has the token's hash, never the token.
	if _, err := e.st.PortalSession(t.Context(), []byte(tableKey(token))); err != nil {
		t.Errorf("no session under the token's hash: %v", err)
	}
	if _, err := e.st.PortalSession(t.Context(), []byte(token)); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("a session is stored under the token itself: %v", err)
	}

	use("second")
	b.get(t, "/")
	p = b.post(t, "/signout", nil)
	wantStatus(t, "signing out on the second", p, http.StatusSeeOther)
	wantContains(t, "after sign-out", b.follow(t, p), "You are signed out")

	req := httptest.NewRequest("GET", "/orders/new", nil)
	req.AddCookie(&http.Cookie{Name: sessionCookie, Value: token})
	rec := httptest.NewRecorder()
	e.h.ServeHTTP(rec, req)
	if rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != "/?next=%2Forders%2Fnew" {
		t.Errorf("the first, given the signed-out cookie: %d to %q; want a redirect to sign in", rec.Code, rec.Header().Get("Location"))
	}
}

// TestSessionsPerAccount: an account that signs in again and again ends
// only its own oldest sessions, never another account's.
func TestSessionsPerAccount(t *testing.T) {
	e := newEnv(t)
	reviewer := e.browser(t)
	reviewer.signIn(t, e.account(t, "rev@example.com", store.RoleReviewer))
	subKey := e.account(t, "sub@example.com", store.RoleSubscriber)
	const signIns = 50
	subs := make([]*browser, signIns)
	for i := range subs {
		subs[i] = e.browser(t)
		subs[i].signIn(t, subKey)
	}
	wantStatus(t, "the reviewer's session after 50 sign-ins of a subscriber", reviewer.get(t, "/review"), http.StatusOK)
	keep := e.h.cfg.SessionsPerAccount
	for i, b := range subs {
		p := b.get(t, "/orders/new")
		if live, want := p.status == http.StatusOK, i >= signIns-keep; live != want {
			t.Errorf("subscriber sign-in %d of %d: signed in %v, want %v (the newest %d are kept)", i+1, signIns, live, want, keep)
		}
	}
}

// TestSessionTouchThrottled: a session's use is written at most once a
// minute, and the idle timeout counts from the last use written.
func TestSessionTouchThrottled(t *testing.T) {
	fake := newFakeSessions()
	tbl := newSessions(fake, Config{SessionLifetime: 8 * time.Hour, SessionIdle: 30 * time.Minute, SessionsPerAccount: 20},
		strings.NewReader(strings.Repeat("r", 64)), slog.New(slog.DiscardHandler))
	t0 := time.Unix(1_700_000_000, 0)
	tok, _, err := tbl.start(context.Background(), "acct", t0)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		at      time.Duration
		state   sessionState
		touches int // written so far
	}{
		{10 * time.Second, sessionOK, 0},
		{59 * time.Second, sessionOK, 0},
		{time.Minute, sessionOK, 1},
		{90 * time.Second, sessionOK, 1},
		{2*time.Minute + 30*time.Second, sessionOK, 2},
		{32*time.Minute + 29*time.Second, sessionOK, 3},
		{62*time.Minute + 29*time.Second, sessionExpired, 3},
	} {
		_, state, err := tbl.lookup(context.Background(), tok, t0.Add(tc.at))
		if err != nil || state != tc.state || fake.touches != tc.touches {
			t.Errorf("at +%v: state %v, %d touches, %v; want %v, %d", tc.at, state, fake.touches, err, tc.state, tc.touches)
		}
	}
}

// unreachableSessions is a store whose sessions cannot be read.
type unreachableSessions struct{ Store }

func (unreachableSessions) PortalSession(context.Context, []byte) (store.PortalSession, error) {
	return store.PortalSession{}, errors.New("dial tcp 10.0.0.5:5432: connection refused")
}

// TestSessionsUnavailable: when the store cannot be asked, a signed-in
// page says so instead of asking the user to sign in.
func TestSessionsUnavailable(t *testing.T) {
	e := newEnv(t)
	d := e.h.d
	d.Store = unreachableSessions{e.st}
	h, err := New(e.h.cfg, d)
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/", "/orders/new"} {
		req := httptest.NewRequest("GET", path, nil)
		req.AddCookie(&http.Cookie{Name: sessionCookie, Value: strings.Repeat("x", 43)})
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusServiceUnavailable || !strings.Contains(rec.Body.String(), "cannot reach its database") {
			t.Errorf("GET %s: %d, want 503 saying the database cannot be reached", path, rec.Code)
		}
	}
}

// hungSessions is a store whose session reads never answer, as with a
// database that hangs instead of refusing: like the PostgreSQL adapter,
// it gives up after the bound the caller asked for (store.WithOpTimeout),
// and without one it waits for good.
type hungSessions struct{ Store }

func (hungSessions) PortalSession(ctx context.Context, _ []byte) (store.PortalSession, error) {
	if b := store.OpBoundOf(ctx); b != nil && b.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, b.Timeout)
		defer cancel()
	}
	<-ctx.Done()
	return store.PortalSession{}, fmt.Errorf("reading the session: %w: %w", store.ErrUnavailable, ctx.Err())
}

// TestStoreTimeout: the portal bounds its store operations, so a hung
// store is given up on: the page says the CA is unavailable and when to
// come back, instead of never loading.
func TestStoreTimeout(t *testing.T) {
	e := newEnv(t)
	d := e.h.d
	d.Store = hungSessions{e.st}
	cfg := e.h.cfg
	cfg.StoreTimeout = 50 * time.Millisecond
	h, err := New(cfg, d)
	if err != nil {
		t.Fatal(err)
	}
	req := httptest.NewRequest("GET", "/orders/new", nil)
	req.AddCookie(&http.Cookie{Name: sessionCookie, Value: strings.Repeat("x", 43)})
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") == "" {
		t.Errorf("GET /orders/new with the store hung: %d, Retry-After %q; want 503 with Retry-After", rec.Code, rec.Header().Get("Retry-After"))
	}
}
