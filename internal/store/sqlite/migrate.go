package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"fmt"

	"github.com/trustline/trustline/internal/store"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// migrations lists the embedded files in version order.
func migrations() ([]store.Migration, error) {
	return store.ReadMigrations(migrationFiles, "migrations")
}

// migrate applies the migrations not yet recorded in schema_migrations, all
// in one write transaction: a failure leaves the schema as it was.
// Foreign keys are off while they run, so that a migration may rebuild a
// table other tables refer to (SQLite's way to change a column's
// constraints), and every foreign key is checked before the commit.
func (s *Store) migrate(ctx context.Context) error {
	ms, err := migrations()
	if err != nil {
		return fmt.Errorf("sqlite: migrating %s: %w", s.path, err)
	}
	conn, err := s.w.Conn(ctx)
	if err != nil {
		return fmt.Errorf("sqlite: migrating %s: %w", s.path, err)
	}
	defer conn.Close()
	// The pragma is a no-op inside a transaction: it is set on the
	// connection before, and set back after.
	if _, err := conn.ExecContext(ctx, `PRAGMA foreign_keys = OFF`); err != nil {
		return fmt.Errorf("sqlite: migrating %s: %w", s.path, err)
	}
	defer conn.ExecContext(context.WithoutCancel(ctx), `PRAGMA foreign_keys = ON`)
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlite: migrating %s: %w", s.path, err)
	}
	if err := s.applyMigrations(ctx, tx, ms); err != nil {
		tx.Rollback()
		return fmt.Errorf("sqlite: migrating %s: %w", s.path, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlite: migrating %s: %w", s.path, err)
	}
	return nil
}

func (s *Store) applyMigrations(ctx context.Context, tx *sql.Tx, ms []store.Migration) error {
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    INTEGER PRIMARY KEY,
		name       TEXT NOT NULL,
		applied_at INTEGER NOT NULL DEFAULT (unixepoch())
	) STRICT`); err != nil {
		return fmt.Errorf("creating schema_migrations: %w", err)
	}
	var current int
	if err := tx.QueryRowContext(ctx, `SELECT coalesce(max(version), 0) FROM schema_migrations`).Scan(&current); err != nil {
		return fmt.Errorf("reading schema version: %w", err)
	}
	if latest := ms[len(ms)-1].Version; current > latest {
		return fmt.Errorf("database schema version %d is newer than this binary's %d", current, latest)
	}
	for _, m := range ms {
		if m.Version <= current {
			continue
		}
		s.log.InfoContext(ctx, "applying migration", "store", "sqlite", "path", s.path, "migration", m.Name)
		if _, err := tx.ExecContext(ctx, m.SQL); err != nil {
			return fmt.Errorf("applying %s: %w", m.Name, err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, name) VALUES (?, ?)`, m.Version, m.Name); err != nil {
			return fmt.Errorf("recording %s: %w", m.Name, err)
		}
	}
	var broken int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM pragma_foreign_key_check`).Scan(&broken); err != nil {
		return fmt.Errorf("checking foreign keys: %w", err)
	}
	if broken > 0 {
		return fmt.Errorf("the migrations would leave %d rows referring to missing rows", broken)
	}
	return nil
}
