// Package storeopen opens the store a command names, the one way every
// command does: PostgreSQL when a URL is given (the connection bounded by
// ConnectTimeout), else the SQLite file. cmd/trustline's roles, init, the
// root CRL ceremony, dev mode and the bench commands use it.
package storeopen

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/trustline/trustline/internal/store"
	"github.com/trustline/trustline/internal/store/postgres"
	"github.com/trustline/trustline/internal/store/sqlite"
)

// ConnectTimeout bounds reaching PostgreSQL and migrating its schema.
const ConnectTimeout = 15 * time.Second

// Config names the store.
type Config struct {
	// Postgres is a PostgreSQL URL; when set, SQLite is not used.
	Postgres string
	// ReadOnly opens PostgreSQL without migrating (postgres.Config).
	ReadOnly bool
	// SQLite is the database file's path, used when Postgres is empty.
	SQLite string
	// MustExist refuses a SQLite file that is not there instead of
	// creating it.
	MustExist bool
}

// Kind names the adapter a Config opens: "postgres" or "sqlite".
func (c Config) Kind() string {
	if c.Postgres != "" {
		return "postgres"
	}
	return "sqlite"
}

// ErrNoStore: MustExist was set and the SQLite file is not there.
var ErrNoStore = errors.New("no store there")

// Open opens the store cfg names.
func Open(ctx context.Context, cfg Config, log *slog.Logger) (store.Store, error) {
	if cfg.Postgres != "" {
		octx, cancel := context.WithTimeout(ctx, ConnectTimeout)
		defer cancel()
		s, err := postgres.Open(octx, postgres.Config{URL: cfg.Postgres, ReadOnly: cfg.ReadOnly}, log)
		if err != nil {
			return nil, fmt.Errorf("store: %w", err)
		}
		return s, nil
	}
	if cfg.SQLite == "" {
		return nil, errors.New("store: neither a PostgreSQL URL nor a SQLite path")
	}
	if cfg.MustExist {
		if _, err := os.Stat(cfg.SQLite); err != nil {
			return nil, fmt.Errorf("store: %s: %w (%v)", cfg.SQLite, ErrNoStore, err)
		}
	}
	s, err := sqlite.Open(ctx, sqlite.Config{Path: cfg.SQLite}, log)
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	return s, nil
}
