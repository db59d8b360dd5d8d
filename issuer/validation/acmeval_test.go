package validation_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"errors"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/trustline/trustline/internal/store"
	"github.com/trustline/trustline/internal/testfix/dnstest"
	"github.com/trustline/trustline/issuer/fault"
	"github.com/trustline/trustline/issuer/mpic"
	"github.com/trustline/trustline/issuer/validation"
)

// keyAuth is a key authorization of the form RFC 8555 §8.1 gives: a
// 128-bit token and a SHA-256 thumbprint, both base64url.
func keyAuth(t testing.TB) string {
	t.Helper()
	tok, thumb := make([]byte, 16), make([]byte, 32)
	rand.Read(tok)
	rand.Read(thumb)
	return base64.RawURLEncoding.EncodeToString(tok) + "." + base64.RawURLEncoding.EncodeToString(thumb)
}

// alpnCert is the certificate a tls-alpn-01 responder presents (RFC 8737
// §3), altered by edit for the cases that must fail.
func alpnCert(t testing.TB, names []string, digest []byte, critical bool) tls.Certificate {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ext, err := asn1.Marshal(digest)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "acme"}, DNSNames: names,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		ExtraExtensions: []pkix.Extension{{Id: asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 1, 31}, Critical: critical, Value: ext}},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, k.Public(), k)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: k}
}

// acmeWorld is a domain's web server (http-01), TLS server (tls-alpn-01)
// and DNS zone (dns-01), all on loopback, and a validation service whose
// dials to port 80 reach the web server and to 443 the TLS server.
type acmeWorld struct {
	vals           *validation.Service
	st             store.Store
	acct           store.Account
	zone           *dnstest.Zone
	body           atomic.Value // what the web server answers
	cert           atomic.Value // tls.Certificate the TLS server presents
	alpn           atomic.Value // []string: the protocols the TLS server speaks
	seenServerName atomic.Value
	dial           validation.DialFunc
}

func newACMEWorld(t *testing.T, corr mpic.Corroborator) *acmeWorld {
	t.Helper()
	st, acct := storeWithAccount(t)
	w := &acmeWorld{st: st, acct: acct, zone: dnstest.Start(t)}
	w.body.Store("")
	w.alpn.Store([]string{"acme-tls/1"})
	web := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if !strings.HasPrefix(r.URL.Path, validation.ACMEChallengePath) {
			http.NotFound(rw, r)
			return
		}
		rw.Write([]byte(w.body.Load().(string)))
	}))
	t.Cleanup(web.Close)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				s := tls.Server(c, &tls.Config{
					NextProtos: w.alpn.Load().([]string),
					GetCertificate: func(h *tls.ClientHelloInfo) (*tls.Certificate, error) {
						w.seenServerName.Store(h.ServerName)
						c := w.cert.Load().(tls.Certificate)
						return &c, nil
					},
				})
				s.SetDeadline(time.Now().Add(5 * time.Second))
				s.Handshake()
			}()
		}
	}()
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		var d net.Dialer
		if strings.HasSuffix(addr, ":443") {
			return d.DialContext(ctx, network, ln.Addr().String())
		}
		return d.DialContext(ctx, network, web.Listener.Addr().String())
	}
	w.dial = dial
	w.vals, err = validation.New(validation.Config{Resolver: w.zone.Addr, HTTPTimeout: 3 * time.Second},
		validation.Deps{Store: st, Mail: &outbox{}, Dial: dial, Corroborator: corr})
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// attempt starts a validation of method for domain and confirms it once.
func (w *acmeWorld) attempt(t *testing.T, method, domain, ka string) (store.Validation, error) {
	t.Helper()
	ctx := context.Background()
	val, err := w.vals.StartACME(ctx, w.acct, domain, method, ka)
	if err != nil {
		t.Fatal(err)
	}
	return w.vals.ConfirmACME(ctx, w.acct, val.ID)
}

func wantFailure(t *testing.T, err error, want string) {
	t.Helper()
	var in *fault.InputError
	if !errors.As(err, &in) || !strings.Contains(in.Detail, want) {
		t.Fatalf("confirm: %v, want a failure saying %q", err, want)
	}
}

