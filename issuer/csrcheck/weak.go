package csrcheck

import (
	"bufio"
	"crypto/rsa"
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"strings"
)

// WeakKeys is a blocklist of RSA keys known to be weak, in the format of
// Debian's openssl-blacklist lists for CVE-2008-0166 (BR §6.1.1.3 names
// "Debian weak keys"): one line per key, the last 20 hex digits of the
// SHA-1 of "Modulus=<modulus in upper-case hex>\n" (as `openssl rsa
// -modulus` prints it); lines starting with # are comments. The lists
// themselves are not shipped with Trustline (docs/compliance.md).
type WeakKeys struct {
	set map[[10]byte]bool
}

// LoadWeakKeys reads lists in that format.
func LoadWeakKeys(paths ...string) (*WeakKeys, error) {
	w := &WeakKeys{set: map[[10]byte]bool{}}
	for _, p := range paths {
		f, err := os.Open(p)
		if err != nil {
			return nil, fmt.Errorf("csrcheck: weak key list: %w", err)
		}
		err = w.read(f)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("csrcheck: weak key list %s: %w", p, err)
		}
	}
	return w, nil
}

func (w *WeakKeys) read(r io.Reader) error {
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		b, err := hex.DecodeString(line)
		if err != nil || len(b) != 10 {
			return fmt.Errorf("line %d: want 20 hex digits", n)
		}
		w.set[[10]byte(b)] = true
	}
	return sc.Err()
}

// Len is the number of keys listed.
func (w *WeakKeys) Len() int {
	if w == nil {
		return 0
	}
	return len(w.set)
}

// Has reports whether k is listed.
func (w *WeakKeys) Has(k *rsa.PublicKey) bool {
	if w == nil || len(w.set) == 0 {
		return false
	}
	return w.set[WeakKeyFingerprint(k)]
}

// WeakKeyFingerprint is k's entry in a list: the last 10 bytes of
// SHA-1("Modulus=" + upper-case hex modulus + "\n").
func WeakKeyFingerprint(k *rsa.PublicKey) [10]byte {
	sum := sha1.Sum([]byte("Modulus=" + strings.ToUpper(k.N.Text(16)) + "\n"))
	return [10]byte(sum[10:])
}
