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
	"github.com/trustline/trustline/internal/ocspcodec"
	"github.com/trustline/trustline/internal/serial"
	"github.com/trustline/trustline/internal/status"
	"github.com/trustline/trustline/internal/store"
)

// leaseName is the store lease the leader holds.
const leaseName = "ocsp-presigner"

// Page sizes of store reads.
const (
	pageSize  = 1000
	eventPage = 1000
)

// ErrCacheLost: the cache's State changed under a rebuild or a catch-up
// (the cache was flushed or restarted, or another instance rebuilt it).
// Run rebuilds on its next round.
var ErrCacheLost = errors.New("presign: response cache state changed underneath")

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

// emitFunc hands a batch of certificates to the workers.
type emitFunc func([]cert) error

// process signs the batches feed emits with Workers goroutines; two
// writers put each signed batch in the cache, then record its refresh
// points. It returns how many certificates were signed. onWritten, if
// set, is called after each batch is written.
func (p *Pipeline) process(ctx context.Context, trigger int, algs []ocspcodec.HashAlg, evict bool,
	feed func(ctx context.Context, emit emitFunc) error, onWritten func(certs, responses int)) (int64, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		errOnce  sync.Once
		firstErr error
		done     atomic.Int64
	)
	fail := func(err error) {
		errOnce.Do(func() { firstErr = err; cancel() })
	}
	jobs := make(chan []cert, p.cfg.Workers)
	signed := make(chan batch, p.cfg.Workers)

	var feeders, signers, writers sync.WaitGroup
	feeders.Add(1)
	go func() {
		defer feeders.Done()
		defer close(jobs)
		err := feed(ctx, func(cs []cert) error {
			select {
			case jobs <- cs:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		})
		if err != nil {
			fail(err)
		}
	}()
	for range p.cfg.Workers {
		signers.Add(1)
		go func() {
			defer signers.Done()
			for cs := range jobs {
				if ctx.Err() != nil {
					continue // drain
				}
				b, err := p.signBatch(cs, algs, p.now(), evict)
				if err != nil {
					p.m.failures[stageSign].Inc()
					fail(err)
					continue
				}
				select {
				case signed <- b:
				case <-ctx.Done():
				}
			}
		}()
	}
	go func() { signers.Wait(); close(signed) }()
	for range 2 {
		writers.Add(1)
		go func() {
			defer writers.Done()
			for b := range signed {
				if ctx.Err() != nil {
					continue
				}
				if err := p.cache.Put(ctx, b.items); err != nil {
					p.m.failures[stageWrite].Inc()
					fail(fmt.Errorf("presign: writing %d responses: %w", len(b.items), err))
					continue
				}
				p.m.signed[trigger].Add(float64(len(b.items)))
				if err := p.store.SetOCSPRefresh(ctx, b.refreshes); err != nil {
					p.m.failures[stageSchedule].Inc()
					fail(fmt.Errorf("presign: recording %d refresh points: %w", len(b.refreshes), err))
					continue
				}
				done.Add(int64(b.signed))
				if onWritten != nil {
					onWritten(b.signed+b.skipped, len(b.items))
				}
			}
		}()
	}
	feeders.Wait()
	writers.Wait()
	return done.Load(), firstErr
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

// newEpoch names a rebuild.
func (p *Pipeline) newEpoch() (string, error) {
	b := make([]byte, 8)
	if _, err := io.ReadFull(p.rand, b); err != nil {
		return "", fmt.Errorf("presign: reading randomness for an epoch: %w", err)
	}
	return hex.EncodeToString(b), nil
}

// Rebuild signs every unexpired certificate's responses into the cache
// (warm start) under a new epoch, and marks the cache complete when done.
// It is what Run does when the cache is lost; call it directly to force
// one. Progress is logged every 5 s and readable through Progress.
func (p *Pipeline) Rebuild(ctx context.Context) (int64, error) {
	p.rebuildMu.Lock()
	defer p.rebuildMu.Unlock()
	old, err := p.cache.State(ctx)
	if err != nil {
		return 0, fmt.Errorf("presign: rebuild: %w", err)
	}
	// Events up to seq are covered by the scan below; later ones are
	// caught up afterwards.
	seq, err := p.store.LastEventSeq(ctx)
	if err != nil {
		return 0, fmt.Errorf("presign: rebuild: %w", err)
	}
	epoch, err := p.newEpoch()
	if err != nil {
		return 0, err
	}
	st := ocspcache.State{Epoch: epoch, Seq: seq}
	if err := p.cache.SwapState(ctx, old, st); err != nil {
		return 0, fmt.Errorf("presign: rebuild: claiming the cache: %w", err)
	}
	total, err := p.store.CountCertificates(ctx)
	if err != nil {
		return 0, fmt.Errorf("presign: rebuild: %w", err)
	}
	start := p.now()
	prog := Progress{Epoch: epoch, Running: true, Total: total, Started: start}
	p.progress.Store(&prog)
	var doneN, respN atomic.Int64
	p.log.Info("rebuilding OCSP response cache", "epoch", epoch, "certificates", total, "from_event", seq)

	stopLog := make(chan struct{})
	logDone := make(chan struct{})
	go func() {
		defer close(logDone)
		t := time.NewTicker(5 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				d := doneN.Load()
				p.log.Info("rebuilding OCSP response cache", "epoch", epoch, "done", d, "total", total,
					"responses", respN.Load(), "per_second", int(float64(d)/p.now().Sub(start).Seconds()))
			case <-stopLog:
				return
			}
		}
	}()
	feed := func(ctx context.Context, emit emitFunc) error {
		var after serial.Serial
		for pages := 1; ; pages++ {
			page, err := p.store.ListCertificates(ctx, store.Page{AfterSerial: after, NotAfterAfter: start, Limit: pageSize})
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
				if cur, err := p.cache.State(ctx); err != nil || cur != st {
					return fmt.Errorf("%w (rebuild %s at %s)", ErrCacheLost, epoch, after)
				}
			}
		}
	}
	n, err := p.process(ctx, triggerRebuild, p.cfg.HashAlgs, false, feed, func(certs, responses int) {
		d := doneN.Add(int64(certs))
		r := respN.Add(int64(responses))
		next := prog
		next.Done, next.Responses = d, r
		p.progress.Store(&next)
	})
	close(stopLog)
	<-logDone
	if err == nil {
		err = p.cache.SwapState(ctx, st, ocspcache.State{Epoch: epoch, Complete: true, Seq: seq})
		if errors.Is(err, ocspcache.ErrStateChanged) {
			err = fmt.Errorf("%w (rebuild %s)", ErrCacheLost, epoch)
		}
	}
	final := prog
	final.Running, final.Done, final.Responses, final.Finished, final.Err = false, doneN.Load(), respN.Load(), p.now(), err
	p.progress.Store(&final)
	if err != nil {
		return n, fmt.Errorf("presign: rebuild %s: %w", epoch, err)
	}
	p.log.Info("OCSP response cache rebuilt", "epoch", epoch, "certificates", n, "responses", final.Responses,
		"seconds", final.Finished.Sub(start).Seconds())
	return n, nil
}

