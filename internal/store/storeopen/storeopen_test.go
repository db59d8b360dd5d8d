package storeopen

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/trustline/trustline/internal/testfix"
)

func TestOpenSQLite(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "trustline.db")
	if _, err := Open(ctx, Config{SQLite: path, MustExist: true}, testfix.QuietLogger()); !errors.Is(err, ErrNoStore) {
		t.Fatalf("MustExist on a missing file = %v", err)
	}
	if _, err := os.Stat(path); err == nil {
		t.Fatal("a refused open created the file")
	}
	c := Config{SQLite: path}
	if c.Kind() != "sqlite" || (Config{Postgres: "postgres://x"}).Kind() != "postgres" {
		t.Error("Kind")
	}
	s, err := Open(ctx, c, testfix.QuietLogger())
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if s, err = Open(ctx, Config{SQLite: path, MustExist: true}, testfix.QuietLogger()); err != nil {
		t.Fatalf("MustExist on the created store: %v", err)
	}
	s.Close()
	if _, err := Open(ctx, Config{}, testfix.QuietLogger()); err == nil {
		t.Error("an empty Config opened something")
	}
}
