package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/trustline/trustline/internal/issuerid"
	"github.com/trustline/trustline/internal/reason"
	"github.com/trustline/trustline/internal/serial"
	"github.com/trustline/trustline/internal/shard"
	"github.com/trustline/trustline/internal/status"
	"github.com/trustline/trustline/internal/store"
)

// Defaults when a caller passes no limit, and the page size of the scans.
const (
	defaultCertLimit     = 1000
	defaultEventLimit    = 1000
	defaultExpiringLimit = 100
	scanPage             = 4096
)

// ReserveSerial records a serial before anything carrying it is signed.
func (s *Store) ReserveSerial(ctx context.Context, sn serial.Serial, issuer issuerid.ID, at time.Time) error {
	_, err := s.exec(ctx, `INSERT INTO serials (serial, issuer_id, reserved_at) VALUES ($1, $2, $3)`,
		string(sn), string(issuer), ts(at))
	return wrap(err, "reserving serial %s", sn)
}

var certColumns = []string{"serial", "issuer_id", "shard", "account_id", "order_id", "der", "not_before", "not_after",
	"status", "revoked_at", "reason", "ocsp_refresh_at", "precertificate"}

const certCols = `serial, issuer_id, shard, account_id, order_id, der, not_before, not_after,
	status, revoked_at, reason, ocsp_refresh_at, precertificate`

func certArgs(c *store.Certificate) []any {
	return []any{string(c.Serial), string(c.IssuerID), int32(c.Shard), c.AccountID, c.OrderID, c.DER,
		ts(c.NotBefore), ts(c.NotAfter), int16(c.Status), ts(c.RevokedAt), int16(c.Reason), ts(c.OCSPRefreshAt),
		c.Precertificate}
}

func scanCert(sc scanner) (store.Certificate, error) {
	var c store.Certificate
	var ser, iss string
	var sh int32
	var st, rs int16
	err := sc.Scan(&ser, &iss, &sh, &c.AccountID, &c.OrderID, &c.DER, &c.NotBefore, &c.NotAfter, &st, &c.RevokedAt, &rs, &c.OCSPRefreshAt,
		&c.Precertificate)
	if err != nil {
		return store.Certificate{}, err
	}
	c.Serial, c.IssuerID, c.Shard = serial.Serial(ser), issuerid.ID(iss), shard.Index(sh)
	c.DER = bytesOrNil(c.DER)
	c.NotBefore, c.NotAfter, c.RevokedAt, c.OCSPRefreshAt = fromTS(c.NotBefore), fromTS(c.NotAfter), fromTS(c.RevokedAt), fromTS(c.OCSPRefreshAt)
	c.Status, c.Reason = status.Status(st), reason.Reason(rs)
	return c, nil
}

const summaryCols = `serial, issuer_id, shard, account_id, not_after, status, revoked_at, reason, ocsp_refresh_at`

func scanSummary(sc scanner) (store.CertSummary, error) {
	var c store.CertSummary
	var ser, iss string
	var sh int32
	var st, rs int16
	if err := sc.Scan(&ser, &iss, &sh, &c.AccountID, &c.NotAfter, &st, &c.RevokedAt, &rs, &c.OCSPRefreshAt); err != nil {
		return store.CertSummary{}, err
	}
	c.Serial, c.IssuerID, c.Shard = serial.Serial(ser), issuerid.ID(iss), shard.Index(sh)
	c.NotAfter, c.RevokedAt, c.OCSPRefreshAt = fromTS(c.NotAfter), fromTS(c.RevokedAt), fromTS(c.OCSPRefreshAt)
	c.Status, c.Reason = status.Status(st), reason.Reason(rs)
	return c, nil
}

const insertEvent = `INSERT INTO events (kind, serial, issuer_id, shard, at) VALUES ($1, $2, $3, $4, $5)`

