package postgres

import (
	"context"
	"testing"
	"time"

	"github.com/trustline/trustline/internal/store"
)

// TestOpBound: which deadline one operation gets.
func TestOpBound(t *testing.T) {
	s := &Store{opTimeout: time.Hour}
	longCtx, cancel := context.WithTimeout(context.Background(), 2*time.Hour)
	defer cancel()
	shortCtx, cancel2 := context.WithTimeout(context.Background(), time.Second)
	defer cancel2()
	tests := []struct {
		name string
		ctx  context.Context
		want time.Duration // 0: no deadline
	}{
		{"no deadline: OpTimeout", context.Background(), time.Hour},
		{"the caller's deadline stands", longCtx, 2 * time.Hour},
		{"asked for less", store.WithOpTimeout(context.Background(), time.Minute), time.Minute},
		{"asked for less than the caller's deadline", store.WithOpTimeout(longCtx, time.Minute), time.Minute},
		{"the caller's deadline comes first", store.WithOpTimeout(shortCtx, time.Minute), time.Second},
		{"asked for no bound", store.WithOpTimeout(context.Background(), -1), 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := s.op(tt.ctx)
			defer cancel()
			dl, ok := ctx.Deadline()
			if tt.want == 0 {
				if ok {
					t.Fatalf("deadline in %v, want none", time.Until(dl))
				}
				return
			}
			// Generous margins: this tells an hour from a minute, not
			// milliseconds apart.
			if left := time.Until(dl); !ok || left > tt.want || left < tt.want*9/10 {
				t.Errorf("deadline in %v (set %v), want about %v", left, ok, tt.want)
			}
		})
	}
}

// TestOpBoundExpires: once an operation under a WithOpTimeout bound has
// timed out, the next one under it fails at once; another request's bound
// is untouched.
func TestOpBoundExpires(t *testing.T) {
	s := &Store{opTimeout: time.Hour}
	ctx := store.WithOpTimeout(context.Background(), time.Millisecond)
	octx, cancel := s.op(ctx)
	<-octx.Done() // the operation hangs past its bound
	cancel()
	if !store.OpBoundOf(ctx).Expired() {
		t.Fatal("the bound did not expire")
	}
	next, cancel := s.op(ctx)
	defer cancel()
	if err := next.Err(); err != context.DeadlineExceeded {
		t.Errorf("the next operation's context: %v, want DeadlineExceeded at once", err)
	}
	other, cancel2 := s.op(store.WithOpTimeout(context.Background(), time.Hour))
	defer cancel2()
	if other.Err() != nil {
		t.Errorf("another request's operation: %v", other.Err())
	}
}
