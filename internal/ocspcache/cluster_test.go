package ocspcache_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/trustline/trustline/internal/ocspcache"
	"github.com/trustline/trustline/internal/ocspcache/cachetest"
	"github.com/trustline/trustline/internal/ocspcodec"
	"github.com/trustline/trustline/internal/status"
	"github.com/trustline/trustline/internal/testenv"
)

// clusterClient connects to c the way the responder does.
func clusterClient(t *testing.T, c *testenv.RedisCluster) redis.UniversalClient {
	t.Helper()
	client, err := ocspcache.NewRedisClient(c.URL(), true)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	return client
}

// TestClusterConformance runs the suite over a Redis Cluster of three
// masters with a replica each: every key the cache uses lands on its own
// slot, so no command may span two.
func TestClusterConformance(t *testing.T) {
	cluster := testenv.StartRedisCluster(t, 3, 1)
	client := clusterClient(t, cluster)
	if _, ok := client.(*redis.ClusterClient); !ok {
		t.Fatalf("NewRedisClient(cluster) = %T", client)
	}
	cachetest.Run(t, func(t *testing.T, clock *cachetest.Clock) ocspcache.Cache {
		prefix := "tlc:" + cachetest.RandomSerial()[2:14] + ":"
		return newRedis(t, ocspcache.RedisConfig{Prefix: prefix, WriteBatch: 300, Now: clock.Now}, client)
	})
}

// TestClusterEvictionsAcrossProcesses: pub/sub evictions reach a cache
// whose subscription is on another node than the one the publisher
// talks to (PUBLISH is broadcast over the cluster bus).
func TestClusterEvictionsAcrossProcesses(t *testing.T) {
	cluster := testenv.StartRedisCluster(t, 3, 0)
	a := newRedis(t, ocspcache.RedisConfig{Prefix: "p:"}, clusterClient(t, cluster))
	b := newRedis(t, ocspcache.RedisConfig{Prefix: "p:"}, clusterClient(t, cluster))
	evs := make(chan ocspcache.Eviction, 64)
	cancel := b.Subscribe(func(e ocspcache.Eviction) { evs <- e })
	defer cancel()
	time.Sleep(200 * time.Millisecond) // let SUBSCRIBE be acknowledged

	// Several PUBLISHes: go-redis sends each to a node of its choosing.
	for range 5 {
		putEvicting(t, a, evs)
	}
}

// putEvicting writes a revoked entry through w with Evict set and waits
// for its eviction to arrive on evs.
func putEvicting(t *testing.T, w *ocspcache.Redis, evs <-chan ocspcache.Eviction) {
	t.Helper()
	sn := cachetest.RandomSerial()
	err := w.Put(context.Background(), []ocspcache.Item{{Key: ocspcache.Key("int-a", sn, ocspcodec.SHA256),
		Entry: newEntry(status.Revoked), Evict: true}})
	if err != nil {
		t.Fatal(err)
	}
	waitEviction(t, evs, ocspcache.EvictionPrefix("int-a", sn), 10*time.Second)
}

func waitEviction(t *testing.T, evs <-chan ocspcache.Eviction, want string, timeout time.Duration) {
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case e := <-evs:
			if e.Prefix == want {
				return
			}
		case <-deadline:
			t.Fatalf("eviction %q not delivered within %v", want, timeout)
		}
	}
}

// failoverKey is one response the failover test wrote.
type failoverKey struct {
	key      string
	affected bool // on the killed master's slots
	want     ocspcache.Entry
}

