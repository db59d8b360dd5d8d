package watch

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/trustline/trustline/internal/reason"
	"github.com/trustline/trustline/internal/serial"
	"github.com/trustline/trustline/internal/status"
	"github.com/trustline/trustline/internal/store"
)

// testIssuer is an intermediate with a delegated OCSP responder.
type testIssuer struct {
	cert    *x509.Certificate
	key     *ecdsa.PrivateKey
	rspCert *x509.Certificate
	rspKey  *ecdsa.PrivateKey
}

func newTestIssuer(t *testing.T) *testIssuer { return newTestIssuerF(t) }

func newTestIssuerF(t testing.TB) *testIssuer {
	t.Helper()
	ik, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Watch Test Intermediate"},
		NotBefore: time.Now().Add(-24 * time.Hour), NotAfter: time.Now().Add(365 * 24 * time.Hour), IsCA: true,
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, ik.Public(), ik)
	if err != nil {
		t.Fatal(err)
	}
	ic, _ := x509.ParseCertificate(der)
	rk, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	rt := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "Watch Test OCSP"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(30 * 24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageOCSPSigning}}
	rder, err := x509.CreateCertificate(rand.Reader, rt, ic, rk.Public(), ik)
	if err != nil {
		t.Fatal(err)
	}
	rc, _ := x509.ParseCertificate(rder)
	return &testIssuer{cert: ic, key: ik, rspCert: rc, rspKey: rk}
}

// response signs an OCSP response by the delegated responder.
func (is *testIssuer) response(t *testing.T, tmpl ocsp.Response) []byte {
	t.Helper()
	tmpl.Certificate = is.rspCert
	b, err := ocsp.CreateResponse(is.cert, is.rspCert, tmpl, is.rspKey)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// fakeServer answers every request with body and header.
type fakeServer struct {
	mu     sync.Mutex
	status int
	body   []byte
	header http.Header
	srv    *httptest.Server
}

func newFakeServer(t *testing.T) *fakeServer {
	f := &fakeServer{status: 200, header: http.Header{}}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		for k, v := range f.header {
			w.Header()[k] = v
		}
		w.WriteHeader(f.status)
		w.Write(f.body)
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeServer) set(status int, body []byte, header http.Header) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.status, f.body, f.header = status, body, header
	if f.header == nil {
		f.header = http.Header{}
	}
}

func kinds(fs []Finding) []Kind {
	var out []Kind
	for _, f := range fs {
		out = append(out, f.Kind)
	}
	return out
}

