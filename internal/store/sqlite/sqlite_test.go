package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/trustline/trustline/internal/store"
	"github.com/trustline/trustline/internal/store/storetest"
	"github.com/trustline/trustline/internal/testfix"
)

func openTemp(t *testing.T) *Store {
	t.Helper()
	s, err := Open(t.Context(), Config{Path: filepath.Join(t.TempDir(), "trustline.db")}, testfix.Logger(t))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, storetest.Adapter{
		Open: func(t *testing.T) store.Store { return openTemp(t) },
		Exec: func(t *testing.T, s store.Store, sql string) {
			t.Helper()
			if _, err := s.(*Store).w.ExecContext(t.Context(), sql); err != nil {
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
		{"valid", Config{Path: "/var/lib/trustline/ca.db"}, ""},
		{"empty", Config{}, "Path is empty"},
		{"query", Config{Path: "ca.db?mode=ro"}, "contains '?'"},
		{"memory", Config{Path: ":memory:"}, "plain file path"},
		{"uri", Config{Path: "file:ca.db"}, "plain file path"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Errorf("Validate() = %v, want error containing %q", err, tc.want)
			}
		})
	}
}

// readOnlyDir returns a directory this process cannot create files in.
// Mode 0555 is enough for ordinary users; root ignores it, so then the
// directory is also made immutable (chattr +i, which needs
// CAP_LINUX_IMMUTABLE and a filesystem that supports it).
func readOnlyDir(t *testing.T) string {
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o555); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Chmod(dir, 0o755) })
	probe := filepath.Join(dir, "probe")
	if f, err := os.Create(probe); err != nil {
		return dir
	} else {
		f.Close()
		os.Remove(probe)
	}
	out, err := exec.Command("chattr", "+i", dir).CombinedOutput()
	if err != nil {
		t.Skipf("SKIPPED: cannot make a read-only directory: mode 0555 does not stop this user (root?) and chattr +i failed: %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("chattr", "-i", dir).Run() })
	return dir
}

func TestOpenErrors(t *testing.T) {
	notDB := filepath.Join(t.TempDir(), "garbage.db")
	if err := os.WriteFile(notDB, bytes.Repeat([]byte("this is not an SQLite database. "), 64), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		path func(t *testing.T) string
		want string
	}{
		{"read-only directory", func(t *testing.T) string { return filepath.Join(readOnlyDir(t), "ca.db") }, "is not writable"},
		{"missing directory", func(t *testing.T) string { return filepath.Join(t.TempDir(), "no", "such", "ca.db") }, "does not exist"},
		{"not a database", func(*testing.T) string { return notDB }, "file is not an SQLite database"},
		{"a directory", func(t *testing.T) string { return t.TempDir() }, "not a regular file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := tc.path(t)
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			s, err := Open(ctx, Config{Path: path}, testfix.Logger(t))
			if err == nil {
				s.Close()
				t.Fatalf("Open(%s) succeeded", path)
			}
			t.Logf("Open error: %v", err)
			if !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "sqlite: ") {
				t.Errorf("Open(%s) error %q, want it to contain %q", path, err, tc.want)
			}
		})
	}
}

