// Package pgtest gives a test its own empty PostgreSQL database on the
// server testenv.PostgresURL names, dropped when the test ends. It is a
// separate package so that tests of the stateless parts, which may use
// testenv, never pull a database driver into their dependencies.
//
// Only tests import it.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/trustline/trustline/internal/testenv"
)

// FreshDatabase creates an empty database and returns its URL. Without a
// server the test skips loudly (fails under CI=true).
func FreshDatabase(tb testing.TB) string {
	tb.Helper()
	base := testenv.PostgresURL()
	u, err := url.Parse(base)
	if err != nil {
		tb.Fatalf("bad TRUSTLINE_TEST_POSTGRES %q: %v", base, err)
	}
	testenv.NeedTCP(tb, "PostgreSQL", u.Host)
	ctx := context.Background()
	admin, err := pgx.Connect(ctx, base)
	if err != nil {
		testenv.Missing(tb, "PostgreSQL", err)
	}
	b := make([]byte, 6)
	rand.Read(b)
	db := "trustline_t_" + hex.EncodeToString(b)
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+db); err != nil {
		admin.Close(ctx)
		tb.Fatalf("creating database: %v", err)
	}
	tb.Cleanup(func() {
		admin.Exec(context.Background(), "DROP DATABASE IF EXISTS "+db+" WITH (FORCE)")
		admin.Close(context.Background())
	})
	u.Path = "/" + db
	return u.String()
}

// ReadOnlyUser creates a login role that may only read the tables dbURL
// holds now, and returns dbURL as that role. The role is dropped when the
// test ends (before the database, whose cleanup was registered first).
func ReadOnlyUser(tb testing.TB, dbURL string) string {
	tb.Helper()
	ctx := context.Background()
	u, err := url.Parse(dbURL)
	if err != nil {
		tb.Fatal(err)
	}
	db, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		tb.Fatalf("pgtest: %v", err)
	}
	b := make([]byte, 6)
	rand.Read(b)
	role := "trustline_ro_" + hex.EncodeToString(b)
	for _, q := range []string{
		"CREATE ROLE " + role + " LOGIN",
		"GRANT CONNECT ON DATABASE " + u.Path[1:] + " TO " + role,
		"GRANT USAGE ON SCHEMA public TO " + role,
		"GRANT SELECT ON ALL TABLES IN SCHEMA public TO " + role,
	} {
		if _, err := db.Exec(ctx, q); err != nil {
			db.Close(ctx)
			tb.Fatalf("pgtest: %s: %v", q, err)
		}
	}
	tb.Cleanup(func() {
		db.Exec(ctx, "DROP OWNED BY "+role)
		db.Exec(ctx, "REVOKE CONNECT ON DATABASE "+u.Path[1:]+" FROM "+role)
		db.Close(ctx)
		if admin, err := pgx.Connect(ctx, testenv.PostgresURL()); err == nil {
			admin.Exec(ctx, "DROP ROLE IF EXISTS "+role)
			admin.Close(ctx)
		}
	})
	u.User = url.User(role)
	return u.String()
}
