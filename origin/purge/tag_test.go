package purge

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/trustline/trustline/crlgen/crlpub"
)

func errorsAs(err error, target any) bool { return errors.As(err, target) }

// recorder is a cache or webhook endpoint that remembers what it was sent.
type recorder struct {
	mu   sync.Mutex
	seen []string // "METHOD path surrogate-key body"
}

func (r *recorder) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	b, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	r.seen = append(r.seen, req.Method+" "+req.URL.Path+" "+req.Header.Get("Surrogate-Key")+" "+string(b))
	r.mu.Unlock()
}

func (r *recorder) all() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.seen...)
}

func TestHTTPPurgeTag(t *testing.T) {
	rec := &recorder{}
	srv := httptest.NewServer(rec)
	defer srv.Close()
	p, _ := NewHTTP(srv.URL, nil)
	if err := p.PurgeTag(context.Background(), "ocsp-1a2b"); err != nil {
		t.Fatal(err)
	}
	if got := rec.all(); len(got) != 1 || got[0] != "BAN / ocsp-1a2b " {
		t.Errorf("cache saw %q, want one BAN / with Surrogate-Key ocsp-1a2b", got)
	}
	for _, bad := range []string{"", "ocsp-.*", "a b", "x\r\nHost: evil", "OCSP-UPPER"} {
		var perm *Permanent
		if err := p.PurgeTag(context.Background(), bad); err == nil || !errorsAs(err, &perm) {
			t.Errorf("PurgeTag(%q) = %v, want a permanent refusal", bad, err)
		}
	}
}

func TestWebhookPurgeTag(t *testing.T) {
	rec := &recorder{}
	srv := httptest.NewServer(rec)
	defer srv.Close()
	w, _ := NewWebhook(srv.URL, nil, nil)
	if err := w.PurgeTag(context.Background(), "ocsp-1a2b"); err != nil {
		t.Fatal(err)
	}
	got := rec.all()
	if len(got) != 1 {
		t.Fatalf("webhook got %d requests", len(got))
	}
	var ev WebhookEvent
	body := got[0][len("POST / "+" "):]
	if err := json.Unmarshal([]byte(body), &ev); err != nil || ev.Event != "tag.purge" || ev.Tag != "ocsp-1a2b" {
		t.Errorf("webhook body %q → %+v, %v", body, ev, err)
	}
}

// crlOnly purges CRLs but not tags.
type crlOnly struct{ n int }

func (c *crlOnly) Purge(context.Context, crlpub.CRL) error { c.n++; return nil }

func TestDispatcherPurgeTagReachesTagPurgersOnly(t *testing.T) {
	rec := &recorder{}
	srv := httptest.NewServer(rec)
	defer srv.Close()
	h, _ := NewHTTP(srv.URL, nil)
	other := &crlOnly{}
	d, err := NewDispatcher(Config{Backoff: time.Millisecond, MaxBackoff: time.Millisecond}, testLogger(t), h, other)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { d.Run(ctx); close(done) }()
	if err := d.PurgeTag("ocsp-42"); err != nil {
		t.Fatal(err)
	}
	if err := d.PurgeTag("bad tag"); err == nil {
		t.Error("invalid tag queued")
	}
	deadline := time.Now().Add(5 * time.Second)
	for d.Stats().Done < 1 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	<-done
	if got := rec.all(); len(got) != 1 || got[0] != "BAN / ocsp-42 " {
		t.Errorf("cache saw %q", got)
	}
	if other.n != 0 || d.Stats().Done != 1 {
		t.Errorf("CRL-only purger called %d times; stats %+v", other.n, d.Stats())
	}
}
