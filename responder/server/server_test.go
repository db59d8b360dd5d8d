package server_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/valyala/fasthttp"
	"golang.org/x/crypto/ocsp"

	"github.com/trustline/trustline/internal/issuerid"
	"github.com/trustline/trustline/internal/ocspcache"
	"github.com/trustline/trustline/internal/ocspcodec"
	"github.com/trustline/trustline/internal/status"
	"github.com/trustline/trustline/internal/testfix"
	"github.com/trustline/trustline/responder"
	"github.com/trustline/trustline/responder/internal/resptest"
	"github.com/trustline/trustline/responder/server"
)

const (
	issuerA   = issuerid.ID("int-a")
	snGood    = "11aabbccddeeff00112233445566778899"
	snRevoked = "11aabbccddeeff0011223344556677889a"
	snUnknown = "11aabbccddeeff0011223344556677889b"
)

var pkiA = sync.OnceValue(func() *resptest.PKI { return resptest.NewPKI(&testing.T{}, "A") })

type env struct {
	srv     *server.Server
	addr    string
	clock   *testfix.Clock
	cache   *ocspcache.Memory
	entries map[string]ocspcache.Entry
}

// newEnv serves a responder over a memory cache holding SHA-1 and SHA-256
// responses for snGood and snRevoked, on a loopback port.
func newEnv(t testing.TB, cfg server.Config) *env {
	t.Helper()
	clock := testfix.NewClock(time.Now().Truncate(time.Second))
	mem, err := ocspcache.NewMemory(ocspcache.MemoryConfig{Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	e := &env{clock: clock, cache: mem, entries: map[string]ocspcache.Entry{}}
	var items []ocspcache.Item
	for sn, st := range map[string]status.Status{snGood: status.Good, snRevoked: status.Revoked} {
		for _, h := range []ocspcodec.HashAlg{ocspcodec.SHA1, ocspcodec.SHA256} {
			k := ocspcache.Key(issuerA, sn, h)
			e.entries[k] = pkiA().Entry(t, sn, h, st, clock.Now())
			items = append(items, ocspcache.Item{Key: k, Entry: e.entries[k]})
		}
	}
	ctx := context.Background()
	if err := mem.Put(ctx, items); err != nil {
		t.Fatal(err)
	}
	if err := mem.SwapState(ctx, ocspcache.State{}, ocspcache.State{Epoch: "t", Complete: true}); err != nil {
		t.Fatal(err)
	}
	r, err := responder.New(responder.Config{
		Issuers: []responder.Issuer{{ID: issuerA, Cert: pkiA().Issuer}}, L1Entries: 100, CacheTagHeader: "Cache-Tag",
	}, responder.Deps{Cache: mem, Evictions: mem, Log: testfix.QuietLogger(), Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(cfg, server.Deps{Responder: r, Registerer: prometheus.NewRegistry(), Log: testfix.QuietLogger(), Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	if tt, ok := t.(interface{ Cleanup(func()) }); ok {
		tt.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			srv.Shutdown(ctx)
			r.Close()
		})
	}
	e.srv, e.addr = srv, ln.Addr().String()
	return e
}

// raw sends one raw HTTP/1.1 request (so that request targets reach the
// server exactly as written) and reads the response.
func (e *env) raw(t testing.TB, method, target string, header map[string]string, body []byte) (*http.Response, []byte) {
	t.Helper()
	c, err := net.DialTimeout("tcp", e.addr, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: ocsp.test\r\nConnection: close\r\n", method, target)
	for k, v := range header {
		fmt.Fprintf(&b, "%s: %s\r\n", k, v)
	}
	if body != nil {
		fmt.Fprintf(&b, "Content-Type: application/ocsp-request\r\nContent-Length: %d\r\n", len(body))
	}
	b.WriteString("\r\n")
	b.Write(body)
	if _, err := c.Write(b.Bytes()); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), &http.Request{Method: method})
	if err != nil {
		t.Fatalf("%s %.60s: %v", method, target, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, data
}

func request(t testing.TB, h ocspcodec.HashAlg, sn string) []byte {
	return resptest.Request(t, nil, resptest.ID{Hash: h, Issuer: pkiA().Issuer, SerialHex: sn})
}

// getTargets are the ways clients, proxies and CDNs spell the same GET.
func getTargets(der []byte) map[string]string {
	std := base64.StdEncoding.EncodeToString(der)
	urlsafe := base64.URLEncoding.EncodeToString(der)
	return map[string]string{
		"standard":             "/" + std,
		"standard, escaped":    "/" + url.PathEscape(std),
		"all percent-encoded":  "/" + strings.NewReplacer("+", "%2B", "/", "%2F", "=", "%3D").Replace(std),
		"lowercase escapes":    "/" + strings.NewReplacer("+", "%2b", "/", "%2f", "=", "%3d").Replace(std),
		"URL-safe":             "/" + urlsafe,
		"URL-safe, no padding": "/" + strings.TrimRight(urlsafe, "="),
		"no padding":           "/" + strings.TrimRight(std, "="),
		"plus as %20":          "/" + strings.ReplaceAll(std, "+", "%20"),
		"extra slashes":        "///" + std,
		"query ignored":        "/" + std + "?cache-buster=1",
		"absolute form":        "http://ocsp.test/" + std,
	}
}

func TestGETEncodings(t *testing.T) {
	e := newEnv(t, server.Config{})
	// A serial and hash that put '+', '/' and '=' in the base64.
	der := request(t, ocspcodec.SHA1, snGood)
	std := base64.StdEncoding.EncodeToString(der)
	if !strings.ContainsAny(std, "+/") {
		t.Logf("note: %s has no + or /; the escaping cases test less", std)
	}
	want := e.entries[ocspcache.Key(issuerA, snGood, ocspcodec.SHA1)].DER
	for name, target := range getTargets(der) {
		t.Run(name, func(t *testing.T) {
			resp, body := e.raw(t, "GET", target, nil, nil)
			if resp.StatusCode != 200 || !bytes.Equal(body, want) {
				t.Errorf("GET %s: status %d, body %x", target, resp.StatusCode, body)
			}
		})
	}
	// A raw '+' that became a space cannot travel unescaped in a request
	// line; the decoder's handling of it is covered by ocspcodec.
}

func TestHeaders(t *testing.T) {
	e := newEnv(t, server.Config{})
	en := e.entries[ocspcache.Key(issuerA, snGood, ocspcodec.SHA256)]
	target := "/" + base64.StdEncoding.EncodeToString(request(t, ocspcodec.SHA256, snGood))
	resp, _ := e.raw(t, "GET", target, nil, nil)
	maxAge := int64(en.RefreshAt.Sub(e.clock.Now()) / time.Second)
	got := map[string]string{}
	for _, h := range []string{"Content-Type", "Cache-Control", "Last-Modified", "Expires", "Cache-Tag"} {
		got[h] = resp.Header.Get(h)
	}
	want := map[string]string{
		"Content-Type":  "application/ocsp-response",
		"Cache-Control": fmt.Sprintf("max-age=%d, public, no-transform, must-revalidate", maxAge),
		"Last-Modified": en.ThisUpdate.UTC().Format(http.TimeFormat),
		"Expires":       en.NextUpdate.UTC().Format(http.TimeFormat),
		"Cache-Tag":     "ocsp,ocsp-int-a,ocsp-" + snGood,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("headers (-want +got):\n%s", diff)
	}
	etag := resp.Header.Get("ETag")
	if etag == "" {
		t.Fatal("no ETag")
	}

	for _, tc := range []struct {
		inm  string
		code int
	}{
		{etag, 304},
		{"W/" + etag, 304},
		{`"other", ` + etag, 304},
		{"*", 304},
		{`"other"`, 200},
	} {
		t.Run("If-None-Match "+tc.inm, func(t *testing.T) {
			resp, body := e.raw(t, "GET", target, map[string]string{"If-None-Match": tc.inm}, nil)
			if resp.StatusCode != tc.code {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.code)
			}
			if tc.code == 304 && (len(body) != 0 || resp.Header.Get("ETag") != etag || resp.Header.Get("Cache-Control") == "") {
				t.Errorf("304 with body %d octets, ETag %q, Cache-Control %q", len(body), resp.Header.Get("ETag"), resp.Header.Get("Cache-Control"))
			}
		})
	}

	lm := en.ThisUpdate.UTC()
	for _, tc := range []struct {
		name string
		hdr  map[string]string
		code int
	}{
		{"If-Modified-Since = Last-Modified", map[string]string{"If-Modified-Since": lm.Format(http.TimeFormat)}, 304},
		{"If-Modified-Since later", map[string]string{"If-Modified-Since": lm.Add(time.Hour).Format(http.TimeFormat)}, 304},
		{"If-Modified-Since earlier", map[string]string{"If-Modified-Since": lm.Add(-time.Second).Format(http.TimeFormat)}, 200},
		{"If-Modified-Since garbage", map[string]string{"If-Modified-Since": "yesterday"}, 200},
		// If-None-Match wins over If-Modified-Since (RFC 9110 §13.2.2).
		{"both, tag differs", map[string]string{"If-None-Match": `"other"`, "If-Modified-Since": lm.Format(http.TimeFormat)}, 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, _ := e.raw(t, "GET", target, tc.hdr, nil)
			if resp.StatusCode != tc.code {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.code)
			}
		})
	}

	t.Run("errors are not cacheable", func(t *testing.T) {
		resp, body := e.raw(t, "GET", "/"+base64.StdEncoding.EncodeToString(request(t, ocspcodec.SHA256, snUnknown)), nil, nil)
		if resp.StatusCode != 200 || !bytes.Equal(body, ocspcodec.Unauthorized) {
			t.Fatalf("status %d body %x", resp.StatusCode, body)
		}
		if cc := resp.Header.Get("Cache-Control"); cc != "no-store" || resp.Header.Get("ETag") != "" || resp.Header.Get("Expires") != "" {
			t.Errorf("Cache-Control %q, ETag %q, Expires %q", cc, resp.Header.Get("ETag"), resp.Header.Get("Expires"))
		}
	})
}

// TestRequests covers POST, refusals and the health check.
func TestRequests(t *testing.T) {
	e := newEnv(t, server.Config{MaxBody: 1024})
	good := e.entries[ocspcache.Key(issuerA, snGood, ocspcodec.SHA256)].DER
	for _, tc := range []struct {
		name     string
		method   string
		target   string
		body     []byte
		code     int
		wantBody []byte
	}{
		{"POST", "POST", "/", request(t, ocspcodec.SHA256, snGood), 200, good},
		{"POST to a path", "POST", "/ocsp", request(t, ocspcodec.SHA256, snGood), 200, good},
		{"POST empty", "POST", "/", []byte{}, 200, ocspcodec.MalformedRequest},
		{"POST garbage", "POST", "/", []byte("not DER at all"), 200, ocspcodec.MalformedRequest},
		{"POST too large", "POST", "/", bytes.Repeat([]byte{0x30}, 2000), 413, nil},
		{"GET root", "GET", "/", nil, 200, ocspcodec.MalformedRequest},
		{"GET not base64", "GET", "/favicon.ico", nil, 200, ocspcodec.MalformedRequest},
		{"GET bad escape", "GET", "/MEIw%zz", nil, 200, ocspcodec.MalformedRequest},
		{"GET too long", "GET", "/" + strings.Repeat("A", ocspcodec.MaxGETLen+10), nil, 200, ocspcodec.MalformedRequest},
		{"HEAD", "HEAD", "/" + base64.StdEncoding.EncodeToString(request(t, ocspcodec.SHA256, snGood)), nil, 200, []byte{}},
		{"PUT", "PUT", "/", []byte{}, 405, nil},
		{"healthz", "GET", "/healthz", nil, 200, []byte("ok\n")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := e.raw(t, tc.method, tc.target, nil, tc.body)
			if resp.StatusCode != tc.code {
				t.Fatalf("status %d, want %d (body %q)", resp.StatusCode, tc.code, body)
			}
			if tc.wantBody != nil && !bytes.Equal(body, tc.wantBody) {
				t.Errorf("body %x, want %x", body, tc.wantBody)
			}
		})
	}
	// The server is still serving after all that.
	if resp, body := e.raw(t, "POST", "/", nil, request(t, ocspcodec.SHA256, snGood)); resp.StatusCode != 200 || !bytes.Equal(body, good) {
		t.Errorf("after refusals: status %d", resp.StatusCode)
	}
}

// TestSlowClient: a client that stalls mid-request is cut off at the read
// timeout and does not stop others from being served.
func TestSlowClient(t *testing.T) {
	e := newEnv(t, server.Config{ReadTimeout: 300 * time.Millisecond})
	slow, err := net.Dial("tcp", e.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	fmt.Fprintf(slow, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0123")
	good := e.entries[ocspcache.Key(issuerA, snGood, ocspcodec.SHA256)].DER
	if resp, body := e.raw(t, "POST", "/", nil, request(t, ocspcodec.SHA256, snGood)); resp.StatusCode != 200 || !bytes.Equal(body, good) {
		t.Errorf("with a slow client connected: status %d", resp.StatusCode)
	}
	slow.SetReadDeadline(time.Now().Add(3 * time.Second))
	start := time.Now()
	io.Copy(io.Discard, slow) // returns when the server closes the connection
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("slow client kept its connection for %v", d)
	}
}

// TestXCryptoClient fetches over GET and POST with net/http and checks
// the responses with x/crypto/ocsp against the issuer.
func TestXCryptoClient(t *testing.T) {
	e := newEnv(t, server.Config{})
	for _, tc := range []struct {
		sn   string
		h    ocspcodec.HashAlg
		want int
	}{
		{snGood, ocspcodec.SHA1, ocsp.Good},
		{snRevoked, ocspcodec.SHA256, ocsp.Revoked},
	} {
		der := request(t, tc.h, tc.sn)
		for _, method := range []string{"GET", "POST"} {
			t.Run(method+" "+tc.h.String(), func(t *testing.T) {
				var resp *http.Response
				var err error
				if method == "GET" {
					resp, err = http.Get("http://" + e.addr + "/" + url.PathEscape(base64.StdEncoding.EncodeToString(der)))
				} else {
					resp, err = http.Post("http://"+e.addr+"/", "application/ocsp-request", bytes.NewReader(der))
				}
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				body, _ := io.ReadAll(resp.Body)
				r, err := ocsp.ParseResponseForCert(body, nil, pkiA().Issuer)
				if err != nil {
					t.Fatal(err)
				}
				if r.Status != tc.want || r.SerialNumber.Text(16) != tc.sn {
					t.Errorf("status %d serial %x", r.Status, r.SerialNumber)
				}
			})
		}
	}
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  server.Config
		ok   bool
	}{
		{"zero", server.Config{}, true},
		{"negative", server.Config{ReadTimeout: -1}, false},
		{"huge body", server.Config{MaxBody: 2 << 20}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.cfg.Validate(); (err == nil) != tc.ok {
				t.Errorf("Validate() = %v, want ok=%v", err, tc.ok)
			}
		})
	}
}

