// Package cachetest is the conformance suite every ocspcache adapter
// passes (the rules in ocspcache's package comment), plus helpers for
// tests that need a Redis: a key prefix of their own on the shared server,
// or a private redis-server they may restart.
//
// Only tests import it.
package cachetest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	derw "github.com/trustline/trustline/internal/der"
	"github.com/trustline/trustline/internal/ocspcache"
	"github.com/trustline/trustline/internal/ocspcodec"
	"github.com/trustline/trustline/internal/status"
)

// Clock is a settable clock for the suite: real time plus an offset, so
// that Redis's own expiry (real time) and the adapter's (this clock) agree
// until a test moves the clock forward.
type Clock struct{ off atomic.Int64 }

// Now returns the clock's time.
func (c *Clock) Now() time.Time { return time.Now().Add(time.Duration(c.off.Load())) }

// Advance moves the clock forward.
func (c *Clock) Advance(d time.Duration) { c.off.Add(int64(d)) }

// Factory makes an empty cache on clock for one subtest.
type Factory func(t *testing.T, clock *Clock) ocspcache.Cache

// Run runs the suite against caches made by f.
func Run(t *testing.T, f Factory) {
	tests := []struct {
		name string
		fn   func(t *testing.T, c ocspcache.Cache, clock *Clock)
	}{
		{"RoundTrip", testRoundTrip},
		{"Expiry", testExpiry},
		{"NoDowngrade", testNoDowngrade},
		{"State", testState},
		{"Evictions", testEvictions},
		{"ConcurrentGets", testConcurrentGets},
		{"BigPut", testBigPut},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clock := &Clock{}
			tc.fn(t, f(t, clock), clock)
		})
	}
}

// der returns a fake response holding tag, so entries can be told apart.
// Most are shaped as signed responses with a responder certificate
// (ocspcodec.SplitCerts splits them, as adapters may); tags starting with
// "whole" are a bare SEQUENCE, which cannot be split.
func der(tag string) []byte {
	if strings.HasPrefix(tag, "whole") {
		return append([]byte{0x30, byte(len(tag))}, tag...)
	}
	body := slices.Concat(derw.Element(derw.TagSequence, []byte(tag)), []byte{0x30, 0x00, 0x03, 0x01, 0x00})
	return ocspcodec.JoinCerts(nil, body, ResponderCerts)
}

// ResponderCerts is the certs element of the responses the suite writes.
var ResponderCerts = derw.Element(0xa0, derw.Element(derw.TagSequence, derw.Element(derw.TagSequence, []byte("cachetest responder certificate"))))

// entry makes an entry valid from now, at second precision as stored.
func entry(now time.Time, st status.Status, tag string) ocspcache.Entry {
	this := now.Truncate(time.Second).Add(-time.Hour).UTC()
	return ocspcache.Entry{DER: der(tag), Status: st, ThisUpdate: this,
		NextUpdate: this.Add(72 * time.Hour), RefreshAt: this.Add(36 * time.Hour)}
}

// RandomSerial returns a fresh serial in hex, so that tests sharing a
// Redis never collide.
func RandomSerial() string {
	b := make([]byte, 17)
	rand.Read(b)
	b[0] = 0x42
	return hex.EncodeToString(b)
}

func get(t *testing.T, c ocspcache.Cache, keys ...string) []ocspcache.Entry {
	t.Helper()
	out := make([]ocspcache.Entry, len(keys))
	if err := c.Get(context.Background(), keys, out); err != nil {
		t.Fatalf("Get: %v", err)
	}
	return out
}

func put(t *testing.T, c ocspcache.Cache, items ...ocspcache.Item) {
	t.Helper()
	if err := c.Put(context.Background(), items); err != nil {
		t.Fatalf("Put: %v", err)
	}
}

