package ocspcache_test

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/trustline/trustline/internal/der"
	"github.com/trustline/trustline/internal/ocspcache"
	"github.com/trustline/trustline/internal/ocspcache/cachetest"
	"github.com/trustline/trustline/internal/ocspcodec"
	"github.com/trustline/trustline/internal/status"
)

// splitEntry is a good response shaped as a signed one with a responder
// certificate, so that the cache stores it without its certs.
func splitEntry(tag string) ocspcache.Entry {
	e := newEntry(status.Good)
	body := slices.Concat(der.Element(der.TagSequence, []byte(tag)), []byte{0x30, 0x00, 0x03, 0x01, 0x00})
	e.DER = ocspcodec.JoinCerts(nil, body, cachetest.ResponderCerts)
	return e
}

// TestRedisStoresCertsOnce: responses are stored without their responder
// certificate, which is stored once; a reader that has never seen it reads
// it from Redis; a value whose certs are gone or corrupt is an error, not
// a miss (a miss may be taken to prove the certificate unknown).
func TestRedisStoresCertsOnce(t *testing.T) {
	srv := cachetest.StartPrivateRedis(t)
	ctx := context.Background()
	client := srv.Client()
	w := newRedis(t, ocspcache.RedisConfig{Prefix: "p:"}, client)

	var items []ocspcache.Item
	for i := range 50 {
		items = append(items, ocspcache.Item{Key: ocspcache.Key("int-a", cachetest.RandomSerial(), ocspcodec.SHA1), Entry: splitEntry(strings.Repeat("x", i+1))})
	}
	if err := w.Put(ctx, items); err != nil {
		t.Fatal(err)
	}
	certKeys, err := client.Keys(ctx, "p:certs:*").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(certKeys) != 1 {
		t.Fatalf("certs keys %v, want one", certKeys)
	}
	for _, it := range items[:3] {
		v, err := client.Get(ctx, "p:r:"+it.Key).Result()
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(v, string(cachetest.ResponderCerts)) || len(v) >= len(it.DER) {
			t.Errorf("stored value of %d bytes for a %d-byte response still holds the certificate", len(v), len(it.DER))
		}
	}

	// A reader that never wrote them: certs read once from Redis.
	keys := make([]string, len(items))
	for i, it := range items {
		keys[i] = it.Key
	}
	check := func(name string, c *ocspcache.Redis) {
		t.Helper()
		out := make([]ocspcache.Entry, len(keys))
		if err := c.Get(ctx, keys, out); err != nil {
			t.Fatalf("%s: Get: %v", name, err)
		}
		for i := range out {
			if !bytes.Equal(out[i].DER, items[i].DER) {
				t.Fatalf("%s: response %d differs from what was put", name, i)
			}
		}
		var one [1]ocspcache.Entry
		if err := c.Get(ctx, keys[:1], one[:]); err != nil || !bytes.Equal(one[0].DER, items[0].DER) {
			t.Fatalf("%s: single Get = %x, %v", name, one[0].DER, err)
		}
	}
	check("fresh reader", newRedis(t, ocspcache.RedisConfig{Prefix: "p:"}, client))

	// Certs lost or corrupted: fresh readers fail rather than miss.
	if err := client.Set(ctx, certKeys[0], "not the certs", 0).Err(); err != nil {
		t.Fatal(err)
	}
	fresh := newRedis(t, ocspcache.RedisConfig{Prefix: "p:"}, client)
	out := make([]ocspcache.Entry, 1)
	if err := fresh.Get(ctx, keys[:1], out); err == nil || !strings.Contains(err.Error(), "do not hash") {
		t.Errorf("Get with corrupt certs: %v, entry found %v; want an error", err, out[0].Found())
	}
	client.Del(ctx, certKeys[0])
	if err := newRedis(t, ocspcache.RedisConfig{Prefix: "p:"}, client).Get(ctx, keys[:1], out); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Errorf("Get with the certs gone: %v, entry found %v; want an error", err, out[0].Found())
	}
	// The writer remembered them and still answers.
	check("writer", w)

	// Redis restarted empty: the next Put writes the certs again, although
	// this process wrote them before.
	if err := client.FlushAll(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	if err := w.Put(ctx, items); err != nil {
		t.Fatal(err)
	}
	check("fresh reader after FLUSHALL", newRedis(t, ocspcache.RedisConfig{Prefix: "p:", Timeout: time.Second}, client))
}
