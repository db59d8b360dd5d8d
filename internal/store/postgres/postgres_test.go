package postgres

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"net"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/trustline/trustline/internal/store"
	"github.com/trustline/trustline/internal/store/storetest"
	"github.com/trustline/trustline/internal/testfix"
)

const defaultTestURL = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

// serverURL is the server the integration tests use: $TRUSTLINE_TEST_POSTGRES
// (URL form), by default the local test server. Its own database is never
// written: each test gets a database of its own, dropped afterwards.
func serverURL() string {
	if u := os.Getenv("TRUSTLINE_TEST_POSTGRES"); u != "" {
		return u
	}
	return defaultTestURL
}

// adminConn connects to the server, or skips (fails under CI=true) when it
// cannot.
func adminConn(tb testing.TB) *pgx.Conn {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, serverURL())
	if err != nil {
		msg := "PostgreSQL integration tests NOT RUN: cannot connect to " + redact(serverURL()) +
			" (set TRUSTLINE_TEST_POSTGRES to a server where CREATE DATABASE is allowed): " + err.Error()
		if os.Getenv("CI") == "true" {
			tb.Fatal(msg)
		}
		tb.Skip(msg)
	}
	return conn
}

func redact(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return "(unparsable URL)"
	}
	return p.Redacted()
}

// freshDatabase creates an empty database for one test and returns its URL.
func freshDatabase(tb testing.TB) string {
	tb.Helper()
	admin := adminConn(tb)
	defer admin.Close(context.Background())
	var b [6]byte
	rand.Read(b[:])
	name := "trustline_test_" + hex.EncodeToString(b[:])
	if _, err := admin.Exec(tb.Context(), `CREATE DATABASE `+name); err != nil {
		tb.Fatalf("creating test database: %v", err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		admin := adminConn(tb)
		defer admin.Close(ctx)
		if _, err := admin.Exec(ctx, `DROP DATABASE IF EXISTS `+name+` WITH (FORCE)`); err != nil {
			tb.Errorf("dropping test database %s: %v", name, err)
		}
	})
	u, err := url.Parse(serverURL())
	if err != nil || u.Scheme == "" {
		tb.Fatalf("TRUSTLINE_TEST_POSTGRES must be a postgres:// URL to derive per-test databases from: %v", err)
	}
	u.Path = "/" + name
	return u.String()
}

func openFresh(tb testing.TB) *Store {
	tb.Helper()
	s, err := Open(tb.Context(), Config{URL: freshDatabase(tb), MaxConns: 4}, testfix.Logger(tb))
	if err != nil {
		tb.Fatalf("Open: %v", err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	adminConn(t).Close(context.Background()) // skip the whole suite at once if there is no server
	storetest.Run(t, storetest.Adapter{
		Open: func(t *testing.T) store.Store { return openFresh(t) },
		Exec: func(t *testing.T, s store.Store, sql string) {
			t.Helper()
			if _, err := s.(*Store).pool.Exec(t.Context(), sql); err != nil {
				t.Fatalf("exec %q: %v", sql, err)
			}
		},
	})
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		want string // substring of the error; "" for valid
	}{
		{"valid", Config{URL: defaultTestURL}, ""},
		{"empty", Config{}, "URL is empty"},
		{"negative conns", Config{URL: defaultTestURL, MaxConns: -1}, "negative"},
		{"bad url", Config{URL: "postgres://u:secret@host:notaport/db"}, "config: URL"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Errorf("Validate() = %v, want error containing %q", err, tc.want)
			}
			if err != nil && strings.Contains(err.Error(), "secret") {
				t.Errorf("Validate() error leaks the password: %v", err)
			}
		})
	}
}

// silentServer accepts TCP connections and never answers: a server that
// hangs, or a firewall that lets the handshake through.
func silentServer(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return ln.Addr().String()
}

