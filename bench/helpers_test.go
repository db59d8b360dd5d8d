package bench

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"fmt"
	"math/big"
	"net"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/trustline/trustline/internal/issuerid"
	"github.com/trustline/trustline/internal/ocspcodec"
	"github.com/trustline/trustline/internal/reason"
	"github.com/trustline/trustline/internal/serial"
	"github.com/trustline/trustline/internal/status"
	"github.com/trustline/trustline/internal/testfix"
	"github.com/trustline/trustline/responder/floor"
)

const testIssuer = issuerid.ID("int-test")

// fixture is an issuer with a delegated responder, certificates, and
// their signed request/response pairs.
type fixture struct {
	issuer       *Issuer
	issuers      map[issuerid.ID]*Issuer
	issuerKey    crypto.Signer
	responderKey crypto.Signer
	signer       *ocspcodec.Signer
	certs        []Cert
	pairs        []signedPair
}

func genKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// newFixture makes n certificates, every fifth one revoked.
func newFixture(t testing.TB, n int) *fixture {
	t.Helper()
	now := time.Now()
	ik, rk := genKey(t), genKey(t)
	issuerTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "bench test issuer"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.AddDate(1, 0, 0), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign}
	issuer := testfix.CreateCertificate(t, issuerTmpl, issuerTmpl, ik.Public(), ik)
	resp := testfix.CreateCertificate(t, &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "bench test responder"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.AddDate(0, 1, 0), KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage:     []x509.ExtKeyUsage{x509.ExtKeyUsageOCSPSigning},
		ExtraExtensions: []pkix.Extension{{Id: asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 48, 1, 5}, Value: []byte{5, 0}}},
	}, issuer, rk.Public(), ik)
	s, err := ocspcodec.NewSigner(ocspcodec.Config{Issuer: issuer, Responder: resp, Key: rk})
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{issuer: &Issuer{ID: testIssuer, Cert: issuer, Responder: resp}, issuerKey: ik, responderKey: rk, signer: s}
	f.issuers = map[issuerid.ID]*Issuer{testIssuer: f.issuer}
	for i := range n {
		sn := serial.MustParse(fmt.Sprintf("7f%032x", i+1))
		c := Cert{Serial: sn, SN: sn.BigInt(), IssuerID: testIssuer, Shard: 0, NotAfter: now.AddDate(0, 0, 90), Status: status.Good}
		if i%5 == 4 {
			c.Status, c.RevokedAt, c.Reason = status.Revoked, now.Add(-time.Minute), reason.KeyCompromise
		}
		f.certs = append(f.certs, c)
	}
	f.pairs, err = signPairs(f.certs, f.issuers, map[issuerid.ID]*ocspcodec.Signer{testIssuer: s},
		[]crypto.Hash{crypto.SHA1, crypto.SHA256}, now, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// floorPairs returns the pairs as the floor takes them, each response
// passed through mangle (which may return it unchanged).
func (f *fixture) floorPairs(mangle func(p signedPair) []byte) []floor.Pair {
	out := make([]floor.Pair, len(f.pairs))
	for i, p := range f.pairs {
		out[i] = floor.Pair{Request: p.Request, Response: p.Response}
		if mangle != nil {
			out[i].Response = mangle(p)
		}
	}
	return out
}

// serve runs h on a loopback port until the test ends and returns its
// base URL.
func serve(t testing.TB, h fasthttp.RequestHandler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &fasthttp.Server{Handler: h, NoDefaultServerHeader: true}
	go srv.Serve(ln)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.ShutdownWithContext(ctx)
	})
	return "http://" + ln.Addr().String()
}

// serveFloor serves pairs from the floor handler.
func serveFloor(t testing.TB, pairs []floor.Pair) string {
	t.Helper()
	h, err := floor.New(pairs, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return serve(t, h.Serve)
}

// ocspRun loads target with the fixture's certificates.
func (f *fixture) ocspRun(t testing.TB, target string, load LoadConfig, m Mix, verifyEvery int) *Run {
	t.Helper()
	ep, err := parseEndpoint(target)
	if err != nil {
		t.Fatal(err)
	}
	c, err := buildCorpus(f.certs, f.issuers, m, ep)
	if err != nil {
		t.Fatal(err)
	}
	cfg := OCSPConfig{Target: target, DataDir: "unused", Load: load, Mix: m, VerifyEvery: verifyEvery,
		Timeout: 5 * time.Second, MaxCerts: len(f.certs)}
	r, err := runOCSP(context.Background(), cfg, ep, c, len(f.certs), time.Now)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func plainMix() Mix { return Mix{Method: "get", GetEncoding: "raw", Seed: 1} }
