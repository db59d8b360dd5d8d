package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/trustline/trustline/internal/issuerid"
	"github.com/trustline/trustline/internal/store"
)

const crlCols = `issuer_id, shard, number, this_update, next_update, der, holder`

func scanCRL(sc scanner) (store.CRL, error) {
	var c store.CRL
	var iss string
	var sh int32
	if err := sc.Scan(&iss, &sh, &c.Number, &c.ThisUpdate, &c.NextUpdate, &c.DER, &c.Holder); err != nil {
		return store.CRL{}, err
	}
	c.IssuerID, c.Shard, c.DER = issuerid.ID(iss), int(sh), bytesOrNil(c.DER)
	c.ThisUpdate, c.NextUpdate = fromTS(c.ThisUpdate), fromTS(c.NextUpdate)
	return c, nil
}

// CRL returns the stored CRL of one shard (or shard.Full).
func (s *Store) CRL(ctx context.Context, issuer issuerid.ID, shard int) (store.CRL, error) {
	c, err := queryRow(ctx, s, scanCRL, `SELECT `+crlCols+` FROM crls WHERE issuer_id = $1 AND shard = $2`,
		string(issuer), int32(shard))
	return c, wrap(err, "reading CRL %s/%d", issuer, shard)
}

// ListCRLs returns an issuer's stored CRLs by shard (shard.Full first).
func (s *Store) ListCRLs(ctx context.Context, issuer issuerid.ID) ([]store.CRL, error) {
	cs, err := query(ctx, s, scanCRL, `SELECT `+crlCols+` FROM crls WHERE issuer_id = $1 ORDER BY shard`, string(issuer))
	return cs, wrap(err, "listing CRLs of %s", issuer)
}

// PublishCRL stores c if the stored Number is prevNumber (0: none stored)
// and c.Number is greater; otherwise ErrConflict. Each branch is one
// statement whose condition is the compare: concurrent UPDATEs re-check it
// against the row the winner committed, and concurrent INSERTs meet the
// primary key, so exactly one publisher wins.
func (s *Store) PublishCRL(ctx context.Context, c store.CRL, prevNumber int64, audit store.AuditEntry) error {
	if c.Number <= prevNumber {
		return fmt.Errorf("postgres: publishing CRL %s/%d: number %d does not exceed %d: %w",
			c.IssuerID, c.Shard, c.Number, prevNumber, store.ErrConflict)
	}
	var sql string
	if prevNumber == 0 {
		sql = `INSERT INTO crls (` + crlCols + `) VALUES ($1, $2, $3, $4, $5, $6, $7)
			ON CONFLICT (issuer_id, shard) DO NOTHING`
	} else {
		sql = `UPDATE crls SET number = $3, this_update = $4, next_update = $5, der = $6, holder = $7
			WHERE issuer_id = $1 AND shard = $2 AND number = $8`
	}
	args := []any{string(c.IssuerID), int32(c.Shard), c.Number, ts(c.ThisUpdate), ts(c.NextUpdate), c.DER, c.Holder}
	if prevNumber != 0 {
		args = append(args, prevNumber)
	}
	err := s.inTx(ctx, func(ctx context.Context, tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, sql, args...)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return fmt.Errorf("stored number is not %d: %w", prevNumber, store.ErrConflict)
		}
		if audit.Kind == "" {
			return nil
		}
		// After the row: a loser of the compare waits for no log lock.
		if err := lockLogs(ctx, tx); err != nil {
			return err
		}
		_, err = appendAudit(ctx, tx, audit)
		return err
	})
	return wrap(err, "publishing CRL %s/%d number %d", c.IssuerID, c.Shard, c.Number)
}

// AcquireLease takes or renews the lease name for holder until `until`: it
// succeeds if nobody holds it, the holder's lease ended at or before now,
// or holder already has it. One upsert decides, so two acquirers cannot
// both win.
func (s *Store) AcquireLease(ctx context.Context, name, holder string, now, until time.Time) (bool, error) {
	tag, err := s.exec(ctx, `INSERT INTO leases (name, holder, until) VALUES ($1, $2, $3)
		ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, until = excluded.until
		WHERE leases.holder = excluded.holder OR leases.until <= $4`,
		name, holder, ts(until), ts(now))
	if err != nil {
		return false, wrap(err, "acquiring lease %s for %s", name, holder)
	}
	return tag.RowsAffected() == 1, nil
}

// ReleaseLease gives up holder's lease; releasing a lease one does not hold
// (it expired and was taken over) does nothing.
func (s *Store) ReleaseLease(ctx context.Context, name, holder string) error {
	_, err := s.exec(ctx, `DELETE FROM leases WHERE name = $1 AND holder = $2`, name, holder)
	return wrap(err, "releasing lease %s for %s", name, holder)
}

