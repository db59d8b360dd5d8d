package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

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
	_, err := s.w.ExecContext(ctx, `INSERT INTO serials (serial, issuer_id, reserved_at) VALUES (?, ?, ?)`,
		string(sn), string(issuer), micros(at))
	return wrap(err, "reserving serial %s", sn)
}

const certCols = `serial, issuer_id, shard, account_id, order_id, der, not_before, not_after,
	status, revoked_at, reason, ocsp_refresh_at, precertificate`

const insertCert = `INSERT INTO certificates (` + certCols + `) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`

func certArgs(c *store.Certificate) []any {
	return []any{string(c.Serial), string(c.IssuerID), int64(c.Shard), c.AccountID, c.OrderID, c.DER,
		micros(c.NotBefore), micros(c.NotAfter), int64(c.Status), micros(c.RevokedAt), int64(c.Reason),
		micros(c.OCSPRefreshAt), c.Precertificate}
}

func scanCert(sc scanner) (store.Certificate, error) {
	var c store.Certificate
	var ser, iss string
	var sh, st, rs, nb, na, ra, oa int64
	err := sc.Scan(&ser, &iss, &sh, &c.AccountID, &c.OrderID, &c.DER, &nb, &na, &st, &ra, &rs, &oa, &c.Precertificate)
	if err != nil {
		return store.Certificate{}, err
	}
	c.Serial, c.IssuerID, c.Shard = serial.Serial(ser), issuerid.ID(iss), shard.Index(sh)
	c.DER = bytesOrNil(c.DER)
	c.NotBefore, c.NotAfter, c.RevokedAt, c.OCSPRefreshAt = fromMicros(nb), fromMicros(na), fromMicros(ra), fromMicros(oa)
	c.Status, c.Reason = status.Status(st), reason.Reason(rs)
	return c, nil
}

const summaryCols = `serial, issuer_id, shard, account_id, not_after, status, revoked_at, reason, ocsp_refresh_at`

func scanSummary(sc scanner) (store.CertSummary, error) {
	var c store.CertSummary
	var ser, iss string
	var sh, st, rs, na, ra, oa int64
	if err := sc.Scan(&ser, &iss, &sh, &c.AccountID, &na, &st, &ra, &rs, &oa); err != nil {
		return store.CertSummary{}, err
	}
	c.Serial, c.IssuerID, c.Shard = serial.Serial(ser), issuerid.ID(iss), shard.Index(sh)
	c.NotAfter, c.RevokedAt, c.OCSPRefreshAt = fromMicros(na), fromMicros(ra), fromMicros(oa)
	c.Status, c.Reason = status.Status(st), reason.Reason(rs)
	return c, nil
}

const insertEvent = `INSERT INTO events (kind, serial, issuer_id, shard, at) VALUES (?, ?, ?, ?, ?)`

// InsertCertificate stores an issued certificate whose serial was reserved
// for the same issuer, its EventIssued (At: a.At, or NotBefore if a.At is
// zero) and the audit entry a, in one transaction. An unreserved serial is
// ErrNotFound; a stored one ErrDuplicate.
func (s *Store) InsertCertificate(ctx context.Context, c store.Certificate, a store.AuditEntry) error {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var reservedFor string
		err := tx.QueryRowContext(ctx, `SELECT issuer_id FROM serials WHERE serial = ?`, string(c.Serial)).Scan(&reservedFor)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("serial was never reserved: %w", store.ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("reading reservation: %w", err)
		}
		if reservedFor != string(c.IssuerID) {
			return fmt.Errorf("serial was reserved for issuer %q, not %q", reservedFor, c.IssuerID)
		}
		if _, err := tx.ExecContext(ctx, insertCert, certArgs(&c)...); err != nil {
			return err
		}
		if len(c.KeyHash) > 0 {
			if _, err := tx.ExecContext(ctx, `INSERT INTO certificate_keys (key_hash, serial) VALUES (?, ?)`, c.KeyHash, string(c.Serial)); err != nil {
				return fmt.Errorf("indexing the key: %w", err)
			}
		}
		at := a.At
		if at.IsZero() {
			at = c.NotBefore
		}
		if _, err := tx.ExecContext(ctx, insertEvent, string(store.EventIssued), string(c.Serial),
			string(c.IssuerID), int64(c.Shard), micros(at)); err != nil {
			return fmt.Errorf("appending event: %w", err)
		}
		_, err = appendAudit(ctx, tx, a)
		return err
	})
	return wrap(err, "inserting certificate %s", c.Serial)
}

// InsertCertificates is the bulk path for load tests: all of cs and their
// EventIssued (At: NotBefore) in one transaction through prepared
// statements. It neither checks reservations nor writes audit entries.
func (s *Store) InsertCertificates(ctx context.Context, cs []store.Certificate) error {
	if len(cs) == 0 {
		return nil
	}
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		ins, err := tx.PrepareContext(ctx, insertCert)
		if err != nil {
			return err
		}
		defer ins.Close()
		ev, err := tx.PrepareContext(ctx, insertEvent)
		if err != nil {
			return err
		}
		defer ev.Close()
		for i := range cs {
			c := &cs[i]
			if _, err := ins.ExecContext(ctx, certArgs(c)...); err != nil {
				return fmt.Errorf("certificate %s: %w", c.Serial, err)
			}
			if _, err := ev.ExecContext(ctx, string(store.EventIssued), string(c.Serial), string(c.IssuerID),
				int64(c.Shard), micros(c.NotBefore)); err != nil {
				return fmt.Errorf("event for %s: %w", c.Serial, err)
			}
		}
		return nil
	})
	return wrap(err, "inserting %d certificates", len(cs))
}