// CatchUp applies the status-change events the cache has not seen (its
// State's Seq onwards): certificates issued or revoked without this
// process's sink. A certificate whose cached response already has its
// status is skipped. It returns how many certificates were signed.
func (p *Pipeline) CatchUp(ctx context.Context) (int64, error) {
	st, err := p.cache.State(ctx)
	if err != nil {
		return 0, fmt.Errorf("presign: catch-up: %w", err)
	}
	if st.Epoch == "" {
		return 0, ErrCacheLost
	}
	primary := p.cfg.HashAlgs[0]
	var total int64
	for {
		evs, err := p.store.EventsAfter(ctx, st.Seq, eventPage)
		if err != nil {
			p.m.failures[stageRead].Inc()
			return total, fmt.Errorf("presign: catch-up: %w", err)
		}
		if len(evs) == 0 {
			return total, nil
		}
		seen := map[serial.Serial]bool{}
		var cs []cert
		var keys []string
		for _, e := range evs {
			if seen[e.Serial] {
				continue
			}
			seen[e.Serial] = true
			c, err := p.store.Certificate(ctx, e.Serial)
			if errors.Is(err, store.ErrNotFound) {
				continue
			}
			if err != nil {
				p.m.failures[stageRead].Inc()
				return total, fmt.Errorf("presign: catch-up: %w", err)
			}
			cs = append(cs, fromCertificate(c))
			keys = append(keys, ocspcache.Key(c.IssuerID, string(c.Serial), primary))
		}
		cached := make([]ocspcache.Entry, len(keys))
		if err := p.cache.Get(ctx, keys, cached); err != nil {
			return total, fmt.Errorf("presign: catch-up: %w", err)
		}
		now := p.now()
		var good, revoked []cert
		for i, c := range cs {
			if e := cached[i]; e.Found() && e.Status == c.Status && now.Before(e.RefreshAt) {
				continue
			}
			if c.Status == status.Revoked {
				revoked = append(revoked, c)
			} else {
				good = append(good, c)
			}
		}
		for _, part := range []struct {
			cs    []cert
			algs  []ocspcodec.HashAlg
			evict bool
		}{{good, p.cfg.HashAlgs, false}, {revoked, allAlgs, true}} {
			if len(part.cs) == 0 {
				continue
			}
			n, err := p.process(ctx, triggerEvent, part.algs, part.evict,
				func(_ context.Context, emit emitFunc) error { return p.emitBatches(part.cs, emit) }, nil)
			total += n
			if err != nil {
				return total, fmt.Errorf("presign: catch-up: %w", err)
			}
		}
		next := st
		next.Seq = evs[len(evs)-1].Seq
		if err := p.cache.SwapState(ctx, st, next); err != nil {
			if errors.Is(err, ocspcache.ErrStateChanged) {
				return total, ErrCacheLost
			}
			return total, fmt.Errorf("presign: catch-up: %w", err)
		}
		st = next
	}
}

