package postgres

import (
	"context"
	"embed"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/trustline/trustline/internal/store"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// migrations lists the embedded files in version order.
func migrations() ([]store.Migration, error) {
	return store.ReadMigrations(migrationFiles, "migrations")
}

// migrate applies the migrations not yet recorded in schema_migrations in
// one transaction. The advisory lock makes instances that start together
// take turns: the first applies, the others then find nothing to do.
func (s *Store) migrate(ctx context.Context) error {
	ms, err := migrations()
	if err != nil {
		return fmt.Errorf("postgres: migrating %s: %w", s.target, err)
	}
	err = s.inLongTx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, lockMigrate); err != nil {
			return fmt.Errorf("taking the migration lock: %w", err)
		}
		if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
			version    INTEGER PRIMARY KEY,
			name       TEXT NOT NULL,
			applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
		)`); err != nil {
			return fmt.Errorf("creating schema_migrations: %w", err)
		}
		var current int
		if err := tx.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM schema_migrations`).Scan(&current); err != nil {
			return fmt.Errorf("reading schema version: %w", err)
		}
		if latest := ms[len(ms)-1].Version; current > latest {
			return fmt.Errorf("database schema version %d is newer than this binary's %d", current, latest)
		}
		for _, m := range ms {
			if m.Version <= current {
				continue
			}
			s.log.InfoContext(ctx, "applying migration", "store", "postgres", "target", s.target, "migration", m.Name)
			if _, err := tx.Exec(ctx, m.SQL); err != nil {
				return fmt.Errorf("applying %s: %w", m.Name, err)
			}
			if _, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version, name) VALUES ($1, $2)`, m.Version, m.Name); err != nil {
				return fmt.Errorf("recording %s: %w", m.Name, err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("postgres: migrating %s: %w", s.target, err)
	}
	return nil
}

// checkSchema is migrate for a read-only store: it changes nothing and
// fails unless the schema is exactly this binary's.
func (s *Store) checkSchema(ctx context.Context) error {
	ms, err := migrations()
	if err != nil {
		return fmt.Errorf("postgres: checking %s: %w", s.target, err)
	}
	latest := ms[len(ms)-1].Version
	var current int
	err = s.pool.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM schema_migrations`).Scan(&current)
	switch {
	case err != nil:
		return fmt.Errorf("postgres: reading the schema version of %s (has a writing role created the store?): %w", s.target, err)
	case current < latest:
		return fmt.Errorf("postgres: %s has schema version %d, this binary needs %d: start a role that writes (api, presigner, crlgen) to migrate it first", s.target, current, latest)
	case current > latest:
		return fmt.Errorf("postgres: database schema version %d is newer than this binary's %d", current, latest)
	}
	return nil
}