// TestOpenUnreachable: no server, or one that never answers, gives a prompt
// error naming the server, bounded by ctx or the connect timeout. Needs no
// PostgreSQL.
func TestOpenUnreachable(t *testing.T) {
	silent := silentServer(t)
	for _, tc := range []struct {
		name    string
		url     string
		timeout time.Duration // of the caller's context; 0: none
		limit   time.Duration // Open must fail within this
		want    []string
	}{
		{"refused", "postgres://postgres@127.0.0.1:1/test?sslmode=disable", 10 * time.Second, 2 * time.Second,
			[]string{"postgres: connecting to 127.0.0.1:1/test: server unreachable", "refused"}},
		{"silent, context deadline", "postgres://postgres@" + silent + "/test?sslmode=disable", 1500 * time.Millisecond, 3 * time.Second,
			[]string{"postgres: connecting to " + silent + "/test: server did not answer in time"}},
		{"silent, connect_timeout", "postgres://postgres@" + silent + "/test?sslmode=disable&connect_timeout=1", 0, 3 * time.Second,
			[]string{"postgres: connecting to " + silent + "/test: server did not answer in time"}},
		{"silent, default timeout", "postgres://postgres@" + silent + "/test?sslmode=disable", 0, defaultConnectTimeout + 2*time.Second,
			[]string{"postgres: connecting to " + silent + "/test: server did not answer in time"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := t.Context()
			if tc.timeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tc.timeout)
				defer cancel()
			}
			start := time.Now()
			s, err := Open(ctx, Config{URL: tc.url}, testfix.Logger(t))
			elapsed := time.Since(start)
			if err == nil {
				s.Close()
				t.Fatal("Open succeeded")
			}
			t.Logf("after %v: %v", elapsed.Round(time.Millisecond), err)
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if elapsed > tc.limit {
				t.Errorf("Open took %v to fail, want under %v", elapsed, tc.limit)
			}
		})
	}
}

// TestConcurrentOpen: instances starting together on an empty database
// apply the migrations exactly once between them.
func TestConcurrentOpen(t *testing.T) {
	url := freshDatabase(t)
	var logs testfix.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	const n = 4
	errs := make([]error, n)
	stores := make([]*Store, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			stores[i], errs[i] = Open(t.Context(), Config{URL: url, MaxConns: 2}, logger)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("instance %d: %v", i, err)
		}
		defer stores[i].Close()
	}
	ms, err := migrations()
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Count(logs.String(), "applying migration"); got != len(ms) {
		t.Errorf("%d migrations applied across %d instances, want %d:\n%s", got, n, len(ms), logs.String())
	}
	var rows int
	err = stores[0].pool.QueryRow(t.Context(), `SELECT count(*) FROM schema_migrations`).Scan(&rows)
	if err != nil || rows != len(ms) {
		t.Errorf("schema_migrations has %d rows (%v), want %d", rows, err, len(ms))
	}

	// A later start finds nothing to do and keeps the data.
	if err := stores[0].PutMeta(t.Context(), "k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	logs.Reset()
	again, err := Open(t.Context(), Config{URL: url}, logger)
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	if strings.Contains(logs.String(), "applying migration") {
		t.Errorf("reopening applied migrations again:\n%s", logs.String())
	}
	if v, err := again.Meta(t.Context(), "k"); err != nil || string(v) != "v" {
		t.Errorf("Meta after reopen = %q, %v", v, err)
	}
}

func TestErrorsWrapped(t *testing.T) {
	s := openFresh(t)
	_, err := s.Certificate(t.Context(), "7f01")
	if !errors.Is(err, store.ErrNotFound) || !strings.HasPrefix(err.Error(), "postgres: reading certificate 7f01: ") {
		t.Errorf("error = %q, want it wrapped with the package and the action, and errors.Is ErrNotFound", err)
	}
}

// TestOpenRejected: a server that answers but refuses (here: no such
// database) is named as such, not as unreachable.
func TestOpenRejected(t *testing.T) {
	adminConn(t).Close(context.Background())
	u, err := url.Parse(serverURL())
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/trustline_no_such_database"
	_, err = Open(t.Context(), Config{URL: u.String()}, testfix.Logger(t))
	if err == nil || !strings.Contains(err.Error(), "server rejected the connection") || !strings.Contains(err.Error(), "trustline_no_such_database") {
		t.Errorf("Open of a missing database: %v", err)
	}
}