// handlerEnv builds a Server for calling Handler directly.
func handlerEnv(tb testing.TB, l1 int) (*server.Server, map[string]ocspcache.Entry) {
	clock := testfix.NewClock(time.Now().Truncate(time.Second))
	mem, _ := ocspcache.NewMemory(ocspcache.MemoryConfig{Now: clock.Now})
	entries := map[string]ocspcache.Entry{}
	k := ocspcache.Key(issuerA, snGood, ocspcodec.SHA256)
	entries[k] = pkiA().Entry(tb, snGood, ocspcodec.SHA256, status.Good, clock.Now())
	mem.Put(context.Background(), []ocspcache.Item{{Key: k, Entry: entries[k]}})
	mem.SwapState(context.Background(), ocspcache.State{}, ocspcache.State{Epoch: "t", Complete: true})
	r, err := responder.New(responder.Config{Issuers: []responder.Issuer{{ID: issuerA, Cert: pkiA().Issuer}}, L1Entries: l1},
		responder.Deps{Cache: mem, Evictions: mem, Log: testfix.QuietLogger(), Now: clock.Now})
	if err != nil {
		tb.Fatal(err)
	}
	srv, err := server.New(server.Config{}, server.Deps{Responder: r, Log: testfix.QuietLogger(), Now: clock.Now})
	if err != nil {
		tb.Fatal(err)
	}
	return srv, entries
}