// TestReopen: data survives Close/Open and migrations are applied once.
func TestReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ca.db")
	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	ctx := t.Context()

	s, err := Open(ctx, Config{Path: path}, logger)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.PutMeta(ctx, "k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	ms, err := migrations()
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Count(logs.String(), "applying migration"); got != len(ms) {
		t.Errorf("first Open logged %d migrations, want %d:\n%s", got, len(ms), logs.String())
	}

	logs.Reset()
	s, err = Open(ctx, Config{Path: path}, logger)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if strings.Contains(logs.String(), "applying migration") {
		t.Errorf("second Open applied migrations again:\n%s", logs.String())
	}
	v, err := s.Meta(ctx, "k")
	if err != nil || string(v) != "v" {
		t.Errorf("Meta after reopen = %q, %v; want \"v\"", v, err)
	}
	var n int
	if err := s.r.QueryRowContext(ctx, `SELECT count(*) FROM schema_migrations`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != len(ms) {
		t.Errorf("schema_migrations has %d rows, want %d", n, len(ms))
	}
}

// TestNewerSchema: a binary refuses a database migrated by a newer one.
func TestNewerSchema(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ca.db")
	s, err := Open(t.Context(), Config{Path: path}, testfix.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.w.ExecContext(t.Context(), `INSERT INTO schema_migrations (version, name) VALUES (9999, 'future.sql')`); err != nil {
		t.Fatal(err)
	}
	s.Close()
	_, err = Open(t.Context(), Config{Path: path}, testfix.Logger(t))
	if err == nil || !strings.Contains(err.Error(), "newer than this binary") {
		t.Errorf("Open of a newer schema: %v", err)
	}
}

// TestReadPoolIsReadOnly guards the split: a write on the read pool would
// bypass the single-writer queue.
func TestReadPoolIsReadOnly(t *testing.T) {
	s := openTemp(t)
	_, err := s.r.ExecContext(t.Context(), `INSERT INTO meta (key, value) VALUES ('x', x'00')`)
	if err == nil {
		t.Fatal("write through the read pool succeeded")
	}
}

func TestErrorsWrapped(t *testing.T) {
	s := openTemp(t)
	_, err := s.Certificate(t.Context(), "7f01")
	if !errors.Is(err, store.ErrNotFound) || !strings.HasPrefix(err.Error(), "sqlite: reading certificate 7f01: ") {
		t.Errorf("error = %q, want it wrapped with the package and the action, and errors.Is ErrNotFound", err)
	}
}

// TestPragmas: the settings the package doc promises are in force on the
// writer connection.
func TestPragmas(t *testing.T) {
	s := openTemp(t)
	for _, tc := range []struct {
		pragma string
		want   string
	}{
		{"journal_mode", "wal"},
		{"synchronous", "1"}, // NORMAL
		{"foreign_keys", "1"},
		{"busy_timeout", "10000"},
	} {
		t.Run(tc.pragma, func(t *testing.T) {
			var got string
			if err := s.w.QueryRowContext(t.Context(), "PRAGMA "+tc.pragma).Scan(&got); err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("PRAGMA %s = %q, want %q", tc.pragma, got, tc.want)
			}
		})
	}
}

func TestZeroMicros(t *testing.T) {
	if got := (time.Time{}).UnixMicro(); got != zeroMicros {
		t.Errorf("time.Time{}.UnixMicro() = %d, zeroMicros = %d", got, zeroMicros)
	}
	if !fromMicros(micros(time.Time{})).IsZero() {
		t.Error("the zero time does not round-trip")
	}
}

// TestTwoInstances: two Stores on one file (two processes, in production)
// open together and append to one audit chain without forking it; their
// writers take turns through BEGIN IMMEDIATE and busy_timeout.
func TestTwoInstances(t *testing.T) {
	path := filepath.Join(t.TempDir(), "shared.db")
	var stores [2]*Store
	var errs [2]error
	var wg sync.WaitGroup
	for i := range stores {
		wg.Add(1)
		go func() {
			defer wg.Done()
			stores[i], errs[i] = Open(t.Context(), Config{Path: path}, testfix.Logger(t))
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("instance %d: %v", i, err)
		}
		defer stores[i].Close()
	}
	const perWorker = 25
	errc := make(chan error, 4)
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := stores[w%2]
			for j := range perWorker {
				if _, err := s.AppendAudit(t.Context(), store.AuditEntry{At: time.Unix(int64(j), 0), Kind: "test", Actor: "w", Subject: "s"}); err != nil {
					errc <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}
	n, _, err := store.VerifyAudit(t.Context(), stores[0])
	if err != nil || n != 4*perWorker {
		t.Errorf("VerifyAudit = %d entries, %v; want %d, nil", n, err, 4*perWorker)
	}
}

// TestFilesOwnerOnly: the finding of issue #13 ("SQLite files are 0644").
// A new store's files are 0600; an existing store readable by others is
// tightened when opened.
func TestFilesOwnerOnly(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "t.db")
	s, err := Open(context.Background(), Config{Path: path}, testfix.QuietLogger())
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		if fi, err := os.Stat(p); err == nil && fi.Mode().Perm() != 0o600 {
			t.Errorf("%s is %04o, want 0600", filepath.Base(p), fi.Mode().Perm())
		}
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	s, err = Open(context.Background(), Config{Path: path}, testfix.QuietLogger())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Errorf("an existing 0644 store was left %04o", fi.Mode().Perm())
	}
}

