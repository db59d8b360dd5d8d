// Package status is a certificate's revocation status as OCSP reports it
// (RFC 6960 §2.2): good, revoked or unknown.
//
// This is a leaf package: it imports only the standard library, and any
// package may import it.
package status

import "fmt"

// Status is a certificate's revocation status. The zero value is Unknown.
type Status uint8

const (
	// Unknown: the responder knows nothing of the serial (RFC 6960 §2.2).
	Unknown Status = iota
	// Good: issued and not revoked.
	Good
	// Revoked: revoked, permanently; Trustline never puts certificates on hold.
	Revoked
)

var names = [...]string{Unknown: "unknown", Good: "good", Revoked: "revoked"}

// String returns "good", "revoked" or "unknown".
func (s Status) String() string {
	if int(s) < len(names) {
		return names[s]
	}
	return fmt.Sprintf("status(%d)", uint8(s))
}

// Parse reads the String form.
func Parse(s string) (Status, error) {
	for i, n := range names {
		if n == s {
			return Status(i), nil
		}
	}
	return Unknown, fmt.Errorf("status: unknown certificate status %q (want good, revoked or unknown)", s)
}

// MarshalText implements encoding.TextMarshaler.
func (s Status) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (s *Status) UnmarshalText(b []byte) error {
	v, err := Parse(string(b))
	if err != nil {
		return err
	}
	*s = v
	return nil
}