// InsertCertificate stores an issued certificate whose serial was reserved
// for the same issuer, its EventIssued (At: a.At, or NotBefore if a.At is
// zero) and the audit entry a, in one transaction. An unreserved serial is
// ErrNotFound; a stored one ErrDuplicate.
func (s *Store) InsertCertificate(ctx context.Context, c store.Certificate, a store.AuditEntry) error {
	err := s.inTx(ctx, func(ctx context.Context, tx pgx.Tx) error {
		var reservedFor string
		err := tx.QueryRow(ctx, `SELECT issuer_id FROM serials WHERE serial = $1`, string(c.Serial)).Scan(&reservedFor)
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("serial was never reserved: %w", store.ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("reading reservation: %w", err)
		}
		if reservedFor != string(c.IssuerID) {
			return fmt.Errorf("serial was reserved for issuer %q, not %q", reservedFor, c.IssuerID)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO certificates (`+certCols+`)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)`, certArgs(&c)...); err != nil {
			return err
		}
		if len(c.KeyHash) > 0 {
			if _, err := tx.Exec(ctx, `INSERT INTO certificate_keys (key_hash, serial) VALUES ($1, $2)`, c.KeyHash, string(c.Serial)); err != nil {
				return fmt.Errorf("indexing the key: %w", err)
			}
		}
		if err := lockLogs(ctx, tx); err != nil {
			return err
		}
		at := a.At
		if at.IsZero() {
			at = c.NotBefore
		}
		if _, err := tx.Exec(ctx, insertEvent, string(store.EventIssued), string(c.Serial),
			string(c.IssuerID), int32(c.Shard), ts(at)); err != nil {
			return fmt.Errorf("appending event: %w", err)
		}
		_, err = appendAudit(ctx, tx, a)
		return err
	})
	return wrap(err, "inserting certificate %s", c.Serial)
}

// InsertCertificates is the bulk path for load tests: all of cs and their
// EventIssued (At: NotBefore) in one transaction, both sent with COPY. It
// neither checks reservations nor writes audit entries.
func (s *Store) InsertCertificates(ctx context.Context, cs []store.Certificate) error {
	if len(cs) == 0 {
		return nil
	}
	err := s.inLongTx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"certificates"}, certColumns,
			pgx.CopyFromSlice(len(cs), func(i int) ([]any, error) { return certArgs(&cs[i]), nil })); err != nil {
			return err
		}
		if err := lockLogs(ctx, tx); err != nil {
			return err
		}
		_, err := tx.CopyFrom(ctx, pgx.Identifier{"events"}, []string{"kind", "serial", "issuer_id", "shard", "at"},
			pgx.CopyFromSlice(len(cs), func(i int) ([]any, error) {
				c := &cs[i]
				return []any{string(store.EventIssued), string(c.Serial), string(c.IssuerID), int32(c.Shard), ts(c.NotBefore)}, nil
			}))
		if err != nil {
			return fmt.Errorf("appending events: %w", err)
		}
		return nil
	})
	return wrap(err, "inserting %d certificates", len(cs))
}

// Certificate returns the certificate with that serial.
func (s *Store) Certificate(ctx context.Context, sn serial.Serial) (store.Certificate, error) {
	c, err := queryRow(ctx, s, scanCert, `SELECT `+certCols+` FROM certificates WHERE serial = $1`, string(sn))
	return c, wrap(err, "reading certificate %s", sn)
}

// CompleteCertificate replaces the precertificate stored for sn with the
// final certificate der, keeps the precertificate with sctList in
// precertificates (created at at), and appends audit, in one transaction.
// ErrNotFound if there is no certificate sn, ErrConflict if its row holds
// no precertificate. Status, revocation and events are left as they are.
// The row is locked (FOR UPDATE) before it is read, so of concurrent
// completions one wins and the others, reading the row it committed, see
// ErrConflict; the row lock is taken before the log lock, as Revoke does.
func (s *Store) CompleteCertificate(ctx context.Context, sn serial.Serial, der, sctList []byte, at time.Time, audit store.AuditEntry) error {
	err := s.inTx(ctx, func(ctx context.Context, tx pgx.Tx) error {
		var pre []byte
		var isPre bool
		err := tx.QueryRow(ctx, `SELECT der, precertificate FROM certificates WHERE serial = $1 FOR UPDATE`, string(sn)).Scan(&pre, &isPre)
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("no such certificate: %w", store.ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("reading the certificate: %w", err)
		}
		if !isPre {
			return fmt.Errorf("the certificate holds no precertificate (completed already, or never one): %w", store.ErrConflict)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO precertificates (serial, der, sct_list, created_at) VALUES ($1, $2, $3, $4)`,
			string(sn), pre, sctList, ts(at)); err != nil {
			return fmt.Errorf("keeping the precertificate: %w", err)
		}
		tag, err := tx.Exec(ctx, `UPDATE certificates SET der = $1, precertificate = false WHERE serial = $2 AND precertificate`,
			der, string(sn))
		if err != nil {
			return fmt.Errorf("storing the final certificate: %w", err)
		}
		if n := tag.RowsAffected(); n != 1 {
			return fmt.Errorf("storing the final certificate: %d rows updated: %w", n, store.ErrConflict)
		}
		if err := lockLogs(ctx, tx); err != nil {
			return err
		}
		_, err = appendAudit(ctx, tx, audit)
		return err
	})
	return wrap(err, "completing certificate %s", sn)
}

