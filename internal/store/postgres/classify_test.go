package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/trustline/trustline/internal/store"
)

// TestClassify: what the API answers 503 (ErrUnavailable) rather than
// 500 or 409 is decided here.
func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want error
	}{
		{"no rows", pgx.ErrNoRows, store.ErrNotFound},
		{"unique violation", &pgconn.PgError{Code: "23505"}, store.ErrDuplicate},
		{"foreign key", &pgconn.PgError{Code: "23503"}, store.ErrNotFound},
		{"admin shutdown", &pgconn.PgError{Code: "57P01"}, store.ErrUnavailable},
		{"starting up", &pgconn.PgError{Code: "57P03"}, store.ErrUnavailable},
		{"connection failure", &pgconn.PgError{Code: "08006"}, store.ErrUnavailable},
		{"too many connections", &pgconn.PgError{Code: "53300"}, store.ErrUnavailable},
		{"syntax error", &pgconn.PgError{Code: "42601"}, nil},
		{"refused", fmt.Errorf("dial: %w", &net.OpError{Op: "dial", Err: syscall.ECONNREFUSED}), store.ErrUnavailable},
		{"reset", fmt.Errorf("read: %w", syscall.ECONNRESET), store.ErrUnavailable},
		{"EOF", fmt.Errorf("reading: %w", io.ErrUnexpectedEOF), store.ErrUnavailable},
		{"connection closed under a transaction", fmt.Errorf("rollback: %w", pgconn.ErrConnClosed), store.ErrUnavailable},
		{"deadline", fmt.Errorf("query: %w", context.DeadlineExceeded), store.ErrUnavailable},
		{"cancelled by the caller", fmt.Errorf("query: %w", context.Canceled), nil},
		{"anything else", errors.New("boom"), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := classify(tc.err); got != tc.want {
				t.Errorf("classify(%v) = %v, want %v", tc.err, got, tc.want)
			}
		})
	}
}
