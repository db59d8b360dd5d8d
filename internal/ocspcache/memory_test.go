package ocspcache_test

import (
	"context"
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