// Precertificate returns the precertificate kept for sn when its final
// certificate replaced it; ErrNotFound if there is none.
func (s *Store) Precertificate(ctx context.Context, sn serial.Serial) (store.Precertificate, error) {
	p, err := queryRow(ctx, s, func(sc scanner) (store.Precertificate, error) {
		var p store.Precertificate
		var ser string
		if err := sc.Scan(&ser, &p.DER, &p.SCTList, &p.CreatedAt); err != nil {
			return store.Precertificate{}, err
		}
		p.Serial, p.CreatedAt = serial.Serial(ser), fromTS(p.CreatedAt)
		p.DER, p.SCTList = bytesOrNil(p.DER), bytesOrNil(p.SCTList)
		return p, nil
	}, `SELECT serial, der, sct_list, created_at FROM precertificates WHERE serial = $1`, string(sn))
	return p, wrap(err, "reading the precertificate of %s", sn)
}

// Revoke marks a good certificate revoked, appends its EventRevoked (At:
// r.At) and the audit entry a in one transaction, and returns the row.
// Concurrent revocations of one certificate: the UPDATE's condition is
// re-checked after the first commits, so exactly one succeeds.
func (s *Store) Revoke(ctx context.Context, r store.Revocation, a store.AuditEntry) (store.Certificate, error) {
	var c store.Certificate
	err := s.inTx(ctx, func(ctx context.Context, tx pgx.Tx) error {
		var err error
		c, err = scanCert(tx.QueryRow(ctx, `UPDATE certificates SET status = $1, revoked_at = $2, reason = $3
			WHERE serial = $4 AND status <> $1 RETURNING `+certCols,
			int16(status.Revoked), ts(r.At), int16(r.Reason), string(r.Serial)))
		if errors.Is(err, pgx.ErrNoRows) {
			var one int
			err := tx.QueryRow(ctx, `SELECT 1 FROM certificates WHERE serial = $1`, string(r.Serial)).Scan(&one)
			if errors.Is(err, pgx.ErrNoRows) {
				return store.ErrNotFound
			}
			if err != nil {
				return err
			}
			return store.ErrAlreadyRevoked
		}
		if err != nil {
			return err
		}
		if err := lockLogs(ctx, tx); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, insertEvent, string(store.EventRevoked), string(c.Serial),
			string(c.IssuerID), int32(c.Shard), ts(r.At)); err != nil {
			return fmt.Errorf("appending event: %w", err)
		}
		_, err = appendAudit(ctx, tx, a)
		return err
	})
	if err != nil {
		return store.Certificate{}, wrap(err, "revoking certificate %s", r.Serial)
	}
	return c, nil
}

// ScanShard calls fn for each certificate of one shard, in serial order.
// It reads in pages and holds no connection or transaction while fn runs,
// so fn may use the store; rows changed during the scan may or may not be
// seen. An error from fn stops the scan and is returned as is.
func (s *Store) ScanShard(ctx context.Context, q store.ShardQuery, fn func(store.CertSummary) error) error {
	// The revoked filter is a literal so the planner can match the partial
	// index certificates_shard_revoked.
	sqlq := `SELECT ` + summaryCols + ` FROM certificates WHERE issuer_id = $1 AND shard = $2 AND serial > $3`
	if q.RevokedOnly {
		sqlq += fmt.Sprintf(` AND status = %d`, status.Revoked)
	}
	if !q.NotAfterAfter.IsZero() {
		sqlq += ` AND not_after > $5`
	}
	sqlq += ` ORDER BY serial LIMIT $4`
	after := ""
	for {
		args := []any{string(q.Issuer), int32(q.Shard), after, scanPage}
		if !q.NotAfterAfter.IsZero() {
			args = append(args, ts(q.NotAfterAfter))
		}
		page, err := query(ctx, s, scanSummary, sqlq, args...)
		if err != nil {
			return wrap(err, "scanning shard %s/%d", q.Issuer, q.Shard)
		}
		for _, c := range page {
			if err := fn(c); err != nil {
				return err
			}
		}
		if len(page) < scanPage {
			return nil
		}
		after = string(page[len(page)-1].Serial)
	}
}

// ListCertificates returns one page of all certificates in serial order.
func (s *Store) ListCertificates(ctx context.Context, p store.Page) ([]store.CertSummary, error) {
	limit := p.Limit
	if limit <= 0 {
		limit = defaultCertLimit
	}
	q := `SELECT ` + summaryCols + ` FROM certificates WHERE serial > $1`
	args := []any{string(p.AfterSerial), limit}
	if !p.NotAfterAfter.IsZero() {
		q += ` AND not_after > $3`
		args = append(args, ts(p.NotAfterAfter))
	}
	q += ` ORDER BY serial LIMIT $2`
	cs, err := query(ctx, s, scanSummary, q, args...)
	return cs, wrap(err, "listing certificates after %q", p.AfterSerial)
}

