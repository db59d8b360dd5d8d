package purge

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/trustline/trustline/crlgen/crlpub"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func testCRL(n int64) crlpub.CRL {
	return crlpub.CRL{Issuer: "int-p256", Shard: 3, URL: "http://crl.example/int-p256/3.crl", Number: n,
		ThisUpdate: t0, NextUpdate: t0.Add(7 * 24 * time.Hour), SHA256: [32]byte{0xab}}
}

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelError}))
}

func TestHTTPPurge(t *testing.T) {
	var got struct {
		method, path, host string
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got.method, got.path, got.host = r.Method, r.URL.Path, r.Host
	}))
	defer srv.Close()
	p, err := NewHTTP(srv.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Purge(context.Background(), testCRL(1)); err != nil {
		t.Fatal(err)
	}
	want := struct{ method, path, host string }{"PURGE", "/int-p256/3.crl", "crl.example"}
	if got != want {
		t.Errorf("cache saw %+v, want %+v", got, want)
	}
	for _, bad := range []string{"", "ftp://x", "http://", "http://cache/path"} {
		if _, err := NewHTTP(bad, nil); err == nil {
			t.Errorf("NewHTTP(%q) accepted", bad)
		}
	}
}

func TestWebhook(t *testing.T) {
	var body []byte
	var auth, ctype string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ = io.ReadAll(r.Body)
		auth, ctype = r.Header.Get("Authorization"), r.Header.Get("Content-Type")
		w.WriteHeader(http.StatusAccepted)
	}))
	defer srv.Close()
	p, err := NewWebhook(srv.URL+"/hook", http.Header{"Authorization": {"Bearer s3cret"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Purge(context.Background(), testCRL(42)); err != nil {
		t.Fatal(err)
	}
	var ev WebhookEvent
	if err := json.Unmarshal(body, &ev); err != nil {
		t.Fatalf("body %s: %v", body, err)
	}
	want := WebhookEvent{Event: "crl.published", Issuer: "int-p256", Shard: 3, URL: "http://crl.example/int-p256/3.crl",
		Number: 42, ThisUpdate: t0, NextUpdate: t0.Add(7 * 24 * time.Hour), SHA256: "ab" + strings.Repeat("0", 62)}
	if d := cmp.Diff(want, ev); d != "" {
		t.Errorf("event (-want +got):\n%s", d)
	}
	if auth != "Bearer s3cret" || ctype != "application/json" {
		t.Errorf("headers: Authorization %q, Content-Type %q", auth, ctype)
	}
}

// fakePurger answers from a script of errors, then nil.
type fakePurger struct {
	mu     sync.Mutex
	script []error
	calls  []int64
	done   chan struct{}
}

func (f *fakePurger) Purge(ctx context.Context, c crlpub.CRL) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, c.Number)
	var err error
	if len(f.script) > 0 {
		err, f.script = f.script[0], f.script[1:]
	}
	if err == nil && f.done != nil {
		f.done <- struct{}{}
	}
	return err
}

func TestDispatcherRetries(t *testing.T) {
	transient := io.ErrUnexpectedEOF
	tests := []struct {
		name      string
		script    []error
		wantCalls int
		want      Stats
	}{
		{"first try", nil, 1, Stats{Done: 1}},
		{"after two failures", []error{transient, transient}, 3, Stats{Done: 1}},
		{"gives up after Attempts", []error{transient, transient, transient}, 3, Stats{Failed: 1}},
		{"permanent stops at once", []error{&Permanent{transient}}, 1, Stats{Failed: 1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakePurger{script: tc.script}
			d, err := NewDispatcher(Config{Attempts: 3, Backoff: time.Millisecond, MaxBackoff: 2 * time.Millisecond, Workers: 1}, testLogger(t), f)
			if err != nil {
				t.Fatal(err)
			}
			if err := d.Published(context.Background(), testCRL(1)); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() { d.Run(ctx); close(done) }()
			deadline := time.Now().Add(5 * time.Second)
			for d.Stats().Done+d.Stats().Failed == 0 && time.Now().Before(deadline) {
				time.Sleep(time.Millisecond)
			}
			cancel()
			<-done
			if d.Stats() != tc.want || len(f.calls) != tc.wantCalls {
				t.Errorf("stats %+v after %d calls, want %+v after %d", d.Stats(), len(f.calls), tc.want, tc.wantCalls)
			}
		})
	}
}

