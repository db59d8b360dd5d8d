package origin

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/trustline/trustline/internal/testenv"
	"github.com/trustline/trustline/internal/testfix"
	"github.com/trustline/trustline/origin/purge"
)

// vclTemplate caches the origin (TTL from its Cache-Control), purges a URL
// on PURGE and bans every object tagged with a Surrogate-Key on BAN, both
// only from localhost. docs/cdn.md shows the same VCL.
const vclTemplate = `vcl 4.1;
backend origin { .host = "127.0.0.1"; .port = "%d"; }
acl purgers { "127.0.0.1"; }
sub vcl_recv {
	if (req.method == "PURGE") {
		if (client.ip !~ purgers) {
			return (synth(405, "PURGE not allowed"));
		}
		return (purge);
	}
	if (req.method == "BAN") {
		if (client.ip !~ purgers || req.http.Surrogate-Key !~ "^[a-z0-9-]+$") {
			return (synth(405, "BAN not allowed"));
		}
		ban("obj.http.Surrogate-Key ~ (^|\s)" + req.http.Surrogate-Key + "(\s|$)");
		return (synth(200, "Banned"));
	}
}
`

// startVarnish runs varnishd on a free loopback port in front of
// backendPort until the test ends. It returns the cache's base URL.
func startVarnish(t *testing.T, backendPort int) string {
	t.Helper()
	addr := testenv.FreeAddr(t)
	testenv.StartVarnish(t, addr, fmt.Sprintf(vclTemplate, backendPort))
	return "http://" + addr
}

// getVia fetches path through the cache as a relying party would, with the
// Host of the CRL URLs.
func getVia(t *testing.T, cache, path string) (body []byte, hdr http.Header) {
	t.Helper()
	req, err := http.NewRequest("GET", cache+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = "crl.example"
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err = io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s via the cache: %s", path, resp.Status)
	}
	return body, resp.Header
}

// A new CRL reaches clients through Varnish right after publication: the
// cache holds the old one (max-age of an hour) until the purger's PURGE.
func TestVarnishPurge(t *testing.T) {
	ca := newCA(t, "int-p256")
	srv := newServer(t, Config{}, nil)
	now := time.Now().UTC().Truncate(time.Second)
	first := ca.crl(t, 0, 1, now, 0)
	if err := srv.Published(context.Background(), first); err != nil {
		t.Fatal(err)
	}
	originHTTP := httptest.NewServer(srv)
	defer originHTTP.Close()
	cache := startVarnish(t, originHTTP.Listener.Addr().(*net.TCPAddr).Port)

	body, _ := getVia(t, cache, "/int-p256/0.crl")
	if string(body) != string(first.DER) {
		t.Fatal("first GET through the cache did not return the CRL")
	}
	_, hdr := getVia(t, cache, "/int-p256/0.crl")
	if ids := strings.Fields(hdr.Get("X-Varnish")); len(ids) != 2 {
		t.Fatalf("second GET was not a cache hit (X-Varnish %q)", hdr.Get("X-Varnish"))
	}

	// The origin gets a new CRL; the cache still serves the old one.
	second := ca.crl(t, 0, 2, now.Add(time.Second), 1)
	if err := srv.Published(context.Background(), second); err != nil {
		t.Fatal(err)
	}
	if body, _ := getVia(t, cache, "/int-p256/0.crl"); string(body) != string(first.DER) {
		t.Fatal("the cache did not hold the old CRL: this test would prove nothing")
	}

	// Publication through the dispatcher purges it.
	hp, err := purge.NewHTTP(cache, nil)
	if err != nil {
		t.Fatal(err)
	}
	d, err := purge.NewDispatcher(purge.Config{Backoff: 50 * time.Millisecond}, testfix.Logger(t), hp)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go d.Run(ctx)
	if err := d.Published(context.Background(), second); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for d.Stats().Done == 0 {
		if d.Stats().Failed > 0 || time.Now().After(deadline) {
			t.Fatalf("purge did not succeed: %+v", d.Stats())
		}
		time.Sleep(10 * time.Millisecond)
	}
	body, _ = getVia(t, cache, "/int-p256/0.crl")
	if string(body) != string(second.DER) {
		t.Fatal("after the PURGE the cache still served the old CRL")
	}

	// The cache revalidates with the origin's validators: a conditional GET
	// through it is a 304.
	req, _ := http.NewRequest("GET", cache+"/int-p256/0.crl", nil)
	req.Host = "crl.example"
	req.Header.Set("If-None-Match", srv.lookup("/int-p256/0.crl").etag)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotModified {
		t.Errorf("conditional GET through the cache: %s, want 304", resp.Status)
	}
}

// TestVarnishBanByTag: a revoked certificate's OCSP GET responses, tagged by
// the responder with Surrogate-Key "ocsp ocsp-<issuer> ocsp-<serial>", leave
// the cache on one BAN of the serial's tag; other certificates' stay cached.
func TestVarnishBanByTag(t *testing.T) {
	var hits atomic.Int64
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := hits.Add(1)
		serial := strings.TrimPrefix(r.URL.Path, "/")
		w.Header().Set("Cache-Control", "public, max-age=3600")
		w.Header().Set("Surrogate-Key", "ocsp ocsp-int-p256 ocsp-"+serial)
		fmt.Fprintf(w, "%s #%d", serial, n)
	}))
	defer backend.Close()
	cache := startVarnish(t, backend.Listener.Addr().(*net.TCPAddr).Port)

	a1, _ := getVia(t, cache, "/aa01")
	b1, _ := getVia(t, cache, "/bb02")
	if a2, _ := getVia(t, cache, "/aa01"); string(a2) != string(a1) {
		t.Fatalf("not cached: %q then %q", a1, a2)
	}
	h, err := purge.NewHTTP(cache, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.PurgeTag(context.Background(), "ocsp-aa01"); err != nil {
		t.Fatal(err)
	}
	if a3, _ := getVia(t, cache, "/aa01"); string(a3) == string(a1) {
		t.Errorf("banned object still served: %q", a3)
	}
	if b2, _ := getVia(t, cache, "/bb02"); string(b2) != string(b1) {
		t.Errorf("an object with another tag was evicted: %q then %q", b1, b2)
	}
}