// appendAudit chains e after the anchored head (or, in a log without one,
// the newest entry) inside tx, which must hold the log lock (lockLogs) so
// that no other append reads the same head, and moves the head to e.
//
// Chaining from the anchor rather than the newest row keeps a deletion of
// the newest entries visible as a gap after later appends.
func appendAudit(ctx context.Context, tx pgx.Tx, e store.AuditEntry) (store.AuditEntry, error) {
	var prevSeq int64
	var prevHash []byte
	err := tx.QueryRow(ctx, `SELECT seq, hash FROM audit_head WHERE id = 1`).Scan(&prevSeq, &prevHash)
	if errors.Is(err, pgx.ErrNoRows) {
		err = tx.QueryRow(ctx, `SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1`).Scan(&prevSeq, &prevHash)
	}
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return store.AuditEntry{}, fmt.Errorf("reading audit head: %w", err)
	}
	e.Seq = prevSeq + 1
	e.At = fromTS(ts(e.At))
	e.Payload = bytesOrNil(e.Payload)
	e.PrevHash = bytesOrNil(prevHash)
	e.Hash = store.ChainHash(e.PrevHash, e)
	if _, err := tx.Exec(ctx, `INSERT INTO audit (seq, at, kind, actor, subject, payload, prev_hash, hash)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
		e.Seq, ts(e.At), e.Kind, e.Actor, e.Subject, e.Payload, e.PrevHash, e.Hash); err != nil {
		if errors.Is(classify(err), store.ErrDuplicate) {
			// Not the caller's duplicate: a row beyond the anchor was
			// written around the store.
			return store.AuditEntry{}, fmt.Errorf("appending audit entry %d: the log already holds one, beyond its anchored head (altered outside the store): %v",
				e.Seq, err)
		}
		return store.AuditEntry{}, fmt.Errorf("appending audit entry %d: %w", e.Seq, err)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO audit_head (id, seq, hash) VALUES (1, $1, $2)
		ON CONFLICT (id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash`, e.Seq, e.Hash); err != nil {
		return store.AuditEntry{}, fmt.Errorf("anchoring audit entry %d: %w", e.Seq, err)
	}
	return e, nil
}

// AppendAudit appends e to the hash chain and returns it with Seq,
// PrevHash and Hash set (and At at microsecond precision).
func (s *Store) AppendAudit(ctx context.Context, e store.AuditEntry) (store.AuditEntry, error) {
	var out store.AuditEntry
	err := s.inTx(ctx, func(ctx context.Context, tx pgx.Tx) error {
		if err := lockLogs(ctx, tx); err != nil {
			return err
		}
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
		page, err := query(ctx, s, func(sc scanner) (store.AuditEntry, error) {
			var e store.AuditEntry
			if err := sc.Scan(&e.Seq, &e.At, &e.Kind, &e.Actor, &e.Subject, &e.Payload, &e.PrevHash, &e.Hash); err != nil {
				return e, err
			}
			e.At, e.Payload, e.PrevHash = fromTS(e.At), bytesOrNil(e.Payload), bytesOrNil(e.PrevHash)
			return e, nil
		}, `SELECT seq, at, kind, actor, subject, payload, prev_hash, hash
			FROM audit WHERE seq > $1 ORDER BY seq LIMIT $2`, afterSeq, scanPage)
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
	h, err := queryRow(ctx, s, func(sc scanner) (store.AuditHead, error) {
		var h store.AuditHead
		err := sc.Scan(&h.Seq, &h.Hash)
		return h, err
	}, `SELECT seq, hash FROM audit_head WHERE id = 1`)
	if err != nil {
		return store.AuditHead{}, wrap(err, "reading the audit head")
	}
	return h, nil
}

// Meta returns a named value; ErrNotFound if it was never put.
func (s *Store) Meta(ctx context.Context, key string) ([]byte, error) {
	v, err := queryRow(ctx, s, func(sc scanner) ([]byte, error) {
		var v []byte
		err := sc.Scan(&v)
		return v, err
	}, `SELECT value FROM meta WHERE key = $1`, key)
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
	_, err := s.exec(ctx, `INSERT INTO meta (key, value) VALUES ($1, $2)
		ON CONFLICT (key) DO UPDATE SET value = excluded.value`, key, value)
	return wrap(err, "putting meta %q", key)
}

// InsertMeta creates a named value if the key is absent; otherwise it
// fails, wrapping ErrDuplicate, and changes nothing. Of racing inserts the
// primary key lets one commit; the others see unique_violation.
func (s *Store) InsertMeta(ctx context.Context, key string, value []byte) error {
	if value == nil {
		value = []byte{}
	}
	_, err := s.exec(ctx, `INSERT INTO meta (key, value) VALUES ($1, $2)`, key, value)
	return wrap(err, "inserting meta %q", key)
}