func testRoundTrip(t *testing.T, c ocspcache.Cache, clock *Clock) {
	sn := RandomSerial()
	k1 := ocspcache.Key("int-a", sn, ocspcodec.SHA1)
	k2 := ocspcache.Key("int-a", sn, ocspcodec.SHA256)
	missing := ocspcache.Key("int-a", RandomSerial(), ocspcodec.SHA256)
	e1 := entry(clock.Now(), status.Good, "one")
	e2 := entry(clock.Now(), status.Revoked, "two")
	k3 := ocspcache.Key("int-a", RandomSerial(), ocspcodec.SHA1)
	e3 := entry(clock.Now(), status.Good, "whole") // a response that cannot be split
	put(t, c, ocspcache.Item{Key: k1, Entry: e1}, ocspcache.Item{Key: k2, Entry: e2}, ocspcache.Item{Key: k3, Entry: e3})

	got := get(t, c, k1, missing, k2, k3)
	want := []ocspcache.Entry{e1, {}, e2, e3}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Get (-want +got):\n%s", diff)
	}
	if got[1].Found() || !got[0].Found() {
		t.Errorf("Found: got %v, %v", got[0].Found(), got[1].Found())
	}
	// The single-key path (coalesced on Redis) agrees with the multi-key one.
	if diff := cmp.Diff(e2, get(t, c, k2)[0]); diff != "" {
		t.Errorf("single Get (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(ocspcache.Entry{}, get(t, c, missing)[0]); diff != "" {
		t.Errorf("single Get of a missing key (-want +got):\n%s", diff)
	}
}

func testExpiry(t *testing.T, c ocspcache.Cache, clock *Clock) {
	now := clock.Now()
	live := ocspcache.Key("int-a", RandomSerial(), ocspcodec.SHA256)
	dead := ocspcache.Key("int-a", RandomSerial(), ocspcodec.SHA256)
	e := entry(now, status.Good, "live")
	d := entry(now, status.Good, "dead")
	d.ThisUpdate, d.NextUpdate = now.Add(-3*time.Hour).Truncate(time.Second), now.Add(-time.Second).Truncate(time.Second)
	put(t, c, ocspcache.Item{Key: live, Entry: e}, ocspcache.Item{Key: dead, Entry: d})
	if got := get(t, c, dead); got[0].Found() {
		t.Error("an item past its nextUpdate was stored and returned")
	}
	if got := get(t, c, live); !got[0].Found() {
		t.Fatal("live entry not found")
	}
	clock.Advance(e.NextUpdate.Sub(now))
	if got := get(t, c, live); got[0].Found() {
		t.Error("entry returned at its nextUpdate")
	}
	if got := get(t, c, live, dead); got[0].Found() || got[1].Found() {
		t.Error("entry returned at its nextUpdate (multi-key Get)")
	}
}

func testNoDowngrade(t *testing.T, c ocspcache.Cache, clock *Clock) {
	now := clock.Now()
	k := ocspcache.Key("int-a", RandomSerial(), ocspcodec.SHA256)
	steps := []struct {
		name string
		put  ocspcache.Entry
		want string // tag of the entry Get must return
	}{
		{"good", entry(now, status.Good, "good-1"), "good-1"},
		{"good refreshed", entry(now.Add(time.Second), status.Good, "whole-good-2"), "whole-good-2"},
		{"revoked", entry(now, status.Revoked, "revoked-1"), "revoked-1"},
		{"good after revoked is refused", entry(now.Add(2*time.Second), status.Good, "good-3"), "revoked-1"},
		{"unknown after revoked is refused", entry(now, status.Unknown, "unknown"), "revoked-1"},
		{"revoked refreshed", entry(now.Add(3*time.Second), status.Revoked, "revoked-2"), "revoked-2"},
	}
	for _, s := range steps {
		put(t, c, ocspcache.Item{Key: k, Entry: s.put})
		got := get(t, c, k)[0]
		if !bytes.Equal(got.DER, der(s.want)) {
			t.Errorf("after %s: got %q, want %q", s.name, got.DER[2:], s.want)
		}
	}
}

