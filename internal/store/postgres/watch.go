package postgres

import (
	"context"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/trustline/trustline/internal/store"
)

// lockWatch (pg_advisory_xact_lock) serialises RecordWatchFindings, so
// that watch_findings ids, taken from the sequence under it, are assigned
// in commit order: a reader paging by id never skips a late commit.
const lockWatch int64 = 0x74726c_77617463 // "trl" "watc"

const watchFindingCols = `at, watcher, object, kind, url, serial, issuer_id, detail, http_status, header, body`

// watchFindingBriefCols leaves the evidence out.
const watchFindingBriefCols = `at, watcher, object, kind, url, serial, issuer_id, detail, http_status, NULL::bytea, NULL::bytea`

// RecordWatchFindings stores fs in one transaction, under the watch lock,
// sent as one batch; each takes the next id of the sequence.
func (s *Store) RecordWatchFindings(ctx context.Context, fs []store.WatchFinding) error {
	if len(fs) == 0 {
		return nil
	}
	err := s.inTx(ctx, func(ctx context.Context, tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, lockWatch); err != nil {
			return err
		}
		var b pgx.Batch
		for _, f := range fs {
			b.Queue(`INSERT INTO watch_findings (`+watchFindingCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
				ts(f.At), findingText(f.Watcher), findingText(f.Object), findingText(f.Kind), findingText(f.URL),
				findingText(f.Serial), findingText(f.Issuer), findingText(f.Detail), f.HTTPStatus,
				bytesOrNil(f.Header), bytesOrNil(f.Body))
		}
		return tx.SendBatch(ctx, &b).Close()
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
	out, err := query(ctx, s, func(sc scanner) (store.WatchFinding, error) {
		var f store.WatchFinding
		var code int32
		if err := sc.Scan(&f.ID, &f.At, &f.Watcher, &f.Object, &f.Kind, &f.URL, &f.Serial, &f.Issuer, &f.Detail,
			&code, &f.Header, &f.Body); err != nil {
			return store.WatchFinding{}, err
		}
		f.At, f.HTTPStatus, f.Header, f.Body = fromTS(f.At), int(code), bytesOrNil(f.Header), bytesOrNil(f.Body)
		return f, nil
	}, `SELECT id, `+cols+` FROM watch_findings
		WHERE at >= $1 AND id > $2 ORDER BY id LIMIT $3`, ts(since), afterID, limit)
	return out, wrap(err, "listing watch findings since %s after %d", since, afterID)
}

// DeleteWatchFindings deletes the findings fetched before before.
func (s *Store) DeleteWatchFindings(ctx context.Context, before time.Time) (int64, error) {
	tag, err := s.exec(ctx, `DELETE FROM watch_findings WHERE at < $1`, ts(before))
	if err != nil {
		return 0, wrap(err, "deleting watch findings fetched before %s", before)
	}
	return tag.RowsAffected(), nil
}

// findingText is how a finding's text field is stored: valid UTF-8
// without NUL (what TEXT holds), invalid bytes and NULs replaced with
// U+FFFD, so that both adapters keep the same string.
func findingText(s string) string {
	return strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "\uFFFD")
}
