// Package postgres is the production store.Store, on PostgreSQL through
// pgx v5. The embedded default is internal/store/sqlite; both pass
// internal/store/storetest.
//
// Concurrency: the database arbitrates. Compare-and-swap methods
// (UpdateValidation, UpdateOrder, PublishCRL, AcquireLease, Revoke) are
// single conditional statements, correct under READ COMMITTED. Appends to
// the audit chain and to the event log take one transaction-scoped
// advisory lock (the log lock) before assigning Seq, so the chain never
// forks and event Seq order is commit order: a consumer paging with
// EventsAfter never skips an event that committed late.
//
// Connections come from a pgxpool.Pool. Bulk writes: InsertCertificates
// sends rows with COPY; SetOCSPRefresh uses a pgx.Batch.
//
// Schema: migrations/NNNN_name.sql, embedded, applied at Open in one
// transaction under an advisory lock (instances starting together apply
// them once), recorded in schema_migrations.
//
// Who may import it: cmd/ (wiring) and tests. Other packages declare the
// small interfaces they need and receive this Store through them.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/trustline/trustline/internal/store"
)

// Advisory lock keys (pg_advisory_xact_lock). Arbitrary constants; they
// only need to differ from each other and from other users of the database.
const (
	lockMigrate int64 = 0x74726c_6d696772 // "trl" "migr"
	lockLog     int64 = 0x74726c_6c6f6773 // "trl" "logs": audit chain and event log
)

// defaultConnectTimeout bounds each connection attempt when the URL sets
// no connect_timeout, so an unreachable server fails fast even if the
// caller's context has no deadline.
const defaultConnectTimeout = 5 * time.Second

// Config says which database to use.
type Config struct {
	// URL is a libpq connection URL or DSN, e.g.
	// postgres://trustline@db:5432/trustline?sslmode=verify-full.
	// connect_timeout in it overrides the 5 s default.
	URL string
	// MaxConns caps open connections; 0 means max(4, GOMAXPROCS).
	MaxConns int32
	// OpTimeout bounds one operation (a statement, a query and the
	// reading of its rows, or a transaction) whose context has no
	// deadline of its own, so that a database that hangs instead of
	// refusing (a stopped process, a network partition) fails the call
	// with ErrUnavailable rather than holding it. 0 means 5 s; negative
	// means no bound. Bulk loads and migrations are not bounded.
	OpTimeout time.Duration
	// ReadOnly opens the store for a reader that never writes (the
	// origin role), which may connect as a user with SELECT only: no
	// migration is attempted, and a schema other than this binary's is
	// refused (a writing role migrates it first).
	ReadOnly bool
}

// Validate reports what is wrong with c.
func (c Config) Validate() error {
	if c.URL == "" {
		return errors.New("postgres: config: URL is empty")
	}
	if c.MaxConns < 0 {
		return fmt.Errorf("postgres: config: MaxConns %d is negative", c.MaxConns)
	}
	if _, err := pgxpool.ParseConfig(c.URL); err != nil {
		// pgx's message redacts the password.
		return fmt.Errorf("postgres: config: URL: %w", err)
	}
	return nil
}

// defaultOpTimeout is Config.OpTimeout's default.
const defaultOpTimeout = 5 * time.Second

// Store is the PostgreSQL store.Store. It is safe for concurrent use.
type Store struct {
	opTimeout time.Duration // ≤ 0: none
	pool      *pgxpool.Pool
	target    string // host:port/database, for messages (never the password)
	log       *slog.Logger
}

var (
	_ store.Store      = (*Store)(nil)
	_ store.BulkLoader = (*Store)(nil) // for the bench
)

// Open connects, checks the server answers, and brings the schema up to
// date. It fails promptly, naming the server, when the server cannot be
// reached: each connection attempt is bounded by ctx and by the connect
// timeout.
func Open(ctx context.Context, cfg Config, logger *slog.Logger) (*Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		return nil, errors.New("postgres: opening: logger is nil")
	}
	pc, err := pgxpool.ParseConfig(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("postgres: config: URL: %w", err)
	}
	cc := pc.ConnConfig
	if cc.ConnectTimeout == 0 {
		cc.ConnectTimeout = defaultConnectTimeout
	}
	if cfg.MaxConns > 0 {
		pc.MaxConns = cfg.MaxConns
	} else {
		pc.MaxConns = int32(max(4, runtime.GOMAXPROCS(0)))
	}
	target := fmt.Sprintf("%s:%d/%s", cc.Host, cc.Port, cc.Database)
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return nil, fmt.Errorf("postgres: connecting to %s: %w", target, err)
	}
	s := &Store{pool: pool, target: target, log: logger, opTimeout: cfg.OpTimeout}
	if s.opTimeout == 0 {
		s.opTimeout = defaultOpTimeout
	}
	// The pool connects lazily; Ping makes Open fail here, not at first use.
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres: connecting to %s: %s: %w", target, connectProblem(err), err)
	}
	check := s.migrate
	if cfg.ReadOnly {
		check = s.checkSchema
	}
	if err := check(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	return s, nil
}

// connectProblem names, for people, why a first connection failed.
func connectProblem(err error) string {
	var pe *pgconn.PgError
	var ne net.Error
	switch {
	case errors.As(err, &pe):
		return "server rejected the connection"
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return "server did not answer in time"
	case errors.Is(err, context.Canceled):
		return "canceled"
	default:
		return "server unreachable"
	}
}

