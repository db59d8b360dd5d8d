// Package serial is the certificate serial number as Trustline names it in
// URLs, JSON, the store and the OCSP and CRL pipelines.
//
// A Serial is the lowercase hexadecimal form of the serial's minimal unsigned
// big-endian encoding: positive, at most 20 octets (RFC 5280 §4.1.2.2), no
// leading zero octet. It is a string so that it can be a map key and a
// database column without conversion.
//
// This is a leaf package: it imports only the standard library, and any
// package may import it.
package serial

import (
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"strings"
)

// MaxOctets is the longest serial RFC 5280 §4.1.2.2 allows.
const MaxOctets = 20

// Serial is a certificate serial number in canonical lowercase hex.
type Serial string

// ErrInvalid is wrapped by every error Parse and FromBytes return.
var ErrInvalid = errors.New("invalid serial number")

// Parse reads a serial from hex. Upper and lower case are accepted; the
// result is canonical. It refuses the empty string, odd lengths, a leading
// zero octet, zero, and more than MaxOctets octets.
func Parse(s string) (Serial, error) {
	if len(s) == 0 {
		return "", fmt.Errorf("%w: empty", ErrInvalid)
	}
	if len(s)%2 != 0 {
		return "", fmt.Errorf("%w: %q has an odd number of hex digits", ErrInvalid, s)
	}
	b, err := hex.DecodeString(s)
	if err != nil {
		return "", fmt.Errorf("%w: %q is not hexadecimal", ErrInvalid, s)
	}
	return FromBytes(b)
}

// MustParse is Parse for constants in tests; it panics on error.
func MustParse(s string) Serial {
	v, err := Parse(s)
	if err != nil {
		panic(err)
	}
	return v
}

// FromBytes builds a serial from its unsigned big-endian encoding, which
// must be minimal (no leading zero octet).
func FromBytes(b []byte) (Serial, error) {
	switch {
	case len(b) == 0:
		return "", fmt.Errorf("%w: empty", ErrInvalid)
	case len(b) > MaxOctets:
		return "", fmt.Errorf("%w: %d octets, more than %d", ErrInvalid, len(b), MaxOctets)
	case b[0] == 0:
		if len(b) == 1 {
			return "", fmt.Errorf("%w: zero", ErrInvalid)
		}
		return "", fmt.Errorf("%w: leading zero octet", ErrInvalid)
	}
	return Serial(hex.EncodeToString(b)), nil
}

// FromBigInt converts a certificate's serial. Negative and zero serials,
// which RFC 5280 forbids but old certificates carry, are refused.
func FromBigInt(n *big.Int) (Serial, error) {
	if n == nil || n.Sign() <= 0 {
		return "", fmt.Errorf("%w: not positive", ErrInvalid)
	}
	return FromBytes(n.Bytes())
}

// String returns the canonical hex form.
func (s Serial) String() string { return string(s) }

// Bytes returns the unsigned big-endian encoding.
func (s Serial) Bytes() []byte {
	b, _ := hex.DecodeString(string(s))
	return b
}

// BigInt returns the serial as the integer certificates carry.
func (s Serial) BigInt() *big.Int { return new(big.Int).SetBytes(s.Bytes()) }

// Valid reports whether s is in canonical form.
func (s Serial) Valid() bool {
	v, err := Parse(string(s))
	return err == nil && v == s && strings.ToLower(string(s)) == string(s)
}