// TestClusterFailover kills a master with SIGKILL while Gets run. Gets of
// its slots fail or return the right entry (never another one, never a
// miss: everything was replicated before the kill) until its replica is
// promoted, then succeed again, as do Puts; the other slots serve
// throughout. It logs how long the killed master's slots were
// unavailable.
func TestClusterFailover(t *testing.T) {
	cluster := testenv.StartRedisCluster(t, 3, 1)
	client := clusterClient(t, cluster)
	const prefix = "fo:"
	r := newRedis(t, ocspcache.RedisConfig{Prefix: prefix}, client)
	ctx := context.Background()

	// The victim is the master serving the eviction channel's slot, so
	// that the subscription has to move too.
	slotOf := func(k string) int {
		s, err := client.ClusterKeySlot(ctx, k).Result()
		if err != nil {
			t.Fatalf("CLUSTER KEYSLOT %s: %v", k, err)
		}
		return int(s)
	}
	victim := cluster.MasterOf(slotOf(prefix + "evict"))
	t.Logf("killing master %d (%s) of %q", victim, cluster.Masters()[victim], cluster.Masters())

	evs := make(chan ocspcache.Eviction, 1024)
	cancelSub := r.Subscribe(func(e ocspcache.Eviction) {
		select {
		case evs <- e:
		default:
		}
	})
	defer cancelSub()

	const n = 300
	keys := make([]failoverKey, n)
	items := make([]ocspcache.Item, n)
	var affected, unaffected []int
	for i := range keys {
		st := status.Good
		if i%4 == 0 {
			st = status.Revoked
		}
		k := ocspcache.Key("int-a", cachetest.RandomSerial(), ocspcodec.SHA256)
		e := newEntry(st)
		e.DER = []byte(fmt.Sprintf("\x30\x08resp%04d", i))
		keys[i] = failoverKey{key: k, affected: cluster.MasterOf(slotOf(prefix+"r:"+k)) == victim, want: e}
		items[i] = ocspcache.Item{Key: k, Entry: e}
		if keys[i].affected {
			affected = append(affected, i)
		} else {
			unaffected = append(unaffected, i)
		}
	}
	for _, k := range keys[:20] {
		if got, want := r.Partition(k.key), slotOf(prefix+"r:"+k.key); got != want {
			t.Errorf("Partition(%s) = %d, CLUSTER KEYSLOT says %d", k.key, got, want)
		}
	}
	if len(affected) == 0 || len(unaffected) == 0 {
		t.Fatalf("%d keys on the victim, %d elsewhere: want some of both", len(affected), len(unaffected))
	}
	if err := r.Put(ctx, items); err != nil {
		t.Fatal(err)
	}
	cluster.WaitReplicated(10 * time.Second)

	// check reads one key and classifies the answer; a wrong entry or a
	// miss fails the test.
	check := func(i int) error {
		out := make([]ocspcache.Entry, 1)
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		if err := r.Get(cctx, []string{keys[i].key}, out); err != nil {
			return err
		}
		if !bytes.Equal(out[0].DER, keys[i].want.DER) || out[0].Status != keys[i].want.Status {
			t.Errorf("key %d (affected %v): got %q (status %v), want %q", i, keys[i].affected, out[0].DER, out[0].Status, keys[i].want.DER)
		}
		return nil
	}

	var (
		stop          = make(chan struct{})
		wg            sync.WaitGroup
		mu            sync.Mutex
		firstErr      time.Time // first failed Get of an affected key
		lastErr       time.Time // last one
		affectedErrs  atomic.Int64
		affectedOK    atomic.Int64
		otherErrs     atomic.Int64
		otherOK       atomic.Int64
		otherErrFirst error
	)
	reader := func(idx []int, onErr func(error), onOK func()) {
		defer wg.Done()
		for j := 0; ; j++ {
			select {
			case <-stop:
				return
			default:
			}
			if err := check(idx[j%len(idx)]); err != nil {
				onErr(err)
				time.Sleep(10 * time.Millisecond)
			} else {
				onOK()
			}
		}
	}
	for range 4 {
		wg.Add(2)
		go reader(affected, func(error) {
			affectedErrs.Add(1)
			mu.Lock()
			if firstErr.IsZero() {
				firstErr = time.Now()
			}
			lastErr = time.Now()
			mu.Unlock()
		}, func() { affectedOK.Add(1) })
		go reader(unaffected, func(err error) {
			otherErrs.Add(1)
			mu.Lock()
			if otherErrFirst == nil {
				otherErrFirst = err
			}
			mu.Unlock()
		}, func() { otherOK.Add(1) })
	}
	time.Sleep(300 * time.Millisecond)

	killed := time.Now()
	cluster.KillMaster(victim)
	// Puts to the other masters' slots keep working meanwhile (without
	// evictions: PUBLISH may pick the dead node).
	putsDone := make(chan error, 1)
	go func() {
		var errs []error
		for time.Since(killed) < 3*time.Second {
			i := unaffected[int(time.Since(killed))%len(unaffected)]
			it := ocspcache.Item{Key: keys[i].key, Entry: keys[i].want}
			pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			if err := r.Put(pctx, []ocspcache.Item{it}); err != nil {
				errs = append(errs, err)
			}
			cancel()
			time.Sleep(20 * time.Millisecond)
		}
		putsDone <- errors.Join(errs...)
	}()
	promoted := cluster.WaitOK(30 * time.Second)
	t.Logf("cluster ok again %v after the kill", promoted)

	// Gets of the affected slots succeed again once the client has
	// noticed the new master.
	var recovered time.Duration
	var lastRecoveryErr error
	for deadline := time.Now().Add(20 * time.Second); ; {
		ok := true
		for _, i := range affected {
			if lastRecoveryErr = check(i); lastRecoveryErr != nil {
				ok = false
				break
			}
		}
		if ok {
			recovered = time.Since(killed)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Gets of the killed master's slots still fail 20s after the cluster recovered: %v", lastRecoveryErr)
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond)
	close(stop)
	wg.Wait()
	if err := <-putsDone; err != nil {
		t.Errorf("Puts to the surviving masters' slots failed during the failover: %v", err)
	}

	mu.Lock()
	unavailable := lastErr.Sub(firstErr)
	mu.Unlock()
	t.Logf("affected slots: first failed Get %v after the kill, last %v after; %v unavailable; all keys readable %v after the kill",
		firstErr.Sub(killed).Round(time.Millisecond), lastErr.Sub(killed).Round(time.Millisecond),
		unavailable.Round(time.Millisecond), recovered.Round(time.Millisecond))
	t.Logf("Gets: affected %d ok, %d failed; other %d ok, %d failed", affectedOK.Load(), affectedErrs.Load(), otherOK.Load(), otherErrs.Load())
	if n := otherErrs.Load(); n > 0 {
		t.Errorf("%d Gets of the surviving masters' slots failed, first: %v", n, otherErrFirst)
	}
	if affectedErrs.Load() == 0 {
		t.Error("no Get of the killed master's slots failed: was the right master killed?")
	}

	// Writes to the affected slots work again, and the no-downgrade rule
	// still holds on the promoted replica (its scripts are loaded anew).
	var revoked, good int = -1, -1
	for _, i := range affected {
		switch {
		case keys[i].want.Status == status.Revoked && revoked < 0:
			revoked = i
		case keys[i].want.Status == status.Good && good < 0:
			good = i
		}
	}
	if revoked < 0 || good < 0 {
		t.Fatal("no revoked or no good key on the killed master's slots")
	}
	downgrade := newEntry(status.Good)
	downgrade.DER = []byte("\x30\x09downgrade")
	refreshed := newEntry(status.Good)
	refreshed.DER = []byte("\x30\x09refreshed")
	if err := r.Put(ctx, []ocspcache.Item{{Key: keys[revoked].key, Entry: downgrade}, {Key: keys[good].key, Entry: refreshed}}); err != nil {
		t.Fatalf("Put after the failover: %v", err)
	}
	out := make([]ocspcache.Entry, 2)
	if err := r.Get(ctx, []string{keys[revoked].key, keys[good].key}, out); err != nil {
		t.Fatalf("Get after the failover: %v", err)
	}
	if !bytes.Equal(out[0].DER, keys[revoked].want.DER) {
		t.Errorf("revoked entry replaced by %q after the failover", out[0].DER)
	}
	if !bytes.Equal(out[1].DER, refreshed.DER) {
		t.Errorf("good entry: got %q after a refresh, want %q", out[1].DER, refreshed.DER)
	}

	// Evictions flow again: the subscription moved off the dead node
	// (and said so with a drop-everything eviction). A message published
	// before it moved is lost, so publish until one arrives.
	sawDropAll, delivered := false, false
	for deadline := time.Now().Add(20 * time.Second); !delivered; {
		if time.Now().After(deadline) {
			t.Fatalf("no eviction delivered through pub/sub 20s after the failover (drop-all seen: %v)", sawDropAll)
		}
		sn := cachetest.RandomSerial()
		want := ocspcache.EvictionPrefix("int-a", sn)
		err := r.Put(ctx, []ocspcache.Item{{Key: ocspcache.Key("int-a", sn, ocspcodec.SHA256), Entry: newEntry(status.Revoked), Evict: true}})
		if err != nil {
			t.Logf("Put with an eviction: %v", err)
		}
		seen := 0 // the local delivery comes first, then the pub/sub one
		for wait := time.After(500 * time.Millisecond); seen < 2; {
			select {
			case e := <-evs:
				switch e.Prefix {
				case "":
					sawDropAll = true
				case want:
					seen++
				}
				continue
			case <-wait:
			}
			break
		}
		delivered = seen == 2
	}
	t.Logf("evictions delivered again %v after the kill", time.Since(killed).Round(time.Millisecond))
	if !sawDropAll {
		t.Error("no drop-everything eviction after the subscription moved")
	}
}