// FuzzHandlerGET: any request target gets 200 with an OCSP response (or
// the health check); nothing panics.
func FuzzHandlerGET(f *testing.F) {
	t := &testing.T{}
	der := request(t, ocspcodec.SHA256, snGood)
	for _, target := range getTargets(der) {
		f.Add(target)
	}
	f.Add("/healthz")
	f.Add("/%")
	srv, _ := handlerEnv(t, 10)
	f.Fuzz(func(t *testing.T, target string) {
		var ctx fasthttp.RequestCtx
		var req fasthttp.Request
		req.Header.SetMethod("GET")
		req.Header.SetRequestURI(target)
		ctx.Init(&req, nil, nil)
		srv.Handler(&ctx)
		if ctx.Response.StatusCode() != 200 {
			t.Errorf("GET %q: status %d", target, ctx.Response.StatusCode())
		}
	})
}

// BenchmarkHandler measures the fasthttp handler on an L1 hit (GET and
// POST) and must report 0 allocs/op.
func BenchmarkHandler(b *testing.B) {
	srv, _ := handlerEnv(b, 100)
	der := request(b, ocspcodec.SHA256, snGood)
	for _, tc := range []struct{ name, method, target string }{
		{"GET", "GET", "/" + base64.StdEncoding.EncodeToString(der)},
		{"POST", "POST", "/"},
	} {
		b.Run(tc.name, func(b *testing.B) {
			var ctx fasthttp.RequestCtx
			var req fasthttp.Request
			req.Header.SetMethod(tc.method)
			req.Header.SetRequestURI(tc.target)
			if tc.method == "POST" {
				req.SetBody(der)
			}
			ctx.Init(&req, nil, nil)
			srv.Handler(&ctx)
			if ctx.Response.StatusCode() != 200 || ctx.Response.Header.Peek("ETag") == nil {
				b.Fatalf("status %d", ctx.Response.StatusCode())
			}
			b.ReportAllocs()
			for b.Loop() {
				ctx.Response.Reset()
				srv.Handler(&ctx)
			}
		})
	}
}