// DueForOCSP returns up to limit (0: 1000) certificates not expired at now
// whose OCSP refresh is due at due, earliest first.
func (s *Store) DueForOCSP(ctx context.Context, due, now time.Time, limit int) ([]store.CertSummary, error) {
	if limit <= 0 {
		limit = defaultCertLimit
	}
	cs, err := query(ctx, s, scanSummary, `SELECT `+summaryCols+` FROM certificates
		WHERE ocsp_refresh_at <= $1 AND not_after > $2 ORDER BY ocsp_refresh_at, serial LIMIT $3`,
		ts(due), ts(now), limit)
	return cs, wrap(err, "listing certificates due for OCSP")
}

// ExpiringCertificates returns up to limit (0: 100) certificates whose
// not_after is in (from, to], soonest first, then by serial; revoked ones
// included. The index certificates_not_after (migration 18) serves both
// the range and the order, so the scan stops after limit rows.
func (s *Store) ExpiringCertificates(ctx context.Context, from, to time.Time, limit int) ([]store.CertSummary, error) {
	if limit <= 0 {
		limit = defaultExpiringLimit
	}
	cs, err := query(ctx, s, scanSummary, `SELECT `+summaryCols+` FROM certificates
		WHERE not_after > $1 AND not_after <= $2 ORDER BY not_after, serial LIMIT $3`,
		ts(from), ts(to), limit)
	return cs, wrap(err, "listing certificates expiring in (%s, %s]", from.UTC().Format(time.RFC3339), to.UTC().Format(time.RFC3339))
}

// SetOCSPRefresh moves the refresh points of rs in one transaction, sent
// as one batch; an unknown serial fails the whole call with ErrNotFound.
func (s *Store) SetOCSPRefresh(ctx context.Context, rs []store.OCSPRefresh) error {
	if len(rs) == 0 {
		return nil
	}
	err := s.inTx(ctx, func(ctx context.Context, tx pgx.Tx) error {
		var b pgx.Batch
		for _, r := range rs {
			b.Queue(`UPDATE certificates SET ocsp_refresh_at = $1 WHERE serial = $2`, ts(r.At), string(r.Serial))
		}
		res := tx.SendBatch(ctx, &b)
		for _, r := range rs {
			tag, err := res.Exec()
			if err == nil && tag.RowsAffected() == 0 {
				err = store.ErrNotFound
			}
			if err != nil {
				res.Close()
				return fmt.Errorf("certificate %s: %w", r.Serial, err)
			}
		}
		return res.Close()
	})
	return wrap(err, "setting OCSP refresh of %d certificates", len(rs))
}

// CountCertificates returns how many certificates are stored.
func (s *Store) CountCertificates(ctx context.Context) (int64, error) {
	n, err := queryRow(ctx, s, scanInt64, `SELECT count(*) FROM certificates`)
	return n, wrap(err, "counting certificates")
}

func scanInt64(sc scanner) (int64, error) {
	var n int64
	err := sc.Scan(&n)
	return n, err
}

// EventsAfter returns up to limit (0: 1000) events with Seq > seq, in order.
func (s *Store) EventsAfter(ctx context.Context, seq int64, limit int) ([]store.Event, error) {
	if limit <= 0 {
		limit = defaultEventLimit
	}
	es, err := query(ctx, s, func(sc scanner) (store.Event, error) {
		var e store.Event
		var kind, ser, iss string
		var sh int32
		if err := sc.Scan(&e.Seq, &kind, &ser, &iss, &sh, &e.At); err != nil {
			return e, err
		}
		e.Kind, e.Serial, e.IssuerID = store.EventKind(kind), serial.Serial(ser), issuerid.ID(iss)
		e.Shard, e.At = shard.Index(sh), fromTS(e.At)
		return e, nil
	}, `SELECT seq, kind, serial, issuer_id, shard, at FROM events WHERE seq > $1 ORDER BY seq LIMIT $2`, seq, limit)
	return es, wrap(err, "listing events after %d", seq)
}

// LastEventSeq returns the highest Seq (0 when there are no events).
func (s *Store) LastEventSeq(ctx context.Context) (int64, error) {
	n, err := queryRow(ctx, s, scanInt64, `SELECT coalesce(max(seq), 0) FROM events`)
	return n, wrap(err, "reading last event seq")
}