func TestACMEHTTP01(t *testing.T) {
	w := newACMEWorld(t, nil)
	ka := keyAuth(t)
	w.body.Store(ka + "\r\n") // white space at the end is ignored (RFC 8555 §8.3)
	val, err := w.attempt(t, validation.MethodACMEHTTP01, "Example.COM", ka)
	if err != nil {
		t.Fatal(err)
	}
	token, _, _ := strings.Cut(ka, ".")
	if val.Status != store.ValidationValid || val.Contact != "http://example.com/.well-known/acme-challenge/"+token {
		t.Fatalf("validation %s at %q", val.Status, val.Contact)
	}
	ev := evidenceOf(t, val)
	if ev["br_section"] != "3.2.2.4.19" || ev["acme_challenge"] != "http-01" || ev["method"] != validation.MethodACMEHTTP01 {
		t.Fatalf("evidence %v", ev)
	}
	// http-01 covers the name it reached, nothing under it, no wildcard.
	un, err := w.vals.Uncovered(context.Background(), w.acct.ID, []string{"example.com", "www.example.com", "*.example.com"})
	if err != nil || strings.Join(un, " ") != "www.example.com *.example.com" {
		t.Fatalf("uncovered %v, %v", un, err)
	}
	// The file must be the key authorization itself, not contain it.
	ka2 := keyAuth(t)
	w.body.Store("here it is: " + ka2)
	_, err = w.attempt(t, validation.MethodACMEHTTP01, "example.com", ka2)
	wantFailure(t, err, "is not the key authorization")
	w.body.Store(ka) // another authorization's
	_, err = w.attempt(t, validation.MethodACMEHTTP01, "example.com", ka2)
	wantFailure(t, err, "is not the key authorization")
}

func TestACMEDNS01(t *testing.T) {
	w := newACMEWorld(t, nil)
	ka := keyAuth(t)
	d := validation.KeyAuthorizationDigest(ka)
	w.zone.SetTXT("_acme-challenge.example.com", "unrelated", base64.RawURLEncoding.EncodeToString(d[:]))
	val, err := w.attempt(t, validation.MethodACMEDNS01, "example.com", ka)
	if err != nil {
		t.Fatal(err)
	}
	ev := evidenceOf(t, val)
	if val.Contact != "_acme-challenge.example.com" || ev["br_section"] != "3.2.2.4.7" || ev["acme_challenge"] != "dns-01" {
		t.Fatalf("contact %q evidence %v", val.Contact, ev)
	}
	// dns-01 covers the domain, the names under it and the wildcard.
	un, err := w.vals.Uncovered(context.Background(), w.acct.ID, []string{"example.com", "www.example.com", "*.example.com"})
	if err != nil || len(un) != 0 {
		t.Fatalf("uncovered %v, %v", un, err)
	}
	pub, ok := validation.PublicationOf(store.Validation{Method: validation.MethodACMEDNS01, Status: store.ValidationPending, Contact: val.Contact, Secret: []byte(ka)})
	if !ok || pub.Value != base64.RawURLEncoding.EncodeToString(d[:]) || pub.RecordName != "_acme-challenge.example.com" {
		t.Fatalf("publication %+v", pub)
	}
	// The key authorization itself (not its digest) is not enough.
	ka2 := keyAuth(t)
	w.zone.SetTXT("_acme-challenge.example.org", ka2)
	_, err = w.attempt(t, validation.MethodACMEDNS01, "example.org", ka2)
	wantFailure(t, err, "holds the random value")
}

func TestACMETLSALPN01(t *testing.T) {
	w := newACMEWorld(t, nil)
	ka := keyAuth(t)
	d := validation.KeyAuthorizationDigest(ka)
	w.cert.Store(alpnCert(t, []string{"example.com"}, d[:], true))
	val, err := w.attempt(t, validation.MethodACMETLSALPN01, "example.com", ka)
	if err != nil {
		t.Fatal(err)
	}
	ev := evidenceOf(t, val)
	if ev["br_section"] != "3.2.2.4.20" || ev["acme_challenge"] != "tls-alpn-01" || ev["alpn"] != "acme-tls/1" || ev["certificate_sha256"] == "" {
		t.Fatalf("evidence %v", ev)
	}
	if got := w.seenServerName.Load(); got != "example.com" {
		t.Fatalf("SNI %v, want example.com", got)
	}
	un, err := w.vals.Uncovered(context.Background(), w.acct.ID, []string{"example.com", "www.example.com", "*.example.com"})
	if err != nil || strings.Join(un, " ") != "www.example.com *.example.com" {
		t.Fatalf("uncovered %v, %v", un, err)
	}
	other := validation.KeyAuthorizationDigest(keyAuth(t))
	for _, tc := range []struct {
		name   string
		cert   tls.Certificate
		protos []string
		want   string
	}{
		{"another digest", alpnCert(t, []string{"example.com"}, other[:], true), nil, "does not hold the key authorization's digest"},
		{"not critical", alpnCert(t, []string{"example.com"}, d[:], false), nil, "not critical"},
		{"two names", alpnCert(t, []string{"example.com", "www.example.com"}, d[:], true), nil, "and only it"},
		{"another name", alpnCert(t, []string{"example.net"}, d[:], true), nil, "and only it"},
		{"no acme-tls/1", alpnCert(t, []string{"example.com"}, d[:], true), []string{"h2"}, "handshake"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w.cert.Store(tc.cert)
			protos := tc.protos
			if protos == nil {
				protos = []string{"acme-tls/1"}
			}
			w.alpn.Store(protos)
			_, err := w.attempt(t, validation.MethodACMETLSALPN01, "example.com", ka)
			wantFailure(t, err, tc.want)
		})
	}
}

