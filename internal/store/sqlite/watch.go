package sqlite

import (
	"context"
	"database/sql"
	"strings"
	"time"

	"github.com/trustline/trustline/internal/store"
)

const watchFindingCols = `at, watcher, object, kind, url, serial, issuer_id, detail, http_status, header, body`

// watchFindingBriefCols leaves the evidence out.
const watchFindingBriefCols = `at, watcher, object, kind, url, serial, issuer_id, detail, http_status, NULL, NULL`

// RecordWatchFindings stores fs in one transaction, each with the next id
// (AUTOINCREMENT: never reused). The single writer commits them in id
// order.
func (s *Store) RecordWatchFindings(ctx context.Context, fs []store.WatchFinding) error {
	if len(fs) == 0 {
		return nil
	}
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		st, err := tx.PrepareContext(ctx, `INSERT INTO watch_findings (`+watchFindingCols+`)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
		if err != nil {
			return err
		}
		defer st.Close()
		for _, f := range fs {
			if _, err := st.ExecContext(ctx, micros(f.At), findingText(f.Watcher), findingText(f.Object),
				findingText(f.Kind), findingText(f.URL), findingText(f.Serial), findingText(f.Issuer),
				findingText(f.Detail), int64(f.HTTPStatus), bytesOrNil(f.Header), bytesOrNil(f.Body)); err != nil {
				return err
			}
		}
		return nil
	})
	return wrap(err, "recording %d watch findings", len(fs))
}

// WatchFindings lists the findings fetched at or after since with id above
// afterID, in id order, at most limit (≤ 0: 1000).
func (s *Store) WatchFindings(ctx context.Context, since time.Time, afterID int64, limit int, evidence bool) ([]store.WatchFinding, error) {
	if limit <= 0 {
		limit = 1000
	}
	cols := watchFindingCols
	if !evidence {
		cols = watchFindingBriefCols
	}
	rows, err := s.r.QueryContext(ctx, `SELECT id, `+cols+` FROM watch_findings
		WHERE at >= ? AND id > ? ORDER BY id LIMIT ?`, micros(since), afterID, limit)
	if err != nil {
		return nil, wrap(err, "listing watch findings since %s after %d", since, afterID)
	}
	out, err := collect(rows, func(sc scanner) (store.WatchFinding, error) {
		var f store.WatchFinding
		var at, code int64
		if err := sc.Scan(&f.ID, &at, &f.Watcher, &f.Object, &f.Kind, &f.URL, &f.Serial, &f.Issuer, &f.Detail,
			&code, &f.Header, &f.Body); err != nil {
			return store.WatchFinding{}, err
		}
		f.At, f.HTTPStatus, f.Header, f.Body = fromMicros(at), int(code), bytesOrNil(f.Header), bytesOrNil(f.Body)
		return f, nil
	})
	return out, wrap(err, "listing watch findings since %s after %d", since, afterID)
}

// DeleteWatchFindings deletes the findings fetched before before.
func (s *Store) DeleteWatchFindings(ctx context.Context, before time.Time) (int64, error) {
	var n int64
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM watch_findings WHERE at < ?`, micros(before))
		if err == nil {
			n, err = res.RowsAffected()
		}
		return err
	})
	return n, wrap(err, "deleting watch findings fetched before %s", before)
}

// findingText is how a finding's text field is stored: valid UTF-8
// without NUL (what PostgreSQL's TEXT holds), invalid bytes and NULs
// replaced with U+FFFD, so that both adapters keep the same string.
func findingText(s string) string {
	return strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "\uFFFD")
}
