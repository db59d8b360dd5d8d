package profile

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"strings"
	"testing"
	"time"

	"github.com/trustline/trustline/internal/serial"
)

func TestBRSchedule(t *testing.T) {
	const day = 24 * time.Hour
	tests := []struct {
		at              string
		validity, reuse time.Duration
	}{
		{"2025-01-01T00:00:00Z", 398 * day, 398 * day},
		{"2026-03-14T23:59:59Z", 398 * day, 398 * day},
		{"2026-03-15T00:00:00Z", 200 * day, 200 * day},
		{"2027-03-14T12:00:00Z", 200 * day, 200 * day},
		{"2027-03-15T00:00:00Z", 100 * day, 100 * day},
		{"2029-03-14T23:59:59Z", 100 * day, 100 * day},
		{"2029-03-15T00:00:00Z", 47 * day, 10 * day},
		{"2035-01-01T00:00:00Z", 47 * day, 10 * day},
	}
	for _, tt := range tests {
		at, _ := time.Parse(time.RFC3339, tt.at)
		if got := MaxValidity(at); got != tt.validity {
			t.Errorf("MaxValidity(%s) = %v days, want %v", tt.at, got/day, tt.validity/day)
		}
		if got := ReusePeriod(at); got != tt.reuse {
			t.Errorf("ReusePeriod(%s) = %v days, want %v", tt.at, got/day, tt.reuse/day)
		}
	}
}

func baseRequest(t *testing.T, n Name) Request {
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	return Request{
		Profile: n, Serial: serial.MustParse("2a0102030405060708090a0b0c0d0e0f10"),
		Names: []string{"www.example.com", "example.com"}, PublicKey: k.Public(),
		NotBefore: time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC),
		OCSPURL:   "http://ocsp.test/", CAIssuersURL: "http://crl.test/int.cer", CRLURL: "http://crl.test/int/3.crl",
		Org: Organization{Name: "Example Ltd", Locality: "Springfield", Country: "US",
			JurisdictionCountry: "US", BusinessCategory: "Private Organization", RegistrationNumber: "12345"},
	}
}

func TestTemplateDV(t *testing.T) {
	tmpl, err := Template(baseRequest(t, DV))
	if err != nil {
		t.Fatal(err)
	}
	if tmpl.Subject.String() != "" || len(tmpl.DNSNames) != 2 {
		t.Errorf("subject %q, SAN %v: want no commonName by default (BR 7.1.2.7.2), every name in the SAN", tmpl.Subject, tmpl.DNSNames)
	}
	if got := tmpl.NotAfter.Sub(tmpl.NotBefore) + time.Second; got != Default {
		t.Errorf("validity %v, want %v (inclusive)", got, Default)
	}
	if len(tmpl.ExtKeyUsage) != 1 || tmpl.ExtKeyUsage[0] != x509.ExtKeyUsageServerAuth {
		t.Errorf("EKU %v", tmpl.ExtKeyUsage)
	}
	if tmpl.KeyUsage != x509.KeyUsageDigitalSignature {
		t.Errorf("ECDSA key usage %v", tmpl.KeyUsage)
	}
	if len(tmpl.Policies) != 1 || tmpl.Policies[0].String() != "2.23.140.1.2.1" {
		t.Errorf("policies %v", tmpl.Policies)
	}
	if tmpl.CRLDistributionPoints[0] != "http://crl.test/int/3.crl" || tmpl.SubjectKeyId != nil {
		t.Errorf("CRLDP %v SKI %x", tmpl.CRLDistributionPoints, tmpl.SubjectKeyId)
	}
	r := baseRequest(t, DV)
	rk, _ := rsa.GenerateKey(rand.Reader, 2048)
	r.PublicKey = rk.Public()
	r.Validity = 300 * 24 * time.Hour
	tmpl, err = Template(r)
	if err != nil {
		t.Fatal(err)
	}
	if tmpl.KeyUsage != x509.KeyUsageDigitalSignature {
		t.Errorf("RSA key usage %v: want digitalSignature alone by default", tmpl.KeyUsage)
	}
	if got := tmpl.NotAfter.Sub(tmpl.NotBefore) + time.Second; got != MaxValidity(r.NotBefore) {
		t.Errorf("requested 300 days, got %v: not capped by BR", got)
	}
}

