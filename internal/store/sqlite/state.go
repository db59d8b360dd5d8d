package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/trustline/trustline/internal/issuerid"
	"github.com/trustline/trustline/internal/store"
)

const crlCols = `issuer_id, shard, number, this_update, next_update, der, holder`

func scanCRL(sc scanner) (store.CRL, error) {
	var c store.CRL
	var iss string
	var tu, nu int64
	if err := sc.Scan(&iss, &c.Shard, &c.Number, &tu, &nu, &c.DER, &c.Holder); err != nil {
		return store.CRL{}, err
	}
	c.IssuerID, c.ThisUpdate, c.NextUpdate, c.DER = issuerid.ID(iss), fromMicros(tu), fromMicros(nu), bytesOrNil(c.DER)
	return c, nil
}

// CRL returns the stored CRL of one shard (or shard.Full).
func (s *Store) CRL(ctx context.Context, issuer issuerid.ID, shard int) (store.CRL, error) {
	c, err := scanCRL(s.r.QueryRowContext(ctx, `SELECT `+crlCols+` FROM crls WHERE issuer_id = ? AND shard = ?`,
		string(issuer), shard))
	return c, wrap(err, "reading CRL %s/%d", issuer, shard)
}

// ListCRLs returns an issuer's stored CRLs by shard (shard.Full first).
func (s *Store) ListCRLs(ctx context.Context, issuer issuerid.ID) ([]store.CRL, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+crlCols+` FROM crls WHERE issuer_id = ? ORDER BY shard`, string(issuer))
	if err != nil {
		return nil, wrap(err, "listing CRLs of %s", issuer)
	}
	cs, err := collect(rows, scanCRL)
	return cs, wrap(err, "listing CRLs of %s", issuer)
}

// PublishCRL stores c if the stored Number is prevNumber (0: none stored)
// and c.Number is greater; otherwise ErrConflict. Each branch is one
// statement whose WHERE is the compare, so the compare and the swap cannot
// be separated.
func (s *Store) PublishCRL(ctx context.Context, c store.CRL, prevNumber int64, audit store.AuditEntry) error {
	if c.Number <= prevNumber {
		return fmt.Errorf("sqlite: publishing CRL %s/%d: number %d does not exceed %d: %w",
			c.IssuerID, c.Shard, c.Number, prevNumber, store.ErrConflict)
	}
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if err := swapCRL(ctx, tx, c, prevNumber); err != nil || audit.Kind == "" {
			return err
		}
		_, err := appendAudit(ctx, tx, audit)
		return err
	})
	return wrap(err, "publishing CRL %s/%d number %d", c.IssuerID, c.Shard, c.Number)
}

// swapCRL is PublishCRL's compare-and-swap, in tx.
func swapCRL(ctx context.Context, tx *sql.Tx, c store.CRL, prevNumber int64) error {
	var res sql.Result
	var err error
	if prevNumber == 0 {
		res, err = tx.ExecContext(ctx, `INSERT INTO crls (`+crlCols+`) VALUES (?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (issuer_id, shard) DO NOTHING`,
			string(c.IssuerID), c.Shard, c.Number, micros(c.ThisUpdate), micros(c.NextUpdate), c.DER, c.Holder)
	} else {
		res, err = tx.ExecContext(ctx, `UPDATE crls SET number = ?, this_update = ?, next_update = ?, der = ?, holder = ?
			WHERE issuer_id = ? AND shard = ? AND number = ?`,
			c.Number, micros(c.ThisUpdate), micros(c.NextUpdate), c.DER, c.Holder, string(c.IssuerID), c.Shard, prevNumber)
	}
	if err == nil {
		if err = mustAffect(res); errors.Is(err, store.ErrNotFound) {
			err = fmt.Errorf("stored number is not %d: %w", prevNumber, store.ErrConflict)
		}
	}
	return err
}

// AcquireLease takes or renews the lease name for holder until `until`: it
// succeeds if nobody holds it, the holder's lease ended at or before now,
// or holder already has it. One upsert decides, so two acquirers cannot
// both win.
func (s *Store) AcquireLease(ctx context.Context, name, holder string, now, until time.Time) (bool, error) {
	res, err := s.w.ExecContext(ctx, `INSERT INTO leases (name, holder, until) VALUES (?, ?, ?)
		ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, until = excluded.until
		WHERE leases.holder = excluded.holder OR leases.until <= ?`,
		name, holder, micros(until), micros(now))
	if err != nil {
		return false, wrap(err, "acquiring lease %s for %s", name, holder)
	}
	n, err := res.RowsAffected()
	return n == 1, wrap(err, "acquiring lease %s for %s", name, holder)
}

// ReleaseLease gives up holder's lease; releasing a lease one does not hold
// (it expired and was taken over) does nothing.
func (s *Store) ReleaseLease(ctx context.Context, name, holder string) error {
	_, err := s.w.ExecContext(ctx, `DELETE FROM leases WHERE name = ? AND holder = ?`, name, holder)
	return wrap(err, "releasing lease %s for %s", name, holder)
}

