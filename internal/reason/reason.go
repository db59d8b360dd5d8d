// Package reason is the CRL entry reason code of RFC 5280 §5.3.1, with the
// subset the CA/Browser Forum Baseline Requirements §7.2.2 allow on CRLs and
// OCSP responses for subscriber certificates.
//
// Names are the RFC's ASN.1 identifiers (keyCompromise, superseded, …): the
// form the API accepts and returns.
//
// This is a leaf package: it imports only the standard library, and any
// package may import it.
package reason

import (
	"fmt"
	"strconv"
)

// Reason is a CRLReason (RFC 5280 §5.3.1). Never pass a raw int.
type Reason uint8

// The codes of RFC 5280 §5.3.1; 7 is unused.
const (
	Unspecified          Reason = 0
	KeyCompromise        Reason = 1
	CACompromise         Reason = 2
	AffiliationChanged   Reason = 3
	Superseded           Reason = 4
	CessationOfOperation Reason = 5
	CertificateHold      Reason = 6
	RemoveFromCRL        Reason = 8
	PrivilegeWithdrawn   Reason = 9
	AACompromise         Reason = 10
)

var names = map[Reason]string{
	Unspecified:          "unspecified",
	KeyCompromise:        "keyCompromise",
	CACompromise:         "cACompromise",
	AffiliationChanged:   "affiliationChanged",
	Superseded:           "superseded",
	CessationOfOperation: "cessationOfOperation",
	CertificateHold:      "certificateHold",
	RemoveFromCRL:        "removeFromCRL",
	PrivilegeWithdrawn:   "privilegeWithdrawn",
	AACompromise:         "aACompromise",
}

// All lists every code RFC 5280 defines, in numeric order.
var All = []Reason{Unspecified, KeyCompromise, CACompromise, AffiliationChanged, Superseded,
	CessationOfOperation, CertificateHold, RemoveFromCRL, PrivilegeWithdrawn, AACompromise}

// Defined reports whether r is one of RFC 5280's codes.
func (r Reason) Defined() bool { _, ok := names[r]; return ok }

// AllowedForSubscriber reports whether BR §7.2.2 lets a CRL entry or OCSP
// response for a subscriber certificate carry r. unspecified is allowed
// as a revocation reason but is then omitted from the CRL entry (see
// OmitOnCRL).
func (r Reason) AllowedForSubscriber() bool {
	switch r {
	case Unspecified, KeyCompromise, AffiliationChanged, Superseded,
		CessationOfOperation, PrivilegeWithdrawn:
		return true
	}
	return false
}

// AllowedForCA reports whether BR §7.2.2 lets a CRL entry for a CA
// certificate carry r.
func (r Reason) AllowedForCA() bool {
	switch r {
	case Unspecified, KeyCompromise, CACompromise, AffiliationChanged, Superseded,
		CessationOfOperation:
		return true
	}
	return false
}

// OmitOnCRL reports whether the reasonCode extension must be left out of
// the CRL entry: BR §7.2.2 forbids encoding unspecified (RFC 5280 §5.3.1
// says it SHOULD be absent).
func (r Reason) OmitOnCRL() bool { return r == Unspecified }

// String returns the RFC 5280 identifier, or "reason(N)" for an undefined code.
func (r Reason) String() string {
	if n, ok := names[r]; ok {
		return n
	}
	return "reason(" + strconv.Itoa(int(r)) + ")"
}

// Parse reads an RFC 5280 identifier (case-sensitive, as in the RFC).
func Parse(s string) (Reason, error) {
	for r, n := range names {
		if n == s {
			return r, nil
		}
	}
	return 0, fmt.Errorf("reason: unknown revocation reason %q", s)
}

// FromCode converts a numeric code read from DER or the store.
func FromCode(c int) (Reason, error) {
	r := Reason(c)
	if c < 0 || c > 255 || !r.Defined() {
		return 0, fmt.Errorf("reason: undefined revocation reason code %d", c)
	}
	return r, nil
}

// MarshalText implements encoding.TextMarshaler.
func (r Reason) MarshalText() ([]byte, error) {
	if !r.Defined() {
		return nil, fmt.Errorf("reason: undefined revocation reason code %d", uint8(r))
	}
	return []byte(r.String()), nil
}

// UnmarshalText implements encoding.TextUnmarshaler.
func (r *Reason) UnmarshalText(b []byte) error {
	v, err := Parse(string(b))
	if err != nil {
		return err
	}
	*r = v
	return nil
}
