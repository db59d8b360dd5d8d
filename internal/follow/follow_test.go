package follow_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/trustline/trustline/internal/follow"
	"github.com/trustline/trustline/internal/store"
	"github.com/trustline/trustline/internal/testfix"
)

// log is an event log with Seq 1..n, with gaps where asked, that counts
// its reads and fails the read after `failAt` if set.
type log struct {
	evs    []store.Event
	reads  int
	failAt int64
}

func newLog(seqs ...int64) *log {
	l := &log{failAt: -1}
	for _, s := range seqs {
		l.evs = append(l.evs, store.Event{Seq: s, Kind: store.EventIssued})
	}
	return l
}

func seqRange(from, to int64) []int64 {
	var s []int64
	for i := from; i <= to; i++ {
		s = append(s, i)
	}
	return s
}

func (l *log) EventsAfter(_ context.Context, seq int64, limit int) ([]store.Event, error) {
	l.reads++
	if seq == l.failAt {
		return nil, errors.New("connection reset")
	}
	var out []store.Event
	for _, e := range l.evs {
		if e.Seq > seq && len(out) < limit {
			out = append(out, e)
		}
	}
	return out, nil
}

// pages records each page applied, and fails the page holding failOn.
type pages struct {
	got    [][]int64
	failOn int64
}

func (p *pages) Apply(_ context.Context, evs []store.Event) error {
	var s []int64
	for _, e := range evs {
		if e.Seq == p.failOn {
			return errors.New("cannot apply")
		}
		s = append(s, e.Seq)
	}
	p.got = append(p.got, s)
	return nil
}

func (p *pages) all() []int64 { return slices.Concat(p.got...) }

func TestRead(t *testing.T) {
	for _, tc := range []struct {
		name     string
		log      []int64
		from, to int64
		page     int
		want     []int64
		wantLast int64
		pages    int
	}{
		{"everything, one page", []int64{1, 2, 3}, 0, follow.NoBound, 10, []int64{1, 2, 3}, 3, 1},
		{"from a cursor", []int64{1, 2, 3, 5, 8}, 2, follow.NoBound, 10, []int64{3, 5, 8}, 8, 1},
		{"pages of two", []int64{1, 2, 3, 4, 5}, 0, follow.NoBound, 2, []int64{1, 2, 3, 4, 5}, 5, 3},
		{"bound inside a page", []int64{1, 2, 3, 4, 5}, 0, 3, 2, []int64{1, 2, 3}, 3, 2},
		{"bound on a gap", []int64{1, 2, 6, 7}, 0, 4, 10, []int64{1, 2}, 2, 1},
		{"bound already reached", []int64{1, 2, 3}, 3, 3, 10, nil, 3, 0},
		{"empty log", nil, 0, follow.NoBound, 10, nil, 0, 0},
		{"default page", seqRange(1, 2500), 0, follow.NoBound, 0, seqRange(1, 2500), 2500, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var p pages
			last, err := follow.Read(context.Background(), newLog(tc.log...), tc.from, tc.to, tc.page, &p)
			if err != nil {
				t.Fatal(err)
			}
			if last != tc.wantLast || !slices.Equal(p.all(), tc.want) || len(p.got) != tc.pages {
				t.Errorf("Read = %d, pages %v; want %d, %v in %d pages", last, p.got, tc.wantLast, tc.want, tc.pages)
			}
		})
	}
}

func TestReadStopsOnErrors(t *testing.T) {
	l := newLog(1, 2, 3, 4, 5)
	l.failAt = 4
	var p pages
	last, err := follow.Read(context.Background(), l, 0, follow.NoBound, 2, &p)
	if err == nil || last != 4 || !slices.Equal(p.all(), []int64{1, 2, 3, 4}) {
		t.Errorf("read failure: last %d, applied %v, err %v; want 4, [1 2 3 4], an error", last, p.all(), err)
	}
	p = pages{failOn: 3}
	last, err = follow.Read(context.Background(), newLog(1, 2, 3, 4, 5), 0, follow.NoBound, 2, &p)
	if err == nil || last != 2 || !slices.Equal(p.all(), []int64{1, 2}) {
		t.Errorf("apply failure: last %d, applied %v, err %v; want 2, [1 2], an error", last, p.all(), err)
	}
}

// refusing is a cursor whose Save fails once the position passes limit.
type refusing struct {
	follow.MemoryCursor
	limit int64
	saves []int64
}

