package watch

import (
	"bytes"
	"context"
	"io"
	"math/big"
	"net/http"
	"testing"
	"time"

	"github.com/trustline/trustline/internal/serial"
	"github.com/trustline/trustline/internal/status"
	"github.com/trustline/trustline/internal/store"
)

// bodyTransport answers every request with body.
type bodyTransport struct{ body []byte }

func (b bodyTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	return &http.Response{StatusCode: 200, Header: http.Header{"Cache-Control": {"max-age=60"}}, Body: io.NopCloser(bytes.NewReader(b.body)), Request: r}, nil
}

// FuzzFetched: whatever a CDN or origin answers, the checks return
// findings (never panic), each naming its object and URL and keeping the
// bytes fetched.
func FuzzFetched(f *testing.F) {
	is := newTestIssuerF(f)
	now := time.Now()
	f.Add(is.crlF(f), false)
	f.Add([]byte{0x30, 0x03, 0x0a, 0x01, 0x06}, true) // OCSP unauthorized
	f.Add([]byte("<html>"), true)
	f.Fuzz(func(t *testing.T, body []byte, asOCSP bool) {
		hc := &http.Client{Transport: bodyTransport{body}}
		var got []Finding
		if asOCSP {
			c := &OCSPCheck{HTTP: hc, Now: func() time.Time { return now }}
			got = c.Check(context.Background(), "http://ocsp.example/", OCSPSubject{
				Cert: store.CertSummary{Serial: serial.Serial("0a01"), Status: status.Good}, Issuer: is.cert})
		} else {
			c := &CRLCheck{HTTP: hc, Now: func() time.Time { return now }}
			_, got = c.Check(context.Background(), "http://crl.example/i/0.crl", CRLSubject{Issuer: is.cert, IDP: "http://crl.example/i/0.crl", LastNumber: big.NewInt(1)})
		}
		for _, g := range got {
			if g.Object == "" || g.URL == "" || g.Detail == "" || !bytes.Equal(g.Fetched.Body, body) {
				t.Fatalf("a finding without its evidence: %+v", g)
			}
		}
	})
}
