package ocspcache_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/trustline/trustline/internal/ocspcache"
	"github.com/trustline/trustline/internal/ocspcache/cachetest"
	"github.com/trustline/trustline/internal/ocspcodec"
	"github.com/trustline/trustline/internal/status"
	"github.com/trustline/trustline/internal/testfix"
)

// redisDB is the shared Redis database these tests use, each under a key
// prefix of its own (see cachetest.SharedRedis).
const redisDB = 8

func TestRedisConformance(t *testing.T) {
	cachetest.Run(t, func(t *testing.T, clock *cachetest.Clock) ocspcache.Cache {
		client, prefix := cachetest.SharedRedis(t, redisDB)
		return newRedis(t, ocspcache.RedisConfig{Prefix: prefix, WriteBatch: 300, Now: clock.Now}, client)
	})
}

func TestRedisConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  ocspcache.RedisConfig
		ok   bool
	}{
		{"defaults", ocspcache.RedisConfig{Prefix: "trustline:ocsp:"}, true},
		{"no prefix", ocspcache.RedisConfig{}, false},
		{"hash tag", ocspcache.RedisConfig{Prefix: "{x}:"}, false},
		{"negative", ocspcache.RedisConfig{Prefix: "p:", Coalesce: -1}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.cfg.Validate(); (err == nil) != tc.ok {
				t.Errorf("Validate() = %v, want ok=%v", err, tc.ok)
			}
		})
	}
}

// newRedis is a cache over client, logging nowhere, closed when the test
// ends.
func newRedis(tb testing.TB, cfg ocspcache.RedisConfig, client redis.UniversalClient) *ocspcache.Redis {
	tb.Helper()
	r, err := ocspcache.NewRedis(cfg, client, testfix.QuietLogger())
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { r.Close() })
	return r
}

func newEntry(st status.Status) ocspcache.Entry {
	this := time.Now().Truncate(time.Second).Add(-time.Hour)
	return ocspcache.Entry{DER: []byte{0x30, 0x01, byte(st)}, Status: st, ThisUpdate: this,
		NextUpdate: this.Add(24 * time.Hour), RefreshAt: this.Add(12 * time.Hour)}
}

// TestRedisEvictionsAcrossProcesses: an eviction published by one cache
// reaches another's subscribers through pub/sub; after the server
// restarts (messages may have been lost), subscribers are told that no
// copy they hold can be trusted (an Eviction without a prefix).
func TestRedisEvictionsAcrossProcesses(t *testing.T) {
	srv := cachetest.StartPrivateRedis(t)
	a := newRedis(t, ocspcache.RedisConfig{Prefix: "p:"}, srv.Client())
	b := newRedis(t, ocspcache.RedisConfig{Prefix: "p:"}, srv.Client())

	evs := make(chan ocspcache.Eviction, 16)
	cancel := b.Subscribe(func(e ocspcache.Eviction) { evs <- e })
	defer cancel()
	// Let the subscription settle: Subscribe returns before SUBSCRIBE is
	// acknowledged, and messages published before that are not delivered.
	time.Sleep(200 * time.Millisecond)

	putEvicting(t, a, evs)

	srv.Restart()
	waitEviction(t, evs, "", 10*time.Second) // resubscribed: trust no copy
}

// TestRedisRestartEmpty: after the server restarts empty, State reports a
// lost cache and writes work again (the write script is reloaded).
func TestRedisRestartEmpty(t *testing.T) {
	srv := cachetest.StartPrivateRedis(t)
	r := newRedis(t, ocspcache.RedisConfig{Prefix: "p:"}, srv.Client())
	ctx := context.Background()
	key := ocspcache.Key("int-a", cachetest.RandomSerial(), ocspcodec.SHA1)
	if err := r.SwapState(ctx, ocspcache.State{}, ocspcache.State{Epoch: "e1", Complete: true}); err != nil {
		t.Fatal(err)
	}
	if err := r.Put(ctx, []ocspcache.Item{{Key: key, Entry: newEntry(status.Good)}}); err != nil {
		t.Fatal(err)
	}
	srv.Restart()

	var (
		st  ocspcache.State
		err error
	)
	deadline := time.Now().Add(5 * time.Second)
	for {
		st, err = r.State(ctx)
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("State after restart: %v", err)
	}
	if st != (ocspcache.State{}) {
		t.Errorf("State after restart = %+v, want zero (lost)", st)
	}
	out := make([]ocspcache.Entry, 1)
	if err := r.Get(ctx, []string{key}, out); err != nil || out[0].Found() {
		t.Errorf("Get after restart: found=%v err=%v, want a miss", out[0].Found(), err)
	}
	if err := r.Put(ctx, []ocspcache.Item{{Key: key, Entry: newEntry(status.Good)}}); err != nil {
		t.Fatalf("Put after restart (NOSCRIPT must be handled): %v", err)
	}
	if err := r.Get(ctx, []string{key}, out); err != nil || !out[0].Found() {
		t.Errorf("Get after rewrite: found=%v err=%v", out[0].Found(), err)
	}
}

// TestRedisDown: with the server gone, Get and Put fail within the
// caller's deadline instead of hanging.
func TestRedisDown(t *testing.T) {
	srv := cachetest.StartPrivateRedis(t)
	r := newRedis(t, ocspcache.RedisConfig{Prefix: "p:", Timeout: 300 * time.Millisecond}, srv.Client())
	srv.Stop()
	var wg sync.WaitGroup
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			start := time.Now()
			out := make([]ocspcache.Entry, 1)
			err := r.Get(ctx, []string{"int-a:01:2"}, out)
			if err == nil {
				t.Error("Get with Redis down succeeded")
			}
			if d := time.Since(start); d > 2500*time.Millisecond {
				t.Errorf("Get with Redis down took %v", d)
			}
		}()
	}
	wg.Wait()
}

// TestRingConformance runs the suite over a one-shard Ring: the adapter's
// pipeline path (no MGET), which Cluster also takes.
func TestRingConformance(t *testing.T) {
	cachetest.Run(t, func(t *testing.T, clock *cachetest.Clock) ocspcache.Cache {
		_, prefix := cachetest.SharedRedis(t, redisDB)
		ring := redis.NewRing(&redis.RingOptions{Addrs: map[string]string{"a": cachetest.SharedRedisAddr}, DB: redisDB})
		t.Cleanup(func() { ring.Close() })
		return newRedis(t, ocspcache.RedisConfig{Prefix: prefix, Now: clock.Now}, ring)
	})
}
