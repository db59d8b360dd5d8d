package validation

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/asn1"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// ALPN for tls-alpn-01 (RFC 8737 §6.2) and the acmeIdentifier extension
// (RFC 8737 §6.1, id-pe-acmeIdentifier).
const acmeTLSProtocol = "acme-tls/1"

var oidACMEIdentifier = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 1, 31}

// alpnProber performs tls-alpn-01 (RFC 8737 §3, BR §3.2.2.4.20): a TLS
// handshake with the domain on port 443, offering only acme-tls/1, whose
// self-signed certificate must name the domain alone and carry the
// digest of the key authorization in a critical acmeIdentifier extension.
// The certificate is not otherwise trusted: it exists for this check.
type alpnProber struct {
	dial    DialFunc
	port    int
	timeout time.Duration
}

// check does the handshake and judges the certificate. A subscriber-side
// failure is a *checkFailure in words from a fixed set, the raw error in
// Internal.
func (p *alpnProber) check(ctx context.Context, domain, keyAuth string) (map[string]any, error) {
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	addr := net.JoinHostPort(domain, strconv.Itoa(p.port))
	fail := func(detail string, err error) error {
		cf := &checkFailure{Detail: detail + " (BR 3.2.2.4.20)"}
		if err != nil {
			cf.Internal = truncate(err.Error(), 1000)
		}
		return cf
	}
	raw, err := p.dial(ctx, "tcp", addr)
	if err != nil {
		if errors.Is(ctx.Err(), context.Canceled) {
			return nil, ctx.Err()
		}
		return nil, fail("connecting to "+addr+" failed: "+dialReason(err), err)
	}
	defer raw.Close()
	conn := tls.Client(raw, &tls.Config{
		ServerName: domain,
		NextProtos: []string{acmeTLSProtocol},
		MinVersion: tls.VersionTLS12,
		// The certificate is judged below by RFC 8737's rules, not by a
		// chain to a root: it is self-signed by design.
		InsecureSkipVerify: true,
	})
	if err := conn.HandshakeContext(ctx); err != nil {
		if errors.Is(ctx.Err(), context.Canceled) {
			return nil, ctx.Err()
		}
		return nil, fail("the TLS handshake with "+addr+" offering "+acmeTLSProtocol+" failed", err)
	}
	st := conn.ConnectionState()
	if st.NegotiatedProtocol != acmeTLSProtocol {
		return nil, fail(addr+" did not negotiate the "+acmeTLSProtocol+" protocol", nil)
	}
	if len(st.PeerCertificates) == 0 {
		return nil, fail(addr+" presented no certificate", nil)
	}
	cert := st.PeerCertificates[0]
	if err := checkALPNCertificate(cert, domain, keyAuth); err != nil {
		return nil, fail(addr+" presented a certificate that "+err.Error(), nil)
	}
	sum := sha256.Sum256(cert.Raw)
	return map[string]any{
		"br_section": "3.2.2.4.20", "address": addr, "remote_addr": raw.RemoteAddr().String(),
		"tls_version": tls.VersionName(st.Version), "alpn": st.NegotiatedProtocol,
		"certificate_sha256": hex.EncodeToString(sum[:]),
	}, nil
}

// checkALPNCertificate applies RFC 8737 §3 to the certificate: a
// subjectAltName with exactly one dNSName, the domain, and nothing else;
// the acmeIdentifier extension, critical, holding an OCTET STRING of the
// key authorization's SHA-256. The error completes "a certificate that …".
func checkALPNCertificate(cert *x509.Certificate, domain, keyAuth string) error {
	if len(cert.DNSNames) != 1 || !strings.EqualFold(strings.TrimSuffix(cert.DNSNames[0], "."), domain) ||
		len(cert.IPAddresses)+len(cert.EmailAddresses)+len(cert.URIs) != 0 {
		return fmt.Errorf("does not name %s, and only it, in its subjectAltName", domain)
	}
	want := KeyAuthorizationDigest(keyAuth)
	found := false
	for _, ext := range cert.Extensions {
		if !ext.Id.Equal(oidACMEIdentifier) {
			continue
		}
		if found {
			return errors.New("has two acmeIdentifier extensions")
		}
		found = true
		if !ext.Critical {
			return errors.New("has an acmeIdentifier extension that is not critical")
		}
		var got []byte
		rest, err := asn1.Unmarshal(ext.Value, &got)
		if err != nil || len(rest) != 0 {
			return errors.New("has an acmeIdentifier extension that is not an OCTET STRING")
		}
		if !bytes.Equal(got, want[:]) {
			return errors.New("does not hold the key authorization's digest")
		}
	}
	if !found {
		return errors.New("has no acmeIdentifier extension")
	}
	return nil
}

// dialReason names a dial failure in the words every check uses (http-token
// builds on it in failureReason): the CA's own network and resolver stay
// out of what the subscriber is told.
func dialReason(err error) string {
	var dnsErr *net.DNSError
	var ne net.Error
	switch {
	case errors.Is(err, errNotPublic):
		return reasonNotPublic
	case errors.As(err, &dnsErr) && dnsErr.IsNotFound:
		return reasonNoSuchHost
	case dnsErr != nil:
		return reasonDNS
	case errors.Is(err, syscall.ECONNREFUSED):
		return reasonRefused
	case errors.Is(err, syscall.ENETUNREACH), errors.Is(err, syscall.EHOSTUNREACH):
		return reasonUnreachable
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return reasonDialTimeout
	}
	return reasonOther
}