func (c *refusing) Save(ctx context.Context, seq int64) error {
	if seq > c.limit {
		return errors.New("state changed underneath")
	}
	c.saves = append(c.saves, seq)
	return c.MemoryCursor.Save(ctx, seq)
}

func TestFollowerMovesTheCursorAfterEachPage(t *testing.T) {
	cur := &refusing{MemoryCursor: follow.MemoryCursor{Seq: 1}, limit: 100}
	var p pages
	f := follow.Follower{Events: newLog(seqRange(1, 7)...), Cursor: cur, Consumer: &p, Page: 3}
	last, err := f.Step(context.Background())
	if err != nil || last != 7 || !slices.Equal(cur.saves, []int64{4, 7}) || !slices.Equal(p.all(), seqRange(2, 7)) {
		t.Fatalf("Step = %d, %v; saves %v, applied %v; want 7, nil, [4 7], 2..7", last, err, cur.saves, p.all())
	}
	// Nothing new: nothing applied, nothing saved.
	if last, err := f.Step(context.Background()); err != nil || last != 7 || len(p.got) != 2 || len(cur.saves) != 2 {
		t.Errorf("second Step = %d, %v, %d pages, %d saves; want 7, nil, 2, 2", last, err, len(p.got), len(cur.saves))
	}

	// A refused save stops the follower where the cursor stands.
	cur = &refusing{limit: 3}
	p = pages{}
	f = follow.Follower{Events: newLog(seqRange(1, 7)...), Cursor: cur, Consumer: &p, Page: 3}
	if last, err := f.Step(context.Background()); err == nil || last != 3 || cur.Seq != 3 {
		t.Errorf("refused Save: Step = %d, %v, cursor %d; want 3, an error, 3", last, err, cur.Seq)
	}
	// A failed page does not move the cursor.
	cur = &refusing{limit: 100}
	p = pages{failOn: 5}
	f = follow.Follower{Events: newLog(seqRange(1, 7)...), Cursor: cur, Consumer: &p, Page: 3}
	if _, err := f.Step(context.Background()); err == nil || cur.Seq != 3 {
		t.Errorf("failed Apply: err %v, cursor %d; want an error, 3", err, cur.Seq)
	}
}

// leases is a store's lease table with an injectable failure.
type leases struct {
	mu       sync.Mutex
	holder   map[string]string
	until    map[string]time.Time
	fail     error
	acquires int
}

func newLeases() *leases {
	return &leases{holder: map[string]string{}, until: map[string]time.Time{}}
}

func (s *leases) AcquireLease(_ context.Context, name, holder string, now, until time.Time) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.acquires++
	if s.fail != nil {
		return false, s.fail
	}
	if h := s.holder[name]; h != "" && h != holder && now.Before(s.until[name]) {
		return false, nil
	}
	s.holder[name], s.until[name] = holder, until
	return true, nil
}

func (s *leases) ReleaseLease(_ context.Context, name, holder string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.holder[name] == holder {
		delete(s.holder, name)
	}
	return nil
}

func (s *leases) set(f func(*leases)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f(s)
}