func TestStartACMERefuses(t *testing.T) {
	w := newACMEWorld(t, nil)
	ctx := context.Background()
	for _, tc := range []struct{ method, domain, ka string }{
		{validation.MethodHTTPToken, "example.com", keyAuth(t)},        // not an ACME method
		{validation.MethodACMEHTTP01, "example.com", "short.abc"},      // token too short
		{validation.MethodACMEHTTP01, "example.com", keyAuth(t) + "x"}, // thumbprint not a SHA-256
		{validation.MethodACMEHTTP01, "example.com", "no-dot-at-all-in-this-key-authorization"},
		{validation.MethodACMEDNS01, "*.example.com", keyAuth(t)}, // the base domain is validated
	} {
		if _, err := w.vals.StartACME(ctx, w.acct, tc.domain, tc.method, tc.ka); err == nil {
			t.Errorf("StartACME(%s, %s, %q) accepted", tc.method, tc.domain, tc.ka)
		}
	}
	// The REST API's confirmation does not run ACME checks, nor the other
	// way round.
	val, err := w.vals.StartACME(ctx, w.acct, "example.com", validation.MethodACMEHTTP01, keyAuth(t))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.vals.Confirm(ctx, w.acct, val.ID, ""); err == nil {
		t.Error("Confirm ran an ACME validation")
	}
	rest, err := w.vals.Start(ctx, w.acct, validation.StartRequest{Domain: "example.com", Method: validation.MethodDNSTXT})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.vals.ConfirmACME(ctx, w.acct, rest.ID); err == nil {
		t.Error("ConfirmACME ran a dns-txt validation")
	}
	for _, m := range w.vals.Methods() {
		if strings.HasPrefix(m, "acme-") {
			t.Errorf("Methods() offers %s to the REST API", m)
		}
	}
}

// probeCorroborator is one remote perspective that repeats each check
// with a validation.Probe, as `trustline perspective` does.
type probeCorroborator struct {
	p     *validation.Probe
	asked atomic.Int64
	last  atomic.Value // mpic.Check
}

func (c *probeCorroborator) Corroborate(ctx context.Context, chk mpic.Check) mpic.Outcome {
	c.asked.Add(1)
	c.last.Store(chk)
	found, detail, _, err := c.p.Check(ctx, chk)
	if err != nil {
		detail = err.Error()
	}
	o := mpic.Outcome{Check: chk, Asked: 1, Met: found, Proceed: found, Reason: detail,
		Answers: []mpic.Answer{{Perspective: "remote-1", Corroborates: found, Detail: detail}}}
	if found {
		o.Corroborated = 1
	}
	return o
}

// TestACMECorroborated: each ACME challenge is repeated by a remote
// perspective with the check it needs (the key authorization and its
// token), and a perspective that sees something else stops it.
func TestACMECorroborated(t *testing.T) {
	corr := &probeCorroborator{}
	w := newACMEWorld(t, corr)
	var err error
	// The perspective's own view of the domain: its dials go where
	// remoteDial says, the same servers as the primary unless a case
	// points them elsewhere.
	var elsewhere atomic.Bool
	lying := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, _ *http.Request) { rw.Write([]byte("nothing here")) }))
	defer lying.Close()
	remoteDial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		if elsewhere.Load() {
			var d net.Dialer
			return d.DialContext(ctx, network, lying.Listener.Addr().String())
		}
		return w.dial(ctx, network, addr)
	}
	if corr.p, err = validation.NewProbe(validation.Config{Resolver: w.zone.Addr, HTTPTimeout: 3 * time.Second}, remoteDial); err != nil {
		t.Fatal(err)
	}
	ka := keyAuth(t)
	token, _, _ := strings.Cut(ka, ".")
	d := validation.KeyAuthorizationDigest(ka)
	w.body.Store(ka)
	w.zone.SetTXT("_acme-challenge.example.com", base64.RawURLEncoding.EncodeToString(d[:]))
	w.cert.Store(alpnCert(t, []string{"example.com"}, d[:], true))
	for _, m := range []string{validation.MethodACMEHTTP01, validation.MethodACMEDNS01, validation.MethodACMETLSALPN01} {
		val, err := w.attempt(t, m, "example.com", ka)
		if err != nil {
			t.Fatalf("%s: %v", m, err)
		}
		chk := corr.last.Load().(mpic.Check)
		if chk.Kind != m || chk.Value != ka || chk.Token != token || chk.Domain != "example.com" {
			t.Fatalf("%s: the perspective was asked %+v", m, chk)
		}
		if _, ok := evidenceOf(t, val)["mpic"]; !ok {
			t.Fatalf("%s: no mpic outcome in the evidence", m)
		}
	}
	elsewhere.Store(true)
	_, err = w.attempt(t, validation.MethodACMEHTTP01, "example.com", ka)
	wantFailure(t, err, "not corroborated")
	if n := corr.asked.Load(); n != 4 {
		t.Fatalf("the perspective was asked %d times, want 4", n)
	}
}
