package postgres

import (
	"context"
	"fmt"

	"github.com/trustline/trustline/internal/serial"
	"github.com/trustline/trustline/internal/store"
)

// Compromised keys: the key index of certificates and the blocked keys.

// CertificatesWithKey lists the serials inserted with that key hash.
func (s *Store) CertificatesWithKey(ctx context.Context, keyHash []byte) ([]serial.Serial, error) {
	out, err := query(ctx, s, func(sc scanner) (serial.Serial, error) {
		var sn string
		err := sc.Scan(&sn)
		return serial.Serial(sn), err
	}, `SELECT serial FROM certificate_keys WHERE key_hash = $1 ORDER BY serial`, keyHash)
	return out, wrap(err, "listing certificates of a key")
}

// BlockKey records k; a key blocked already is ErrDuplicate.
func (s *Store) BlockKey(ctx context.Context, k store.BlockedKey) error {
	if len(k.KeyHash) == 0 {
		return fmt.Errorf("postgres: blocking a key: no key hash")
	}
	_, err := s.exec(ctx, `INSERT INTO blocked_keys (key_hash, serial, reason, actor, blocked_at) VALUES ($1, $2, $3, $4, $5)`,
		k.KeyHash, string(k.Serial), k.Reason, k.Actor, ts(k.BlockedAt))
	return wrap(err, "blocking a key")
}

// BlockedKey reads a blocked key, ErrNotFound if it is not.
func (s *Store) BlockedKey(ctx context.Context, keyHash []byte) (store.BlockedKey, error) {
	k, err := queryRow(ctx, s, func(sc scanner) (store.BlockedKey, error) {
		var k store.BlockedKey
		var sn string
		if err := sc.Scan(&k.KeyHash, &sn, &k.Reason, &k.Actor, &k.BlockedAt); err != nil {
			return store.BlockedKey{}, err
		}
		k.Serial, k.BlockedAt = serial.Serial(sn), fromTS(k.BlockedAt)
		return k, nil
	}, `SELECT key_hash, serial, reason, actor, blocked_at FROM blocked_keys WHERE key_hash = $1`, keyHash)
	return k, wrap(err, "reading a blocked key")
}
