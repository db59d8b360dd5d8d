package sqlite

import (
	"context"
	"database/sql"
	"time"
)

// CountHit adds one to a rate counter and returns its count.
func (s *Store) CountHit(ctx context.Context, key string, windowStart, expiresAt time.Time) (int64, error) {
	var n int64
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		return tx.QueryRowContext(ctx, `INSERT INTO rate_counters (key, window_start, count, expires_at) VALUES (?, ?, 1, ?)
			ON CONFLICT (key, window_start) DO UPDATE SET count = count + 1 RETURNING count`,
			key, micros(windowStart), micros(expiresAt)).Scan(&n)
	})
	return n, wrap(err, "counting a hit of %s", key)
}

// DeleteExpiredRateCounters deletes the counters expired at now.
func (s *Store) DeleteExpiredRateCounters(ctx context.Context, now time.Time) (int64, error) {
	var n int64
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM rate_counters WHERE expires_at <= ?`, micros(now))
		if err == nil {
			n, _ = res.RowsAffected()
		}
		return err
	})
	return n, wrap(err, "deleting expired rate counters")
}
