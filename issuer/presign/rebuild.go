package presign

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"sync/atomic"
	"time"

	"github.com/trustline/trustline/internal/ocspcache"
	"github.com/trustline/trustline/internal/serial"
	"github.com/trustline/trustline/internal/store"
)

// Progress reports the current or last rebuild.
type Progress struct {
	Epoch   string
	Running bool
	// Certificates processed (signed or skipped) so far, and the store's
	// certificate count when the rebuild started (expired ones included:
	// an upper bound).
	Done, Total int64
	// Responses written so far.
	Responses         int64
	Started, Finished time.Time
	Err               error
}

// Progress returns the state of the current or last rebuild.
func (p *Pipeline) Progress() Progress { return *p.progress.Load() }

// Rebuild signs every unexpired certificate's responses into the cache
// (warm start) under a new epoch, and marks the cache complete when done.
// It is what Run does when the cache is lost; call it directly to force
// one. Progress is logged every 5 s and readable through Progress.
func (p *Pipeline) Rebuild(ctx context.Context) (int64, error) {
	p.rebuildMu.Lock()
	defer p.rebuildMu.Unlock()
	rb, err := p.claim(ctx)
	if err != nil {
		return 0, err
	}
	stopLog := rb.logProgress()
	n, err := p.process(ctx, triggerRebuild, p.cfg.HashAlgs, false, rb.feed, rb.written)
	stopLog()
	if err == nil {
		err = rb.complete(ctx)
	}
	return rb.finish(n, err)
}

// rebuild is one Rebuild under way.
type rebuild struct {
	p     *Pipeline
	st    ocspcache.State // the cache's state while it runs
	prog  Progress        // as it started
	done  atomic.Int64    // certificates processed
	resps atomic.Int64    // responses written
}

// claim marks the cache as being rebuilt under a new epoch. Events up to
// the log's current end are covered by the scan; later ones are caught up
// afterwards.
func (p *Pipeline) claim(ctx context.Context) (*rebuild, error) {
	old, err := p.cache.State(ctx)
	if err != nil {
		return nil, fmt.Errorf("presign: rebuild: %w", err)
	}
	seq, err := p.store.LastEventSeq(ctx)
	if err != nil {
		return nil, fmt.Errorf("presign: rebuild: %w", err)
	}
	epoch, err := p.newEpoch()
	if err != nil {
		return nil, err
	}
	st := ocspcache.State{Epoch: epoch, Seq: seq}
	if err := p.cache.SwapState(ctx, old, st); err != nil {
		return nil, fmt.Errorf("presign: rebuild: claiming the cache: %w", err)
	}
	total, err := p.store.CountCertificates(ctx)
	if err != nil {
		return nil, fmt.Errorf("presign: rebuild: %w", err)
	}
	rb := &rebuild{p: p, st: st, prog: Progress{Epoch: epoch, Running: true, Total: total, Started: p.now()}}
	p.progress.Store(&rb.prog)
	p.log.Info("rebuilding OCSP response cache", "epoch", epoch, "certificates", total, "from_event", seq)
	return rb, nil
}

// newEpoch names a rebuild.
func (p *Pipeline) newEpoch() (string, error) {
	b := make([]byte, 8)
	if _, err := io.ReadFull(p.rand, b); err != nil {
		return "", fmt.Errorf("presign: reading randomness for an epoch: %w", err)
	}
	return hex.EncodeToString(b), nil
}

// logProgress logs the rebuild's progress every 5 s until the returned
// function is called.
func (rb *rebuild) logProgress() (stop func()) {
	quit, exited := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(exited)
		t := time.NewTicker(5 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				d := rb.done.Load()
				rb.p.log.Info("rebuilding OCSP response cache", "epoch", rb.st.Epoch, "done", d, "total", rb.prog.Total,
					"responses", rb.resps.Load(), "per_second", int(float64(d)/rb.p.now().Sub(rb.prog.Started).Seconds()))
			case <-quit:
				return
			}
		}
	}()
	return func() { close(quit); <-exited }
}

// feed emits every certificate unexpired when the rebuild started, a
// store page at a time, and gives up when the cache is lost meanwhile.
func (rb *rebuild) feed(ctx context.Context, emit emitFunc) error {
	p := rb.p
	var after serial.Serial
	for pages := 1; ; pages++ {
		page, err := p.store.ListCertificates(ctx, store.Page{AfterSerial: after, NotAfterAfter: rb.prog.Started, Limit: pageSize})
		if err != nil {
			p.m.failures[stageRead].Inc()
			return fmt.Errorf("presign: rebuild: %w", err)
		}
		if len(page) == 0 {
			return nil
		}
		cs := make([]cert, len(page))
		for i, c := range page {
			cs[i] = fromSummary(c)
		}
		if err := p.emitBatches(cs, emit); err != nil {
			return err
		}
		after = page[len(page)-1].Serial
		// A cache lost mid-rebuild must be rebuilt from the start.
		if pages%16 == 0 {
			if cur, err := p.cache.State(ctx); err != nil || cur != rb.st {
				return fmt.Errorf("%w (rebuild %s at %s)", ErrCacheLost, rb.st.Epoch, after)
			}
		}
	}
}

// written records a written batch in Progress.
func (rb *rebuild) written(certs, responses int) {
	next := rb.prog
	next.Done, next.Responses = rb.done.Add(int64(certs)), rb.resps.Add(int64(responses))
	rb.p.progress.Store(&next)
}

// complete marks the cache complete, unless it changed underneath.
func (rb *rebuild) complete(ctx context.Context) error {
	err := rb.p.cache.SwapState(ctx, rb.st, ocspcache.State{Epoch: rb.st.Epoch, Complete: true, Seq: rb.st.Seq})
	if errors.Is(err, ocspcache.ErrStateChanged) {
		return fmt.Errorf("%w (rebuild %s)", ErrCacheLost, rb.st.Epoch)
	}
	return err
}

// finish records the outcome in Progress and the log.
func (rb *rebuild) finish(n int64, err error) (int64, error) {
	final := rb.prog
	final.Running, final.Done, final.Responses, final.Finished, final.Err = false, rb.done.Load(), rb.resps.Load(), rb.p.now(), err
	rb.p.progress.Store(&final)
	if err != nil {
		return n, fmt.Errorf("presign: rebuild %s: %w", rb.st.Epoch, err)
	}
	rb.p.log.Info("OCSP response cache rebuilt", "epoch", rb.st.Epoch, "certificates", n, "responses", final.Responses,
		"seconds", final.Finished.Sub(rb.prog.Started).Seconds())
	return n, nil
}
