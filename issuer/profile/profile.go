// Package profile turns an approved order into the certificate template the
// issuer signs: the DV, OV and EV subscriber profiles of the CA/Browser Forum
// Baseline Requirements §7.1.2.7 (and the EV Guidelines §9.2 for subject
// fields), with validity capped by BR §6.3.2 at the moment of issuance.
//
// It builds templates only; it neither signs nor lints (see issuer/ and
// internal/linter). Imported by issuer/.
package profile

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/trustline/trustline/internal/serial"
)

// Name is a profile's name as the API spells it.
type Name string

const (
	DV Name = "dv"
	OV Name = "ov"
	EV Name = "ev"
)

// Parse reads a profile name.
func Parse(s string) (Name, error) {
	switch n := Name(s); n {
	case DV, OV, EV:
		return n, nil
	}
	return "", fmt.Errorf("profile: unknown profile %q (want dv, ov or ev)", s)
}

// PolicyOID returns the CA/Browser Forum reserved policy identifier the
// profile asserts (BR §7.1.6.1).
func (n Name) PolicyOID() x509.OID {
	switch n {
	case OV:
		return mustOID("2.23.140.1.2.2")
	case EV:
		return mustOID("2.23.140.1.1")
	}
	return mustOID("2.23.140.1.2.1")
}

// NeedsReview reports whether orders of this profile always go to the
// review queue (identity validation by a person).
func (n Name) NeedsReview() bool { return n == OV || n == EV }

// Approvals is how many distinct reviewers must approve an order.
func (n Name) Approvals() int {
	if n == EV {
		return 2
	}
	return 1
}

func mustOID(s string) x509.OID {
	o, err := x509.ParseOID(s)
	if err != nil {
		panic(err)
	}
	return o
}

// brSchedule is the Baseline Requirements' schedule (ballot SC-081) of
// the longest subscriber certificate validity (BR §6.3.2) and the longest
// reuse of a domain validation (BR §4.2.1), by the date a certificate is
// issued: each step applies from its date on.
var brSchedule = []struct {
	from            time.Time
	validity, reuse time.Duration
}{
	{time.Time{}, 398 * day, 398 * day},
	{time.Date(2026, 3, 15, 0, 0, 0, 0, time.UTC), 200 * day, 200 * day},
	{time.Date(2027, 3, 15, 0, 0, 0, 0, time.UTC), 100 * day, 100 * day},
	{time.Date(2029, 3, 15, 0, 0, 0, 0, time.UTC), 47 * day, 10 * day},
}

const day = 24 * time.Hour

// brStep returns the schedule's step in force at t.
func brStep(t time.Time) int {
	i := 0
	for i+1 < len(brSchedule) && !t.Before(brSchedule[i+1].from) {
		i++
	}
	return i
}

// MaxValidity is the longest subscriber certificate validity BR §6.3.2
// allows for a certificate issued at t. Validity counts inclusively: a
// certificate valid for d has notAfter = notBefore + d - 1s.
func MaxValidity(t time.Time) time.Duration { return brSchedule[brStep(t)].validity }

// ReusePeriod is how long a completed domain validation may be relied on
// for a certificate issued at t (BR §4.2.1).
func ReusePeriod(t time.Time) time.Duration { return brSchedule[brStep(t)].reuse }

// Organization is the verified subject identity of OV and EV certificates.
type Organization struct {
	Name     string `json:"name"`
	Locality string `json:"locality,omitempty"`
	Province string `json:"province,omitempty"` // stateOrProvinceName
	Country  string `json:"country"`            // ISO 3166-1 alpha-2
	// EV only (EV Guidelines §7.1.4.2).
	JurisdictionCountry  string `json:"jurisdiction_country,omitempty"`
	JurisdictionProvince string `json:"jurisdiction_province,omitempty"`
	JurisdictionLocality string `json:"jurisdiction_locality,omitempty"`
	BusinessCategory     string `json:"business_category,omitempty"` // "Private Organization", "Government Entity", …
	RegistrationNumber   string `json:"registration_number,omitempty"`
}

// Validate checks the fields the profile needs.
func (o Organization) Validate(n Name) error {
	var errs []error
	need := func(field, v string) {
		if strings.TrimSpace(v) == "" {
			errs = append(errs, fmt.Errorf("organization.%s is required for %s", field, n))
		}
	}
	need("name", o.Name)
	need("country", o.Country)
	if o.Locality == "" && o.Province == "" {
		errs = append(errs, fmt.Errorf("organization.locality or organization.province is required for %s (BR §7.1.4.2.2)", n))
	}
	if o.Country != "" && (len(o.Country) != 2 || strings.ToUpper(o.Country) != o.Country) {
		errs = append(errs, fmt.Errorf("organization.country %q must be an ISO 3166-1 alpha-2 code", o.Country))
	}
	if n == EV {
		need("jurisdiction_country", o.JurisdictionCountry)
		need("business_category", o.BusinessCategory)
		need("registration_number", o.RegistrationNumber)
		switch o.BusinessCategory {
		case "", "Private Organization", "Government Entity", "Business Entity", "Non-Commercial Entity":
		default:
			errs = append(errs, fmt.Errorf("organization.business_category %q is not an EV Guidelines §7.1.4.2.3 category", o.BusinessCategory))
		}
	}
	for _, v := range []string{o.Name, o.Locality, o.Province, o.RegistrationNumber, o.BusinessCategory,
		o.JurisdictionLocality, o.JurisdictionProvince} {
		if len(v) > 64 {
			errs = append(errs, fmt.Errorf("organization field %q is longer than 64 characters (RFC 5280 upper bounds)", v[:16]+"…"))
		}
	}
	return errors.Join(errs...)
}

