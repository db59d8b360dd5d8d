package origin

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/trustline/trustline/crlgen/crlpub"
	"github.com/trustline/trustline/internal/issuerid"
	"github.com/trustline/trustline/internal/shard"
	"github.com/trustline/trustline/internal/testfix"
)

func TestParsePath(t *testing.T) {
	tests := []struct {
		path string
		want Target
		ok   bool
	}{
		{"/int-p256/0.crl", Target{KindShardCRL, "int-p256", 0}, true},
		{"/int-p256/4095.crl", Target{KindShardCRL, "int-p256", 4095}, true},
		{"/root/full.crl", Target{KindFullCRL, "root", 0}, true},
		{"/int-p256/crls.json", Target{KindList, "int-p256", 0}, true},
		{"/root.cer", Target{KindCert, "root", 0}, true},
		{"/int-rsa2048.cer", Target{KindCert, "int-rsa2048", 0}, true},

		{"", Target{}, false},
		{"/", Target{}, false},
		{"int-p256/0.crl", Target{}, false},
		{"//0.crl", Target{}, false},
		{"/int-p256//0.crl", Target{}, false},
		{"/int-p256/0.crl/", Target{}, false},
		{"/int-p256/", Target{}, false},
		{"/int-p256", Target{}, false},
		{"/int-p256/00.crl", Target{}, false},
		{"/int-p256/+1.crl", Target{}, false},
		{"/int-p256/4096.crl", Target{}, false},
		{"/int-p256/0.CRL", Target{}, false},
		{"/int-p256/0.crl.tmp", Target{}, false},
		{"/int-p256/.tmp-123", Target{}, false},
		{"/INT-P256/0.crl", Target{}, false},
		{"/../root.cer", Target{}, false},
		{"/int-p256/../root.cer", Target{}, false},
		{"/./root.cer", Target{}, false},
		{"/int-p256%2F0.crl", Target{}, false},
		{"/int-p256/%30.crl", Target{}, false},
		{"/int-p256/0.crl%00", Target{}, false},
		{"/int-p256/0.crl?x", Target{}, false},
		{"/root.cer/x", Target{}, false},
		{"/root/root.cer", Target{}, false},
		{"/-root.cer", Target{}, false},
		{"/" + strings.Repeat("a", 65) + ".cer", Target{}, false},
		{"/int-p256/full.crl/x", Target{}, false},
	}
	for _, tc := range tests {
		t.Run(tc.path, func(t *testing.T) {
			got, ok := ParsePath(tc.path)
			if ok != tc.ok || got != tc.want {
				t.Errorf("ParsePath(%q) = %+v, %v; want %+v, %v", tc.path, got, ok, tc.want, tc.ok)
			}
		})
	}
}

// render is the canonical path of a target: the inverse of ParsePath.
func render(t Target) string {
	switch t.Kind {
	case KindShardCRL:
		return crlpub.Path(t.Issuer, int(t.Shard))
	case KindFullCRL:
		return crlpub.Path(t.Issuer, shard.Full)
	case KindList:
		return "/" + string(t.Issuer) + "/" + crlpub.ListName
	case KindCert:
		return "/" + crlpub.CertName(t.Issuer)
	}
	return ""
}

func FuzzParsePath(f *testing.F) {
	for _, s := range []string{"/int-p256/0.crl", "/root/full.crl", "/a/crls.json", "/root.cer", "/../x", "/a%2Fb", "/a/00.crl"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		got, ok := ParsePath(p)
		if !ok {
			return
		}
		// Only canonical paths are accepted: one name per object.
		if r := render(got); r != p {
			t.Fatalf("ParsePath(%q) accepted a non-canonical path (canonical %q)", p, r)
		}
		if strings.ContainsAny(p, "%?#\\\x00") || strings.Contains(p, "..") || strings.Contains(p, "//") {
			t.Fatalf("ParsePath(%q) accepted a suspicious path", p)
		}
		if !got.Issuer.Valid() || int(got.Shard) >= shard.Max {
			t.Fatalf("ParsePath(%q) = %+v", p, got)
		}
	})
}