// Published never blocks: a full queue drops and says so; replays are not
// purged at all.
func TestDispatcherNeverBlocks(t *testing.T) {
	f := &fakePurger{}
	d, err := NewDispatcher(Config{QueueSize: 2}, testLogger(t), f)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		if err := d.Published(context.Background(), testCRL(int64(i))); err != nil {
			t.Fatal(err)
		}
	}
	if err := d.Published(context.Background(), testCRL(3)); err == nil || !strings.Contains(err.Error(), "queue full") {
		t.Errorf("third publication into a queue of 2: %v", err)
	}
	replay := testCRL(4)
	replay.Replayed = true
	if err := d.Published(context.Background(), replay); err != nil {
		t.Errorf("replayed CRL: %v", err)
	}
	if s := d.Stats(); s.Dropped != 1 {
		t.Errorf("stats %+v, want one dropped", s)
	}
}

// Each attempt is bounded by Timeout even when the purger hangs.
func TestDispatcherTimeout(t *testing.T) {
	var calls atomic.Int32
	hang := purgerFunc(func(ctx context.Context, _ crlpub.CRL) error {
		calls.Add(1)
		<-ctx.Done()
		return ctx.Err()
	})
	d, err := NewDispatcher(Config{Attempts: 2, Timeout: 10 * time.Millisecond, Backoff: time.Millisecond, Workers: 1}, testLogger(t), hang)
	if err != nil {
		t.Fatal(err)
	}
	d.Published(context.Background(), testCRL(1))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go d.Run(ctx)
	deadline := time.Now().Add(5 * time.Second)
	for d.Stats().Failed == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if calls.Load() != 2 || d.Stats().Failed != 1 {
		t.Errorf("%d calls, stats %+v; want 2 timed-out attempts and one failure", calls.Load(), d.Stats())
	}
}

type purgerFunc func(context.Context, crlpub.CRL) error

func (f purgerFunc) Purge(ctx context.Context, c crlpub.CRL) error { return f(ctx, c) }

func TestStatusErrors(t *testing.T) {
	tests := []struct {
		code      int
		ok, perma bool
	}{
		{200, true, false}, {204, true, false}, {404, false, true}, {405, false, true},
		{408, false, false}, {429, false, false}, {500, false, false}, {503, false, false},
	}
	for _, tc := range tests {
		resp := &http.Response{StatusCode: tc.code, Status: http.StatusText(tc.code), Body: io.NopCloser(strings.NewReader(""))}
		err := statusError("x", resp)
		var p *Permanent
		if (err == nil) != tc.ok || (err != nil && errors.As(err, &p) != tc.perma) {
			t.Errorf("%d: %v", tc.code, err)
		}
	}
}

// TestDispatcherDelay: a purge waits Delay after it was queued (origins
// that poll the store must have the CRL before the cache refetches).
func TestDispatcherDelay(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sent := make(chan time.Time, 1)
		d, err := NewDispatcher(Config{Delay: 3 * time.Second}, testLogger(t), purgerFunc(func(context.Context, crlpub.CRL) error {
			sent <- time.Now()
			return nil
		}))
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		go d.Run(ctx)
		start := time.Now()
		if err := d.Published(ctx, testCRL(1)); err != nil {
			t.Fatal(err)
		}
		at := <-sent
		if got := at.Sub(start); got < 3*time.Second {
			t.Errorf("purged %v after queuing, want at least the 3s delay", got)
		}
		cancel()
	})
	if _, err := NewDispatcher(Config{Delay: 2 * time.Minute}, testLogger(t), purgerFunc(nil)); err == nil {
		t.Error("a 2-minute delay was accepted")
	}
}