// TestUpgradeToSharedEmails: migration 10 rebuilds accounts (its email
// loses UNIQUE) in a store holding accounts referenced by keys and
// validations; nothing is lost, the foreign keys still hold, and the
// accounts made before are counted as confirmed.
func TestUpgradeToSharedEmails(t *testing.T) {
	path := filepath.Join(t.TempDir(), "old.db")
	db, err := sql.Open("sqlite", path+"?_pragma=foreign_keys(1)")
	if err != nil {
		t.Fatal(err)
	}
	ms, err := migrations()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	for _, m := range ms {
		if m.Version >= 10 {
			break
		}
		if _, err := db.Exec(m.SQL); err != nil {
			t.Fatalf("migration %d: %v", m.Version, err)
		}
		if _, err := db.Exec(`INSERT INTO schema_migrations (version, name) VALUES (?, ?)`, m.Version, m.Name); err != nil {
			t.Fatal(err)
		}
	}
	created := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, q := range []string{
		`INSERT INTO accounts (id, email, role, created_at) VALUES ('acct-1', 'a@example.com', 'subscriber', ` + fmt.Sprint(created.UnixMicro()) + `)`,
		`INSERT INTO api_keys (id, account_id, hash, created_at) VALUES ('k1', 'acct-1', x'00', 1)`,
		`INSERT INTO validations (id, account_id, domain, method, contact, secret, status, attempts, created_at, expires_at, validated_at, valid_until, evidence, version)
			VALUES ('v1', 'acct-1', 'example.com', 'email', 'admin@example.com', x'00', 'pending', 0, 1, 2, 0, 0, x'', 1)`,
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	db.Close()

	s, err := Open(context.Background(), Config{Path: path}, testfix.QuietLogger())
	if err != nil {
		t.Fatalf("upgrading: %v", err)
	}
	defer s.Close()
	a, err := s.Account(context.Background(), "acct-1")
	if err != nil || a.Email != "a@example.com" || !a.EmailVerifiedAt.Equal(created) {
		t.Fatalf("the old account after the upgrade: %+v, %v", a, err)
	}
	if _, acct, err := s.APIKey(context.Background(), "k1"); err != nil || acct.ID != "acct-1" {
		t.Fatalf("its key after the upgrade: %v", err)
	}
	if _, err := s.Validation(context.Background(), "v1"); err != nil {
		t.Fatalf("its validation after the upgrade: %v", err)
	}
	second := store.Account{ID: "acct-2", Email: "a@example.com", Role: store.RoleSubscriber, CreatedAt: created}
	if err := s.CreateAccount(context.Background(), second, store.APIKey{ID: "k2", Hash: []byte{1}, CreatedAt: created}); err != nil {
		t.Fatalf("a second account with the same address: %v", err)
	}
	var fkProblems int
	if err := s.r.QueryRow(`SELECT count(*) FROM pragma_foreign_key_check`).Scan(&fkProblems); err != nil || fkProblems != 0 {
		t.Errorf("foreign key check: %d problems, %v", fkProblems, err)
	}
}

// TestUpgradeToPrecertificates: migration 16 adds certificates.precertificate;
// a certificate stored before it reads back as no precertificate, and so
// is not one CompleteCertificate would complete.
func TestUpgradeToPrecertificates(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "old.db")
	db, err := sql.Open("sqlite", path+"?_pragma=foreign_keys(1)")
	if err != nil {
		t.Fatal(err)
	}
	ms, err := migrations()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	for _, m := range ms {
		if m.Version >= 16 {
			break
		}
		if _, err := db.Exec(m.SQL); err != nil {
			t.Fatalf("migration %d: %v", m.Version, err)
		}
		if _, err := db.Exec(`INSERT INTO schema_migrations (version, name) VALUES (?, ?)`, m.Version, m.Name); err != nil {
			t.Fatal(err)
		}
	}
	nb := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	if _, err := db.Exec(`INSERT INTO certificates (serial, issuer_id, shard, account_id, order_id, der, not_before, not_after,
		status, revoked_at, reason, ocsp_refresh_at) VALUES ('7f01', 'int-a', 1, 'acct-1', 'order-1', x'3082', ?, ?, 1, ?, 0, ?)`,
		nb.UnixMicro(), nb.Add(time.Hour).UnixMicro(), zeroMicros, nb.UnixMicro()); err != nil {
		t.Fatal(err)
	}
	db.Close()

	s, err := Open(ctx, Config{Path: path}, testfix.QuietLogger())
	if err != nil {
		t.Fatalf("upgrading: %v", err)
	}
	defer s.Close()
	c, err := s.Certificate(ctx, "7f01")
	if err != nil {
		t.Fatalf("the old certificate after the upgrade: %v", err)
	}
	if c.Precertificate || !bytes.Equal(c.DER, []byte{0x30, 0x82}) || !c.NotBefore.Equal(nb) {
		t.Errorf("the old certificate after the upgrade: %+v", c)
	}
	err = s.CompleteCertificate(ctx, "7f01", []byte{0x30}, []byte{0}, nb, store.AuditEntry{At: nb, Kind: "certificate.completed"})
	if !errors.Is(err, store.ErrConflict) {
		t.Errorf("completing the old certificate = %v, want ErrConflict", err)
	}
}
