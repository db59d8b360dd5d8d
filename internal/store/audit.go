package store

import (
	"bytes"
	"context"
	"fmt"
)

// AuditScanner is what VerifyAudit reads.
type AuditScanner interface {
	ScanAudit(ctx context.Context, afterSeq int64, fn func(AuditEntry) error) error
}

// ChainError names the first audit entry that breaks the chain.
type ChainError struct {
	Seq    int64
	Reason string
}

func (e *ChainError) Error() string {
	return fmt.Sprintf("audit chain broken at entry %d: %s", e.Seq, e.Reason)
}

// VerifyAudit walks the whole audit log and checks that sequence numbers
// run 1, 2, 3, … without gaps, that each entry's PrevHash is the previous
// entry's Hash, and that each Hash is ChainHash of the entry. It returns
// the number of entries and the head hash.
func VerifyAudit(ctx context.Context, s AuditScanner) (int64, []byte, error) {
	var (
		n    int64
		prev []byte
	)
	err := s.ScanAudit(ctx, 0, func(e AuditEntry) error {
		n++
		switch {
		case e.Seq != n:
			return &ChainError{Seq: e.Seq, Reason: fmt.Sprintf("expected sequence number %d (an entry is missing or reordered)", n)}
		case !bytes.Equal(e.PrevHash, prev):
			return &ChainError{Seq: e.Seq, Reason: "previous-hash link does not match the entry before it"}
		case !bytes.Equal(e.Hash, ChainHash(prev, e)):
			return &ChainError{Seq: e.Seq, Reason: "hash does not match the entry's contents (altered)"}
		}
		prev = e.Hash
		return nil
	})
	return n, prev, err
}
