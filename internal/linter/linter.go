// Package linter runs zlint v3 on what Trustline is about to sign: to-be-
// signed certificates (BR §4.3.1.2, in force since 2025-03-15, requires
// linting before the CA key signs) and CRLs before publication.
//
// The lint set is chosen deliberately: the sources that bind a publicly
// trusted TLS CA (RFC 5280 and its companions, the CA/Browser Forum BR and
// EV Guidelines, the Mozilla, Apple and Chrome root programs). Community and
// ETSI lints are left out: they are not requirements, and two Community
// lints cost twenty times the rest together. The registry is filtered once
// and reused.
//
// Prelint signs the to-be-signed certificate with a throwaway key of the
// issuer's key type, so that the real key signs only what passed; callers
// then check that the real signature covers the same TBS bytes.
//
// Used by issuer/ and crlgen/.
package linter

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"

	zx509 "github.com/zmap/zcrypto/x509"
	"github.com/zmap/zlint/v3"
	"github.com/zmap/zlint/v3/lint"
)

// Config chooses the lints.
type Config struct {
	// Skip names lints not to run, each with a reason recorded in the
	// deployment's configuration (e.g. a lint whose rule the CA has a
	// documented exception for).
	Skip []string
}

// Sources are the lint sources Trustline runs.
var Sources = lint.SourceList{
	lint.RFC3279, lint.RFC5280, lint.RFC5480, lint.RFC5891, lint.RFC6960, lint.RFC8813,
	lint.CABFBaselineRequirements, lint.CABFEVGuidelines,
	lint.MozillaRootStorePolicy, lint.AppleRootStorePolicy, lint.ChromeRootStorePolicy,
}

// Linter holds the filtered registry and one throwaway key per key type.
type Linter struct {
	reg lint.Registry
	// caReg is reg configured for CRLs that cover CA certificates, whose
	// nextUpdate may be up to 12 months out instead of 10 days (BR §4.9.7).
	caReg lint.Registry
	rand  io.Reader

	mu        sync.Mutex
	throwaway map[string]crypto.Signer
}

// New filters zlint's registry once.
func New(cfg Config) (*Linter, error) {
	reg, err := lint.GlobalRegistry().Filter(lint.FilterOptions{IncludeSources: Sources, ExcludeNames: cfg.Skip})
	if err != nil {
		return nil, fmt.Errorf("linter: filtering zlint registry: %w", err)
	}
	// A second filtering, not reg.Filter(empty): that returns reg itself.
	caReg, err := lint.GlobalRegistry().Filter(lint.FilterOptions{IncludeSources: Sources, ExcludeNames: cfg.Skip})
	if err != nil {
		return nil, fmt.Errorf("linter: filtering zlint registry: %w", err)
	}
	caConf, err := lint.NewConfigFromString("[e_crl_next_update_invalid]\nSubscriberCRL = false\n")
	if err != nil {
		return nil, fmt.Errorf("linter: configuring the CA CRL lints: %w", err)
	}
	caReg.SetConfiguration(caConf)
	return &Linter{reg: reg, caReg: caReg, rand: rand.Reader, throwaway: map[string]crypto.Signer{}}, nil
}

// Finding is one lint that did not pass.
type Finding struct {
	Lint    string
	Status  string // "error" or "fatal" (warnings and notices are not findings)
	Details string
}

// Failure is returned when any lint reports error or fatal.
type Failure struct {
	What     string // "certificate" or "CRL"
	Findings []Finding
}

func (f *Failure) Error() string {
	parts := make([]string, len(f.Findings))
	for i, x := range f.Findings {
		parts[i] = x.Lint
		if x.Details != "" {
			parts[i] += " (" + x.Details + ")"
		}
	}
	return fmt.Sprintf("linter: %s fails %d lint(s): %s", f.What, len(f.Findings), strings.Join(parts, "; "))
}

func findings(what string, rs *zlint.ResultSet) error {
	if !rs.ErrorsPresent && !rs.FatalsPresent {
		return nil
	}
	f := &Failure{What: what}
	for name, r := range rs.Results {
		if r.Status == lint.Error || r.Status == lint.Fatal {
			f.Findings = append(f.Findings, Finding{Lint: name, Status: strings.ToLower(r.Status.String()), Details: r.Details})
		}
	}
	sort.Slice(f.Findings, func(i, j int) bool { return f.Findings[i].Lint < f.Findings[j].Lint })
	return f
}

