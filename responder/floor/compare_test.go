package floor_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/valyala/fasthttp"

	"github.com/trustline/trustline/internal/issuerid"
	"github.com/trustline/trustline/internal/ocspcache"
	"github.com/trustline/trustline/internal/ocspcodec"
	"github.com/trustline/trustline/internal/status"
	"github.com/trustline/trustline/internal/testfix"
	"github.com/trustline/trustline/responder"
	"github.com/trustline/trustline/responder/floor"
	"github.com/trustline/trustline/responder/internal/resptest"
	"github.com/trustline/trustline/responder/server"
)

const issuerA = issuerid.ID("int-a")

// fixture is n certificates' SHA-256 requests and pre-signed responses.
type fixture struct {
	pki      *resptest.PKI
	requests [][]byte
	items    []ocspcache.Item
	pairs    []floor.Pair
}

func newFixture(tb testing.TB, n int) *fixture {
	f := &fixture{pki: resptest.NewPKI(tb, "bench")}
	now := time.Now()
	for i := range n {
		sn := fmt.Sprintf("7f%032x", i+1)
		req := resptest.Request(tb, nil, resptest.ID{Hash: ocspcodec.SHA256, Issuer: f.pki.Issuer, SerialHex: sn})
		e := f.pki.Entry(tb, sn, ocspcodec.SHA256, status.Good, now)
		f.requests = append(f.requests, req)
		f.items = append(f.items, ocspcache.Item{Key: ocspcache.Key(issuerA, sn, ocspcodec.SHA256), Entry: e})
		f.pairs = append(f.pairs, floor.Pair{Request: req, Response: e.DER})
	}
	return f
}

// responderHandler builds the real responder over cache.
func (f *fixture) responderHandler(tb testing.TB, cache interface {
	responder.Cache
	responder.Evictions
}, l1 int) fasthttp.RequestHandler {
	ctx := context.Background()
	if err := cache.Put(ctx, f.items); err != nil {
		tb.Fatal(err)
	}
	r, err := responder.New(responder.Config{Issuers: []responder.Issuer{{ID: issuerA, Cert: f.pki.Issuer}}, L1Entries: l1},
		responder.Deps{Cache: cache, Evictions: cache, Log: testfix.QuietLogger()})
	if err != nil {
		tb.Fatal(err)
	}
	srv, err := server.New(server.Config{}, server.Deps{Responder: r, Log: testfix.QuietLogger()})
	if err != nil {
		tb.Fatal(err)
	}
	return srv.Handler
}

// BenchmarkCompare runs the floor and the responder's handler (L1 hit) on
// the same GET requests, in process: the ratio of their ns/op bounds the
// ratio of their throughput under wrk (which adds the same network cost
// to both).
func BenchmarkCompare(b *testing.B) {
	f := newFixture(b, 1000)
	fl, err := floor.New(f.pairs, time.Now())
	if err != nil {
		b.Fatal(err)
	}
	mem, _ := ocspcache.NewMemory(ocspcache.MemoryConfig{})
	for _, tc := range []struct {
		name string
		h    fasthttp.RequestHandler
	}{
		{"floor", fl.Serve},
		{"responder-L1", f.responderHandler(b, mem, 10000)},
	} {
		b.Run(tc.name, func(b *testing.B) {
			ctxs := make([]fasthttp.RequestCtx, len(f.requests))
			reqs := make([]fasthttp.Request, len(f.requests))
			for i := range ctxs {
				reqs[i].Header.SetMethod("GET")
				reqs[i].Header.SetRequestURI(floor.GETTarget(f.requests[i]))
				ctxs[i].Init(&reqs[i], nil, nil)
				tc.h(&ctxs[i]) // warm the L1
				if ctxs[i].Response.StatusCode() != 200 {
					b.Fatalf("status %d", ctxs[i].Response.StatusCode())
				}
			}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				c := &ctxs[i%len(ctxs)]
				c.Response.Reset()
				tc.h(c)
				i++
			}
		})
	}
}

// TestServeForWrk is the server half of the wrk procedure in
// docs/ocsp.md; it runs only when TRUSTLINE_WRK_SERVE is set to a
// duration. TRUSTLINE_WRK_MODE picks floor, l1 (responder, memory cache,
// L1 on) or redis (responder, Redis at TRUSTLINE_WRK_REDIS, L1 off);
// TRUSTLINE_WRK_ADDR the listen address (127.0.0.1:9080);
// TRUSTLINE_WRK_CERTS the number of certificates (1000). It writes a wrk
// Lua script cycling over their GET paths to TRUSTLINE_WRK_SCRIPT
// (/tmp/trustline-wrk.lua).
func TestServeForWrk(t *testing.T) {
	dur, err := time.ParseDuration(os.Getenv("TRUSTLINE_WRK_SERVE"))
	if err != nil {
		t.Skip("set TRUSTLINE_WRK_SERVE=<duration> to serve for wrk (docs/ocsp.md)")
	}
	env := func(k, def string) string {
		if v := os.Getenv(k); v != "" {
			return v
		}
		return def
	}
	n, err := strconv.Atoi(env("TRUSTLINE_WRK_CERTS", "1000"))
	if err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, n)
	var h fasthttp.RequestHandler
	switch mode := env("TRUSTLINE_WRK_MODE", "l1"); mode {
	case "floor":
		fl, err := floor.New(f.pairs, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		h = fl.Serve
	case "l1":
		mem, _ := ocspcache.NewMemory(ocspcache.MemoryConfig{})
		h = f.responderHandler(t, mem, 2*n)
	case "redis":
		client := redis.NewClient(&redis.Options{Addr: env("TRUSTLINE_WRK_REDIS", "127.0.0.1:6379"), DB: 8, PoolSize: 16})
		defer client.Close()
		prefix := "tlwrk:" + strconv.FormatInt(time.Now().UnixNano(), 36) + ":"
		rc, err := ocspcache.NewRedis(ocspcache.RedisConfig{Prefix: prefix}, client, testfix.QuietLogger())
		if err != nil {
			t.Fatal(err)
		}
		defer rc.Close()
		defer func() {
			keys := make([]string, len(f.items))
			for i, it := range f.items {
				keys[i] = prefix + "r:" + it.Key
			}
			client.Del(context.Background(), keys...)
		}()
		h = f.responderHandler(t, rc, 0)
	default:
		t.Fatalf("TRUSTLINE_WRK_MODE %q: want floor, l1 or redis", mode)
	}

	var lua strings.Builder
	lua.WriteString("local paths = {\n")
	for _, r := range f.requests {
		fmt.Fprintf(&lua, "  %q,\n", floor.GETTarget(r))
	}
	lua.WriteString("}\nlocal i = 0\nrequest = function()\n  i = i % #paths + 1\n  return wrk.format(\"GET\", paths[i])\nend\n")
	script := env("TRUSTLINE_WRK_SCRIPT", "/tmp/trustline-wrk.lua")
	if err := os.WriteFile(script, []byte(lua.String()), 0o644); err != nil {
		t.Fatal(err)
	}

	ln, err := net.Listen("tcp", env("TRUSTLINE_WRK_ADDR", "127.0.0.1:9080"))
	if err != nil {
		t.Fatal(err)
	}
	srv := &fasthttp.Server{Handler: h, NoDefaultServerHeader: true, NoDefaultContentType: true,
		ReadBufferSize: 8192, IdleTimeout: time.Minute}
	go srv.Serve(ln)
	t.Logf("serving on %s for %v; wrk script %s", ln.Addr(), dur, script)
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt)
	select {
	case <-time.After(dur):
	case <-sig:
	}
	srv.Shutdown()
}
