// Package testfix holds the small fixtures tests all over Trustline share:
// a throwaway CA, a PEM chain parser, a settable clock, loggers and a log buffer. It imports the standard library only, so
// the tests of every package (the stateless responder and origin
// included) may use it.
//
// Only tests import it.
package testfix

import (
	"bytes"
	"log/slog"
	"sync"
	"testing"
	"time"
)

// Clock is a settable clock, safe for concurrent use. Pass its Now where
// a package takes a func() time.Time.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock starts a clock at t.
func NewClock(t time.Time) *Clock { return &Clock{t: t} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Set moves the clock to t, backwards too (a clock step).
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

// Advance moves the clock by d, which may be negative.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// QuietLogger discards everything: for tests whose logs say nothing the
// assertions do not.
func QuietLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// Logger writes warnings and errors to the test's output, where they show
// only when the test fails or runs with -v.
func Logger(tb testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tb.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// Buffer is a bytes.Buffer that several goroutines (a server's, a child
// process's output copiers) may write to while the test reads it.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

// String returns everything written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// Reset forgets everything written so far.
func (b *Buffer) Reset() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.b.Reset()
}
