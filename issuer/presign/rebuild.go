package presign

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"sync"
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
	Responses int64
	// Resumed is the serial an unfinished rebuild was resumed after
	// (empty for a rebuild from the start).
	Resumed           serial.Serial
	Started, Finished time.Time
	Err               error
}

// Progress returns the state of the current or last rebuild.
func (p *Pipeline) Progress() Progress { return *p.progress.Load() }

// Rebuild signs every unexpired certificate's responses into the cache
// (warm start) under a new epoch, and marks the cache complete when done.
// It is what Run does when the cache is lost; call it directly to force
// one. Progress is logged every 5 s and readable through Progress.
//
// A rebuild is resumable: it records in the cache's State the serial up
// to which every response is written (State.After), a few times a
// second, and a rebuild that finds the cache incomplete continues that
// epoch from there instead of starting again; a pre-signer killed midway
// loses at most the batches in flight.
//
// A rebuild does not move the store's per-certificate refresh points: it
// records in the State a refresh floor, before which none of its
// responses is due, and Refresh asks the store for nothing earlier once
// the rebuild is complete.
func (p *Pipeline) Rebuild(ctx context.Context) (int64, error) {
	p.rebuildMu.Lock()
	defer p.rebuildMu.Unlock()
	rb, err := p.claim(ctx)
	if err != nil {
		return 0, err
	}
	stopLog := rb.logProgress()
	n, err := p.process(ctx, triggerRebuild, p.cfg.HashAlgs, false, rb.feed, rb.resume.written)
	stopLog()
	if err == nil {
		err = rb.complete(ctx)
	}
	return rb.finish(n, err)
}

// rebuild is one Rebuild under way.
type rebuild struct {
	p      *Pipeline
	st     ocspcache.State // the cache's state while it runs (its feed's)
	prog   Progress        // as it started
	done   atomic.Int64    // certificates processed
	resps  atomic.Int64    // responses written
	resume resumePoint
}

// claim marks the cache as being rebuilt. An unfinished rebuild's epoch
// (the cache incomplete) is resumed after its State.After; otherwise a new
// epoch starts, whose scan covers the events up to the log's current end
// (later ones are caught up afterwards; a resumed epoch keeps its Seq).
func (p *Pipeline) claim(ctx context.Context) (*rebuild, error) {
	old, err := p.cache.State(ctx)
	if err != nil {
		return nil, fmt.Errorf("presign: rebuild: %w", err)
	}
	st := old
	if old.Epoch == "" || old.Complete {
		seq, err := p.store.LastEventSeq(ctx)
		if err != nil {
			return nil, fmt.Errorf("presign: rebuild: %w", err)
		}
		epoch, err := p.newEpoch()
		if err != nil {
			return nil, err
		}
		// Every response this rebuild signs is due at or after its
		// refresh floor; the store's per-certificate refresh points are
		// left as they are (rewriting a million rows halved the rebuild).
		_, _, floor := p.times(p.now(), &cert{})
		st = ocspcache.State{Epoch: epoch, Seq: seq, RefreshFloor: floor.Unix()}
		if err := p.cache.SwapState(ctx, old, st); err != nil {
			return nil, fmt.Errorf("presign: rebuild: claiming the cache: %w", err)
		}
	}
	total, err := p.store.CountCertificates(ctx)
	if err != nil {
		return nil, fmt.Errorf("presign: rebuild: %w", err)
	}
	rb := &rebuild{p: p, st: st, prog: Progress{Epoch: st.Epoch, Running: true, Total: total, Resumed: serial.Serial(st.After), Started: p.now()}}
	rb.resume.rb, rb.resume.after = rb, serial.Serial(st.After)
	p.progress.Store(&rb.prog)
	if st == old {
		p.log.Info("resuming the OCSP response cache rebuild", "epoch", st.Epoch, "after_serial", st.After, "certificates", total, "from_event", st.Seq)
	} else {
		p.log.Info("rebuilding OCSP response cache", "epoch", st.Epoch, "certificates", total, "from_event", st.Seq)
	}
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

// saveEvery is how many store pages the feed reads between two saves of
// the resume point (a second or so of signing; a variable for tests).
var saveEvery = 16

// feed emits every certificate unexpired when the rebuild started after
// the resume point, a store page at a time; every saveEvery pages it
// saves the resume point, and gives up when the cache is lost meanwhile.
func (rb *rebuild) feed(ctx context.Context, emit emitFunc) error {
	p := rb.p
	after := rb.resume.after
	emit = rb.resume.tracking(emit)
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
		if pages%saveEvery == 0 {
			if err := rb.save(ctx); err != nil {
				return err
			}
		}
	}
}

// save stores the resume point in the cache's State; it returns
// ErrCacheLost when the State is no longer this rebuild's (a cache lost
// mid-rebuild must be rebuilt from the start).
func (rb *rebuild) save(ctx context.Context) error {
	next := rb.st
	next.After = string(rb.resume.point())
	var err error
	if next == rb.st {
		var cur ocspcache.State
		if cur, err = rb.p.cache.State(ctx); err == nil && cur != rb.st {
			err = ocspcache.ErrStateChanged
		}
	} else {
		err = rb.p.cache.SwapState(ctx, rb.st, next)
	}
	if err != nil {
		return fmt.Errorf("%w (rebuild %s after %s: %w)", ErrCacheLost, rb.st.Epoch, rb.st.After, err)
	}
	rb.st = next
	return nil
}

// resumePoint follows which emitted batches are written. Writers finish
// batches out of order, so the point only moves over a prefix of the
// emission order that is written in full.
type resumePoint struct {
	rb      *rebuild
	mu      sync.Mutex
	pending []pendingBatch // emitted, not yet part of the prefix, in order
	after   serial.Serial  // every batch emitted up to here is written
}

type pendingBatch struct {
	last    serial.Serial
	written bool
}

// tracking wraps emit to register each batch before it goes out.
func (r *resumePoint) tracking(emit emitFunc) emitFunc {
	return func(cs []cert) error {
		r.mu.Lock()
		r.pending = append(r.pending, pendingBatch{last: cs[len(cs)-1].Serial})
		r.mu.Unlock()
		return emit(cs)
	}
}

// written records a written batch, in Progress and in the resume point.
func (r *resumePoint) written(certs, responses int, last serial.Serial) {
	rb := r.rb
	next := rb.prog
	next.Done, next.Responses = rb.done.Add(int64(certs)), rb.resps.Add(int64(responses))
	rb.p.progress.Store(&next)
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := range r.pending {
		if r.pending[i].last == last {
			r.pending[i].written = true
			break
		}
	}
	n := 0
	for n < len(r.pending) && r.pending[n].written {
		r.after = r.pending[n].last
		n++
	}
	r.pending = r.pending[n:]
}

// point returns the current resume point.
func (r *resumePoint) point() serial.Serial {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.after
}

// complete marks the cache complete, unless it changed underneath.
func (rb *rebuild) complete(ctx context.Context) error {
	err := rb.p.cache.SwapState(ctx, rb.st, ocspcache.State{Epoch: rb.st.Epoch, Complete: true, Seq: rb.st.Seq, RefreshFloor: rb.st.RefreshFloor})
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
