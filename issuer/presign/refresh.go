package presign

import (
	"context"
	"fmt"
)

// maxRefreshRounds bounds one Refresh call, so that events are followed
// between rounds even when a large backlog is due.
const maxRefreshRounds = 16

// Refresh re-signs the responses that have reached their refresh point.
// It returns how many certificates were signed. Before the refresh floor
// of a complete rebuild nothing is due (the rebuild signed every
// response, without moving the store's refresh points).
func (p *Pipeline) Refresh(ctx context.Context) (int64, error) {
	limit := p.cfg.Batch * p.cfg.Workers * 4
	st, err := p.cache.State(ctx)
	if err != nil {
		return 0, fmt.Errorf("presign: refresh: %w", err)
	}
	if st.Complete && p.now().Unix() < st.RefreshFloor {
		return 0, nil
	}
	var total int64
	for range maxRefreshRounds {
		now := p.now()
		due, err := p.store.DueForOCSP(ctx, now, now, limit)
		if err != nil {
			p.m.failures[stageRead].Inc()
			return total, fmt.Errorf("presign: refresh: %w", err)
		}
		if len(due) == 0 {
			return total, nil
		}
		cs := make([]cert, len(due))
		for i, c := range due {
			cs[i] = fromSummary(c)
		}
		n, err := p.process(ctx, triggerRefresh, p.cfg.HashAlgs, false,
			func(_ context.Context, emit emitFunc) error { return p.emitBatches(cs, emit) }, nil)
		total += n
		if err != nil {
			return total, fmt.Errorf("presign: refresh: %w", err)
		}
		if len(due) < limit {
			return total, nil
		}
	}
	return total, nil
}