// FuzzHandler drives the whole handler with a fuzzed method, request
// target and the request headers ServeContent reads, against a server
// holding three CRLs of one issuer (shards 0 and 1, full), its crls.json
// and its certificate. The answer is 200, 206, 304 or a 4xx, never a 5xx
// or a panic; a 200 carries exactly the object at that path with its
// Content-Type and ETag, a 206 exactly the bytes its Content-Range (or
// each multipart/byteranges part) names, a 304 and any HEAD no body, and
// a 4xx other than 412 a message.
func FuzzHandler(f *testing.F) {
	fx := newFixture(f)
	for _, c := range []crlpub.CRL{fx.ca.crl(f, 1, 8, t0, 0), fx.ca.crl(f, shard.Full, 9, t0.Add(time.Second), 20)} {
		if err := fx.srv.Published(context.Background(), c); err != nil {
			f.Fatal(err)
		}
	}
	etag, lastMod := fx.etag(), t0.Format(http.TimeFormat)
	type in struct{ method, target, rng, ifRange, inm, ims, ifMatch, ius, ae string }
	for _, s := range []in{
		{"GET", "/int-p256/0.crl", "", "", "", "", "", "", ""},
		{"HEAD", "/int-p256/full.crl?x=1", "bytes=0-9", "", "", "", "", "", "gzip"},
		{"GET", "/int-p256/1.crl", "bytes=0-9,20-29,-5", etag, "", "", "", "", "br, gzip;q=0.5"},
		{"GET", "/int-p256/0.crl", "bytes=0-0,0-0,0-0", lastMod, `"x", ` + etag, lastMod, "*", lastMod, ""},
		{"GET", "/int-p256/0.crl", "bytes=99999-", "", "W/" + etag, "", `"00"`, "", ""},
		{"GET", "/int-p256/0.crl", "bytes=-0", "", "*", "Mon, 02 Jan 2006 15:04:05 GMT", "", "garbage", "*"},
		{"GET", "/int-p256/crls.json", "bytes=1-2", "W/" + etag, "", "0", "", "", ""},
		{"GET", "/int-p256.cer", "bytes=0-" + strings.Repeat("9", 30), "", "", "", "", "", ""},
		{"POST", "/int-p256/0.crl", "", "", "", "", "", "", ""},
		{"", "/int-p256%2F0.crl", "", "", "", "", "", "", ""},
		{"GET", "/int-p256/../int-p256.cer", "", "", "", "", "", "", ""},
		{"GET", "/int-p256/0.crl#frag", "bytes=a-b", "", "", "", "", "", ""},
		{"OPTIONS", "*", "", "", "", "", "", "", ""},
	} {
		f.Add(s.method, s.target, s.rng, s.ifRange, s.inm, s.ims, s.ifMatch, s.ius, s.ae)
	}
	f.Fuzz(func(t *testing.T, method, target, rng, ifRange, inm, ims, ifMatch, ius, ae string) {
		u, err := url.ParseRequestURI(target)
		if err != nil {
			return // no request line net/http would pass on
		}
		req := httptest.NewRequest("GET", "/", nil)
		req.Method, req.URL, req.RequestURI = method, u, target
		for k, v := range map[string]string{"Range": rng, "If-Range": ifRange, "If-None-Match": inm, "If-Modified-Since": ims,
			"If-Match": ifMatch, "If-Unmodified-Since": ius, "Accept-Encoding": ae} {
			if v != "" {
				req.Header.Set(k, v)
			}
		}
		rec := httptest.NewRecorder()
		fx.srv.ServeHTTP(rec, req)
		got := rec.Body.Bytes()
		o := fx.srv.lookup(u.EscapedPath())
		head := method == http.MethodHead
		switch code := rec.Code; {
		case code == http.StatusOK:
			if o == nil {
				t.Fatalf("%s %q: 200 for a path the server does not hold", method, target)
			}
			if (!head && !bytes.Equal(got, o.body)) || (head && len(got) != 0) {
				t.Fatalf("%s %q: 200 with %d bytes, not the object's %d", method, target, len(got), len(o.body))
			}
			if rec.Header().Get("Content-Type") != o.contentType || rec.Header().Get("Etag") != o.etag {
				t.Fatalf("%s %q: 200 with Content-Type %q, ETag %q", method, target, rec.Header().Get("Content-Type"), rec.Header().Get("Etag"))
			}
		case code == http.StatusPartialContent:
			// ServeContent honours Range on HEAD too (RFC 9110 §14.2 has
			// it ignored): headers only, then.
			if o == nil || (head && len(got) != 0) {
				t.Fatalf("%s %q: 206 for a path the server does not hold, or a HEAD with a body", method, target)
			}
			if !head {
				checkRanges(t, rec, o.body)
			}
		case code == http.StatusNotModified:
			if o == nil || len(got) != 0 {
				t.Fatalf("%s %q: 304 with %d bytes", method, target, len(got))
			}
		case code >= 400 && code < 500:
			// A failed precondition is a bare 412, as ServeContent sends it.
			if !head && code != http.StatusPreconditionFailed && len(got) == 0 {
				t.Fatalf("%s %q: %d without a message", method, target, code)
			}
		default:
			t.Fatalf("%s %q: status %d", method, target, code)
		}
	})
}

