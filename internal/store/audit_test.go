package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

// fakeAudit is a log and its anchor; head nil is a log without one.
type fakeAudit struct {
	entries []AuditEntry
	head    *AuditHead
}

func (s fakeAudit) ScanAudit(_ context.Context, after int64, fn func(AuditEntry) error) error {
	for _, e := range s.entries {
		if e.Seq > after {
			if err := fn(e); err != nil {
				return err
			}
		}
	}
	return nil
}

func (s fakeAudit) AuditHead(context.Context) (AuditHead, error) {
	if s.head == nil {
		return AuditHead{}, fmt.Errorf("fake: %w", ErrNotFound)
	}
	return *s.head, nil
}

// chain is a valid log of n entries anchored at its newest.
func chain(n int) fakeAudit {
	var out fakeAudit
	var prev []byte
	for i := 1; i <= n; i++ {
		e := AuditEntry{Seq: int64(i), At: time.Unix(int64(1700000000+i), 0), Kind: "certificate.issued", Actor: "acct", Subject: "01", Payload: []byte(`{}`), PrevHash: prev}
		e.Hash = ChainHash(prev, e)
		prev = e.Hash
		out.entries = append(out.entries, e)
	}
	if n > 0 {
		out.head = &AuditHead{Seq: int64(n), Hash: prev}
	}
	return out
}

func TestVerifyAudit(t *testing.T) {
	good := chain(5)
	n, head, err := VerifyAudit(context.Background(), good)
	if err != nil || n != 5 || string(head) != string(good.entries[4].Hash) {
		t.Fatalf("good chain: n=%d err=%v", n, err)
	}
	tests := []struct {
		name    string
		mutate  func(s fakeAudit) fakeAudit
		wantSeq int64
	}{
		{"altered payload", func(s fakeAudit) fakeAudit { s.entries[2].Payload = []byte(`{"x":1}`); return s }, 3},
		{"deleted entry", func(s fakeAudit) fakeAudit { s.entries = append(s.entries[:1:1], s.entries[2:]...); return s }, 3},
		{"relinked", func(s fakeAudit) fakeAudit { s.entries[3].PrevHash = s.entries[1].Hash; return s }, 4},
		{"newest replaced by a valid link", func(s fakeAudit) fakeAudit {
			e := &s.entries[4]
			e.Payload = []byte(`{"forged":true}`)
			e.Hash = ChainHash(e.PrevHash, *e)
			return s
		}, 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := VerifyAudit(context.Background(), tt.mutate(chain(5)))
			var ce *ChainError
			if !errors.As(err, &ce) || ce.Seq != tt.wantSeq {
				t.Fatalf("err = %v, want a ChainError at %d", err, tt.wantSeq)
			}
		})
	}
}

func TestVerifyAuditAnchor(t *testing.T) {
	tests := []struct {
		name       string
		log        fakeAudit
		wantNewest int64 // of the TruncatedError; -1: no error
		wantMsg    string
	}{
		{"empty, no anchor", fakeAudit{}, -1, ""},
		{"no anchor (a store from before anchoring), truncated", fakeAudit{entries: chain(5).entries[:3]}, -1, ""},
		{"newest deleted", fakeAudit{entries: chain(5).entries[:4], head: chain(5).head}, 4,
			"audit log: the anchored head is entry 5 but the newest entry is 4: entries were deleted"},
		{"all deleted", fakeAudit{head: chain(5).head}, 0,
			"audit log: the anchored head is entry 5 but the log is empty: entries were deleted"},
		// An anchor read before appends that then commit is older than
		// the log: that is not tampering.
		{"anchor behind the log", fakeAudit{entries: chain(5).entries, head: chain(3).head}, -1, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := VerifyAudit(context.Background(), tt.log)
			if tt.wantNewest < 0 {
				if err != nil {
					t.Fatalf("VerifyAudit = %v, want nil", err)
				}
				return
			}
			var te *TruncatedError
			if !errors.As(err, &te) || te.Newest != tt.wantNewest || !strings.Contains(err.Error(), tt.wantMsg) {
				t.Fatalf("VerifyAudit = %v, want a TruncatedError %q", err, tt.wantMsg)
			}
		})
	}
}