// TestTemplateOptions: the CA's choices put the commonName and RSA's
// keyEncipherment back.
func TestTemplateOptions(t *testing.T) {
	r := baseRequest(t, DV)
	rk, _ := rsa.GenerateKey(rand.Reader, 2048)
	r.PublicKey = rk.Public()
	r.Options = Options{CommonName: true, RSAKeyEncipherment: true}
	tmpl, err := Template(r)
	if err != nil {
		t.Fatal(err)
	}
	if tmpl.Subject.CommonName != "www.example.com" || tmpl.KeyUsage != x509.KeyUsageDigitalSignature|x509.KeyUsageKeyEncipherment {
		t.Errorf("CN %q, key usage %v", tmpl.Subject.CommonName, tmpl.KeyUsage)
	}
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	r.PublicKey = k.Public()
	if tmpl, err = Template(r); err != nil || tmpl.KeyUsage != x509.KeyUsageDigitalSignature {
		t.Errorf("ECDSA with RSAKeyEncipherment: %v, key usage %v", err, tmpl.KeyUsage)
	}
}

func TestTemplateOVEV(t *testing.T) {
	ov, err := Template(baseRequest(t, OV))
	if err != nil {
		t.Fatal(err)
	}
	if ov.Subject.Organization[0] != "Example Ltd" || ov.Subject.Country[0] != "US" || ov.Policies[0].String() != "2.23.140.1.2.2" {
		t.Errorf("OV subject %v policies %v", ov.Subject, ov.Policies)
	}
	ev, err := Template(baseRequest(t, EV))
	if err != nil {
		t.Fatal(err)
	}
	if ev.Subject.SerialNumber != "12345" || len(ev.Subject.ExtraNames) < 2 || ev.Policies[0].String() != "2.23.140.1.1" {
		t.Errorf("EV subject %v policies %v", ev.Subject, ev.Policies)
	}
	r := baseRequest(t, EV)
	r.Org.BusinessCategory = ""
	if _, err := Template(r); err == nil || !strings.Contains(err.Error(), "business_category") {
		t.Errorf("EV without business category: %v", err)
	}
}

func TestOrganizationValidate(t *testing.T) {
	tests := []struct {
		name string
		org  Organization
		prof Name
		want string
	}{
		{"no name", Organization{Country: "US", Locality: "X"}, OV, "organization.name"},
		{"no place", Organization{Name: "A", Country: "US"}, OV, "locality or"},
		{"bad country", Organization{Name: "A", Country: "usa", Locality: "X"}, OV, "alpha-2"},
		{"ev needs registration", Organization{Name: "A", Country: "US", Locality: "X", JurisdictionCountry: "US", BusinessCategory: "Private Organization"}, EV, "registration_number"},
		{"ev bad category", Organization{Name: "A", Country: "US", Locality: "X", JurisdictionCountry: "US", BusinessCategory: "Club", RegistrationNumber: "1"}, EV, "category"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.org.Validate(tt.prof)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Validate = %v, want mention of %q", err, tt.want)
			}
		})
	}
	if err := (Organization{Name: "A", Country: "US", Province: "CA"}).Validate(OV); err != nil {
		t.Errorf("valid OV organization: %v", err)
	}
}

func TestParse(t *testing.T) {
	for _, s := range []string{"dv", "ov", "ev"} {
		if n, err := Parse(s); err != nil || string(n) != s {
			t.Errorf("Parse(%q) = %v, %v", s, n, err)
		}
	}
	if _, err := Parse("DV"); err == nil {
		t.Error("Parse(DV) succeeded")
	}
	if !EV.NeedsReview() || DV.NeedsReview() || EV.Approvals() != 2 || OV.Approvals() != 1 {
		t.Error("review rules wrong")
	}
}