// TestReadOnly: a reader that never writes (the origin role) opens the
// store as a user with SELECT only; it needs a migrated store of exactly
// this binary's schema and changes nothing.
func TestReadOnly(t *testing.T) {
	ctx := t.Context()
	dbURL := freshDatabase(t)
	if _, err := Open(ctx, Config{URL: dbURL, ReadOnly: true}, testfix.Logger(t)); err == nil || !strings.Contains(err.Error(), "writing role") {
		t.Fatalf("read-only Open of an empty database = %v", err)
	}
	w, err := Open(ctx, Config{URL: dbURL}, testfix.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if err := w.PutMeta(ctx, "k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	var b [4]byte
	rand.Read(b[:])
	role := "trustline_ro_" + hex.EncodeToString(b[:])
	u, _ := url.Parse(dbURL)
	db := strings.TrimPrefix(u.Path, "/")
	admin := adminConn(t)
	defer admin.Close(context.Background())
	for _, q := range []string{`CREATE ROLE ` + role + ` LOGIN`, `GRANT CONNECT ON DATABASE ` + db + ` TO ` + role} {
		if _, err := admin.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		c := adminConn(t)
		defer c.Close(context.Background())
		c.Exec(context.Background(), `REVOKE CONNECT ON DATABASE `+db+` FROM `+role)
		c.Exec(context.Background(), `DROP ROLE IF EXISTS `+role)
	})
	if _, err := w.pool.Exec(ctx, `GRANT USAGE ON SCHEMA public TO `+role+`; GRANT SELECT ON ALL TABLES IN SCHEMA public TO `+role); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.pool.Exec(context.Background(), `DROP OWNED BY `+role) })
	ro := *u
	ro.User = url.User(role)
	r, err := Open(ctx, Config{URL: ro.String(), ReadOnly: true}, testfix.Logger(t))
	if err != nil {
		t.Fatalf("read-only Open as a SELECT-only user: %v", err)
	}
	if v, err := r.Meta(ctx, "k"); err != nil || string(v) != "v" {
		t.Errorf("read-only Meta = %q, %v", v, err)
	}
	if err := r.PutMeta(ctx, "k", []byte("w")); err == nil {
		t.Error("a SELECT-only user wrote: the test's user is not read-only")
	}
	r.Close()
	// A schema behind this binary's is refused, not migrated.
	if _, err := w.pool.Exec(ctx, `DELETE FROM schema_migrations WHERE version = (SELECT max(version) FROM schema_migrations)`); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(ctx, Config{URL: ro.String(), ReadOnly: true}, testfix.Logger(t)); err == nil || !strings.Contains(err.Error(), "migrate it first") {
		t.Errorf("read-only Open of an older schema = %v", err)
	}
}

// TestUpgradeToPrecertificates: migration 16 adds certificates.precertificate;
// a certificate stored before it reads back as no precertificate, and so
// is not one CompleteCertificate would complete.
func TestUpgradeToPrecertificates(t *testing.T) {
	ctx := t.Context()
	dbURL := freshDatabase(t)
	ms, err := migrations()
	if err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, `CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL,
		applied_at TIMESTAMPTZ NOT NULL DEFAULT now())`); err != nil {
		t.Fatal(err)
	}
	for _, m := range ms {
		if m.Version >= 16 {
			break
		}
		if _, err := conn.Exec(ctx, m.SQL); err != nil {
			t.Fatalf("migration %d: %v", m.Version, err)
		}
		if _, err := conn.Exec(ctx, `INSERT INTO schema_migrations (version, name) VALUES ($1, $2)`, m.Version, m.Name); err != nil {
			t.Fatal(err)
		}
	}
	nb := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	if _, err := conn.Exec(ctx, `INSERT INTO certificates (serial, issuer_id, shard, account_id, order_id, der, not_before, not_after,
		status, revoked_at, reason, ocsp_refresh_at) VALUES ('7f01', 'int-a', 1, 'acct-1', 'order-1', '\x3082', $1, $2, 1, $3, 0, $1)`,
		nb, nb.Add(time.Hour), ts(time.Time{})); err != nil {
		t.Fatal(err)
	}
	conn.Close(ctx)

	s, err := Open(ctx, Config{URL: dbURL}, testfix.Logger(t))
	if err != nil {
		t.Fatalf("upgrading: %v", err)
	}
	defer s.Close()
	c, err := s.Certificate(ctx, "7f01")
	if err != nil {
		t.Fatalf("the old certificate after the upgrade: %v", err)
	}
	if c.Precertificate || string(c.DER) != "\x30\x82" || !c.NotBefore.Equal(nb) {
		t.Errorf("the old certificate after the upgrade: %+v", c)
	}
	err = s.CompleteCertificate(ctx, "7f01", []byte{0x30}, []byte{0}, nb, store.AuditEntry{At: nb, Kind: "certificate.completed"})
	if !errors.Is(err, store.ErrConflict) {
		t.Errorf("completing the old certificate = %v, want ErrConflict", err)
	}
}