func TestOCSPCheck(t *testing.T) {
	is := newTestIssuer(t)
	srv := newFakeServer(t)
	now := time.Now().Truncate(time.Second)
	sn := big.NewInt(0x1234abcd)
	good := store.CertSummary{Serial: serial.Serial("1234abcd"), IssuerID: "int-test", Status: status.Good, NotAfter: now.Add(90 * 24 * time.Hour)}
	revokedAt := now.Add(-2 * time.Hour)
	revoked := good
	revoked.Status, revoked.RevokedAt, revoked.Reason = status.Revoked, revokedAt, reason.KeyCompromise
	fresh := ocsp.Response{Status: ocsp.Good, SerialNumber: sn, ThisUpdate: now.Add(-time.Hour), NextUpdate: now.Add(71 * time.Hour)}
	rev := ocsp.Response{Status: ocsp.Revoked, SerialNumber: sn, ThisUpdate: now.Add(-time.Hour), NextUpdate: now.Add(71 * time.Hour),
		RevokedAt: revokedAt, RevocationReason: ocsp.KeyCompromise}
	with := func(r ocsp.Response, edit func(*ocsp.Response)) ocsp.Response { edit(&r); return r }
	other := newTestIssuer(t)

	for _, tc := range []struct {
		name   string
		store  store.CertSummary
		status int
		body   []byte
		header http.Header
		want   []Kind
	}{
		{"agrees good", good, 200, is.response(t, fresh), http.Header{"Cache-Control": {"max-age=3600"}}, nil},
		{"agrees revoked", revoked, 200, is.response(t, rev), nil, nil},
		{"good after a revocation, past the promise", revoked, 200, is.response(t, fresh), nil, []Kind{StatusMismatch}},
		{"good after a revocation, within the promise", with2(revoked, func(c *store.CertSummary) { c.RevokedAt = now.Add(-10 * time.Second) }), 200, is.response(t, fresh), nil, nil},
		{"revoked but good in the store", good, 200, is.response(t, rev), nil, []Kind{StatusMismatch}},
		{"another reason", revoked, 200, is.response(t, with(rev, func(r *ocsp.Response) { r.RevocationReason = ocsp.Superseded })), nil, []Kind{ReasonMismatch}},
		{"another time", revoked, 200, is.response(t, with(rev, func(r *ocsp.Response) { r.RevokedAt = revokedAt.Add(time.Hour) })), nil, []Kind{TimeMismatch}},
		{"past nextUpdate", good, 200, is.response(t, with(fresh, func(r *ocsp.Response) { r.ThisUpdate, r.NextUpdate = now.Add(-80*time.Hour), now.Add(-time.Minute) })), nil, []Kind{Expired, Stale}},
		{"eleven days", good, 200, is.response(t, with(fresh, func(r *ocsp.Response) { r.NextUpdate = r.ThisUpdate.Add(11 * 24 * time.Hour) })), nil, []Kind{ValidityTooLong}},
		{"not refreshed at half its life", good, 200, is.response(t, with(fresh, func(r *ocsp.Response) { r.ThisUpdate, r.NextUpdate = now.Add(-50*time.Hour), now.Add(22*time.Hour) })), nil, []Kind{Stale}},
		{"thisUpdate ahead", good, 200, is.response(t, with(fresh, func(r *ocsp.Response) { r.ThisUpdate = now.Add(time.Hour) })), nil, []Kind{NotYetValid}},
		{"cached past nextUpdate", good, 200, is.response(t, fresh), http.Header{"Cache-Control": {"public, max-age=604800"}}, []Kind{CacheOutlives}},
		{"Expires past nextUpdate", good, 200, is.response(t, fresh), http.Header{"Expires": {now.Add(30 * 24 * time.Hour).UTC().Format(http.TimeFormat)}}, []Kind{CacheOutlives}},
		{"Age counts", good, 200, is.response(t, fresh), http.Header{"Cache-Control": {"max-age=259200"}, "Age": {"7200"}}, nil},
		{"signed with another key", good, 200, other.response(t, fresh), nil, []Kind{BadSignature}},
		{"another serial", good, 200, is.response(t, with(fresh, func(r *ocsp.Response) { r.SerialNumber = big.NewInt(7) })), nil, []Kind{WrongSubject}},
		{"404", good, 404, nil, nil, []Kind{Unreachable}},
		{"garbage", good, 200, []byte("not ocsp"), nil, []Kind{Malformed}},
		{"unauthorized", good, 200, ocsp.UnauthorizedErrorResponse, nil, []Kind{ErrorStatus}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv.set(tc.status, tc.body, tc.header)
			c := &OCSPCheck{RevocationDelay: time.Minute, Now: func() time.Time { return now }}
			got := c.Check(context.Background(), srv.srv.URL+"/", OCSPSubject{Cert: tc.store, Issuer: is.cert})
			if !sameKinds(kinds(got), tc.want) {
				t.Fatalf("findings %v, want %v: %v", kinds(got), tc.want, got)
			}
			for _, f := range got {
				if f.Object != "ocsp" || f.Serial != "1234abcd" || f.Detail == "" || (tc.status == 200 && len(f.Fetched.Body) == 0) {
					t.Errorf("a finding without its evidence: %+v", f)
				}
			}
		})
	}
}

func with2(c store.CertSummary, edit func(*store.CertSummary)) store.CertSummary { edit(&c); return c }

func sameKinds(a, b []Kind) bool {
	if len(a) != len(b) {
		return false
	}
	seen := map[Kind]int{}
	for _, k := range a {
		seen[k]++
	}
	for _, k := range b {
		seen[k]--
	}
	for _, n := range seen {
		if n != 0 {
			return false
		}
	}
	return true
}