// checkRanges checks a 206's body against the object: one range whose
// bytes Content-Range names, or multipart/byteranges parts that each do.
func checkRanges(t *testing.T, rec *httptest.ResponseRecorder, body []byte) {
	t.Helper()
	check := func(cr string, part []byte) {
		var first, last, size int
		n, err := fmt.Sscanf(cr, "bytes %d-%d/%d", &first, &last, &size)
		if n != 3 || err != nil || size != len(body) || first < 0 || first > last || last >= size || !bytes.Equal(part, body[first:last+1]) {
			t.Fatalf("206 part %q of %d bytes does not match the object (%d bytes)", cr, len(part), len(body))
		}
	}
	mt, params, err := mime.ParseMediaType(rec.Header().Get("Content-Type"))
	if err != nil || mt != "multipart/byteranges" {
		check(rec.Header().Get("Content-Range"), rec.Body.Bytes())
		return
	}
	mr := multipart.NewReader(bytes.NewReader(rec.Body.Bytes()), params["boundary"])
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			return
		}
		if err != nil {
			t.Fatalf("206 multipart: %v", err)
		}
		b, err := io.ReadAll(p)
		if err != nil {
			t.Fatalf("206 multipart: %v", err)
		}
		check(p.Header.Get("Content-Range"), b)
	}
}

// fixture is a server holding one issuer's shard 0 and crls.json, and the
// issuer's certificate, at t0 + 10 minutes.
type fixture struct {
	srv   *Server
	ca    testCA
	crl   crlpub.CRL
	clock *testfix.Clock
}