func TestHandlerAllocs(t *testing.T) {
	srv, _ := handlerEnv(t, 100)
	der := request(t, ocspcodec.SHA256, snGood)
	var ctx fasthttp.RequestCtx
	var req fasthttp.Request
	req.Header.SetMethod("GET")
	req.Header.SetRequestURI("/" + base64.StdEncoding.EncodeToString(der))
	ctx.Init(&req, nil, nil)
	srv.Handler(&ctx)
	if n := testing.AllocsPerRun(1000, func() { ctx.Response.Reset(); srv.Handler(&ctx) }); n != 0 {
		t.Errorf("GET on an L1 hit allocates %v times per request", n)
	}
}

// TestPathPrefix: a responder whose public OCSP URL has a path answers
// GETs under it and POSTs at it, and nothing elsewhere.
func TestPathPrefix(t *testing.T) {
	e := newEnv(t, server.Config{PathPrefix: "/ocsp/"})
	der := request(t, ocspcodec.SHA256, snGood)
	b64 := base64.StdEncoding.EncodeToString(der)
	for _, tc := range []struct {
		method, target string
		body           []byte
		want           int
	}{
		{"GET", "/ocsp/" + b64, nil, 200},
		{"GET", "/ocsp/" + url.PathEscape(b64), nil, 200},
		{"GET", "/" + b64, nil, 404},
		{"GET", "/other/" + b64, nil, 404},
		{"POST", "/ocsp/", der, 200},
		{"POST", "/ocsp", der, 200},
		{"POST", "/", der, 404},
		{"GET", "/healthz", nil, 200},
	} {
		resp, body := e.raw(t, tc.method, tc.target, nil, tc.body)
		if resp.StatusCode != tc.want {
			t.Errorf("%s %.40s: status %d, want %d", tc.method, tc.target, resp.StatusCode, tc.want)
			continue
		}
		if tc.want == 200 && tc.target != "/healthz" {
			r, err := ocsp.ParseResponse(body, nil)
			if err != nil || r.Status != ocsp.Good {
				t.Errorf("%s %.40s: response %v, %v", tc.method, tc.target, r, err)
			}
		}
	}
	if _, err := server.New(server.Config{PathPrefix: "ocsp"}, server.Deps{}); err == nil {
		t.Error("a prefix without slashes was accepted")
	}
}