// Certificate lints a DER certificate.
func (l *Linter) Certificate(der []byte) error {
	c, err := zx509.ParseCertificate(der)
	if err != nil {
		return fmt.Errorf("linter: zcrypto cannot parse certificate: %w", err)
	}
	return findings("certificate", zlint.LintCertificateEx(c, l.reg))
}

// CRL lints a DER CRL.
func (l *Linter) CRL(der []byte) error {
	c, err := zx509.ParseRevocationList(der)
	if err != nil {
		return fmt.Errorf("linter: zcrypto cannot parse CRL: %w", err)
	}
	return findings("CRL", zlint.LintRevocationListEx(c, l.reg))
}

// CACRL lints a DER CRL that covers CA certificates (the root's, listing
// intermediates): as CRL, except that nextUpdate may be up to 12 months
// after thisUpdate (BR §4.9.7), which lets an offline root sign it once a
// year.
func (l *Linter) CACRL(der []byte) error {
	c, err := zx509.ParseRevocationList(der)
	if err != nil {
		return fmt.Errorf("linter: zcrypto cannot parse CRL: %w", err)
	}
	return findings("CRL", zlint.LintRevocationListEx(c, l.caReg))
}

// Prelint builds tmpl as issuer would sign it, but signs with a throwaway
// key of the issuer key's type, lints the result, and returns its TBS
// bytes. The caller signs with the real key only if err is nil, and must
// then check the real certificate's RawTBSCertificate with SameTBS.
func (l *Linter) Prelint(tmpl, issuer *x509.Certificate, pub crypto.PublicKey) ([]byte, error) {
	key, err := l.throwawayFor(issuer.PublicKey)
	if err != nil {
		return nil, err
	}
	fake := *issuer
	fake.PublicKey = key.Public()
	der, err := x509.CreateCertificate(l.rand, tmpl, &fake, pub, key)
	if err != nil {
		return nil, fmt.Errorf("linter: building to-be-signed certificate: %w", err)
	}
	if err := l.Certificate(der); err != nil {
		return nil, err
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("linter: parsing linted certificate: %w", err)
	}
	return c.RawTBSCertificate, nil
}

// ErrTBSMismatch: the real signature covers something other than what was
// linted.
var ErrTBSMismatch = errors.New("linter: signed certificate differs from the linted one")

// SameTBS checks that signed carries exactly the linted TBS.
func SameTBS(linted []byte, signed *x509.Certificate) error {
	if !bytes.Equal(linted, signed.RawTBSCertificate) {
		return ErrTBSMismatch
	}
	return nil
}

// throwawayFor returns a key that makes x509 choose the same signature
// algorithm as pub's: same curve for ECDSA; any RSA size for RSA (the
// algorithm identifier does not name the size).
func (l *Linter) throwawayFor(pub crypto.PublicKey) (crypto.Signer, error) {
	var kind string
	var gen func() (crypto.Signer, error)
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		curve := k.Curve
		kind = "ecdsa-" + curve.Params().Name
		gen = func() (crypto.Signer, error) { return ecdsa.GenerateKey(curve, l.rand) }
	case *rsa.PublicKey:
		kind = "rsa"
		gen = func() (crypto.Signer, error) { return rsa.GenerateKey(l.rand, 2048) }
	default:
		return nil, fmt.Errorf("linter: unsupported issuer key type %T", pub)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if k, ok := l.throwaway[kind]; ok {
		return k, nil
	}
	k, err := gen()
	if err != nil {
		return nil, fmt.Errorf("linter: generating throwaway %s key: %w", kind, err)
	}
	l.throwaway[kind] = k
	return k, nil
}

// CALinter lints CRLs as covering CA certificates: its CRL method is the
// Linter's CACRL. The CRL generator takes it as the root's linter.
type CALinter struct{ l *Linter }

// ForCACRLs returns l as a CALinter.
func (l *Linter) ForCACRLs() CALinter { return CALinter{l} }

// CRL lints der with Linter.CACRL.
func (c CALinter) CRL(der []byte) error { return c.l.CACRL(der) }
