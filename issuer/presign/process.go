package presign

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/trustline/trustline/internal/ocspcodec"
	"github.com/trustline/trustline/internal/serial"
)

// emitFunc hands a batch of certificates to the workers.
type emitFunc func([]cert) error

// process signs the batches feed emits with Workers goroutines; two
// writers put each signed batch in the cache, then record its refresh
// points. It returns how many certificates were signed. onWritten, if
// set, is called after each batch is written (batches are written out of
// order), with the serial of the batch's last certificate.
func (p *Pipeline) process(ctx context.Context, trigger int, algs []ocspcodec.HashAlg, evict bool,
	feed func(ctx context.Context, emit emitFunc) error, onWritten writtenFunc) (int64, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	r := &processing{p: p, trigger: trigger, algs: algs, evict: evict, onWritten: onWritten, cancel: cancel,
		jobs: make(chan []cert, p.cfg.Workers), signed: make(chan batch, p.cfg.Workers)}
	var feeders, signers, writers sync.WaitGroup
	feeders.Go(func() { r.feed(ctx, feed) })
	for range p.cfg.Workers {
		signers.Go(func() { r.sign(ctx) })
	}
	go func() { signers.Wait(); close(r.signed) }()
	for range 2 {
		writers.Go(func() { r.write(ctx) })
	}
	feeders.Wait()
	writers.Wait()
	return r.done.Load(), r.firstErr
}

// writtenFunc learns that a batch was written: how many certificates it
// held (signed or skipped), how many responses, and its last serial.
type writtenFunc func(certs, responses int, last serial.Serial)

// processing is one process call: feeder → signers → writers, stopped by
// the first error.
type processing struct {
	p         *Pipeline
	trigger   int
	algs      []ocspcodec.HashAlg
	evict     bool
	onWritten writtenFunc
	jobs      chan []cert
	signed    chan batch

	cancel   context.CancelFunc
	errOnce  sync.Once
	firstErr error
	done     atomic.Int64
}

// fail records the first error and stops the other stages.
func (r *processing) fail(err error) {
	r.errOnce.Do(func() { r.firstErr = err; r.cancel() })
}

// feed runs the caller's feed, handing its batches to the signers.
func (r *processing) feed(ctx context.Context, feed func(ctx context.Context, emit emitFunc) error) {
	defer close(r.jobs)
	err := feed(ctx, func(cs []cert) error {
		select {
		case r.jobs <- cs:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	})
	if err != nil {
		r.fail(err)
	}
}

// sign signs batches until the feed ends; after a failure it drains them.
func (r *processing) sign(ctx context.Context) {
	for cs := range r.jobs {
		if ctx.Err() != nil {
			continue
		}
		b, err := r.p.signBatch(cs, r.algs, r.p.now(), r.evict)
		if err != nil {
			r.p.m.failures[stageSign].Inc()
			r.fail(err)
			continue
		}
		b.last = cs[len(cs)-1].Serial
		select {
		case r.signed <- b:
		case <-ctx.Done():
		}
	}
}

// write puts signed batches in the cache and records their refresh
// points; after a failure it drains them.
func (r *processing) write(ctx context.Context) {
	for b := range r.signed {
		if ctx.Err() != nil {
			continue
		}
		if err := r.p.cache.Put(ctx, b.items); err != nil {
			r.p.m.failures[stageWrite].Inc()
			r.fail(fmt.Errorf("presign: writing %d responses: %w", len(b.items), err))
			continue
		}
		r.p.m.signed[r.trigger].Add(float64(len(b.items)))
		// A rebuild's refresh points are its State's RefreshFloor.
		if r.trigger == triggerRebuild {
			b.refreshes = nil
		}
		if err := r.p.store.SetOCSPRefresh(ctx, b.refreshes); err != nil {
			r.p.m.failures[stageSchedule].Inc()
			r.fail(fmt.Errorf("presign: recording %d refresh points: %w", len(b.refreshes), err))
			continue
		}
		r.done.Add(int64(b.signed))
		if r.onWritten != nil {
			r.onWritten(b.signed+b.skipped, len(b.items), b.last)
		}
	}
}

// emitBatches splits cs into batches of at most Batch.
func (p *Pipeline) emitBatches(cs []cert, emit emitFunc) error {
	for start := 0; start < len(cs); start += p.cfg.Batch {
		if err := emit(cs[start:min(start+p.cfg.Batch, len(cs))]); err != nil {
			return err
		}
	}
	return nil
}
