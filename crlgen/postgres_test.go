package crlgen

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/trustline/trustline/internal/store/postgres"
	"github.com/trustline/trustline/internal/testenv"
	"github.com/trustline/trustline/internal/testfix"
)

// freshPostgres creates a database of the test's own on the test server
// (testenv.PostgresURL), dropped at cleanup, and returns its URL. Without
// a server it skips, or fails under CI=true.
func freshPostgres(t *testing.T) string {
	t.Helper()
	server := testenv.PostgresURL()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	admin, err := pgx.Connect(ctx, server)
	if err != nil {
		testenv.Missing(t, "PostgreSQL (set TRUSTLINE_TEST_POSTGRES)", err)
	}
	defer admin.Close(context.Background())
	var b [6]byte
	rand.Read(b[:])
	name := "crlgen_test_" + hex.EncodeToString(b[:])
	if _, err := admin.Exec(ctx, `CREATE DATABASE `+name); err != nil {
		t.Fatalf("creating test database: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		admin, err := pgx.Connect(ctx, server)
		if err != nil {
			t.Errorf("dropping %s: %v", name, err)
			return
		}
		defer admin.Close(ctx)
		if _, err := admin.Exec(ctx, `DROP DATABASE IF EXISTS `+name+` WITH (FORCE)`); err != nil {
			t.Errorf("dropping %s: %v", name, err)
		}
	})
	u, err := url.Parse(server)
	if err != nil {
		t.Fatalf("TRUSTLINE_TEST_POSTGRES: %v", err)
	}
	u.Path = "/" + name
	return u.String()
}

func openPostgres(t *testing.T, url string) *postgres.Store {
	t.Helper()
	st, err := postgres.Open(context.Background(), postgres.Config{URL: url, MaxConns: 4}, testfix.Logger(t))
	if err != nil {
		t.Fatalf("opening PostgreSQL store: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}