// appendAudit chains e after the anchored head (or, in a log without one,
// the newest entry) inside tx and moves the head to e. The write
// transaction (BEGIN IMMEDIATE on the only writer) serialises appends, and
// audit.seq being the primary key would refuse a fork regardless.
//
// Chaining from the anchor rather than the newest row keeps a deletion of
// the newest entries visible as a gap after later appends.
func appendAudit(ctx context.Context, tx *sql.Tx, e store.AuditEntry) (store.AuditEntry, error) {
	var prevSeq int64
	var prevHash []byte
	err := tx.QueryRowContext(ctx, `SELECT seq, hash FROM audit_head WHERE id = 1`).Scan(&prevSeq, &prevHash)
	if errors.Is(err, sql.ErrNoRows) {
		err = tx.QueryRowContext(ctx, `SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1`).Scan(&prevSeq, &prevHash)
	}
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return store.AuditEntry{}, fmt.Errorf("reading audit head: %w", err)
	}
	e.Seq = prevSeq + 1
	e.At = fromMicros(micros(e.At))
	e.Payload = bytesOrNil(e.Payload)
	e.PrevHash = bytesOrNil(prevHash)
	e.Hash = store.ChainHash(e.PrevHash, e)
	if _, err := tx.ExecContext(ctx, `INSERT INTO audit (seq, at, kind, actor, subject, payload, prev_hash, hash)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		e.Seq, micros(e.At), e.Kind, e.Actor, e.Subject, e.Payload, e.PrevHash, e.Hash); err != nil {
		if errors.Is(classify(err), store.ErrDuplicate) {
			// Not the caller's duplicate: a row beyond the anchor was
			// written around the store.
			return store.AuditEntry{}, fmt.Errorf("appending audit entry %d: the log already holds one, beyond its anchored head (altered outside the store): %v",
				e.Seq, err)
		}
		return store.AuditEntry{}, fmt.Errorf("appending audit entry %d: %w", e.Seq, err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO audit_head (id, seq, hash) VALUES (1, ?, ?)
		ON CONFLICT (id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash`, e.Seq, e.Hash); err != nil {
		return store.AuditEntry{}, fmt.Errorf("anchoring audit entry %d: %w", e.Seq, err)
	}
	return e, nil
}

// AppendAudit appends e to the hash chain and returns it with Seq,
// PrevHash and Hash set (and At at microsecond precision).
func (s *Store) AppendAudit(ctx context.Context, e store.AuditEntry) (store.AuditEntry, error) {
	var out store.AuditEntry
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var err error
		out, err = appendAudit(ctx, tx, e)
		return err
	})
	if err != nil {
		return store.AuditEntry{}, wrap(err, "appending audit entry %q", e.Kind)
	}
	return out, nil
}

// ScanAudit calls fn for each entry with Seq > afterSeq, in Seq order,
// reading in pages (fn may use the store). An error from fn is returned as
// is.
func (s *Store) ScanAudit(ctx context.Context, afterSeq int64, fn func(store.AuditEntry) error) error {
	for {
		rows, err := s.r.QueryContext(ctx, `SELECT seq, at, kind, actor, subject, payload, prev_hash, hash
			FROM audit WHERE seq > ? ORDER BY seq LIMIT ?`, afterSeq, scanPage)
		if err != nil {
			return wrap(err, "scanning audit after %d", afterSeq)
		}
		page, err := collect(rows, func(sc scanner) (store.AuditEntry, error) {
			var e store.AuditEntry
			var at int64
			if err := sc.Scan(&e.Seq, &at, &e.Kind, &e.Actor, &e.Subject, &e.Payload, &e.PrevHash, &e.Hash); err != nil {
				return e, err
			}
			e.At, e.Payload, e.PrevHash = fromMicros(at), bytesOrNil(e.Payload), bytesOrNil(e.PrevHash)
			return e, nil
		})
		if err != nil {
			return wrap(err, "scanning audit after %d", afterSeq)
		}
		for _, e := range page {
			if err := fn(e); err != nil {
				return err
			}
		}
		if len(page) < scanPage {
			return nil
		}
		afterSeq = page[len(page)-1].Seq
	}
}

// AuditHead returns the anchored head of the audit log; ErrNotFound when
// there is none (an empty log, or one from before anchoring).
func (s *Store) AuditHead(ctx context.Context) (store.AuditHead, error) {
	var h store.AuditHead
	err := s.r.QueryRowContext(ctx, `SELECT seq, hash FROM audit_head WHERE id = 1`).Scan(&h.Seq, &h.Hash)
	if err != nil {
		return store.AuditHead{}, wrap(err, "reading the audit head")
	}
	return h, nil
}

// Meta returns a named value; ErrNotFound if it was never put.
func (s *Store) Meta(ctx context.Context, key string) ([]byte, error) {
	var v []byte
	err := s.r.QueryRowContext(ctx, `SELECT value FROM meta WHERE key = ?`, key).Scan(&v)
	if err != nil {
		return nil, wrap(err, "reading meta %q", key)
	}
	if v == nil {
		v = []byte{}
	}
	return v, nil
}

// PutMeta sets a named value, replacing any previous one.
func (s *Store) PutMeta(ctx context.Context, key string, value []byte) error {
	if value == nil {
		value = []byte{}
	}
	_, err := s.w.ExecContext(ctx, `INSERT INTO meta (key, value) VALUES (?, ?)
		ON CONFLICT (key) DO UPDATE SET value = excluded.value`, key, value)
	return wrap(err, "putting meta %q", key)
}

// InsertMeta creates a named value if the key is absent; otherwise it
// fails, wrapping ErrDuplicate, and changes nothing.
func (s *Store) InsertMeta(ctx context.Context, key string, value []byte) error {
	if value == nil {
		value = []byte{}
	}
	_, err := s.w.ExecContext(ctx, `INSERT INTO meta (key, value) VALUES (?, ?)`, key, value)
	return wrap(err, "inserting meta %q", key)
}
