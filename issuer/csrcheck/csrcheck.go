// Package csrcheck decides whether a certificate signing request (PKCS #10,
// RFC 2986) submitted to the issuance API may be signed: it parses the CSR,
// verifies its self-signature, applies the key rules of the CA/Browser Forum
// Baseline Requirements §6.1.5–6.1.6 (RSA 2048–4096 with e = 65537, ECDSA
// P-256/P-384, no weak or Fermat-factorable moduli) and the name rules of
// BR §7.1.2.7.12 and §3.2.2.6 (LDH or valid IDNA labels, no IP addresses, no
// internal names, no bare or wildcarded public suffixes).
//
// It runs before domain-control checks, which live in issuer/validation and
// decide whether the account may have each name. Every refusal is an *Error
// whose Detail is fit to show the subscriber (a 4xx answer): it says what is
// wrong and quotes at most a short, escaped snippet of the input.
//
// csrcheck is part of the issuance core: issuer, issuer/api and issuer/ca may
// import it; responder, origin and crlgen must not. It imports only the
// standard library, golang.org/x/crypto/cryptobyte and golang.org/x/net
// (publicsuffix, idna).
package csrcheck

import (
	"bytes"
	"crypto/elliptic"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"slices"
	"strings"
	"unicode"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// MaxInputSize bounds the DER that Check and the PEM that DecodePEM accept.
// A CSR with a 4096-bit key and 100 names is about 5 KiB.
const MaxInputSize = 64 << 10

// Defaults applied to the zero fields of a Policy.
const (
	DefaultRSAMinBits   = 2048 // BR §6.1.5
	DefaultRSAMaxBits   = 4096 // larger keys slow every handshake for little gain
	DefaultFermatRounds = 100  // as Boulder: catches |p−q| up to about 2^(bits/4+5)
	DefaultMaxNames     = 100
)

// Bounds on Policy fields, so that a configuration cannot make Check
// unboundedly expensive for input a stranger controls.
const (
	maxRSABits      = 8192
	maxFermatRounds = 100_000
)

// Policy says which keys and names Check accepts. The zero value is the
// default policy; zero fields take the Default* values.
type Policy struct {
	// RSAMinBits and RSAMaxBits bound the RSA modulus length in bits
	// (inclusive). RSAMinBits must be at least 2048 (BR §6.1.5), both must
	// be multiples of 8, and RSAMaxBits at most 8192.
	RSAMinBits, RSAMaxBits int

	// AllowedCurves lists the ECDSA curves accepted; each must be
	// elliptic.P256(), P384() or P521() (BR §6.1.5). Default P-256, P-384.
	AllowedCurves []elliptic.Curve

	// FermatRounds is how many steps of Fermat's factorisation Check tries
	// on an RSA modulus (RSA keys whose primes are too close). At most
	// 100000.
	FermatRounds int

	// MaxNames bounds the distinct DNS names (SANs and CN) in one CSR.
	MaxNames int

	// ForbidWildcards refuses wildcard names ("*.example.com"). Wildcards
	// are allowed by default; this package checks only their syntax and
	// that they do not cover a public suffix — whether a validation method
	// may authorise a wildcard is issuer/validation's decision.
	ForbidWildcards bool

	// WeakKeys, if set, refuses the RSA keys it lists (Debian weak keys,
	// CVE-2008-0166; LoadWeakKeys).
	WeakKeys *WeakKeys
}

// withDefaults returns p with its zero fields set to the defaults.
func (p Policy) withDefaults() Policy {
	if p.RSAMinBits == 0 {
		p.RSAMinBits = DefaultRSAMinBits
	}
	if p.RSAMaxBits == 0 {
		p.RSAMaxBits = DefaultRSAMaxBits
	}
	if len(p.AllowedCurves) == 0 {
		p.AllowedCurves = []elliptic.Curve{elliptic.P256(), elliptic.P384()}
	}
	if p.FermatRounds == 0 {
		p.FermatRounds = DefaultFermatRounds
	}
	if p.MaxNames == 0 {
		p.MaxNames = DefaultMaxNames
	}
	return p
}

// Validate reports whether p, with defaults applied, is a policy the CA may
// run: one that the BR allow and whose cost per CSR is bounded.
func (p Policy) Validate() error {
	p = p.withDefaults()
	switch {
	case p.RSAMinBits < 2048:
		return fmt.Errorf("csrcheck: RSAMinBits %d is below 2048 (BR §6.1.5)", p.RSAMinBits)
	case p.RSAMinBits%8 != 0 || p.RSAMaxBits%8 != 0:
		return fmt.Errorf("csrcheck: RSAMinBits %d and RSAMaxBits %d must be multiples of 8", p.RSAMinBits, p.RSAMaxBits)
	case p.RSAMaxBits < p.RSAMinBits:
		return fmt.Errorf("csrcheck: RSAMaxBits %d is below RSAMinBits %d", p.RSAMaxBits, p.RSAMinBits)
	case p.RSAMaxBits > maxRSABits:
		return fmt.Errorf("csrcheck: RSAMaxBits %d is above %d", p.RSAMaxBits, maxRSABits)
	case p.FermatRounds < 0 || p.FermatRounds > maxFermatRounds:
		return fmt.Errorf("csrcheck: FermatRounds %d is outside 1..%d", p.FermatRounds, maxFermatRounds)
	case p.MaxNames < 0:
		return fmt.Errorf("csrcheck: MaxNames %d is negative", p.MaxNames)
	}
	for i, c := range p.AllowedCurves {
		if curveAlg(c) == "" {
			return fmt.Errorf("csrcheck: AllowedCurves[%d] is not P-256, P-384 or P-521 (BR §6.1.5)", i)
		}
	}
	return nil
}

// Request is a CSR that passed Check.
type Request struct {
	CSR *x509.CertificateRequest
	// Names are the DNS names to certify: the dNSName SANs and the subject
	// common name, lowercase, deduplicated and sorted.
	Names []string
	// KeyAlg names the key type and size: "ecdsa-p256", "ecdsa-p384",
	// "ecdsa-p521", "rsa-2048", "rsa-3072", "rsa-4096", …
	KeyAlg string
}

// Check parses a DER CSR and applies p. A refusal is an *Error; any other
// error means p itself is invalid (a server fault, not the subscriber's).
//
// Extensions the CSR requests other than subjectAltName are ignored: the
// certificate profile (issuer/ca) decides the extensions.
func (p Policy) Check(csrDER []byte) (Request, error) {
	p = p.withDefaults()
	if err := p.Validate(); err != nil {
		return Request{}, fmt.Errorf("csrcheck: checking CSR: %w", err)
	}
	switch {
	case len(csrDER) == 0:
		return Request{}, refuse(BadCSR, "the CSR is empty")
	case len(csrDER) > MaxInputSize:
		return Request{}, refuse(BadCSR, "the CSR is %d bytes, more than the %d allowed", len(csrDER), MaxInputSize)
	case bytes.HasPrefix(bytes.TrimSpace(csrDER), []byte("-----BEGIN")):
		return Request{}, refuse(BadCSR, "the CSR is PEM; DER was expected here")
	}
	csr, err := parseCSR(csrDER)
	if err != nil {
		return Request{}, err
	}
	// The key is judged before the signature: a weak or unsupported key is
	// the more useful answer, and the standard library declines to verify
	// with some keys we want to name precisely (tiny moduli, e = 3).
	alg, err := p.checkKey(csr.PublicKey)
	if err != nil {
		return Request{}, err
	}
	if err := csr.CheckSignature(); err != nil {
		return Request{}, refuse(BadSignature, "the CSR's signature does not verify with its public key: %s", errText(err))
	}
	names, err := p.names(csr)
	if err != nil {
		return Request{}, err
	}
	return Request{CSR: csr, Names: names, KeyAlg: alg}, nil
}

// parseCSR parses DER that is meant to be a CSR. Input that does not even
// have the outer shape of one (RFC 2986 §4.2: a SEQUENCE of the request
// info, an algorithm and a BIT STRING) is refused with NotACSR rather than
// the ASN.1 decoder's account of where it gave up, which names Go struct
// fields and helps nobody.
func parseCSR(der []byte) (*x509.CertificateRequest, error) {
	switch shaped, trailing := csrShape(der); {
	case !shaped:
		return nil, refuse(BadCSR, NotACSR)
	case trailing > 0:
		unit := "bytes"
		if trailing == 1 {
			unit = "byte"
		}
		return nil, refuse(BadCSR, "the CSR is followed by %d %s of other data; send the CSR alone", trailing, unit)
	}
	csr, err := x509.ParseCertificateRequest(der)
	if err == nil {
		return csr, nil
	}
	// A certificate has the same outer shape; it is a common mix-up.
	if _, cerr := x509.ParseCertificate(der); cerr == nil {
		return nil, refuse(BadCSR, "the input is a certificate, not a certificate request; send the CSR")
	}
	var (
		se asn1.StructuralError
		sy asn1.SyntaxError
	)
	if errors.As(err, &se) || errors.As(err, &sy) {
		return nil, refuse(BadCSR, "the CSR is malformed: its contents do not follow the PKCS #10 structure (RFC 2986)")
	}
	return nil, refuse(BadCSR, "the CSR is malformed: %s", errText(err))
}

// csrShape reports whether der starts with a DER SEQUENCE holding two
// SEQUENCEs and a BIT STRING, and how many bytes follow that SEQUENCE.
func csrShape(der []byte) (shaped bool, trailing int) {
	in := cryptobyte.String(der)
	var outer, info, alg cryptobyte.String
	var sig asn1.BitString
	shaped = in.ReadASN1(&outer, cbasn1.SEQUENCE) &&
		outer.ReadASN1(&info, cbasn1.SEQUENCE) &&
		outer.ReadASN1(&alg, cbasn1.SEQUENCE) &&
		outer.ReadASN1BitString(&sig) && outer.Empty()
	return shaped, len(in)
}

// names collects, checks and deduplicates the CSR's DNS names.
func (p Policy) names(csr *x509.CertificateRequest) ([]string, error) {
	if err := checkSANTypes(csr.Extensions); err != nil {
		return nil, err
	}
	// x509 parsed these too; checkSANTypes refused them already, this keeps
	// the rule true even if the two parsers ever disagree.
	if len(csr.IPAddresses)+len(csr.EmailAddresses)+len(csr.URIs) > 0 {
		return nil, refuse(BadName, "the CSR requests IP address, email or URI subjectAltNames; only DNS names are accepted")
	}
	cns := 0
	for _, atv := range csr.Subject.Names {
		if atv.Type.Equal(asn1.ObjectIdentifier{2, 5, 4, 3}) {
			cns++
		}
	}
	if cns > 1 {
		return nil, refuse(BadName, "the CSR's subject has %d common names; at most one is allowed", cns)
	}

	// source remembers where each distinct name came from, for messages.
	source := make(map[string]string, len(csr.DNSNames)+1)
	for _, n := range csr.DNSNames {
		if _, ok := source[n]; !ok {
			source[n] = "subjectAltName"
		}
	}
	if cn := csr.Subject.CommonName; cn != "" {
		if _, ok := source[cn]; !ok {
			source[cn] = "subject common name"
		}
	}
	switch {
	case len(source) == 0:
		return nil, refuse(BadName, "the CSR names no DNS name: put the names in the subjectAltName extension")
	case len(source) > p.MaxNames:
		return nil, refuse(TooManyNames, "the CSR has %d distinct names; at most %d are allowed", len(source), p.MaxNames)
	}
	names := make([]string, 0, len(source))
	for n := range source {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		if why := nameProblem(n); why != "" {
			return nil, refuse(BadName, "%s %s %s", source[n], snippet(n, maxNameSnippet), why)
		}
		if p.ForbidWildcards && isWildcard(n) {
			return nil, refuse(BadName, "%s %s is a wildcard, which this order type does not allow", source[n], snippet(n, maxNameSnippet))
		}
	}
	return names, nil
}

// checkSANTypes refuses any subjectAltName entry that is not a dNSName,
// including the types x509 does not parse (otherName, directoryName, …),
// which would otherwise vanish silently.
func checkSANTypes(exts []pkix.Extension) error {
	for _, ext := range exts {
		if !ext.Id.Equal(asn1.ObjectIdentifier{2, 5, 29, 17}) {
			continue
		}
		in := cryptobyte.String(ext.Value)
		var seq cryptobyte.String
		if !in.ReadASN1(&seq, cbasn1.SEQUENCE) || !in.Empty() {
			return refuse(BadCSR, "the CSR's subjectAltName extension is malformed")
		}
		for !seq.Empty() {
			var (
				body cryptobyte.String
				tag  cbasn1.Tag
			)
			if !seq.ReadAnyASN1(&body, &tag) {
				return refuse(BadCSR, "the CSR's subjectAltName extension is malformed")
			}
			if tag != cbasn1.Tag(2).ContextSpecific() {
				return refuse(BadName, "the CSR requests a subjectAltName of type %s; only DNS names are accepted", generalNameType(tag))
			}
		}
	}
	return nil
}

// generalNameType names a GeneralName CHOICE (RFC 5280 §4.2.1.6) by its tag.
func generalNameType(tag cbasn1.Tag) string {
	const contextSpecific, constructed = 0x80, 0x20
	if tag&0xc0 != contextSpecific {
		return fmt.Sprintf("with unexpected tag 0x%02x", uint8(tag))
	}
	switch tag &^ (0xc0 | constructed) {
	case 0:
		return "otherName"
	case 1:
		return "email (rfc822Name)"
	case 3:
		return "x400Address"
	case 4:
		return "directoryName"
	case 5:
		return "ediPartyName"
	case 6:
		return "URI"
	case 7:
		return "IP address"
	case 8:
		return "registeredID"
	}
	return fmt.Sprintf("with unexpected tag 0x%02x", uint8(tag))
}

// Kind classifies a refusal, so that callers can branch (and pick a
// problem type) with errors.As.
type Kind int

const (
	// BadCSR: the input is not a well-formed CSR (or PEM-wrapped CSR).
	BadCSR Kind = iota + 1
	// BadSignature: the CSR's self-signature does not verify.
	BadSignature
	// WeakKey: the key is too short, factorable, or not a valid point.
	WeakKey
	// UnsupportedKey: a key type, curve, size or exponent the CA does not
	// certify (Ed25519, DSA, P-521 by default, RSA above the maximum, …).
	UnsupportedKey
	// BadName: a name that may not appear in a certificate, or a
	// subjectAltName that is not a DNS name.
	BadName
	// TooManyNames: more distinct names than Policy.MaxNames.
	TooManyNames
)

var kindNames = map[Kind]string{
	BadCSR:         "badCSR",
	BadSignature:   "badSignature",
	WeakKey:        "weakKey",
	UnsupportedKey: "unsupportedKey",
	BadName:        "badName",
	TooManyNames:   "tooManyNames",
}

// String returns a stable identifier, usable in a problem type URI.
func (k Kind) String() string {
	if s, ok := kindNames[k]; ok {
		return s
	}
	return fmt.Sprintf("kind(%d)", int(k))
}

// Error is a refusal of the subscriber's input.
type Error struct {
	Kind Kind
	// Detail says what is wrong in words fit for the subscriber. Quoted
	// input in it is escaped and truncated.
	Detail string
}

// Error returns the Detail, so that it can go straight into an API answer.
func (e *Error) Error() string { return e.Detail }

func refuse(k Kind, format string, args ...any) *Error {
	return &Error{Kind: k, Detail: fmt.Sprintf(format, args...)}
}

// KindOf returns the Kind of err's *Error, or 0 when err is not a refusal.
func KindOf(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return 0
}

// Snippet lengths, in bytes of input, before quoting.
const (
	maxNameSnippet = 80
	maxErrSnippet  = 160
)

// snippet quotes at most max bytes of s, escaping anything unprintable, so
// that a refusal never echoes unbounded or control-character input.
func snippet(s string, max int) string {
	if len(s) <= max {
		return fmt.Sprintf("%q", s)
	}
	return fmt.Sprintf("%q…", s[:max])
}

// errText bounds a library error's text for a refusal's Detail: library
// messages sometimes quote the input.
func errText(err error) string {
	s := err.Error()
	if len(s) > maxErrSnippet {
		s = strings.ToValidUTF8(s[:maxErrSnippet], "") + "…"
	}
	return strings.Map(func(r rune) rune {
		if unicode.IsPrint(r) {
			return r
		}
		return '?'
	}, s)
}
