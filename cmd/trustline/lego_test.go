package main

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-acme/lego/v5/acme"
	"github.com/go-acme/lego/v5/certcrypto"
	"github.com/go-acme/lego/v5/certificate"
	"github.com/go-acme/lego/v5/challenge/dns01"
	"github.com/go-acme/lego/v5/challenge/http01"
	"github.com/go-acme/lego/v5/challenge/tlsalpn01"
	"github.com/go-acme/lego/v5/lego"
	legoexec "github.com/go-acme/lego/v5/providers/dns/exec"
	"github.com/go-acme/lego/v5/registration"
)

// legoUser is lego's view of an ACME account.
type legoUser struct {
	email string
	reg   *acme.ExtendedAccount
	key   crypto.Signer
}

func (u *legoUser) GetEmail() string                       { return u.email }
func (u *legoUser) GetRegistration() *acme.ExtendedAccount { return u.reg }
func (u *legoUser) GetPrivateKey() crypto.Signer           { return u.key }

// TestLego drives trustline dev with lego, the ACME client library behind
// the lego command (whose binary cannot be built here: the module proxy
// refuses some of its DNS-provider dependencies; the client packages and
// the exec DNS provider build). An account bound to a Trustline account with external account
// binding obtains certificates with http-01, tls-alpn-01 and dns-01, the
// orders are the Trustline account's, and one certificate is revoked with
// the account key; each chain verifies with openssl and the responder
// answers good, then revoked. A renewal follows the renewal information
// (RFC 9773) and names the certificate it replaces.
func TestLego(t *testing.T) {
	if testing.Short() {
		t.Skip("runs lego against trustline dev")
	}
	t.Setenv("LEGO_DISABLE_CNAME_SUPPORT", "true") // no CNAME lookups through the machine's resolver
	e := newACMEEnv(t, true)                       // lego speaks ACME over HTTPS only (RFC 8555 §6.1)
	for _, n := range []string{"http.lego.example.org", "alpn.lego.example.org"} {
		e.zone.SetA(n, "127.0.0.1")
	}
	e.u.key = e.u.call("POST", "/api/v1/accounts", map[string]string{"email": "lego@example.org"}, 201)["api_key"].(string)
	eab := e.u.call("POST", "/api/v1/account/acme-eab-keys", nil, 201)

	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	user := &legoUser{email: "lego@example.org", key: key}
	cfg := lego.NewConfig(user)
	cfg.CADirURL = e.acme + "/acme/directory"
	cfg.HTTPClient = e.proxyClient
	client, err := lego.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := client.Registration.Register(ctx, registration.RegisterOptions{TermsOfServiceAgreed: true}); err == nil {
		// Not required in dev: an unbound account is allowed, and is a
		// new Trustline account. Bind this one instead.
		user.key, _ = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if client, err = lego.NewClient(cfg); err != nil {
			t.Fatal(err)
		}
	}
	if user.reg, err = client.Registration.RegisterWithExternalAccountBinding(ctx, registration.RegisterEABOptions{
		TermsOfServiceAgreed: true, Kid: eab["key_id"].(string), HmacEncoded: eab["hmac_key"].(string)}); err != nil {
		t.Fatalf("register with EAB: %v", err)
	}

	obtain := func(name string) *certificate.Resource {
		t.Helper()
		res, err := client.Certificate.Obtain(ctx, certificate.ObtainRequest{Domains: []string{name}, Bundle: true, KeyType: certcrypto.EC256})
		if err != nil {
			t.Fatalf("obtain %s: %v\n--- trustline dev ---\n%s", name, err, tail(e.dev.logs.String(), 3000))
		}
		file := strings.SplitN(name, ".", 2)[0]
		if err := os.WriteFile(filepath.Join(e.u.work, file+".pem"), res.Certificate, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(e.u.work, file+"-chain.pem"), res.Certificate, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(e.u.work, file+"-issuer.pem"), res.IssuerCertificate, 0o600); err != nil {
			t.Fatal(err)
		}
		out := e.u.openssl("verify", "-CAfile", filepath.Join(e.u.data, "ca", "root.pem"), "-untrusted", file+"-issuer.pem", file+".pem")
		if !strings.Contains(out, file+".pem: OK") {
			t.Fatalf("openssl verify of lego's %s: %s", name, out)
		}
		e.u.ocspStatus(file, "good")
		return res
	}

	if err := client.Challenge.SetHTTP01Provider(http01.NewProviderServer("127.0.0.1", e.webPort)); err != nil {
		t.Fatal(err)
	}
	httpCert := obtain("http.lego.example.org")

	client.Challenge.Remove("http-01")
	if err := client.Challenge.SetTLSALPN01Provider(tlsalpn01.NewProviderServer("127.0.0.1", e.tlsPort)); err != nil {
		t.Fatal(err)
	}
	obtain("alpn.lego.example.org")

	client.Challenge.Remove("tls-alpn-01")
	// dns-01 through lego's exec provider (what `lego --dns exec` runs):
	// it calls a program with present/cleanup, the record's name and value;
	// this one posts them to the test zone's control URL.
	script := filepath.Join(e.dir, "lego-exec.sh")
	os.WriteFile(script, []byte(fmt.Sprintf("#!/bin/sh\n[ \"$1\" = present ] || exit 0\nname=\"${2%%.}\"\nexec curl -fsS -o /dev/null %q --data-urlencode \"name=$name\" --data-urlencode \"value=$3\"\n", e.ctrl)), 0o700)
	execDNS, err := legoexec.NewDNSProviderConfig(&legoexec.Config{Program: script, PropagationTimeout: time.Minute, PollingInterval: 2 * time.Second, SequenceInterval: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	skip := dns01.WrapPreCheck(func(context.Context, string, string, string, dns01.PreCheckFunc) (bool, error) { return true, nil })
	if err := client.Challenge.SetDNS01Provider(execDNS, skip); err != nil {
		t.Fatal(err)
	}
	dnsCert := obtain("dns.lego.example.org")

	// Renewal information (RFC 9773): the window is in the last third of
	// the certificate's life, and the renewal names what it replaces.
	leaf, err := certcrypto.ParsePEMCertificate(dnsCert.Certificate)
	if err != nil {
		t.Fatal(err)
	}
	ri, err := client.Certificate.GetRenewalInfo(ctx, leaf)
	if err != nil {
		t.Fatalf("renewal info: %v", err)
	}
	life := leaf.NotAfter.Sub(leaf.NotBefore)
	if start := ri.SuggestedWindow.Start; !start.Equal(leaf.NotBefore.Add(life*2/3).Truncate(time.Second)) || ri.RetryAfter != 6*time.Hour {
		t.Fatalf("renewal window %v–%v, retry after %v; the certificate runs %v–%v", ri.SuggestedWindow.Start, ri.SuggestedWindow.End, ri.RetryAfter, leaf.NotBefore, leaf.NotAfter)
	}
	renewed, err := client.Certificate.Renew(ctx, *dnsCert, &certificate.RenewOptions{Bundle: true, KeyType: certcrypto.EC256, UseARICertID: true})
	if err != nil {
		t.Fatalf("renew with ARI: %v", err)
	}
	if bytes.Equal(renewed.Certificate, dnsCert.Certificate) {
		t.Fatal("renewal returned the same certificate")
	}

	// The profiles in the directory's meta: a short-lived certificate.
	if profiles := client.GetServerMetadata().Profiles; profiles["shortlived"] == "" || profiles["classic"] == "" {
		t.Fatalf("directory profiles: %v", profiles)
	}
	short, err := client.Certificate.Obtain(ctx, certificate.ObtainRequest{Domains: []string{"dns.lego.example.org"}, Profile: "shortlived", KeyType: certcrypto.EC256})
	if err != nil {
		t.Fatalf("obtain a short-lived certificate: %v", err)
	}
	shortLeaf, err := certcrypto.ParsePEMCertificate(short.Certificate)
	if err != nil {
		t.Fatal(err)
	}
	if got := shortLeaf.NotAfter.Sub(shortLeaf.NotBefore) + time.Second; got != 6*24*time.Hour {
		t.Fatalf("the shortlived profile's certificate runs %v", got)
	}

	// A profile this CA does not offer is refused as the draft says.
	_, err = client.Certificate.Obtain(ctx, certificate.ObtainRequest{Domains: []string{"dns.lego.example.org"}, Profile: "forever"})
	var pd *acme.ProblemDetails
	if !errors.As(err, &pd) || pd.Type != "urn:ietf:params:acme:error:invalidProfile" {
		t.Fatalf("an unknown profile: %v", err)
	}

	// The five orders are the bound Trustline account's.
	req, _ := http.NewRequest("GET", e.dev.api+"/api/v1/orders", nil)
	req.Header.Set("Authorization", "Bearer "+e.u.key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var orders []map[string]any
	json.NewDecoder(resp.Body).Decode(&orders)
	resp.Body.Close()
	if len(orders) != 5 || orders[0]["status"] != "issued" {
		t.Fatalf("the Trustline account has %d orders, want 5 issued: %v", len(orders), orders)
	}

	reason := uint(4) // superseded
	if err := client.Certificate.RevokeWithReason(ctx, httpCert.Certificate, &reason); err != nil {
		t.Fatalf("revoke: %v", err)
	}
	e.u.ocspStatusReason("http", "revoked", "superseded")
}
