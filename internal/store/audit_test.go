package store

import (
	"context"
	"errors"
	"testing"
	"time"
)

type sliceAudit []AuditEntry

func (s sliceAudit) ScanAudit(_ context.Context, after int64, fn func(AuditEntry) error) error {
	for _, e := range s {
		if e.Seq > after {
			if err := fn(e); err != nil {
				return err
			}
		}
	}
	return nil
}

func chain(n int) sliceAudit {
	var out sliceAudit
	var prev []byte
	for i := 1; i <= n; i++ {
		e := AuditEntry{Seq: int64(i), At: time.Unix(int64(1700000000+i), 0), Kind: "certificate.issued", Actor: "acct", Subject: "01", Payload: []byte(`{}`), PrevHash: prev}
		e.Hash = ChainHash(prev, e)
		prev = e.Hash
		out = append(out, e)
	}
	return out
}

func TestVerifyAudit(t *testing.T) {
	good := chain(5)
	n, head, err := VerifyAudit(context.Background(), good)
	if err != nil || n != 5 || string(head) != string(good[4].Hash) {
		t.Fatalf("good chain: n=%d err=%v", n, err)
	}
	tests := []struct {
		name    string
		mutate  func(s sliceAudit) sliceAudit
		wantSeq int64
	}{
		{"altered payload", func(s sliceAudit) sliceAudit { s[2].Payload = []byte(`{"x":1}`); return s }, 3},
		{"deleted entry", func(s sliceAudit) sliceAudit { return append(s[:1:1], s[2:]...) }, 3},
		{"relinked", func(s sliceAudit) sliceAudit { s[3].PrevHash = s[1].Hash; return s }, 4},
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