func TestLease(t *testing.T) {
	ctx := context.Background()
	st := newLeases()
	clock := testfix.NewClock(time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC))
	a, err := follow.NewLease(st, "crlgen/int", "a", time.Minute, clock.Now)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := follow.NewLease(st, "crlgen/int", "b", time.Minute, clock.Now)

	step := func(l *follow.Lease, want follow.Change, held bool) {
		t.Helper()
		if ch, err := l.Renew(ctx); err != nil || ch != want || l.Held() != held {
			t.Fatalf("Renew = %v, %v, held %v; want %v, nil, %v", ch, err, l.Held(), want, held)
		}
	}
	step(a, follow.Taken, true)
	step(b, follow.Kept, false)
	if !a.Fresh() {
		t.Error("a lease just taken is not Fresh")
	}
	clock.Advance(29 * time.Second)
	if !a.Fresh() {
		t.Error("a lease under half its ttl old is not Fresh")
	}
	clock.Advance(time.Second)
	if a.Fresh() {
		t.Error("a lease half its ttl old is still Fresh")
	}
	step(a, follow.Kept, true)
	clock.Advance(-time.Second)
	if a.Fresh() {
		t.Error("after the clock stepped back the lease is still Fresh: it would not be rewritten")
	}

	// a stops renewing: b takes it once it lapses, and a learns it lost it.
	clock.Advance(time.Minute + time.Second)
	step(b, follow.Taken, true)
	step(a, follow.Lost, false)

	// A store failure drops the lease: the holder must stop acting on it.
	st.set(func(s *leases) { s.fail = errors.New("connection refused") })
	if ch, err := b.Renew(ctx); err == nil || ch != follow.Lost || b.Held() {
		t.Errorf("Renew on a failing store = %v, %v, held %v; want Lost, an error, false", ch, err, b.Held())
	}
	st.set(func(s *leases) { s.fail = nil })
	step(b, follow.Taken, true)

	// Release gives it back at once; Drop does not.
	if err := b.Release(ctx); err != nil || b.Held() {
		t.Fatalf("Release = %v, held %v", err, b.Held())
	}
	step(a, follow.Taken, true)
	a.Drop()
	if a.Held() || a.Fresh() {
		t.Error("a dropped lease is still held")
	}
	step(b, follow.Kept, false) // still a's in the store until it lapses
	// Released after a Drop (a take-over abandoned at shutdown), it is
	// given back all the same.
	if err := a.Release(ctx); err != nil {
		t.Fatal(err)
	}
	step(b, follow.Taken, true)
	fresh, _ := follow.NewLease(st, "crlgen/int", "c", time.Minute, clock.Now)
	if err := fresh.Release(ctx); err != nil {
		t.Errorf("releasing a lease never renewed: %v", err)
	}
	step(b, follow.Kept, true) // c, never having renewed, released nothing of b's

	if _, err := follow.NewLease(nil, "", "x", 0, nil); err == nil {
		t.Error("NewLease accepted no store, no name and no ttl")
	}
}

func TestLeaderRunsRoundsOnlyWhileHolding(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		st := newLeases()
		// Someone else holds it for the first 30 s.
		st.AcquireLease(context.Background(), "presigner", "other", time.Now(), time.Now().Add(30*time.Second))
		l, err := follow.NewLease(st, "presigner", "me", 30*time.Second, nil)
		if err != nil {
			t.Fatal(err)
		}
		var (
			mu        sync.Mutex
			rounds    int
			cancelled int
			changes   []bool
		)
		ld := follow.Leader{
			Lease: l, RenewEvery: 10 * time.Second, Poll: time.Second, Log: testfix.Logger(t),
			Round: func(ctx context.Context) {
				mu.Lock()
				rounds++
				mu.Unlock()
				select { // a long round: cancelled if the lease goes
				case <-ctx.Done():
					mu.Lock()
					cancelled++
					mu.Unlock()
				case <-time.After(1500 * time.Millisecond): // longer than Poll: always in a round
				}
			},
			Changed: func(held bool) { mu.Lock(); changes = append(changes, held); mu.Unlock() },
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error)
		go func() { done <- ld.Run(ctx) }()

		time.Sleep(25 * time.Second)
		synctest.Wait()
		mu.Lock()
		if rounds != 0 {
			t.Errorf("%d rounds ran while another instance held the lease", rounds)
		}
		mu.Unlock()

		time.Sleep(20 * time.Second) // renewed at 30 s: taken
		synctest.Wait()
		mu.Lock()
		if rounds < 5 || !slices.Equal(changes, []bool{true}) {
			t.Errorf("after taking the lease: %d rounds, changes %v; want ≥ 5, [true]", rounds, changes)
		}
		mu.Unlock()

		// The store fails mid-round: the round is cancelled, rounds stop.
		st.set(func(s *leases) { s.fail = errors.New("connection refused") })
		time.Sleep(10*time.Second + 250*time.Millisecond)
		synctest.Wait()
		mu.Lock()
		before := rounds
		if cancelled != 1 || !slices.Equal(changes, []bool{true, false}) {
			t.Errorf("after losing the lease: %d rounds cancelled, changes %v; want 1, [true false]", cancelled, changes)
		}
		mu.Unlock()
		time.Sleep(5 * time.Second)
		synctest.Wait()
		mu.Lock()
		if rounds != before {
			t.Errorf("%d rounds ran after the lease was lost", rounds-before)
		}
		mu.Unlock()

		st.set(func(s *leases) { s.fail = nil })
		time.Sleep(10 * time.Second) // taken again
		cancel()
		if err := <-done; err != nil {
			t.Fatalf("Run = %v", err)
		}
		st.mu.Lock()
		defer st.mu.Unlock()
		if h := st.holder["presigner"]; h != "" {
			t.Errorf("after Run returned the lease is held by %q; want it given back", h)
		}
	})
}
