package bench

import (
	"bufio"
	"crypto"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/trustline/trustline/internal/status"
)

// The generator's own costs, so that a slower bench is caught
// (make bench-compare) before it shows up as a slower responder.

// BenchmarkVerifyOCSP is one full check of an answer: two ECDSA P-256
// verifications (the responder certificate and the response) and the
// parse. At --verify-every 100 its share of the generator's CPU is this
// over 100 round trips.
func BenchmarkVerifyOCSP(b *testing.B) {
	f := newFixture(b, 1)
	p := f.pairs[0]
	e := &expect{issuer: f.issuer, sn: p.cert.SN, status: status.Good, hash: crypto.SHA1}
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		if err := verifyOCSP(e, p.Response, now); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRawConnParse is the client's response parsing, without the
// network: what every request costs the generator besides two syscalls.
func BenchmarkRawConnParse(b *testing.B) {
	f := newFixture(b, 1)
	resp := "HTTP/1.1 200 OK\r\nContent-Type: application/ocsp-response\r\nCache-Control: max-age=86400, public, no-transform, must-revalidate\r\n" +
		"Last-Modified: Fri, 27 Nov 2026 01:16:19 GMT\r\nExpires: Mon, 30 Nov 2026 01:16:19 GMT\r\nETag: \"floor-1\"\r\n" +
		"Content-Length: " + strconv.Itoa(len(f.pairs[0].Response)) + "\r\n\r\n" + string(f.pairs[0].Response)
	c := newRawConn(endpoint{host: "x"}, time.Second, 1<<20)
	sc := &scriptedConn{r: strings.NewReader(resp)}
	c.conn, c.br = sc, bufio.NewReaderSize(sc, 16<<10)
	req := []byte("GET / HTTP/1.1\r\n\r\n")
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		sc.r.Reset(resp)
		c.br.Reset(sc)
		if _, _, err := c.exchange(req, now); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkOCSPRoundTrip is one GET to an in-process floor server over
// loopback: client and server together, serially.
func BenchmarkOCSPRoundTrip(b *testing.B) {
	f := newFixture(b, 100)
	target := serveFloor(b, f.floorPairs(nil))
	ep, _ := parseEndpoint(target)
	c, err := buildCorpus(f.certs, f.issuers, plainMix(), ep)
	if err != nil {
		b.Fatal(err)
	}
	w := &ocspWorker{c: newRawConn(ep, 5*time.Second, 1<<20), corpus: c, every: 1 << 62, verified: new(atomic.Int64), now: time.Now}
	defer w.Close()
	b.ReportAllocs()
	var seq uint64 = 1
	for b.Loop() {
		if err := w.Do(seq); err != nil {
			b.Fatal(err)
		}
		seq++
	}
}

func BenchmarkHistogramRecord(b *testing.B) {
	h := NewHistogram()
	d := 250 * time.Microsecond
	b.ReportAllocs()
	for b.Loop() {
		h.Record(d)
		d += time.Nanosecond
	}
}

func BenchmarkBuildRequest(b *testing.B) {
	f := newFixture(b, 1)
	k, _ := newIssuerKey(f.issuer.Cert)
	sn := f.certs[0].SN
	b.ReportAllocs()
	for b.Loop() {
		if _, err := buildRequest(k, crypto.SHA256, sn, nil); err != nil {
			b.Fatal(err)
		}
	}
}