// Certificate returns the certificate with that serial.
func (s *Store) Certificate(ctx context.Context, sn serial.Serial) (store.Certificate, error) {
	c, err := scanCert(s.r.QueryRowContext(ctx, `SELECT `+certCols+` FROM certificates WHERE serial = ?`, string(sn)))
	return c, wrap(err, "reading certificate %s", sn)
}

// CompleteCertificate replaces the precertificate stored for sn with the
// final certificate der, keeps the precertificate with sctList in
// precertificates (created at at), and appends audit, in one transaction.
// The write transaction serialises it with every other writer, so the
// read of the row and its update cannot interleave with another
// completion. ErrNotFound if there is no certificate sn, ErrConflict if
// its row holds no precertificate. Status, revocation and events are left
// as they are.
func (s *Store) CompleteCertificate(ctx context.Context, sn serial.Serial, der, sctList []byte, at time.Time, audit store.AuditEntry) error {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var pre []byte
		var isPre bool
		err := tx.QueryRowContext(ctx, `SELECT der, precertificate FROM certificates WHERE serial = ?`, string(sn)).Scan(&pre, &isPre)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("no such certificate: %w", store.ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("reading the certificate: %w", err)
		}
		if !isPre {
			return fmt.Errorf("the certificate holds no precertificate (completed already, or never one): %w", store.ErrConflict)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO precertificates (serial, der, sct_list, created_at) VALUES (?, ?, ?, ?)`,
			string(sn), pre, sctList, micros(at)); err != nil {
			return fmt.Errorf("keeping the precertificate: %w", err)
		}
		res, err := tx.ExecContext(ctx, `UPDATE certificates SET der = ?, precertificate = 0 WHERE serial = ? AND precertificate = 1`,
			der, string(sn))
		if err != nil {
			return fmt.Errorf("storing the final certificate: %w", err)
		}
		if n, err := res.RowsAffected(); err != nil || n != 1 {
			return fmt.Errorf("storing the final certificate: %d rows updated (%v): %w", n, err, store.ErrConflict)
		}
		_, err = appendAudit(ctx, tx, audit)
		return err
	})
	return wrap(err, "completing certificate %s", sn)
}

// Precertificate returns the precertificate kept for sn when its final
// certificate replaced it; ErrNotFound if there is none.
func (s *Store) Precertificate(ctx context.Context, sn serial.Serial) (store.Precertificate, error) {
	var p store.Precertificate
	var ser string
	var created int64
	err := s.r.QueryRowContext(ctx, `SELECT serial, der, sct_list, created_at FROM precertificates WHERE serial = ?`, string(sn)).
		Scan(&ser, &p.DER, &p.SCTList, &created)
	if err != nil {
		return store.Precertificate{}, wrap(err, "reading the precertificate of %s", sn)
	}
	p.Serial, p.CreatedAt = serial.Serial(ser), fromMicros(created)
	p.DER, p.SCTList = bytesOrNil(p.DER), bytesOrNil(p.SCTList)
	return p, nil
}

// Revoke marks a good certificate revoked, appends its EventRevoked (At:
// r.At) and the audit entry a in one transaction, and returns the row.
func (s *Store) Revoke(ctx context.Context, r store.Revocation, a store.AuditEntry) (store.Certificate, error) {
	var c store.Certificate
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var err error
		c, err = scanCert(tx.QueryRowContext(ctx, `UPDATE certificates SET status = ?, revoked_at = ?, reason = ?
			WHERE serial = ? AND status <> ? RETURNING `+certCols,
			int64(status.Revoked), micros(r.At), int64(r.Reason), string(r.Serial), int64(status.Revoked)))
		if errors.Is(err, sql.ErrNoRows) {
			var one int
			err := tx.QueryRowContext(ctx, `SELECT 1 FROM certificates WHERE serial = ?`, string(r.Serial)).Scan(&one)
			if errors.Is(err, sql.ErrNoRows) {
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
		if _, err := tx.ExecContext(ctx, insertEvent, string(store.EventRevoked), string(c.Serial),
			string(c.IssuerID), int64(c.Shard), micros(r.At)); err != nil {
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
	// The revoked filter is a literal so the planner can use the partial
	// index certificates_shard_revoked.
	sqlq := `SELECT ` + summaryCols + ` FROM certificates WHERE issuer_id = ? AND shard = ? AND serial > ?`
	if q.RevokedOnly {
		sqlq += fmt.Sprintf(` AND status = %d`, status.Revoked)
	}
	if !q.NotAfterAfter.IsZero() {
		sqlq += ` AND not_after > ?`
	}
	sqlq += ` ORDER BY serial LIMIT ?`
	after := ""
	for {
		args := []any{string(q.Issuer), int64(q.Shard), after}
		if !q.NotAfterAfter.IsZero() {
			args = append(args, micros(q.NotAfterAfter))
		}
		args = append(args, scanPage)
		rows, err := s.r.QueryContext(ctx, sqlq, args...)
		if err != nil {
			return wrap(err, "scanning shard %s/%d", q.Issuer, q.Shard)
		}
		page, err := collect(rows, scanSummary)
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
	q := `SELECT ` + summaryCols + ` FROM certificates WHERE serial > ?`
	args := []any{string(p.AfterSerial)}
	if !p.NotAfterAfter.IsZero() {
		q += ` AND not_after > ?`
		args = append(args, micros(p.NotAfterAfter))
	}
	q += ` ORDER BY serial LIMIT ?`
	args = append(args, limit)
	rows, err := s.r.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, wrap(err, "listing certificates after %q", p.AfterSerial)
	}
	cs, err := collect(rows, scanSummary)
	return cs, wrap(err, "listing certificates after %q", p.AfterSerial)
}

// DueForOCSP returns up to limit (0: 1000) certificates not expired at now
// whose OCSP refresh is due at due, earliest first.
func (s *Store) DueForOCSP(ctx context.Context, due, now time.Time, limit int) ([]store.CertSummary, error) {
	if limit <= 0 {
		limit = defaultCertLimit
	}
	rows, err := s.r.QueryContext(ctx, `SELECT `+summaryCols+` FROM certificates
		WHERE ocsp_refresh_at <= ? AND not_after > ? ORDER BY ocsp_refresh_at, serial LIMIT ?`,
		micros(due), micros(now), limit)
	if err != nil {
		return nil, wrap(err, "listing certificates due for OCSP")
	}
	cs, err := collect(rows, scanSummary)
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
	rows, err := s.r.QueryContext(ctx, `SELECT `+summaryCols+` FROM certificates
		WHERE not_after > ? AND not_after <= ? ORDER BY not_after, serial LIMIT ?`,
		micros(from), micros(to), limit)
	var cs []store.CertSummary
	if err == nil {
		cs, err = collect(rows, scanSummary)
	}
	return cs, wrap(err, "listing certificates expiring in (%s, %s]", from.UTC().Format(time.RFC3339), to.UTC().Format(time.RFC3339))
}

// SetOCSPRefresh moves the refresh points of rs in one transaction; an
// unknown serial fails the whole call with ErrNotFound.
func (s *Store) SetOCSPRefresh(ctx context.Context, rs []store.OCSPRefresh) error {
	if len(rs) == 0 {
		return nil
	}
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		st, err := tx.PrepareContext(ctx, `UPDATE certificates SET ocsp_refresh_at = ? WHERE serial = ?`)
		if err != nil {
			return err
		}
		defer st.Close()
		for _, r := range rs {
			res, err := st.ExecContext(ctx, micros(r.At), string(r.Serial))
			if err == nil {
				err = mustAffect(res)
			}
			if err != nil {
				return fmt.Errorf("certificate %s: %w", r.Serial, err)
			}
		}
		return nil
	})
	return wrap(err, "setting OCSP refresh of %d certificates", len(rs))
}

// CountCertificates returns how many certificates are stored.
func (s *Store) CountCertificates(ctx context.Context) (int64, error) {
	var n int64
	err := s.r.QueryRowContext(ctx, `SELECT count(*) FROM certificates`).Scan(&n)
	return n, wrap(err, "counting certificates")
}

// EventsAfter returns up to limit (0: 1000) events with Seq > seq, in order.
func (s *Store) EventsAfter(ctx context.Context, seq int64, limit int) ([]store.Event, error) {
	if limit <= 0 {
		limit = defaultEventLimit
	}
	rows, err := s.r.QueryContext(ctx, `SELECT seq, kind, serial, issuer_id, shard, at FROM events
		WHERE seq > ? ORDER BY seq LIMIT ?`, seq, limit)
	if err != nil {
		return nil, wrap(err, "listing events after %d", seq)
	}
	es, err := collect(rows, func(sc scanner) (store.Event, error) {
		var e store.Event
		var kind, ser, iss string
		var sh, at int64
		if err := sc.Scan(&e.Seq, &kind, &ser, &iss, &sh, &at); err != nil {
			return e, err
		}
		e.Kind, e.Serial, e.IssuerID = store.EventKind(kind), serial.Serial(ser), issuerid.ID(iss)
		e.Shard, e.At = shard.Index(sh), fromMicros(at)
		return e, nil
	})
	return es, wrap(err, "listing events after %d", seq)
}

// LastEventSeq returns the highest Seq (0 when there are no events).
func (s *Store) LastEventSeq(ctx context.Context) (int64, error) {
	var n int64
	err := s.r.QueryRowContext(ctx, `SELECT coalesce(max(seq), 0) FROM events`).Scan(&n)
	return n, wrap(err, "reading last event seq")
}
