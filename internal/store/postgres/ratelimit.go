package postgres

import (
	"context"
	"time"
)

// CountHit adds one to a rate counter and returns its count.
func (s *Store) CountHit(ctx context.Context, key string, windowStart, expiresAt time.Time) (int64, error) {
	ctx, cancel := s.op(ctx)
	defer cancel()
	var n int64
	err := s.pool.QueryRow(ctx, `INSERT INTO rate_counters (key, window_start, count, expires_at) VALUES ($1, $2, 1, $3)
		ON CONFLICT (key, window_start) DO UPDATE SET count = rate_counters.count + 1 RETURNING count`,
		key, ts(windowStart), ts(expiresAt)).Scan(&n)
	return n, wrap(err, "counting a hit of %s", key)
}

// DeleteExpiredRateCounters deletes the counters expired at now.
func (s *Store) DeleteExpiredRateCounters(ctx context.Context, now time.Time) (int64, error) {
	ctx, cancel := s.op(ctx)
	defer cancel()
	tag, err := s.pool.Exec(ctx, `DELETE FROM rate_counters WHERE expires_at <= $1`, ts(now))
	if err != nil {
		return 0, wrap(err, "deleting expired rate counters")
	}
	return tag.RowsAffected(), nil
}