func newFixture(t testing.TB) fixture {
	t.Helper()
	ca := newCA(t, "int-p256")
	clk := testfix.NewClock(t0.Add(10 * time.Minute))
	s := newServer(t, Config{}, clk.Now)
	c := ca.crl(t, 0, 7, t0, 3)
	if err := s.Published(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	if err := s.SetIssuerCert(ca.id, ca.cert.Raw); err != nil {
		t.Fatal(err)
	}
	return fixture{s, ca, c, clk}
}

func (f fixture) etag() string { return f.srv.lookup("/int-p256/0.crl").etag }

func TestServe(t *testing.T) {
	f := newFixture(t)
	etag := f.etag()
	lastMod := t0.Format(http.TimeFormat)
	type want struct {
		code    int
		body    string // "" checks for an empty body; "*" skips
		headers map[string]string
	}
	full := string(f.crl.DER)
	crlHeaders := map[string]string{
		"Content-Type":  "application/pkix-crl",
		"Etag":          etag,
		"Last-Modified": lastMod,
		"Cache-Control": "public, max-age=3000, stale-if-error=3600",
		"Expires":       t0.Add(time.Hour).Format(http.TimeFormat),
		"Accept-Ranges": "bytes",
	}
	notModified := map[string]string{
		"Etag": etag, "Cache-Control": "public, max-age=3000, stale-if-error=3600",
		"Expires": t0.Add(time.Hour).Format(http.TimeFormat), "Content-Type": "", "Content-Length": "",
	}
	tests := []struct {
		name   string
		method string
		target string
		header map[string]string
		want   want
	}{
		{"GET shard", "GET", "/int-p256/0.crl", nil, want{200, full, crlHeaders}},
		{"HEAD shard", "HEAD", "/int-p256/0.crl", nil, want{200, "", map[string]string{
			"Content-Type": "application/pkix-crl", "Etag": etag, "Content-Length": fmt.Sprint(len(full))}}},
		{"query ignored", "GET", "/int-p256/0.crl?cachebust=1", nil, want{200, full, nil}},
		{"If-None-Match same", "GET", "/int-p256/0.crl", map[string]string{"If-None-Match": etag}, want{304, "", notModified}},
		{"If-None-Match in a list", "GET", "/int-p256/0.crl", map[string]string{"If-None-Match": `"x", ` + etag}, want{304, "", notModified}},
		{"If-None-Match weak form matches (weak comparison)", "GET", "/int-p256/0.crl", map[string]string{"If-None-Match": "W/" + etag}, want{304, "", nil}},
		{"If-None-Match star", "GET", "/int-p256/0.crl", map[string]string{"If-None-Match": "*"}, want{304, "", nil}},
		{"If-None-Match other", "GET", "/int-p256/0.crl", map[string]string{"If-None-Match": `"00"`}, want{200, full, nil}},
		{"HEAD If-None-Match", "HEAD", "/int-p256/0.crl", map[string]string{"If-None-Match": etag}, want{304, "", nil}},
		{"If-Modified-Since thisUpdate", "GET", "/int-p256/0.crl", map[string]string{"If-Modified-Since": lastMod}, want{304, "", nil}},
		{"If-Modified-Since earlier", "GET", "/int-p256/0.crl", map[string]string{"If-Modified-Since": t0.Add(-time.Second).Format(http.TimeFormat)}, want{200, full, nil}},
		{"If-None-Match wins over If-Modified-Since", "GET", "/int-p256/0.crl", map[string]string{
			"If-None-Match": `"00"`, "If-Modified-Since": lastMod}, want{200, full, nil}},
		{"If-Match other", "GET", "/int-p256/0.crl", map[string]string{"If-Match": `"00"`}, want{412, "*", nil}},
		{"If-Match same", "GET", "/int-p256/0.crl", map[string]string{"If-Match": etag}, want{200, full, nil}},
		{"Range", "GET", "/int-p256/0.crl", map[string]string{"Range": "bytes=0-9"}, want{206, full[:10], map[string]string{
			"Content-Range": fmt.Sprintf("bytes 0-9/%d", len(full)), "Content-Length": "10", "Etag": etag}}},
		{"Range suffix", "GET", "/int-p256/0.crl", map[string]string{"Range": "bytes=-5"}, want{206, full[len(full)-5:], nil}},
		{"Range with matching If-Range", "GET", "/int-p256/0.crl", map[string]string{"Range": "bytes=0-9", "If-Range": etag}, want{206, full[:10], nil}},
		{"Range with stale If-Range", "GET", "/int-p256/0.crl", map[string]string{"Range": "bytes=0-9", "If-Range": `"00"`}, want{200, full, nil}},
		{"Range with weak If-Range (strong comparison)", "GET", "/int-p256/0.crl", map[string]string{"Range": "bytes=0-9", "If-Range": "W/" + etag}, want{200, full, nil}},
		{"Range with If-Range date", "GET", "/int-p256/0.crl", map[string]string{"Range": "bytes=0-9", "If-Range": lastMod}, want{206, full[:10], nil}},
		{"Range unsatisfiable", "GET", "/int-p256/0.crl", map[string]string{"Range": fmt.Sprintf("bytes=%d-", len(full))}, want{416, "*", nil}},
		// A zero-length suffix selects nothing (RFC 9110 §14.1.2): 416
		// alone, ignored beside a satisfiable range.
		{"Range empty suffix", "GET", "/int-p256/0.crl", map[string]string{"Range": "bytes=-0"}, want{416, "*", map[string]string{
			"Content-Range": fmt.Sprintf("bytes */%d", len(full))}}},
		{"Range empty suffixes", "GET", "/int-p256/0.crl", map[string]string{"Range": "bytes= -00 , - +0"}, want{416, "*", nil}},
		{"Range empty suffix beside a range", "GET", "/int-p256/0.crl", map[string]string{"Range": "bytes=-0,0-4"}, want{206, full[:5], map[string]string{
			"Content-Range": fmt.Sprintf("bytes 0-4/%d", len(full))}}},
		{"Range empty suffix, stale If-Range", "GET", "/int-p256/0.crl", map[string]string{"Range": "bytes=-0", "If-Range": `"00"`}, want{200, full, nil}},
		{"Range empty suffix, failed If-Match", "GET", "/int-p256/0.crl", map[string]string{"Range": "bytes=-0", "If-Match": `"00"`}, want{412, "*", nil}},
		{"crls.json", "GET", "/int-p256/crls.json", nil, want{200, `["http://crl.example/int-p256/0.crl","http://crl.example/int-p256/1.crl"]`,
			map[string]string{"Content-Type": "application/json", "Cache-Control": "public, max-age=3600, stale-if-error=3600"}}},
		{"issuer certificate", "GET", "/int-p256.cer", nil, want{200, string(f.ca.cert.Raw), map[string]string{
			"Content-Type": "application/pkix-cert", "Last-Modified": f.ca.cert.NotBefore.Format(http.TimeFormat)}}},
		{"POST", "POST", "/int-p256/0.crl", nil, want{405, "*", map[string]string{"Allow": "GET, HEAD"}}},
		{"unknown shard", "GET", "/int-p256/1.crl", nil, want{404, "*", nil}},
		{"unknown issuer", "GET", "/other/0.crl", nil, want{404, "*", nil}},
		{"encoded slash", "GET", "/int-p256%2F0.crl", nil, want{404, "*", nil}},
		{"encoded name", "GET", "/int-p256/%30.crl", nil, want{404, "*", nil}},
		{"traversal", "GET", "/int-p256/../int-p256.cer", nil, want{404, "*", nil}},
		{"leading zero", "GET", "/int-p256/00.crl", nil, want{404, "*", nil}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest(tc.method, tc.target, nil)
			for k, v := range tc.header {
				req.Header.Set(k, v)
			}
			rec := httptest.NewRecorder()
			f.srv.ServeHTTP(rec, req)
			if rec.Code != tc.want.code {
				t.Fatalf("status %d, want %d (body %q)", rec.Code, tc.want.code, rec.Body.String())
			}
			if tc.want.body != "*" && rec.Body.String() != tc.want.body {
				t.Errorf("body of %d bytes, want %d", rec.Body.Len(), len(tc.want.body))
			}
			if tc.want.headers == nil {
				return
			}
			got := map[string]string{}
			for k := range tc.want.headers {
				got[k] = rec.Header().Get(k)
			}
			if d := cmp.Diff(tc.want.headers, got); d != "" {
				t.Errorf("headers (-want +got):\n%s", d)
			}
		})
	}
}

