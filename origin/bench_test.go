package origin

import (
	"net/http"
	"testing"
)

// discard is a ResponseWriter that keeps only the status: the benchmarks
// measure the handler, not a recorder.
type discard struct {
	h    http.Header
	code int
}

func (d *discard) Header() http.Header         { return d.h }
func (d *discard) Write(b []byte) (int, error) { return len(b), nil }
func (d *discard) WriteHeader(code int)        { d.code = code }

func benchServe(b *testing.B, header http.Header, wantCode int) {
	f := newFixture(b)
	if header.Get("If-None-Match") == "etag" {
		header.Set("If-None-Match", f.etag())
	}
	req, err := http.NewRequest("GET", "http://crl.example/int-p256/0.crl", nil)
	if err != nil {
		b.Fatal(err)
	}
	req.Header = header
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		w := &discard{h: http.Header{}}
		for pb.Next() {
			clear(w.h)
			w.code = 0
			f.srv.ServeHTTP(w, req)
			if w.code != wantCode && !(wantCode == 200 && w.code == 0) {
				b.Fatalf("status %d, want %d", w.code, wantCode)
			}
		}
	})
}

// BenchmarkConditionalGet is what a CDN sends to revalidate: If-None-Match
// with the current ETag, answered 304.
func BenchmarkConditionalGet(b *testing.B) {
	benchServe(b, http.Header{"If-None-Match": {"etag"}}, http.StatusNotModified)
}

// BenchmarkConditionalGetModifiedSince revalidates by date.
func BenchmarkConditionalGetModifiedSince(b *testing.B) {
	benchServe(b, http.Header{"If-Modified-Since": {t0.Format(http.TimeFormat)}}, http.StatusNotModified)
}

// BenchmarkGet is a full 200 of a small CRL.
func BenchmarkGet(b *testing.B) {
	benchServe(b, http.Header{}, http.StatusOK)
}
