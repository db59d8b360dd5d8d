// Package issuerid names an issuing CA inside Trustline: the id appears in
// file names (ca/<id>.pem), URLs (/<id>/crls.json, CRL distribution points)
// and store rows, so it is restricted to a URL- and path-safe alphabet.
//
// This is a leaf package: it imports only the standard library, and any
// package may import it.
package issuerid

import "fmt"

// MaxLen bounds an id so that it fits comfortably in paths and keys.
const MaxLen = 64

// ID names an issuer: 1 to 64 characters of [a-z0-9-], not starting or
// ending with '-'. "root" is the self-signed root.
type ID string

// Root is the id of the self-signed root CA.
const Root ID = "root"

// Parse validates s as an issuer id.
func Parse(s string) (ID, error) {
	if len(s) == 0 || len(s) > MaxLen {
		return "", fmt.Errorf("issuerid: %q must be 1 to %d characters", s, MaxLen)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return "", fmt.Errorf("issuerid: %q may hold only a-z, 0-9 and '-'", s)
		}
	}
	if s[0] == '-' || s[len(s)-1] == '-' {
		return "", fmt.Errorf("issuerid: %q must not start or end with '-'", s)
	}
	return ID(s), nil
}

// String returns the id.
func (id ID) String() string { return string(id) }

// Valid reports whether id would pass Parse.
func (id ID) Valid() bool { _, err := Parse(string(id)); return err == nil }
