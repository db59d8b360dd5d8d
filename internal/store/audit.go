package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
)

// AuditScanner is what VerifyAudit reads.
type AuditScanner interface {
	ScanAudit(ctx context.Context, afterSeq int64, fn func(AuditEntry) error) error
	AuditHead(ctx context.Context) (AuditHead, error)
}

// ChainError names the first audit entry that breaks the chain.
type ChainError struct {
	Seq    int64
	Reason string
}

func (e *ChainError) Error() string {
	return fmt.Sprintf("audit chain broken at entry %d: %s", e.Seq, e.Reason)
}

// TruncatedError says the log ends before its anchored head: its newest
// entries were deleted.
type TruncatedError struct {
	Head   int64 // the anchored head's Seq
	Newest int64 // the newest entry found; 0 for none
}

func (e *TruncatedError) Error() string {
	if e.Newest == 0 {
		return fmt.Sprintf("audit log: the anchored head is entry %d but the log is empty: entries were deleted", e.Head)
	}
	return fmt.Sprintf("audit log: the anchored head is entry %d but the newest entry is %d: entries were deleted", e.Head, e.Newest)
}

// VerifyAudit walks the whole audit log and checks that sequence numbers
// run 1, 2, 3, … without gaps, that each entry's PrevHash is the previous
// entry's Hash, that each Hash is ChainHash of the entry, and that the log
// reaches its anchored head with the head's hash (a *TruncatedError when
// it stops short). A store without an anchor (one that predates it) is
// checked without. It returns the number of entries and the head hash.
//
// The anchor is read before the log, so entries appended meanwhile only
// lengthen what is walked. It lives in the same database as the log: it
// catches deleting the newest entries, not someone who rewrites both.
func VerifyAudit(ctx context.Context, s AuditScanner) (int64, []byte, error) {
	anchor, err := s.AuditHead(ctx)
	anchored := err == nil
	if err != nil && !errors.Is(err, ErrNotFound) {
		return 0, nil, fmt.Errorf("audit log: reading the anchored head: %w", err)
	}
	var (
		n    int64
		prev []byte
	)
	err = s.ScanAudit(ctx, 0, func(e AuditEntry) error {
		n++
		switch {
		case e.Seq != n:
			return &ChainError{Seq: e.Seq, Reason: fmt.Sprintf("expected sequence number %d (an entry is missing or reordered)", n)}
		case !bytes.Equal(e.PrevHash, prev):
			return &ChainError{Seq: e.Seq, Reason: "previous-hash link does not match the entry before it"}
		case !bytes.Equal(e.Hash, ChainHash(prev, e)):
			return &ChainError{Seq: e.Seq, Reason: "hash does not match the entry's contents (altered)"}
		case anchored && e.Seq == anchor.Seq && !bytes.Equal(e.Hash, anchor.Hash):
			return &ChainError{Seq: e.Seq, Reason: "hash differs from the anchored head's (the entry was replaced)"}
		}
		prev = e.Hash
		return nil
	})
	if err == nil && anchored && n < anchor.Seq {
		err = &TruncatedError{Head: anchor.Seq, Newest: n}
	}
	return n, prev, err
}
