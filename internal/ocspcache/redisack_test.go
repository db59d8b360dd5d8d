package ocspcache_test

import (
	"context"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/trustline/trustline/internal/ocspcache"
	"github.com/trustline/trustline/internal/ocspcache/cachetest"
	"github.com/trustline/trustline/internal/ocspcodec"
	"github.com/trustline/trustline/internal/status"
	"github.com/trustline/trustline/internal/testfix"
)

// A write that evicts returns only once every other reader has dropped
// its copies: a reader slow to do so holds Put up; a reader that died is
// waited for AckTimeout at most, logged, and the write stands.
func TestRedisPutWaitsForReaders(t *testing.T) {
	ctx := context.Background()
	srv := cachetest.StartPrivateRedis(t)
	logs := &testfix.Buffer{}
	writer, err := ocspcache.NewRedis(ocspcache.RedisConfig{Prefix: "p:", AckTimeout: 5 * time.Second}, srv.Client(),
		slog.New(slog.NewTextHandler(logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer writer.Close()
	reader, err := ocspcache.NewRedis(ocspcache.RedisConfig{Prefix: "p:"}, srv.Client(), testfix.QuietLogger())
	if err != nil {
		t.Fatal(err)
	}
	var dropped atomic.Bool
	cancel := reader.Subscribe(func(e ocspcache.Eviction) {
		if e.Prefix != "" {
			time.Sleep(300 * time.Millisecond) // a reader busy elsewhere
			dropped.Store(true)
		}
	})
	defer cancel()
	// Registered once subscribed.
	client := srv.Client()
	deadline := time.Now().Add(10 * time.Second)
	for client.HLen(ctx, "p:readers").Val() != 1 {
		if time.Now().After(deadline) {
			t.Fatal("the reader never registered")
		}
		time.Sleep(10 * time.Millisecond)
	}

	put := func() {
		t.Helper()
		sn := cachetest.RandomSerial()
		if err := writer.Put(ctx, []ocspcache.Item{{Key: ocspcache.Key("int-a", sn, ocspcodec.SHA256),
			Entry: newEntry(status.Revoked), Evict: true}}); err != nil {
			t.Fatal(err)
		}
	}
	put()
	if !dropped.Load() {
		t.Fatal("Put returned before the other reader had dropped its copies")
	}
	if strings.Contains(logs.String(), "did not confirm") {
		t.Errorf("a live reader was reported as not confirming:\n%s", logs)
	}

	// The reader closes: it unregisters, and nobody is waited for.
	reader.Close()
	if n := client.HLen(ctx, "p:readers").Val(); n != 0 {
		t.Errorf("%d readers registered after the only one closed", n)
	}
	// A reader that died without a word is waited for, then reported.
	client.HSet(ctx, "p:readers", "ghost", time.Now().Add(time.Minute).UnixMilli())
	fast, err := ocspcache.NewRedis(ocspcache.RedisConfig{Prefix: "p:", AckTimeout: 200 * time.Millisecond}, srv.Client(),
		slog.New(slog.NewTextHandler(logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer fast.Close()
	sn := cachetest.RandomSerial()
	key := ocspcache.Key("int-a", sn, ocspcodec.SHA256)
	if err := fast.Put(ctx, []ocspcache.Item{{Key: key, Entry: newEntry(status.Revoked), Evict: true}}); err != nil {
		t.Fatalf("Put with a dead reader registered: %v", err)
	}
	if !strings.Contains(logs.String(), "did not confirm") {
		t.Errorf("a dead reader was not reported:\n%s", logs)
	}
	out := make([]ocspcache.Entry, 1)
	if err := fast.Get(ctx, []string{key}, out); err != nil || out[0].Status != status.Revoked {
		t.Errorf("the write did not stand: %v %v", err, out[0].Status)
	}
	// Long-expired registrations are forgotten by the next writer.
	client.HSet(ctx, "p:readers", "ghost", time.Now().Add(-2*time.Minute).UnixMilli())
	put()
	if n := client.HLen(ctx, "p:readers").Val(); n != 0 {
		t.Errorf("a registration expired two minutes ago was kept (%d readers)", n)
	}
}

// BenchmarkRevokeWrite is a revocation's cache write (one item, Evict) with
// one other reader registered: waiting for its acknowledgement (acked)
// against not waiting (AckTimeout < 0). The difference is what a revoke
// call pays for "revoked on every responder once it returns".
func BenchmarkRevokeWrite(b *testing.B) {
	srv := cachetest.StartPrivateRedis(b)
	reader, err := ocspcache.NewRedis(ocspcache.RedisConfig{Prefix: "p:"}, srv.Client(), testfix.QuietLogger())
	if err != nil {
		b.Fatal(err)
	}
	defer reader.Close()
	cancel := reader.Subscribe(func(ocspcache.Eviction) {})
	defer cancel()
	for srv.Client().HLen(context.Background(), "p:readers").Val() != 1 {
		time.Sleep(10 * time.Millisecond)
	}
	for _, bc := range []struct {
		name string
		ack  time.Duration
	}{{"acked", 0}, {"unacked", -1}} {
		b.Run(bc.name, func(b *testing.B) {
			w, err := ocspcache.NewRedis(ocspcache.RedisConfig{Prefix: "p:", AckTimeout: bc.ack}, srv.Client(), testfix.QuietLogger())
			if err != nil {
				b.Fatal(err)
			}
			defer w.Close()
			ctx := context.Background()
			for b.Loop() {
				sn := cachetest.RandomSerial()
				if err := w.Put(ctx, []ocspcache.Item{{Key: ocspcache.Key("int-a", sn, ocspcodec.SHA256),
					Entry: newEntry(status.Revoked), Evict: true}}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