func testState(t *testing.T, c ocspcache.Cache, _ *Clock) {
	ctx := context.Background()
	st, err := c.State(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st != (ocspcache.State{}) {
		t.Fatalf("fresh cache State = %+v, want zero", st)
	}
	s1 := ocspcache.State{Epoch: "e1", Seq: 10}
	s1b := ocspcache.State{Epoch: "e1", Seq: 10, After: "5a00ff"}
	s2 := ocspcache.State{Epoch: "e1", Complete: true, Seq: 12}
	s3 := ocspcache.State{Epoch: "e2", Seq: 7}
	steps := []struct {
		old, next ocspcache.State
		wantErr   error
	}{
		{ocspcache.State{}, s1, nil},
		{ocspcache.State{}, s3, ocspcache.ErrStateChanged},
		{s2, s3, ocspcache.ErrStateChanged},
		{s1, s1b, nil},
		{s1, s2, ocspcache.ErrStateChanged}, // After is part of the State
		{s1b, s2, nil},
		{s2, s3, nil},
	}
	if err := c.SwapState(ctx, ocspcache.State{}, ocspcache.State{Epoch: "e1", After: "5a 00"}); err == nil {
		t.Fatal("SwapState stored an After holding a space")
	}
	for i, s := range steps {
		if err := c.SwapState(ctx, s.old, s.next); !errors.Is(err, s.wantErr) {
			t.Fatalf("step %d: SwapState(%+v, %+v) = %v, want %v", i, s.old, s.next, err, s.wantErr)
		}
	}
	st, err = c.State(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(s3, st); diff != "" {
		t.Errorf("State (-want +got):\n%s", diff)
	}
}

func testEvictions(t *testing.T, c ocspcache.Cache, clock *Clock) {
	var mu sync.Mutex
	var got []string
	cancel := c.Subscribe(func(e ocspcache.Eviction) {
		mu.Lock()
		defer mu.Unlock()
		got = append(got, e.Prefix)
	})
	seen := func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), got...)
	}
	sn := RandomSerial()
	prefix := ocspcache.EvictionPrefix("int-a", sn)
	e := entry(clock.Now(), status.Revoked, "r")
	put(t, c,
		ocspcache.Item{Key: ocspcache.Key("int-a", sn, ocspcodec.SHA1), Entry: e, Evict: true},
		ocspcache.Item{Key: ocspcache.Key("int-a", sn, ocspcodec.SHA256), Entry: e, Evict: true},
		ocspcache.Item{Key: ocspcache.Key("int-a", RandomSerial(), ocspcodec.SHA256), Entry: e})
	// Delivered to this process before Put returns (adapters that also
	// hear their own pub/sub message may deliver it twice).
	if s := seen(); len(s) == 0 || s[0] != prefix {
		t.Fatalf("evictions right after Put = %q, want first %q", s, prefix)
	}
	for _, p := range seen() {
		if p != prefix {
			t.Errorf("unexpected eviction %q", p)
		}
	}
	cancel()
	before := len(seen())
	put(t, c, ocspcache.Item{Key: ocspcache.Key("int-a", RandomSerial(), ocspcodec.SHA256), Entry: e, Evict: true})
	time.Sleep(50 * time.Millisecond)
	if after := len(seen()); after != before {
		t.Errorf("eviction delivered after cancel: %q", seen()[before:])
	}
}

func testConcurrentGets(t *testing.T, c ocspcache.Cache, clock *Clock) {
	const n = 200
	keys := make([]string, n)
	items := make([]ocspcache.Item, 0, n)
	for i := range keys {
		keys[i] = ocspcache.Key("int-a", RandomSerial(), ocspcodec.SHA256)
		if i%3 != 0 { // every third is missing
			items = append(items, ocspcache.Item{Key: keys[i], Entry: entry(clock.Now(), status.Good, fmt.Sprint(i))})
		}
	}
	put(t, c, items...)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range keys {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out := make([]ocspcache.Entry, 1)
			if err := c.Get(context.Background(), keys[i:i+1], out); err != nil {
				errs <- err
				return
			}
			wantFound := i%3 != 0
			if out[0].Found() != wantFound || wantFound && !bytes.Equal(out[0].DER, der(fmt.Sprint(i))) {
				errs <- fmt.Errorf("key %d: got %q, found %v", i, out[0].DER, out[0].Found())
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func testBigPut(t *testing.T, c ocspcache.Cache, clock *Clock) {
	const n = 2000 // more than one write pipeline
	items := make([]ocspcache.Item, n)
	keys := make([]string, n)
	for i := range items {
		keys[i] = ocspcache.Key("int-b", RandomSerial(), ocspcodec.SHA1)
		items[i] = ocspcache.Item{Key: keys[i], Entry: entry(clock.Now(), status.Good, fmt.Sprint(i))}
	}
	put(t, c, items...)
	got := get(t, c, keys...)
	for i := range got {
		if !bytes.Equal(got[i].DER, der(fmt.Sprint(i))) {
			t.Fatalf("key %d: got %q", i, got[i].DER)
		}
	}
}
