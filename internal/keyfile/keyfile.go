// Package keyfile keeps CA, responder and test signing keys in files: it
// generates them, writes them as unencrypted PKCS#8 (RFC 5208 / RFC 5958)
// PEM (RFC 7468 §10) and loads them back as crypto.Signer.
//
// The key types are the ones Trustline issues under and accepts (BR §6.1.5):
// ECDSA on P-256 and P-384, RSA with 2048, 3072 or 4096-bit moduli. Files are
// private to their owner: Write creates them 0600 and Load refuses any file
// that group or others can read. Errors never carry key material.
//
// Only key loading (cmd/trustline wiring, issuer/pki) and tests should
// import keyfile; code that signs takes a crypto.Signer instead, and the
// responder and origin must not import it (internal/deptest). Keys in a
// PKCS#11 token come from internal/pkcs11key.
package keyfile

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// Algorithm is a key type and size that Trustline generates and accepts.
type Algorithm uint8

// The supported algorithms. The zero value is invalid so that a forgotten
// config field is caught by Validate-style checks rather than defaulted.
const (
	ECDSAP256 Algorithm = iota + 1
	ECDSAP384
	RSA2048
	RSA3072
	RSA4096
)

// Algorithms lists every supported algorithm, for tests and help texts.
var Algorithms = []Algorithm{ECDSAP256, ECDSAP384, RSA2048, RSA3072, RSA4096}

// ErrUnsupported is wrapped by errors about a key type or size that
// Trustline does not use, whether asked for or found in a file.
var ErrUnsupported = errors.New("unsupported key algorithm")

// String returns the name Parse accepts, e.g. "ecdsa-p256".
func (a Algorithm) String() string {
	switch a {
	case ECDSAP256:
		return "ecdsa-p256"
	case ECDSAP384:
		return "ecdsa-p384"
	case RSA2048:
		return "rsa-2048"
	case RSA3072:
		return "rsa-3072"
	case RSA4096:
		return "rsa-4096"
	}
	return fmt.Sprintf("Algorithm(%d)", uint8(a))
}

// Valid reports whether a is one of the supported algorithms.
func (a Algorithm) Valid() bool { return a >= ECDSAP256 && a <= RSA4096 }

// Parse reads an algorithm name as String writes it.
func Parse(s string) (Algorithm, error) {
	for _, a := range Algorithms {
		if a.String() == s {
			return a, nil
		}
	}
	return 0, fmt.Errorf("keyfile: %w %q (want one of ecdsa-p256, ecdsa-p384, rsa-2048, rsa-3072, rsa-4096)", ErrUnsupported, s)
}

// MarshalText lets an Algorithm appear by name in YAML or JSON config.
func (a Algorithm) MarshalText() ([]byte, error) {
	if !a.Valid() {
		return nil, fmt.Errorf("keyfile: %w: %s", ErrUnsupported, a)
	}
	return []byte(a.String()), nil
}

// UnmarshalText is Parse, for config decoding.
func (a *Algorithm) UnmarshalText(b []byte) error {
	v, err := Parse(string(b))
	if err != nil {
		return err
	}
	*a = v
	return nil
}

// Curve returns the curve of an ECDSA algorithm, or nil for RSA.
func (a Algorithm) Curve() elliptic.Curve {
	switch a {
	case ECDSAP256:
		return elliptic.P256()
	case ECDSAP384:
		return elliptic.P384()
	}
	return nil
}

// RSABits returns the modulus size of an RSA algorithm, or 0 for ECDSA.
func (a Algorithm) RSABits() int {
	switch a {
	case RSA2048:
		return 2048
	case RSA3072:
		return 3072
	case RSA4096:
		return 4096
	}
	return 0
}

// Of reports the algorithm of a public key, or ErrUnsupported.
func Of(pub crypto.PublicKey) (Algorithm, error) {
	a, err := algorithmOf(pub)
	if err != nil {
		return 0, fmt.Errorf("keyfile: %w", err)
	}
	return a, nil
}

