package ocspcache_test

import (
	"bytes"
	"context"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/trustline/trustline/internal/ocspcache"
	"github.com/trustline/trustline/internal/ocspcache/cachetest"
	"github.com/trustline/trustline/internal/ocspcodec"
	"github.com/trustline/trustline/internal/status"
)

func TestMemoryConformance(t *testing.T) {
	cachetest.Run(t, func(t *testing.T, clock *cachetest.Clock) ocspcache.Cache {
		m, err := ocspcache.NewMemory(ocspcache.MemoryConfig{Now: clock.Now})
		if err != nil {
			t.Fatal(err)
		}
		return m
	})
}

// TestMemorySweep checks that dead entries do not accumulate: writes sweep
// them a shard at a time.
func TestMemorySweep(t *testing.T) {
	clock := &cachetest.Clock{}
	m, err := ocspcache.NewMemory(ocspcache.MemoryConfig{Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	this := clock.Now().Truncate(time.Second)
	mk := func(n int) []ocspcache.Item {
		items := make([]ocspcache.Item, n)
		for i := range items {
			items[i] = ocspcache.Item{Key: ocspcache.Key("int-a", cachetest.RandomSerial(), ocspcodec.SHA256),
				Entry: ocspcache.Entry{DER: []byte{0x30, 0}, Status: status.Good, ThisUpdate: this,
					NextUpdate: this.Add(time.Hour), RefreshAt: this.Add(30 * time.Minute)}}
		}
		return items
	}
	ctx := context.Background()
	if err := m.Put(ctx, mk(10000)); err != nil {
		t.Fatal(err)
	}
	clock.Advance(2 * time.Hour)
	// 64 shards, one swept per 4096 writes: 64×4096 writes sweep them all.
	for range 64 {
		if err := m.Put(ctx, mk(4096)); err != nil {
			t.Fatal(err)
		}
		clock.Advance(2 * time.Hour) // what was just written dies too
	}
	if n := m.Len(); n > 4096*2 {
		t.Errorf("Len = %d after sweeping, want at most the last writes", n)
	}
}

// TestMemoryBounded feeds a bounded cache ten times the responses it may
// hold: its Bytes stay within MaxBytes, the Go heap grows by about as much
// (the estimate is honest), recent writes are found, and Dropped reports
// that a miss no longer proves anything. An unbounded cache never drops.
func TestMemoryBounded(t *testing.T) {
	const maxBytes = 8 << 20
	m, err := ocspcache.NewMemory(ocspcache.MemoryConfig{MaxBytes: maxBytes})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	e := splitEntry("a signed response body of a realistic length: " + strings.Repeat("x", 200))
	perEntry := int64(len(e.DER))
	total := int(10 * maxBytes / perEntry)

	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	var last []ocspcache.Item
	for written := 0; written < total; written += 1000 {
		items := make([]ocspcache.Item, 1000)
		for i := range items {
			items[i] = ocspcache.Item{Key: ocspcache.Key("int-a", cachetest.RandomSerial(), ocspcodec.SHA1), Entry: e}
		}
		if err := m.Put(ctx, items); err != nil {
			t.Fatal(err)
		}
		if b := m.Bytes(); b > maxBytes {
			t.Fatalf("after %d writes Bytes = %d, over MaxBytes %d", written+1000, b, maxBytes)
		}
		last = items
	}
	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	grew := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	t.Logf("%d entries, Bytes %d, heap grew by %d", m.Len(), m.Bytes(), grew)
	if grew > maxBytes*13/10 {
		t.Errorf("heap grew by %d bytes holding %d bytes of entries (MaxBytes %d): the estimate is off", grew, m.Bytes(), maxBytes)
	}
	if !m.Dropped() {
		t.Error("Dropped is false after writing ten times the bound")
	}
	if n := m.Len(); n < int(maxBytes/perEntry/2) {
		t.Errorf("holds %d entries, fewer than half of what the bound allows (%d)", n, maxBytes/perEntry)
	}
	// The newest writes are mostly still there, and whole.
	out := make([]ocspcache.Entry, len(last))
	keys := make([]string, len(last))
	for i := range last {
		keys[i] = last[i].Key
	}
	if err := m.Get(ctx, keys, out); err != nil {
		t.Fatal(err)
	}
	found := 0
	for i := range out {
		if out[i].Found() {
			found++
			if !bytes.Equal(out[i].DER, e.DER) {
				t.Fatal("a response came back different")
			}
		}
	}
	if found < len(last)/2 {
		t.Errorf("%d of the last %d writes found", found, len(last))
	}

	unbounded, err := ocspcache.NewMemory(ocspcache.MemoryConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if err := unbounded.Put(ctx, last); err != nil || unbounded.Dropped() || unbounded.Len() != len(last) {
		t.Errorf("unbounded: Put %v, Dropped %v, Len %d", err, unbounded.Dropped(), unbounded.Len())
	}
	if _, err := ocspcache.NewMemory(ocspcache.MemoryConfig{MaxBytes: 1000}); err == nil {
		t.Error("a bound of 1000 bytes was accepted")
	}
}
