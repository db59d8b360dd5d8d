// Package sqlite is the embedded default store.Store: one SQLite file in WAL
// mode, through database/sql and modernc.org/sqlite (pure Go, no cgo). It
// serves `trustline dev` and single-node installations; PostgreSQL
// (internal/store/postgres) is the production adapter. Both pass
// internal/store/storetest.
//
// Concurrency: every write goes through a pool of exactly one connection,
// whose transactions begin IMMEDIATE (_txlock=immediate). SQLite admits one
// writer at a time anyway; funnelling writers through one connection makes
// Go queue them (bounded by each caller's context) instead of SQLite
// answering SQLITE_BUSY, and BEGIN IMMEDIATE takes the write lock before the
// first read, so a read-then-write transaction (the version checks, the
// audit chain, the CRL compare-and-swap) cannot be overtaken between its
// read and its write, not even by another process on the same file
// (busy_timeout makes that process wait). Reads use a separate pool of
// query_only connections, which WAL lets run beside the writer.
//
// Schema: migrations/NNNN_name.sql, embedded, applied at Open in one
// transaction and recorded in schema_migrations. Times are stored as
// microseconds since the Unix epoch, UTC.
//
// Who may import it: cmd/ (wiring) and tests. Other packages declare the
// small interfaces they need and receive this Store through them.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	msqlite "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/trustline/trustline/internal/store"
)

// busyTimeout is how long a connection waits for another process's lock
// before SQLITE_BUSY. Writers in this process queue in database/sql
// instead, bounded by their context.
const busyTimeout = 10 * time.Second

// Config says where the database lives.
type Config struct {
	// Path is the database file, created if missing. Its directory must
	// exist and be writable: WAL keeps its -wal and -shm files beside it.
	// It may not contain '?' (the driver reads options after one).
	Path string
}

// Validate reports what is wrong with c.
func (c Config) Validate() error {
	switch {
	case c.Path == "":
		return errors.New("sqlite: config: Path is empty")
	case strings.ContainsRune(c.Path, '?'):
		return fmt.Errorf("sqlite: config: Path %q contains '?'", c.Path)
	case c.Path == ":memory:" || strings.HasPrefix(c.Path, "file:"):
		return fmt.Errorf("sqlite: config: Path %q must be a plain file path (the store opens it twice, for reads and writes)", c.Path)
	}
	return nil
}

// Store is the SQLite store.Store. It is safe for concurrent use.
type Store struct {
	w    *sql.DB // one connection: the single writer
	r    *sql.DB // query_only connections for reads
	path string
	log  *slog.Logger
}

var (
	_ store.Store      = (*Store)(nil)
	_ store.BulkLoader = (*Store)(nil) // for the bench
)

// Open opens (creating if needed) the database at cfg.Path and brings its
// schema up to date. It fails with a message naming the problem when the
// directory is missing or not writable, or the file is not a database.
func Open(ctx context.Context, cfg Config, logger *slog.Logger) (*Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		return nil, errors.New("sqlite: opening: logger is nil")
	}
	path, err := filepath.Abs(cfg.Path)
	if err != nil {
		return nil, fmt.Errorf("sqlite: opening %s: %w", cfg.Path, err)
	}
	if err := checkDir(filepath.Dir(path)); err != nil {
		return nil, fmt.Errorf("sqlite: opening %s: %w", path, err)
	}
	if fi, err := os.Stat(path); err == nil && !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("sqlite: opening %s: not a regular file", path)
	}
	if err := ownerOnly(path, logger); err != nil {
		return nil, fmt.Errorf("sqlite: opening %s: %w", path, err)
	}

	common := "_pragma=busy_timeout(" + fmt.Sprint(busyTimeout.Milliseconds()) + ")&_pragma=foreign_keys(1)"
	// synchronous=NORMAL is durable across process crashes in WAL mode; a
	// power loss may lose the last transactions but never corrupts. The
	// writer's 64 MiB page cache (default 2 MiB) keeps bulk inserts from
	// spilling index pages mid-transaction: about 1.5x the insert rate.
	w, err := sql.Open("sqlite", path+"?"+common+"&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_pragma=cache_size(-65536)&_txlock=immediate")
	if err != nil {
		return nil, fmt.Errorf("sqlite: opening %s: %w", path, err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxIdleTime(0)
	w.SetConnMaxLifetime(0)
	s := &Store{w: w, path: path, log: logger}
	if err := s.checkFileRetrying(ctx); err != nil {
		w.Close()
		return nil, err
	}
	if err := s.migrate(ctx); err != nil {
		w.Close()
		return nil, err
	}
	r, err := sql.Open("sqlite", path+"?"+common+"&_pragma=query_only(1)")
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("sqlite: opening %s for reading: %w", path, err)
	}
	n := max(4, runtime.GOMAXPROCS(0))
	r.SetMaxOpenConns(n)
	r.SetMaxIdleConns(n)
	if err := r.PingContext(ctx); err != nil {
		w.Close()
		r.Close()
		return nil, fmt.Errorf("sqlite: opening %s for reading: %w", path, err)
	}
	s.r = r
	return s, nil
}