func algorithmOf(pub crypto.PublicKey) (Algorithm, error) {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		if k.Curve == nil {
			return 0, fmt.Errorf("%w: ECDSA key without a curve", ErrUnsupported)
		}
		switch k.Curve {
		case elliptic.P256():
			return ECDSAP256, nil
		case elliptic.P384():
			return ECDSAP384, nil
		}
		return 0, fmt.Errorf("%w: ECDSA on curve %s", ErrUnsupported, k.Curve.Params().Name)
	case *rsa.PublicKey:
		if k.N == nil {
			return 0, fmt.Errorf("%w: RSA key without a modulus", ErrUnsupported)
		}
		switch k.N.BitLen() {
		case 2048:
			return RSA2048, nil
		case 3072:
			return RSA3072, nil
		case 4096:
			return RSA4096, nil
		}
		return 0, fmt.Errorf("%w: RSA with a %d-bit modulus", ErrUnsupported, k.N.BitLen())
	}
	return 0, fmt.Errorf("%w: public key of type %T", ErrUnsupported, pub)
}

// Generate creates a key of the given algorithm in memory. A nil random
// means crypto/rand.Reader. Since Go 1.26 the standard library ignores the
// reader for key generation and always uses the system CSPRNG; tests that
// need deterministic keys use testing/cryptotest.SetGlobalRandom.
func Generate(alg Algorithm, random io.Reader) (crypto.Signer, error) {
	if random == nil {
		random = rand.Reader
	}
	switch {
	case alg.Curve() != nil:
		k, err := ecdsa.GenerateKey(alg.Curve(), random)
		if err != nil {
			return nil, fmt.Errorf("keyfile: generating %s key: %w", alg, err)
		}
		return k, nil
	case alg.RSABits() != 0:
		k, err := rsa.GenerateKey(random, alg.RSABits())
		if err != nil {
			return nil, fmt.Errorf("keyfile: generating %s key: %w", alg, err)
		}
		return k, nil
	}
	return nil, fmt.Errorf("keyfile: generating key: %w: %s", ErrUnsupported, alg)
}

// ErrExists is wrapped by Write's error when the destination exists.
var ErrExists = errors.New("key file already exists")

// Write stores key at path as PKCS#8 PEM with mode 0600. It never
// overwrites: a key file is replaced only by a deliberate removal, since
// losing a CA key is unrecoverable. The file appears atomically, complete
// and synced, or not at all.
func Write(path string, key crypto.Signer) error {
	if key == nil {
		return fmt.Errorf("keyfile: writing %s: nil key", path)
	}
	if _, err := algorithmOf(key.Public()); err != nil {
		return fmt.Errorf("keyfile: writing %s: %w", path, err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return fmt.Errorf("keyfile: writing %s: encoding PKCS#8: %w", path, err)
	}
	defer clear(der)
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: pemType, Bytes: der})
	defer clear(pemBytes)

	dir := filepath.Dir(path)
	if _, err := os.Lstat(path); err == nil {
		return fmt.Errorf("keyfile: writing %s: %w, refusing to overwrite", path, ErrExists)
	}
	// CreateTemp makes the file 0600 in the destination directory, so the
	// final link below stays on one file system.
	tmp, err := os.CreateTemp(dir, ".keyfile-*.tmp")
	if err != nil {
		return fmt.Errorf("keyfile: writing %s: creating temporary file: %w", path, err)
	}
	tmpName := tmp.Name()
	defer os.Remove(tmpName)
	if err := writeSynced(tmp, pemBytes); err != nil {
		return fmt.Errorf("keyfile: writing %s: %w", path, err)
	}
	// link(2) is rename(2) that refuses an existing target: the check above
	// only gives a friendlier message, this is what makes it race-free.
	if err := os.Link(tmpName, path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("keyfile: writing %s: %w, refusing to overwrite", path, ErrExists)
		}
		return fmt.Errorf("keyfile: writing %s: linking into place: %w", path, err)
	}
	if err := os.Remove(tmpName); err != nil {
		return fmt.Errorf("keyfile: writing %s: removing temporary file: %w", path, err)
	}
	if err := syncDir(dir); err != nil {
		return fmt.Errorf("keyfile: writing %s: %w", path, err)
	}
	return nil
}