// Cache-Control and Expires follow the next publication, are bounded by
// nextUpdate, and stale-if-error never reaches past nextUpdate.
func TestCacheHeaders(t *testing.T) {
	ca := newCA(t, "int-p256")
	tests := []struct {
		name      string
		now       time.Time
		nextPub   time.Time
		nextUpd   time.Time
		wantCC    string
		wantExpAt time.Time
	}{
		{"fresh", t0.Add(10 * time.Minute), t0.Add(time.Hour), t0.Add(7 * 24 * time.Hour),
			"public, max-age=3000, stale-if-error=3600", t0.Add(time.Hour)},
		{"whole seconds, as Date", t0.Add(10*time.Minute + 700*time.Millisecond), t0.Add(time.Hour), t0.Add(7 * 24 * time.Hour),
			"public, max-age=3000, stale-if-error=3600", t0.Add(time.Hour)},
		{"publication overdue", t0.Add(2 * time.Hour), t0.Add(time.Hour), t0.Add(7 * 24 * time.Hour),
			"public, max-age=0, stale-if-error=3600", t0.Add(2 * time.Hour)},
		{"next publication past nextUpdate", t0, t0.Add(48 * time.Hour), t0.Add(24 * time.Hour),
			"public, max-age=86400, stale-if-error=0", t0.Add(24 * time.Hour)},
		{"stale-if-error capped by nextUpdate", t0, t0.Add(time.Hour), t0.Add(time.Hour + 20*time.Minute),
			"public, max-age=3600, stale-if-error=1200", t0.Add(time.Hour)},
		{"expired CRL", t0.Add(10 * 24 * time.Hour), t0.Add(time.Hour), t0.Add(7 * 24 * time.Hour),
			"public, max-age=0, stale-if-error=0", t0.Add(10 * 24 * time.Hour)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newServer(t, Config{}, func() time.Time { return tc.now })
			c := ca.crl(t, 0, 1, t0, 0)
			c.NextPublication, c.NextUpdate = tc.nextPub, tc.nextUpd
			if err := s.Published(context.Background(), c); err != nil {
				t.Fatal(err)
			}
			rec := httptest.NewRecorder()
			s.ServeHTTP(rec, httptest.NewRequest("GET", "/int-p256/0.crl", nil))
			got := []string{rec.Header().Get("Cache-Control"), rec.Header().Get("Expires")}
			want := []string{tc.wantCC, tc.wantExpAt.Format(http.TimeFormat)}
			if d := cmp.Diff(want, got); d != "" {
				t.Errorf("(-want +got):\n%s", d)
			}
		})
	}
}

