package main

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	msqlite "modernc.org/sqlite"

	"github.com/trustline/trustline/internal/store/postgres"
	"github.com/trustline/trustline/internal/store/sqlite"
	"github.com/trustline/trustline/internal/testenv/pgtest"
)

// runTrustline runs the built binary and returns its stdout, stderr and
// exit status.
func runTrustline(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var o, e bytes.Buffer
	cmd := exec.Command(binary, args...)
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		t.Fatalf("running trustline %s: %v", strings.Join(args, " "), err)
	}
	return o.String(), e.String(), code
}

// tree lists every path under dir with its size, to show that a command
// created or changed nothing.
func tree(t *testing.T, dir string) map[string]int64 {
	t.Helper()
	out := map[string]int64{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		out[p] = fi.Size()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestAuditVerifyWithoutAStore(t *testing.T) {
	base := t.TempDir()
	mkdir := func(name string) string {
		d := filepath.Join(base, name)
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
		return d
	}
	empty := mkdir("empty")
	zero := mkdir("zero")
	if err := os.WriteFile(filepath.Join(zero, "trustline.db"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	// An SQLite database that is not Trustline's: opening it through the
	// adapter would add Trustline's tables to it.
	other := mkdir("other")
	conn, err := msqlite.NewConnector(filepath.Join(other, "trustline.db"))
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(conn)
	if _, err := db.Exec(`CREATE TABLE notes (body TEXT)`); err != nil {
		t.Fatal(err)
	}
	db.Close()

	tests := []struct {
		name, data, want string
	}{
		{"no directory", filepath.Join(base, "nothing-here"), "the directory does not exist"},
		{"empty directory", empty, "it holds no trustline.db"},
		{"empty file", zero, "trustline.db has no Trustline schema"},
		{"another application's database", other, "trustline.db has no Trustline schema"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := tree(t, base)
			stdout, stderr, code := runTrustline(t, "audit", "verify", "--data", tt.data)
			if code != 1 {
				t.Errorf("exit status %d, want 1", code)
			}
			if want := "no Trustline store at " + tt.data + ": " + tt.want; !strings.Contains(stderr, want) {
				t.Errorf("stderr %q does not say %q", stderr, want)
			}
			if stdout != "" {
				t.Errorf("stdout %q, want nothing", stdout)
			}
			after := tree(t, base)
			for p, size := range after {
				if b, ok := before[p]; !ok || b != size {
					t.Errorf("audit verify created or changed %s", p)
				}
			}
			if len(after) != len(before) {
				t.Errorf("audit verify changed the tree: %d paths before, %d after", len(before), len(after))
			}
		})
	}

	t.Run("a store", func(t *testing.T) {
		data := mkdir("store")
		st, err := sqlite.Open(context.Background(), sqlite.Config{Path: filepath.Join(data, "trustline.db")}, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		st.Close()
		stdout, stderr, code := runTrustline(t, "audit", "verify", "--data", data)
		if code != 0 || !strings.HasPrefix(stdout, "audit chain OK: 0 entries") {
			t.Errorf("exit status %d, stdout %q, stderr %q; want audit chain OK", code, stdout, stderr)
		}
	})
}

// TestAuditVerifyOnAnEmptyPostgresDatabase: a database without Trustline's
// schema is reported as such and left empty (the adapter would have
// migrated it); once it holds a store, the chain verifies.
func TestAuditVerifyOnAnEmptyPostgresDatabase(t *testing.T) {
	dbURL := pgtest.FreshDatabase(t)
	ctx := context.Background()
	data := filepath.Join(t.TempDir(), "nothing-here")
	pc, err := pgx.ParseConfig(dbURL)
	if err != nil {
		t.Fatal(err)
	}

	stdout, stderr, code := runTrustline(t, "audit", "verify", "--postgres", dbURL, "--data", data)
	if code != 1 {
		t.Errorf("exit status %d, want 1", code)
	}
	if want := fmt.Sprintf("no Trustline store in PostgreSQL database %s:%d/%s: it has no Trustline schema", pc.Host, pc.Port, pc.Database); !strings.Contains(stderr, want) {
		t.Errorf("stderr %q does not say %q", stderr, want)
	}
	if stdout != "" {
		t.Errorf("stdout %q, want nothing", stdout)
	}
	if _, err := os.Stat(data); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("audit verify created the data dir %s (%v)", data, err)
	}
	conn, err := pgx.ConnectConfig(ctx, pc)
	if err != nil {
		t.Fatal(err)
	}
	var tables int
	err = conn.QueryRow(ctx, `SELECT count(*) FROM pg_tables WHERE schemaname NOT IN ('pg_catalog', 'information_schema')`).Scan(&tables)
	conn.Close(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if tables != 0 {
		t.Errorf("audit verify left %d tables in the database; want it untouched", tables)
	}

	st, err := postgres.Open(ctx, postgres.Config{URL: dbURL}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	stdout, stderr, code = runTrustline(t, "audit", "verify", "--postgres", dbURL)
	if code != 0 || !strings.HasPrefix(stdout, "audit chain OK: 0 entries") {
		t.Errorf("exit status %d, stdout %q, stderr %q; want audit chain OK", code, stdout, stderr)
	}
}