// checkDir fails unless dir is a directory this process can create files
// in. Permission bits do not answer that (root, ACLs, read-only mounts), so
// it creates and removes a probe file.
func checkDir(dir string) error {
	fi, err := os.Stat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("directory %s does not exist", dir)
	}
	if err != nil {
		return fmt.Errorf("checking directory %s: %w", dir, err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("%s is not a directory", dir)
	}
	f, err := os.CreateTemp(dir, ".trustline-probe-*")
	if err != nil {
		return fmt.Errorf("directory %s is not writable: %w", dir, err)
	}
	name := f.Name()
	f.Close()
	if err := os.Remove(name); err != nil {
		return fmt.Errorf("directory %s: removing probe file: %w", dir, err)
	}
	return nil
}

// checkFileRetrying runs checkFile until the file is not busy. Switching a
// new file to WAL takes an exclusive lock, and SQLite answers SQLITE_BUSY
// at once, without its busy handler, when another process is doing the
// same: two instances opening one new file together must not fail.
func (s *Store) checkFileRetrying(ctx context.Context) error {
	deadline := time.Now().Add(busyTimeout)
	wait := 5 * time.Millisecond
	for {
		err := s.checkFile(ctx)
		var se *msqlite.Error
		busy := errors.As(err, &se) && (se.Code()&0xff == sqlite3.SQLITE_BUSY || se.Code()&0xff == sqlite3.SQLITE_LOCKED)
		if !busy || time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(wait):
		}
		wait = min(2*wait, 200*time.Millisecond)
	}
}

// checkFile opens the first connection (which applies the PRAGMAs) and
// reads the schema, the first moment SQLite looks at the file's contents.
func (s *Store) checkFile(ctx context.Context) error {
	var mode string
	err := s.w.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode)
	if err == nil {
		var n int
		err = s.w.QueryRowContext(ctx, "SELECT count(*) FROM sqlite_schema").Scan(&n)
	}
	var se *msqlite.Error
	if errors.As(err, &se) && se.Code()&0xff == sqlite3.SQLITE_NOTADB {
		return fmt.Errorf("sqlite: opening %s: file is not an SQLite database: %w", s.path, err)
	}
	if err != nil {
		return fmt.Errorf("sqlite: opening %s: %w", s.path, err)
	}
	if !strings.EqualFold(mode, "wal") {
		return fmt.Errorf("sqlite: opening %s: journal_mode is %q, want wal", s.path, mode)
	}
	return nil
}

// Path is the database file's absolute path.
func (s *Store) Path() string { return s.path }

// Close closes both pools.
func (s *Store) Close() error {
	var errs []error
	if s.r != nil {
		errs = append(errs, s.r.Close())
	}
	errs = append(errs, s.w.Close())
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("sqlite: closing %s: %w", s.path, err)
	}
	return nil
}

// inTx runs fn in a write transaction (BEGIN IMMEDIATE), committing if fn
// returns nil.
func (s *Store) inTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}

// wrap adds the package prefix and what was being done, and makes
// constraint violations detectable as the store's sentinel errors.
func wrap(err error, format string, args ...any) error {
	if err == nil {
		return nil
	}
	return store.WrapError("sqlite", classify, err, fmt.Sprintf(format, args...))
}

// classify maps SQLite constraint errors to the store's sentinels: a
// duplicate key is ErrDuplicate, a reference to a missing row ErrNotFound.
func classify(err error) error {
	if errors.Is(err, sql.ErrNoRows) {
		return store.ErrNotFound
	}
	var se *msqlite.Error
	if !errors.As(err, &se) {
		return nil
	}
	switch se.Code() {
	case sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY, sqlite3.SQLITE_CONSTRAINT_UNIQUE:
		return store.ErrDuplicate
	case sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY:
		return store.ErrNotFound
	}
	return nil
}

// ownerOnly makes the database file, and its WAL and shared-memory files
// (which SQLite creates with the database file's mode), readable by the
// owner only: they hold API key hashes, validation values and the audit
// log. A new file is created 0600; an existing one looser than that is
// tightened, and the change logged.
func ownerOnly(path string, log *slog.Logger) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err == nil {
		return f.Close()
	}
	if !errors.Is(err, os.ErrExist) {
		return err
	}
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		fi, err := os.Stat(p)
		if err != nil || fi.Mode().Perm()&0o077 == 0 {
			continue
		}
		if err := os.Chmod(p, 0o600); err != nil {
			return fmt.Errorf("tightening %s to 0600: %w", p, err)
		}
		log.Warn("store file was readable by others; tightened to 0600", "file", p, "was", fmt.Sprintf("%04o", fi.Mode().Perm()))
	}
	return nil
}

// micros is how times are stored. The zero time stays the zero instant.
func micros(t time.Time) int64 { return t.UnixMicro() }

// zeroMicros is time.Time{}.UnixMicro() (0001-01-01 UTC); TestZeroMicros
// checks it.
const zeroMicros int64 = -62135596800000000

// fromMicros is the inverse of micros, in UTC.
func fromMicros(us int64) time.Time {
	if us == zeroMicros {
		return time.Time{}
	}
	return time.UnixMicro(us).UTC()
}

// bytesOrNil reads a BLOB column: empty and NULL both come back nil, so
// callers see one "empty" whatever they stored.
func bytesOrNil(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return b
}

// scanner is what *sql.Row and *sql.Rows share.
type scanner interface {
	Scan(dest ...any) error
}