func writeSynced(f *os.File, b []byte) error {
	// Chmod as well as CreateTemp's 0600: the mode must not depend on how
	// the temporary file was made.
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return fmt.Errorf("setting mode: %w", err)
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return fmt.Errorf("writing temporary file: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("syncing temporary file: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("closing temporary file: %w", err)
	}
	return nil
}

// syncDir makes the new directory entry durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("opening directory to sync: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("syncing directory: %w", err)
	}
	return nil
}

// ErrPermissions is wrapped by Load's error for a key file that group or
// others may read or write.
var ErrPermissions = errors.New("key file is accessible to group or others")

// maxFileSize bounds what Load reads: a PEM RSA-4096 PKCS#8 key is ~3.3 KB.
const maxFileSize = 64 << 10

const pemType = "PRIVATE KEY"

// Load reads a key written by Write, or any unencrypted PKCS#8 PEM key of a
// supported algorithm. It refuses a file with any group or other permission
// bit set (mode & 077), checked on the opened file so that a swap between
// check and read cannot slip through.
func Load(path string) (crypto.Signer, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("keyfile: loading key: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("keyfile: loading %s: %w", path, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("keyfile: loading %s: not a regular file", path)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("keyfile: loading %s: %w (mode %04o; chmod 600 it)", path, ErrPermissions, perm)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("keyfile: loading %s: %w", path, err)
	}
	defer clear(data)
	if len(data) > maxFileSize {
		return nil, fmt.Errorf("keyfile: loading %s: larger than %d bytes, not a key file", path, maxFileSize)
	}
	key, err := parse(data)
	if err != nil {
		return nil, fmt.Errorf("keyfile: loading %s: %w", path, err)
	}
	return key, nil
}

// parse decodes exactly one PKCS#8 PEM block. Its errors describe the
// structure only; nothing from the input is quoted.
func parse(data []byte) (crypto.Signer, error) {
	block, rest := pem.Decode(data)
	if block == nil {
		return nil, errors.New("no PEM block found")
	}
	defer clear(block.Bytes)
	switch block.Type {
	case pemType:
	case "EC PRIVATE KEY", "RSA PRIVATE KEY":
		return nil, fmt.Errorf("%w: PEM block %q is not PKCS#8; convert with `openssl pkcs8 -topk8 -nocrypt`", ErrUnsupported, block.Type)
	case "ENCRYPTED PRIVATE KEY":
		return nil, fmt.Errorf("%w: encrypted PKCS#8 keys are not supported", ErrUnsupported)
	default:
		if len(block.Type) > 40 {
			return nil, fmt.Errorf("PEM block has an overlong type, want %q", pemType)
		}
		return nil, fmt.Errorf("PEM block is %q, want %q", block.Type, pemType)
	}
	if len(block.Headers) != 0 {
		return nil, errors.New("PEM block has headers; a PKCS#8 key has none")
	}
	if next, _ := pem.Decode(rest); next != nil {
		return nil, errors.New("more than one PEM block; a key file holds one key")
	}
	if len(bytes.TrimSpace(rest)) != 0 {
		return nil, errors.New("trailing data after the PEM block")
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("parsing PKCS#8: %w", err)
	}
	signer, ok := k.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("%w: private key of type %T", ErrUnsupported, k)
	}
	if _, err := algorithmOf(signer.Public()); err != nil {
		return nil, err
	}
	return signer, nil
}
