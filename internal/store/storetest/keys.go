package storetest

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"testing"
	"time"

	"github.com/trustline/trustline/internal/serial"
	"github.com/trustline/trustline/internal/store"
)

// testBlockedKeys: certificates inserted with a key hash are found by it
// (and bulk ones without are not), a key is blocked once, and what is
// stored reads back.
func testBlockedKeys(t *testing.T, s store.Store) {
	kA, kB := sha256.Sum256([]byte("key A")), sha256.Sum256([]byte("key B"))
	for i := 1; i <= 3; i++ {
		c := cert(i, "int-a", 0)
		c.KeyHash = kA[:]
		if i == 3 {
			c.KeyHash = kB[:]
		}
		issue(t, s, c)
	}
	issue(t, s, cert(4, "int-a", 0)) // no key hash: not indexed
	got, err := s.CertificatesWithKey(ctx(t), kA[:])
	must(t, err, "listing key A's certificates")
	if len(got) != 2 || got[0] != sn(1) || got[1] != sn(2) {
		t.Errorf("key A's certificates %v, want %v and %v", got, sn(1), sn(2))
	}
	none := sha256.Sum256([]byte("key C"))
	if got, err := s.CertificatesWithKey(ctx(t), none[:]); err != nil || len(got) != 0 {
		t.Errorf("an unknown key's certificates: %v %v", got, err)
	}

	if _, err := s.BlockedKey(ctx(t), kA[:]); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("an unblocked key: %v, want ErrNotFound", err)
	}
	want := store.BlockedKey{KeyHash: kA[:], Serial: sn(1), Reason: "revoked for keyCompromise", Actor: "acct-1", BlockedAt: us(t0.Add(time.Hour))}
	must(t, s.BlockKey(ctx(t), want), "blocking key A")
	again := want
	again.Serial, again.Reason = serial.Serial(""), "reported again"
	if err := s.BlockKey(ctx(t), again); !errors.Is(err, store.ErrDuplicate) {
		t.Errorf("blocking key A twice: %v, want ErrDuplicate", err)
	}
	k, err := s.BlockedKey(ctx(t), kA[:])
	must(t, err, "reading key A")
	if !bytes.Equal(k.KeyHash, want.KeyHash) || k.Serial != want.Serial || k.Reason != want.Reason || k.Actor != want.Actor || !k.BlockedAt.Equal(want.BlockedAt) {
		t.Errorf("blocked key %+v, want %+v (the first record stands)", k, want)
	}
	if err := s.BlockKey(ctx(t), store.BlockedKey{}); err == nil {
		t.Error("a blocked key without a hash was accepted")
	}
}