// Close closes the connections, waiting for those in use to be released.
func (s *Store) Close() error {
	s.pool.Close()
	return nil
}

// querier is what the pool and a transaction share.
type querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// op bounds one operation: by the caller's store.WithOpTimeout (or ctx's
// deadline if sooner), else by OpTimeout when ctx has no deadline. Under
// a WithOpTimeout bound, an operation that times out expires the bound,
// and the following ones fail at once.
func (s *Store) op(ctx context.Context) (context.Context, context.CancelFunc) {
	b := store.OpBoundOf(ctx)
	_, hasDeadline := ctx.Deadline()
	switch {
	case b != nil && b.Expired():
		return context.WithDeadline(ctx, time.Time{}) // already past: fails as unavailable
	case b != nil && b.Timeout > 0:
		octx, cancel := context.WithTimeout(ctx, b.Timeout) // the earlier of the two deadlines wins
		return octx, func() {
			if errors.Is(octx.Err(), context.DeadlineExceeded) {
				b.Expire()
			}
			cancel()
		}
	case b != nil, hasDeadline, s.opTimeout <= 0:
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, s.opTimeout)
}

// inTx runs fn in a transaction bounded by OpTimeout, committing if fn
// returns nil. fn must use the context it is given.
func (s *Store) inTx(ctx context.Context, fn func(ctx context.Context, tx pgx.Tx) error) error {
	ctx, cancel := s.op(ctx)
	defer cancel()
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error { return fn(ctx, tx) })
}

// inLongTx is inTx without the bound, for bulk loads and migrations.
func (s *Store) inLongTx(ctx context.Context, fn func(tx pgx.Tx) error) error {
	return pgx.BeginFunc(ctx, s.pool, fn)
}

// lockLogs serialises appends to the audit chain and the event log until
// the transaction ends.
func lockLogs(ctx context.Context, tx pgx.Tx) error {
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, lockLog); err != nil {
		return fmt.Errorf("taking the log lock: %w", err)
	}
	return nil
}

// wrap adds the package prefix and what was being done, and makes
// constraint violations detectable as the store's sentinel errors.
func wrap(err error, format string, args ...any) error {
	if err == nil {
		return nil
	}
	return store.WrapError("postgres", classify, err, fmt.Sprintf(format, args...))
}

// classify maps PostgreSQL errors to the store's sentinels: a duplicate
// key is ErrDuplicate, a reference to a missing row ErrNotFound, and a
// server that cannot be reached or is going away ErrUnavailable.
func classify(err error) error {
	if errors.Is(err, pgx.ErrNoRows) {
		return store.ErrNotFound
	}
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		if unreachable(err) {
			return store.ErrUnavailable
		}
		return nil
	}
	switch {
	case pe.Code == "23505": // unique_violation
		return store.ErrDuplicate
	case pe.Code == "23503": // foreign_key_violation
		return store.ErrNotFound
	case strings.HasPrefix(pe.Code, "08"), // connection_exception
		pe.Code == "57P01", pe.Code == "57P02", pe.Code == "57P03", // admin or crash shutdown, cannot connect now
		pe.Code == "53300": // too_many_connections
		return store.ErrUnavailable
	}
	return nil
}

// unreachable reports whether err, not from the server, says the server
// could not be reached or answered too late: a failed connection, a
// broken or closed one (pgconn's "safe to retry": nothing was sent), a
// timeout or a deadline. A cancelled context is the caller's doing and is
// not one.
func unreachable(err error) bool {
	var ce *pgconn.ConnectError
	var ne net.Error
	switch {
	case errors.Is(err, context.Canceled):
		return false
	case errors.As(err, &ce), errors.As(err, &ne), pgconn.Timeout(err), pgconn.SafeToRetry(err),
		errors.Is(err, context.DeadlineExceeded), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, pgconn.ErrConnClosed),
		errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return true
	}
	return false
}

// ts is how a time is stored: UTC, microseconds (what TIMESTAMPTZ keeps;
// truncating here makes both adapters round the same way).
func ts(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

// fromTS reads a stored time back in UTC, the zero time as time.Time{}.
func fromTS(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return t.UTC()
}

// bytesOrNil reads a BYTEA column: empty and NULL both come back nil.
func bytesOrNil(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return b
}

// scanner is what pgx.Row and pgx.Rows share.
type scanner interface {
	Scan(dest ...any) error
}

// collect reads every row with scan and closes rows.
func collect[T any](rows pgx.Rows, scan func(scanner) (T, error)) ([]T, error) {
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// query runs a query on a pooled connection and collects its rows.
func query[T any](ctx context.Context, s *Store, scan func(scanner) (T, error), sql string, args ...any) ([]T, error) {
	ctx, cancel := s.op(ctx)
	defer cancel()
	rows, err := s.pool.Query(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	return collect(rows, scan)
}

// queryRow runs a one-row query on a pooled connection.
func queryRow[T any](ctx context.Context, s *Store, scan func(scanner) (T, error), sql string, args ...any) (T, error) {
	ctx, cancel := s.op(ctx)
	defer cancel()
	return scan(s.pool.QueryRow(ctx, sql, args...))
}

// exec runs a statement on a pooled connection.
func (s *Store) exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	ctx, cancel := s.op(ctx)
	defer cancel()
	return s.pool.Exec(ctx, sql, args...)
}