// Request is what the template is built from.
type Request struct {
	Profile   Name
	Serial    serial.Serial
	Names     []string // validated DNS names, all in the subjectAltName
	PublicKey crypto.PublicKey
	NotBefore time.Time
	Validity  time.Duration // 0: Default; capped by MaxValidity(NotBefore)
	Org       Organization  // OV and EV
	// URLs written into the certificate.
	OCSPURL      string
	CAIssuersURL string
	CRLURL       string // the shard's CRL, fixed at issuance
	Options
}

// Options are a CA's choices within what the BR allow, the same for every
// certificate it issues.
type Options struct {
	// CommonName puts the first name in the subject's commonName too. BR
	// §7.1.2.7.2–4 make it NOT RECOMMENDED (the names belong in the
	// subjectAltName, and every client reads them there); some old
	// software still looks for it. Off by default.
	CommonName bool
	// RSAKeyEncipherment adds keyEncipherment to RSA certificates' key
	// usage, which only TLS 1.2 RSA key exchange needs (BR §7.1.2.7.11
	// allows it). Off by default: digitalSignature alone serves ECDHE.
	RSAKeyEncipherment bool
}

// Default is the validity of a certificate when the request names none.
const Default = 90 * 24 * time.Hour

// EV subject attribute types (EV Guidelines §9.2).
var (
	oidJurisdictionLocality = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 311, 60, 2, 1, 1}
	oidJurisdictionProvince = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 311, 60, 2, 1, 2}
	oidJurisdictionCountry  = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 311, 60, 2, 1, 3}
	oidBusinessCategory     = asn1.ObjectIdentifier{2, 5, 4, 15}
)

// Template builds the certificate template for r.
func Template(r Request) (*x509.Certificate, error) {
	if len(r.Names) == 0 {
		return nil, errors.New("profile: no names")
	}
	if r.OCSPURL == "" || r.CAIssuersURL == "" || r.CRLURL == "" {
		return nil, errors.New("profile: OCSP, caIssuers and CRL URLs are all required")
	}
	validity := r.Validity
	if validity == 0 {
		validity = Default
	}
	if max := MaxValidity(r.NotBefore); validity > max {
		validity = max
	}
	if validity < time.Hour {
		return nil, fmt.Errorf("profile: validity %v is too short", validity)
	}
	var ku x509.KeyUsage
	switch r.PublicKey.(type) {
	case *ecdsa.PublicKey:
		ku = x509.KeyUsageDigitalSignature
	case *rsa.PublicKey:
		ku = x509.KeyUsageDigitalSignature
		if r.RSAKeyEncipherment {
			ku |= x509.KeyUsageKeyEncipherment
		}
	default:
		return nil, fmt.Errorf("profile: unsupported subscriber key %T", r.PublicKey)
	}
	notBefore := r.NotBefore.UTC().Truncate(time.Second)
	t := &x509.Certificate{
		SerialNumber:          r.Serial.BigInt(),
		DNSNames:              append([]string(nil), r.Names...),
		NotBefore:             notBefore,
		NotAfter:              notBefore.Add(validity - time.Second),
		KeyUsage:              ku,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  false,
		Policies:              []x509.OID{r.Profile.PolicyOID()},
		OCSPServer:            []string{r.OCSPURL},
		IssuingCertificateURL: []string{r.CAIssuersURL},
		CRLDistributionPoints: []string{r.CRLURL},
		// No subjectKeyIdentifier: BR §7.1.2.7.6 makes it NOT RECOMMENDED
		// for subscriber certificates. The AKI comes from the issuer. An
		// empty subject makes the subjectAltName critical (RFC 5280
		// §4.2.1.6), which crypto/x509 does by itself.
	}
	if r.CommonName {
		t.Subject.CommonName = r.Names[0]
	}
	switch r.Profile {
	case DV:
	case OV, EV:
		if err := r.Org.Validate(r.Profile); err != nil {
			return nil, fmt.Errorf("profile: %w", err)
		}
		t.Subject.Organization = []string{r.Org.Name}
		t.Subject.Country = []string{r.Org.Country}
		if r.Org.Province != "" {
			t.Subject.Province = []string{r.Org.Province}
		}
		if r.Org.Locality != "" {
			t.Subject.Locality = []string{r.Org.Locality}
		}
		if r.Profile == EV {
			t.Subject.SerialNumber = r.Org.RegistrationNumber
			extra := []pkix.AttributeTypeAndValue{
				{Type: oidBusinessCategory, Value: r.Org.BusinessCategory},
				{Type: oidJurisdictionCountry, Value: r.Org.JurisdictionCountry},
			}
			if r.Org.JurisdictionProvince != "" {
				extra = append(extra, pkix.AttributeTypeAndValue{Type: oidJurisdictionProvince, Value: r.Org.JurisdictionProvince})
			}
			if r.Org.JurisdictionLocality != "" {
				extra = append(extra, pkix.AttributeTypeAndValue{Type: oidJurisdictionLocality, Value: r.Org.JurisdictionLocality})
			}
			t.Subject.ExtraNames = extra
		}
	default:
		return nil, fmt.Errorf("profile: unknown profile %q", r.Profile)
	}
	return t, nil
}
