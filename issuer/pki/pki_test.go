package pki

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/x509"
	"path/filepath"
	"testing"
	"time"

	"github.com/trustline/trustline/internal/linter"
)

func newDev(t *testing.T) (*PKI, Config, Keys) {
	t.Helper()
	dir := t.TempDir()
	cfg := DefaultDev(filepath.Join(dir, "ca"), "http://127.0.0.1:8082", "file")
	keys := FileKeys{Dir: filepath.Join(dir, "keys")}
	p, err := Create(context.Background(), cfg, keys, time.Now(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return p, cfg, keys
}

func TestCreateBuildsAVerifiableHierarchy(t *testing.T) {
	p, _, _ := newDev(t)
	if len(p.Intermediates) != 2 {
		t.Fatalf("%d intermediates, want 2", len(p.Intermediates))
	}
	roots := x509.NewCertPool()
	roots.AddCert(p.Root.Cert)
	lt, err := linter.New(linter.Config{})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []*x509.Certificate{p.Root.Cert} {
		if err := lt.Certificate(c.Raw); err != nil {
			t.Errorf("root: %v", err)
		}
	}
	if r := p.Root.Cert; len(r.AuthorityKeyId) == 0 || !bytes.Equal(r.AuthorityKeyId, r.SubjectKeyId) {
		t.Errorf("root AKI %x, SKI %x: want the AKI present and equal to the SKI (BR 7.1.2.1.2-3)", r.AuthorityKeyId, r.SubjectKeyId)
	}
	for _, is := range p.Intermediates {
		if _, err := is.Cert.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
			t.Errorf("%s does not chain to the root: %v", is.ID, err)
		}
		if err := lt.Certificate(is.Cert.Raw); err != nil {
			t.Errorf("%s: %v", is.ID, err)
		}
		if err := is.Responder.CheckSignatureFrom(is.Cert); err != nil {
			t.Errorf("%s responder not signed by its issuer: %v", is.ID, err)
		}
		if err := lt.Certificate(is.Responder.Raw); err != nil {
			t.Errorf("%s responder: %v", is.ID, err)
		}
		if len(is.Responder.ExtKeyUsage) != 1 || is.Responder.ExtKeyUsage[0] != x509.ExtKeyUsageOCSPSigning {
			t.Errorf("%s responder EKU = %v", is.ID, is.Responder.ExtKeyUsage)
		}
		var nocheck bool
		for _, e := range is.Responder.Extensions {
			nocheck = nocheck || e.Id.Equal(oidOCSPNoCheck)
		}
		if !nocheck {
			t.Errorf("%s responder lacks id-pkix-ocsp-nocheck", is.ID)
		}
	}
	algs := map[string]bool{}
	for _, is := range p.Intermediates {
		algs[is.KeyAlg.String()] = true
	}
	if !algs["ecdsa-p256"] || !algs["rsa-2048"] {
		t.Errorf("intermediate key types %v, want ecdsa-p256 and rsa-2048", algs)
	}
}

func TestLoadReusesEverything(t *testing.T) {
	p, cfg, keys := newDev(t)
	q, err := Load(context.Background(), cfg.Dir, keys, "file")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(q.Root.Cert.Raw, p.Root.Cert.Raw) {
		t.Error("root changed on load")
	}
	for i, is := range q.Intermediates {
		if !bytes.Equal(is.Cert.Raw, p.Intermediates[i].Cert.Raw) || !bytes.Equal(is.Responder.Raw, p.Intermediates[i].Responder.Raw) {
			t.Errorf("%s changed on load", is.ID)
		}
		if !publicKeysEqual(is.Signer.Public(), is.Cert.PublicKey) {
			t.Errorf("%s signer does not match certificate", is.ID)
		}
	}
	if _, err := Create(context.Background(), cfg, keys, time.Now(), rand.Reader); err == nil {
		t.Error("Create over an existing hierarchy succeeded")
	}
	if _, err := Load(context.Background(), cfg.Dir, keys, "pkcs11"); err == nil {
		t.Error("Load with the other key source succeeded")
	}
}

func TestRenewResponders(t *testing.T) {
	p, _, _ := newDev(t)
	old := p.Intermediates[0].Responder
	if n, err := p.RenewResponders(context.Background(), time.Now(), rand.Reader); err != nil || n != 0 {
		t.Fatalf("fresh responders renewed: n=%d err=%v", n, err)
	}
	later := old.NotAfter.Add(-5 * 24 * time.Hour)
	n, err := p.RenewResponders(context.Background(), later, rand.Reader)
	if err != nil || n != 2 {
		t.Fatalf("RenewResponders near expiry: n=%d err=%v", n, err)
	}
	if fresh := p.Intermediates[0].Responder; !fresh.NotAfter.After(old.NotAfter) {
		t.Errorf("renewed responder expires %v, old %v", fresh.NotAfter, old.NotAfter)
	}
}
