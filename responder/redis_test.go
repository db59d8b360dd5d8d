package responder_test

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/trustline/trustline/internal/ocspcache"
	"github.com/trustline/trustline/internal/ocspcache/cachetest"
	"github.com/trustline/trustline/internal/ocspcodec"
	"github.com/trustline/trustline/internal/status"
	"github.com/trustline/trustline/internal/testfix"
	"github.com/trustline/trustline/responder"
)

// TestRedisRestartKeepsL1: the response cache, a real Redis, is killed and
// restarts empty. The responder (no live signer here) keeps answering
// what its L1 holds, unconfirmed, instead of tryLater; a response written
// to the new Redis (a revocation, as the pipeline's catch-up writes it)
// replaces the L1's copy at the next request; a response it never held is
// tryLater, the empty cache proving nothing.
func TestRedisRestartKeepsL1(t *testing.T) {
	srv := cachetest.StartPrivateRedis(t)
	cache, err := ocspcache.NewRedis(ocspcache.RedisConfig{Prefix: "t:", AckTimeout: -1}, srv.Client(), testfix.QuietLogger())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cache.Close() })
	ctx := context.Background()
	now := time.Now()
	var items []ocspcache.Item
	for _, sn := range []string{snGood, snRevoked} {
		for _, h := range []ocspcodec.HashAlg{ocspcodec.SHA1, ocspcodec.SHA256} {
			items = append(items, ocspcache.Item{Key: ocspcache.Key(issuerA, sn, h), Entry: pkiA().Entry(t, sn, h, status.Good, now)})
		}
	}
	if err := cache.Put(ctx, items); err != nil {
		t.Fatal(err)
	}
	if err := cache.SwapState(ctx, ocspcache.State{}, ocspcache.State{Epoch: "e", Complete: true}); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	r, err := responder.New(responder.Config{Issuers: []responder.Issuer{{ID: issuerA, Cert: pkiA().Issuer}}, L1Entries: 100,
		Cooldown: 100 * time.Millisecond, StateTTL: 10 * time.Millisecond},
		responder.Deps{Cache: cache, Evictions: cache, Registerer: reg, Log: testfix.QuietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Close)
	held := req(t, ocspcodec.SHA256, snGood)
	if a := r.Answer(ctx, held); a.Kind != responder.Good {
		t.Fatalf("before the restart: %v", a.Kind)
	}

	srv.Restart()
	// Until the responder resubscribes its copy is confirmed; after, it is
	// unconfirmed and served because the empty cache cannot answer.
	deadline := time.Now().Add(15 * time.Second)
	for metric(t, reg, "trustline_ocsp_lookups_total", "tier", "l1", "result", "unconfirmed") == 0 {
		if a := r.Answer(ctx, held); a.Kind != responder.Good {
			t.Fatalf("after the restart: %v, want the L1's good", a.Kind)
		}
		if time.Now().After(deadline) {
			t.Fatal("no unconfirmed copy served within 15 s of the restart")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if a := r.Answer(ctx, req(t, ocspcodec.SHA1, snRevoked)); a.Kind != responder.TryLater {
		t.Errorf("a response the L1 never held: %v, want tryLater", a.Kind)
	}

	revoked := pkiA().Entry(t, snGood, ocspcodec.SHA256, status.Revoked, now)
	if err := cache.Put(ctx, []ocspcache.Item{{Key: ocspcache.Key(issuerA, snGood, ocspcodec.SHA256), Entry: revoked}}); err != nil {
		t.Fatal(err)
	}
	for range 2 { // looked up again, then confirmed in the L1
		if a := r.Answer(ctx, held); a.Kind != responder.Revoked {
			t.Errorf("after the revocation reached the new cache: %v, want revoked", a.Kind)
		}
	}
}
