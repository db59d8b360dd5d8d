// Package shard assigns certificates to CRL shards (RFC 5280 §5.2.5
// partitioned CRLs; BR §7.2 via the CCADB's JSON array of CRL URLs).
//
// A certificate's shard is chosen once, at issuance, from its serial, and is
// written into the certificate's CRL distribution point; it is stored with
// the certificate and never recomputed, so changing the shard count moves
// no existing certificate.
//
// This is a leaf package; any package may import it.
package shard

import (
	"encoding/binary"
	"fmt"
	"strconv"

	"github.com/trustline/trustline/internal/serial"
)

// Max bounds the shard count per issuer.
const Max = 4096

// Full stands where a shard number would, as an int, for an issuer's
// unpartitioned CRL (the root's full CRL): in the store's CRL rows, in
// publications, in URLs (full.crl).
const Full = -1

// Index is a shard number, 0 ≤ Index < the issuer's shard count.
type Index uint16

// For picks the shard of a new certificate among n. It reads the serial's
// last eight octets, which Trustline fills from crypto/rand, so shards fill
// evenly. n must be in [1, Max].
func For(s serial.Serial, n int) Index {
	if n <= 1 {
		return 0
	}
	b := s.Bytes()
	var tail [8]byte
	if len(b) >= 8 {
		copy(tail[:], b[len(b)-8:])
	} else {
		copy(tail[8-len(b):], b)
	}
	return Index(binary.BigEndian.Uint64(tail[:]) % uint64(n))
}

// String returns the decimal form used in CRL file names ("7" → 7.crl).
func (i Index) String() string { return strconv.Itoa(int(i)) }

// Parse reads the decimal form; no sign, no leading zeros, below Max.
func Parse(s string) (Index, error) {
	if s == "" || len(s) > 1 && s[0] == '0' {
		return 0, fmt.Errorf("shard: %q is not a shard number", s)
	}
	v, err := strconv.ParseUint(s, 10, 16)
	if err != nil || v >= Max {
		return 0, fmt.Errorf("shard: %q is not a shard number below %d", s, Max)
	}
	return Index(v), nil
}

// ValidCount checks a configured shard count.
func ValidCount(n int) error {
	if n < 1 || n > Max {
		return fmt.Errorf("shard: count %d out of range [1, %d]", n, Max)
	}
	return nil
}
