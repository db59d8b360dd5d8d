package sqlite

import (
	"context"
	"fmt"

	"github.com/trustline/trustline/internal/serial"
	"github.com/trustline/trustline/internal/store"
)

// Compromised keys: the key index of certificates and the blocked keys.

// CertificatesWithKey lists the serials inserted with that key hash.
func (s *Store) CertificatesWithKey(ctx context.Context, keyHash []byte) ([]serial.Serial, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT serial FROM certificate_keys WHERE key_hash = ? ORDER BY serial`, keyHash)
	if err != nil {
		return nil, wrap(err, "listing certificates of a key")
	}
	defer rows.Close()
	var out []serial.Serial
	for rows.Next() {
		var sn string
		if err := rows.Scan(&sn); err != nil {
			return nil, wrap(err, "listing certificates of a key")
		}
		out = append(out, serial.Serial(sn))
	}
	return out, wrap(rows.Err(), "listing certificates of a key")
}

// BlockKey records k; a key blocked already is ErrDuplicate.
func (s *Store) BlockKey(ctx context.Context, k store.BlockedKey) error {
	if len(k.KeyHash) == 0 {
		return fmt.Errorf("sqlite: blocking a key: no key hash")
	}
	_, err := s.w.ExecContext(ctx, `INSERT INTO blocked_keys (key_hash, serial, reason, actor, blocked_at) VALUES (?, ?, ?, ?, ?)`,
		k.KeyHash, string(k.Serial), k.Reason, k.Actor, micros(k.BlockedAt))
	return wrap(err, "blocking a key")
}

// BlockedKey reads a blocked key, ErrNotFound if it is not.
func (s *Store) BlockedKey(ctx context.Context, keyHash []byte) (store.BlockedKey, error) {
	var k store.BlockedKey
	var sn string
	var at int64
	err := s.r.QueryRowContext(ctx, `SELECT key_hash, serial, reason, actor, blocked_at FROM blocked_keys WHERE key_hash = ?`, keyHash).
		Scan(&k.KeyHash, &sn, &k.Reason, &k.Actor, &at)
	if err != nil {
		return store.BlockedKey{}, wrap(err, "reading a blocked key")
	}
	k.Serial, k.BlockedAt = serial.Serial(sn), fromMicros(at)
	return k, nil
}
