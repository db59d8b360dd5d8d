package caa_test

import (
	"testing"

	"github.com/trustline/trustline/issuer/caa"
)

// TestMethodLabel: an ACME challenge's validation is named by its
// challenge type, as RFC 8657 lists it; Trustline's own methods are
// CA-specific labels.
func TestMethodLabel(t *testing.T) {
	for method, want := range map[string]string{
		"acme-dns-01": "dns-01", "acme-http-01": "http-01", "acme-tls-alpn-01": "tls-alpn-01",
		"dns-01": "dns-01", "dns-txt": "ca-dns-txt", "http-token": "ca-http-token", "email": "ca-email",
		"acme-other": "ca-acme-other",
	} {
		if got := caa.MethodLabel(method); got != want {
			t.Errorf("MethodLabel(%q) = %q, want %q", method, got, want)
		}
	}
}
