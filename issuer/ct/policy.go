package ct

import (
	"encoding/asn1"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	ctgo "github.com/google/certificate-transparency-go"
	cttls "github.com/google/certificate-transparency-go/tls"
	ctx509 "github.com/google/certificate-transparency-go/x509"

	"crypto/x509/pkix"
)

// Policy is how many SCTs a certificate needs, modelled on Chrome's CT
// policy: at least MinSCTs SCTs from distinct logs, of at least
// MinOperators distinct log operators, and MinSCTsLong instead of MinSCTs
// for a certificate valid longer than LongLifetime. Chrome asks 2 SCTs for
// a certificate valid 180 days or less and 3 beyond, from 2 operators.
type Policy struct {
	MinSCTs      int
	MinOperators int
	MinSCTsLong  int // 0: MinSCTs + 1
}

// LongLifetime is the validity past which a certificate needs
// Policy.MinSCTsLong SCTs (Chrome's 180 days).
const LongLifetime = 180 * 24 * time.Hour

// DefaultPolicy is 2 SCTs (3 past 180 days) from 2 operators.
var DefaultPolicy = Policy{MinSCTs: 2, MinOperators: 2, MinSCTsLong: 3}

// Validate checks the policy.
func (p Policy) Validate() error {
	if p.MinSCTs < 1 || p.MinOperators < 1 || p.MinOperators > p.MinSCTs || (p.MinSCTsLong != 0 && p.MinSCTsLong < p.MinSCTs) {
		return fmt.Errorf("ct: policy needs min_scts ≥ 1, 1 ≤ min_operators ≤ min_scts and min_scts_long ≥ min_scts; got %d, %d and %d",
			p.MinSCTs, p.MinOperators, p.MinSCTsLong)
	}
	return nil
}

// For is the policy for a certificate valid from notBefore to notAfter:
// MinSCTs is MinSCTsLong if it is valid longer than LongLifetime.
func (p Policy) For(notBefore, notAfter time.Time) Policy {
	if notAfter.Sub(notBefore) > LongLifetime {
		p.MinSCTs = p.MinSCTsLong
	}
	return p
}

// metBy reports whether the SCTs of these logs satisfy the policy.
func (p Policy) metBy(logs []Log) bool {
	return len(logs) >= p.MinSCTs && operators(logs) >= p.MinOperators
}

// useful reports whether an SCT from l brings logs closer to the policy:
// it is of a new operator, or there are more SCTs to find than operators.
// Keeping only those, a certificate embeds MinSCTs SCTs, not every answer
// that came in first.
func (p Policy) useful(logs []Log, l Log) bool {
	if operators(append(slices.Clone(logs), l)) > operators(logs) {
		return true
	}
	return p.MinSCTs-len(logs) > p.MinOperators-operators(logs)
}

func operators(logs []Log) int {
	var ops []string
	for _, l := range logs {
		if !slices.Contains(ops, l.Operator) {
			ops = append(ops, l.Operator)
		}
	}
	return len(ops)
}

// PolicyError is SCTs' failure: the logs that answered do not meet the
// policy. Failures says why each other log gave no SCT.
type PolicyError struct {
	Policy    Policy
	Got       int // SCTs obtained
	Operators int // of so many operators
	Failures  map[string]error
}

func (e *PolicyError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "ct: %d SCTs from %d operators, and the policy needs %d from %d",
		e.Got, e.Operators, e.Policy.MinSCTs, e.Policy.MinOperators)
	names := make([]string, 0, len(e.Failures))
	for n := range e.Failures {
		names = append(names, n)
	}
	sort.Strings(names)
	for i, n := range names {
		if i == 0 {
			b.WriteString(": ")
		} else {
			b.WriteString("; ")
		}
		fmt.Fprintf(&b, "%s: %v", n, e.Failures[n])
	}
	return b.String()
}

// OIDPoison is the precertificate poison extension (RFC 6962 §3.1),
// critical, with an ASN.1 NULL value.
var OIDPoison = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 11129, 2, 4, 3}

// OIDSCTList is the embedded SCT list extension (RFC 6962 §3.3).
var OIDSCTList = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 11129, 2, 4, 2}

// PoisonExtension is the extension that makes a certificate a precertificate.
func PoisonExtension() pkix.Extension {
	return pkix.Extension{Id: OIDPoison, Critical: true, Value: asn1.NullBytes}
}

// sctListExtension encodes SCTs as the embedded SCT list extension: an
// OCTET STRING holding the TLS-encoded SignedCertificateTimestampList.
func sctListExtension(scts []*ctgo.SignedCertificateTimestamp) (ext pkix.Extension, list []byte, err error) {
	var l ctx509.SignedCertificateTimestampList
	for _, s := range scts {
		b, err := cttls.Marshal(*s)
		if err != nil {
			return pkix.Extension{}, nil, fmt.Errorf("ct: encoding an SCT: %w", err)
		}
		l.SCTList = append(l.SCTList, ctx509.SerializedSCT{Val: b})
	}
	if len(l.SCTList) == 0 {
		return pkix.Extension{}, nil, errors.New("ct: no SCTs to embed")
	}
	list, err = cttls.Marshal(l)
	if err != nil {
		return pkix.Extension{}, nil, fmt.Errorf("ct: encoding the SCT list: %w", err)
	}
	v, err := asn1.Marshal(list)
	if err != nil {
		return pkix.Extension{}, nil, err
	}
	return pkix.Extension{Id: OIDSCTList, Value: v}, list, nil
}