// maxRefreshRounds bounds one Refresh call, so that events are followed
// between rounds even when a large backlog is due.
const maxRefreshRounds = 16

// Refresh re-signs the responses that have reached their refresh point.
// It returns how many certificates were signed.
func (p *Pipeline) Refresh(ctx context.Context) (int64, error) {
	limit := p.cfg.Batch * p.cfg.Workers * 4
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

// Run is the leader loop: while this instance holds the lease it rebuilds
// a lost or unfinished cache, follows events and refreshes due responses,
// every Poll. It returns when ctx is done, releasing the lease.
func (p *Pipeline) Run(ctx context.Context) error {
	var (
		leader atomic.Bool
		mu     sync.Mutex
		stop   context.CancelFunc // cancels the current round when leadership is lost
	)
	renew := func() {
		now := p.now()
		ok, err := p.store.AcquireLease(ctx, leaseName, p.cfg.Instance, now, now.Add(p.cfg.Lease))
		if err != nil && ctx.Err() == nil {
			p.log.Warn("renewing the pre-signer lease", "err", err)
		}
		ok = ok && err == nil
		if was := leader.Swap(ok); was != ok {
			p.log.Info("pre-signer leadership changed", "leader", ok, "instance", p.cfg.Instance)
			if !ok {
				mu.Lock()
				if stop != nil {
					stop()
				}
				mu.Unlock()
			}
		}
		p.m.leader.Set(map[bool]float64{true: 1}[ok])
	}
	renew()
	renewDone := make(chan struct{})
	go func() {
		defer close(renewDone)
		t := time.NewTicker(p.cfg.Lease / 3)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				renew()
			case <-ctx.Done():
				return
			}
		}
	}()
	t := time.NewTicker(p.cfg.Poll)
	defer t.Stop()
	for {
		if leader.Load() {
			rctx, cancel := context.WithCancel(ctx)
			mu.Lock()
			stop = cancel
			mu.Unlock()
			p.round(rctx)
			mu.Lock()
			stop = nil
			mu.Unlock()
			cancel()
		}
		select {
		case <-ctx.Done():
			<-renewDone
			rctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if leader.Load() {
				if err := p.store.ReleaseLease(rctx, leaseName, p.cfg.Instance); err != nil {
					p.log.Warn("releasing the pre-signer lease", "err", err)
				}
			}
			return nil
		case <-t.C:
		}
	}
}

// round is one pass of the leader loop. Errors are logged: the next round
// retries.
func (p *Pipeline) round(ctx context.Context) {
	st, err := p.cache.State(ctx)
	if err != nil {
		p.log.Warn("reading the response cache state", "err", err)
		return
	}
	if st.Epoch == "" || !st.Complete {
		reason := "cache lost or new"
		if st.Epoch != "" {
			reason = "previous rebuild unfinished"
		}
		p.log.Info("OCSP response cache needs a rebuild", "reason", reason)
		if _, err := p.Rebuild(ctx); err != nil && ctx.Err() == nil {
			p.log.Warn("rebuilding the response cache", "err", err)
			return
		}
	}
	if n, err := p.CatchUp(ctx); err != nil && ctx.Err() == nil {
		p.log.Warn("following status-change events", "err", err, "signed", n)
		return
	} else if n > 0 {
		p.log.Info("applied status-change events", "certificates", n)
	}
	if n, err := p.Refresh(ctx); err != nil && ctx.Err() == nil {
		p.log.Warn("refreshing OCSP responses", "err", err, "signed", n)
	} else if n > 0 {
		p.log.Info("refreshed OCSP responses", "certificates", n)
	}
}