// A CRL is replaced only by a higher number; crls.json only when changed.
func TestPublishedKeepsHighestNumber(t *testing.T) {
	f := newFixture(t)
	older := f.ca.crl(t, 0, 6, t0.Add(time.Minute), 0)
	if err := f.srv.Published(context.Background(), older); err != nil {
		t.Fatal(err)
	}
	if got := f.srv.lookup("/int-p256/0.crl").number; got != 7 {
		t.Errorf("after an older CRL: serving number %d, want 7", got)
	}
	newer := f.ca.crl(t, 0, 8, t0.Add(2*time.Minute), 0)
	newer.ShardURLs = append(newer.ShardURLs, testBase+"/int-p256/2.crl")
	if err := f.srv.Published(context.Background(), newer); err != nil {
		t.Fatal(err)
	}
	if got := f.srv.lookup("/int-p256/0.crl").number; got != 8 {
		t.Errorf("after a newer CRL: serving number %d, want 8", got)
	}
	var urls []string
	if err := json.Unmarshal(f.srv.lookup("/int-p256/crls.json").body, &urls); err != nil || len(urls) != 3 {
		t.Errorf("crls.json lists %v (%v), want 3 URLs", urls, err)
	}

	bad := []crlpub.CRL{
		{Issuer: "Bad!", Shard: 0, DER: []byte{1}},
		{Issuer: "int-p256", Shard: -2, DER: []byte{1}},
		{Issuer: "int-p256", Shard: 4096, DER: []byte{1}},
		{Issuer: "int-p256", Shard: 0},
	}
	for _, c := range bad {
		if err := f.srv.Published(context.Background(), c); err == nil {
			t.Errorf("Published(%q, %d) accepted", c.Issuer, c.Shard)
		}
	}
	if err := f.srv.SetIssuerCert("int-p256", []byte("not DER")); err == nil {
		t.Error("SetIssuerCert accepted garbage")
	}
	if err := f.srv.SetIssuerCert(issuerid.ID("../x"), f.ca.cert.Raw); err == nil {
		t.Error("SetIssuerCert accepted a bad id")
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		ok   bool
	}{
		{"defaults", Config{}, true},
		{"stale-if-error a day", Config{StaleIfError: 24 * time.Hour}, true},
		{"stale-if-error too long", Config{StaleIfError: 25 * time.Hour}, false},
		{"negative static max-age", Config{StaticMaxAge: -time.Second}, false},
		{"period beyond BR", Config{Period: 8 * 24 * time.Hour}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.cfg.Validate(); (err == nil) != tc.ok {
				t.Errorf("Validate() = %v, want ok=%v", err, tc.ok)
			}
		})
	}
}
