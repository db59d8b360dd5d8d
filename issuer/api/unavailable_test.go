package api_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/trustline/trustline/internal/store/postgres"
	"github.com/trustline/trustline/internal/testenv"
	"github.com/trustline/trustline/internal/testfix"
)

// TestDatabaseUnavailable: with PostgreSQL (a private server) shut down,
// or hung (every process stopped: connections open, nothing answered),
// reads and writes answer 503 with Retry-After and a problem saying so,
// not 500 and not never; once it is back the same calls succeed and what
// was written before is still there. The store's own operation bound is
// off: the bound the API asks for (store.WithOpTimeout) alone must end a
// hung call.
func TestDatabaseUnavailable(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a private PostgreSQL server")
	}
	pg := testenv.StartPostgres(t)
	ctx := context.Background()
	st, err := postgres.Open(ctx, postgres.Config{URL: pg.URL(), OpTimeout: -1}, testfix.QuietLogger())
	if err != nil {
		t.Fatal(err)
	}
	e := newEnvWith(t, envOpts{store: st})
	if c, out, _ := e.call(t, "POST", "/api/v1/admin/review-list", e.admin, map[string]string{"pattern": "*bank*"}); c != 201 {
		t.Fatalf("adding a pattern: %d %v", c, out)
	}

	for _, down := range []struct {
		name       string
		fail, mend func()
	}{
		{"shut down", pg.Stop, pg.Start},
		{"hung", pg.Pause, pg.Resume},
	} {
		t.Run(down.name, func(t *testing.T) { checkUnavailable(t, e, down.fail, down.mend) })
	}
}

func checkUnavailable(t *testing.T, e *env, fail, mend func()) {
	fail()
	for _, call := range []struct{ method, path string }{
		{"GET", "/api/v1/admin/review-list"},
		{"POST", "/api/v1/admin/review-list"},
	} {
		var body any
		if call.method == "POST" {
			body = map[string]string{"pattern": "*paypal*"}
		}
		c, out, hdr := e.call(t, call.method, call.path, e.admin, body)
		detail, _ := out["detail"].(string)
		if c != 503 || hdr.Get("Retry-After") == "" || !strings.Contains(detail, "database is unavailable") {
			t.Errorf("%s %s with the database down: %d, Retry-After %q, %v", call.method, call.path, c, hdr.Get("Retry-After"), out)
		}
	}

	mend()
	// The pool notices the restart on its next attempts: allow it a few.
	var c int
	var out map[string]any
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if c, out, _ = e.call(t, "GET", "/api/v1/admin/review-list", e.admin, nil); c == 200 {
			break
		}
		if c != 503 {
			t.Fatalf("while the database comes back: %d %v", c, out)
		}
	}
	if c != 200 || !strings.Contains(fmt.Sprint(out), "*bank*") {
		t.Fatalf("after the database came back: %d %v", c, out)
	}
}
