package follow

import (
	"context"
	"fmt"

	"github.com/trustline/trustline/internal/store"
)

// DefaultPage is how many events one store read returns when a caller does
// not say.
const DefaultPage = 1000

// Events reads the event log: the subset of store.Store this package needs
// to follow it.
type Events interface {
	EventsAfter(ctx context.Context, seq int64, limit int) ([]store.Event, error)
}

// Consumer does the work one page of events asks for. The page is in Seq
// order and never empty. An error stops the read before the page counts
// as applied.
type Consumer interface {
	Apply(ctx context.Context, evs []store.Event) error
}

// ConsumerFunc adapts a function to Consumer.
type ConsumerFunc func(ctx context.Context, evs []store.Event) error

// Apply calls f.
func (f ConsumerFunc) Apply(ctx context.Context, evs []store.Event) error { return f(ctx, evs) }

// NoBound is the `to` of a Read that goes to the end of the log.
const NoBound int64 = -1

// Read applies the events after from and at most to (NoBound: to the end
// of the log) to c, page events at a time (DefaultPage if page ≤ 0). It
// returns the Seq of the last event applied, or from if there was none;
// after an error, the last one of the pages applied before it.
func Read(ctx context.Context, ev Events, from, to int64, page int, c Consumer) (int64, error) {
	if page <= 0 {
		page = DefaultPage
	}
	last := from
	for to == NoBound || last < to {
		evs, err := ev.EventsAfter(ctx, last, page)
		if err != nil {
			return last, fmt.Errorf("reading events after %d: %w", last, err)
		}
		full := len(evs) == page
		if to != NoBound {
			evs = upTo(evs, to)
		}
		if len(evs) == 0 {
			return last, nil
		}
		if err := c.Apply(ctx, evs); err != nil {
			return last, err
		}
		last = evs[len(evs)-1].Seq
		if !full {
			return last, nil
		}
	}
	return last, nil
}

// upTo cuts evs after the last event at or before to.
func upTo(evs []store.Event, to int64) []store.Event {
	for i, e := range evs {
		if e.Seq > to {
			return evs[:i]
		}
	}
	return evs
}

// Cursor is where a Follower keeps its position: the Seq of the last event
// applied. Save may refuse (a compare-and-swap that lost): the Follower
// stops with its error.
type Cursor interface {
	Load(ctx context.Context) (int64, error)
	Save(ctx context.Context, seq int64) error
}

// MemoryCursor is a Cursor in memory, for a follower that rebuilds its
// position from elsewhere when it starts. It is not safe for concurrent
// use.
type MemoryCursor struct{ Seq int64 }

// Load returns c.Seq.
func (c *MemoryCursor) Load(context.Context) (int64, error) { return c.Seq, nil }

// Save sets c.Seq.
func (c *MemoryCursor) Save(_ context.Context, seq int64) error { c.Seq = seq; return nil }

// Follower applies the events after its Cursor to its Consumer and moves
// the cursor after each page.
type Follower struct {
	Events   Events
	Cursor   Cursor
	Consumer Consumer
	// Page is how many events one read returns; 0 means DefaultPage.
	Page int
}

// Step applies every event after the cursor, page by page, saving the
// cursor after each page. It returns the cursor's position at the end.
func (f Follower) Step(ctx context.Context) (int64, error) {
	from, err := f.Cursor.Load(ctx)
	if err != nil {
		return 0, err
	}
	save := ConsumerFunc(func(ctx context.Context, evs []store.Event) error {
		if err := f.Consumer.Apply(ctx, evs); err != nil {
			return err
		}
		return f.Cursor.Save(ctx, evs[len(evs)-1].Seq)
	})
	return Read(ctx, f.Events, from, NoBound, f.Page, save)
}
