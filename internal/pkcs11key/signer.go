package pkcs11key

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/big"
	"sync/atomic"
	"time"

	"github.com/miekg/pkcs11"
	"github.com/trustline/trustline/internal/keyfile"
	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// Signer is a private key in a token. It implements crypto.Signer and is
// safe for concurrent use; each signature takes a session from the Token's
// pool.
type Signer struct {
	tok   *Token
	label string
	id    []byte
	pub   crypto.PublicKey
	alg   keyfile.Algorithm
	mech  []*pkcs11.Mechanism
	// handle is the private key's object handle. Modules may invalidate
	// handles (after a logout, say); the key is then found again by
	// CKA_ID and label.
	handle atomic.Uint64
}

func newSigner(t *Token, label string, id []byte, pub crypto.PublicKey, alg keyfile.Algorithm, h pkcs11.ObjectHandle) *Signer {
	mech := uint(pkcs11.CKM_RSA_PKCS)
	if alg.Curve() != nil {
		mech = pkcs11.CKM_ECDSA
	}
	s := &Signer{
		tok:   t,
		label: label,
		id:    bytes.Clone(id),
		pub:   pub,
		alg:   alg,
		mech:  []*pkcs11.Mechanism{pkcs11.NewMechanism(mech, nil)},
	}
	s.handle.Store(uint64(h))
	return s
}

// Public returns the public key read from the token's public key object.
func (s *Signer) Public() crypto.PublicKey { return s.pub }

// Label returns the key's CKA_LABEL.
func (s *Signer) Label() string { return s.label }

// Algorithm returns the key's algorithm.
func (s *Signer) Algorithm() keyfile.Algorithm { return s.alg }

// Sign signs digest, the hash of the message under opts.HashFunc(), which
// must be SHA-256, SHA-384 or SHA-512. ECDSA signatures are ASN.1 DER (as
// crypto/ecdsa makes them); RSA signatures are PKCS#1 v1.5, and PSS options
// are refused. rand is ignored: the token uses its own generator. Sign
// waits at most Config.AcquireTimeout for a free session.
func (s *Signer) Sign(_ io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	return s.sign(context.Background(), s.tok.cfg.AcquireTimeout, digest, opts)
}

// SignContext is Sign bounded by ctx while it waits for a session. A call
// already inside the token is not interrupted: PKCS#11 cannot cancel one.
func (s *Signer) SignContext(ctx context.Context, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	return s.sign(ctx, 0, digest, opts)
}

func (s *Signer) sign(ctx context.Context, wait time.Duration, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	input, err := s.signInput(digest, opts)
	if err != nil {
		return nil, fmt.Errorf("pkcs11key: signing with key %q: %w", s.label, err)
	}
	var sig []byte
	err = s.tok.do(ctx, wait, func(sh pkcs11.SessionHandle) error {
		var err error
		sig, err = s.signOnce(sh, input)
		if !isCKR(err, pkcs11.CKR_KEY_HANDLE_INVALID) && !isCKR(err, pkcs11.CKR_OBJECT_HANDLE_INVALID) {
			return err
		}
		if err := s.refindHandle(sh); err != nil {
			return err
		}
		sig, err = s.signOnce(sh, input)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("pkcs11key: signing with key %q: %w", s.label, err)
	}
	if s.alg.Curve() == nil {
		return sig, nil
	}
	der, err := ecdsaDER(sig, (s.alg.Curve().Params().BitSize+7)/8)
	if err != nil {
		return nil, fmt.Errorf("pkcs11key: signing with key %q: %w", s.label, err)
	}
	return der, nil
}

func (s *Signer) signOnce(sh pkcs11.SessionHandle, input []byte) ([]byte, error) {
	h := pkcs11.ObjectHandle(s.handle.Load())
	if err := s.tok.p11.SignInit(sh, s.mech, h); err != nil {
		return nil, fmt.Errorf("C_SignInit: %w", err)
	}
	sig, err := s.tok.p11.Sign(sh, input)
	if err != nil {
		return nil, fmt.Errorf("C_Sign: %w", err)
	}
	return sig, nil
}

// refindHandle looks the private key up again after the module invalidated
// its handle.
func (s *Signer) refindHandle(sh pkcs11.SessionHandle) error {
	// A module that lost the login hides private objects, and some (SoftHSM2)
	// report that as an invalid key handle. Report it as what it is, so
	// that do replaces the session and logs in again.
	info, err := s.tok.p11.GetSessionInfo(sh)
	if err != nil {
		return fmt.Errorf("C_GetSessionInfo: %w", err)
	}
	if info.State == pkcs11.CKS_RO_PUBLIC_SESSION || info.State == pkcs11.CKS_RW_PUBLIC_SESSION {
		return fmt.Errorf("private key handle invalid in a session that is not logged in: %w",
			pkcs11.Error(pkcs11.CKR_USER_NOT_LOGGED_IN))
	}
	found, err := s.tok.findObjects(sh, pkcs11.CKO_PRIVATE_KEY, s.label, s.id)
	if err != nil {
		return err
	}
	if len(found) != 1 {
		return fmt.Errorf("%w: its handle became invalid and %d private keys now match its label and CKA_ID", ErrKeyNotFound, len(found))
	}
	s.handle.Store(uint64(found[0]))
	return nil
}

// signInput checks the digest against opts and returns what the mechanism
// signs: the digest for CKM_ECDSA, the DER DigestInfo for CKM_RSA_PKCS
// (RFC 8017 §9.2 step 2; the token adds the padding).
func (s *Signer) signInput(digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	if opts == nil {
		return nil, errors.New("nil SignerOpts; a hash function is required")
	}
	if _, ok := opts.(*rsa.PSSOptions); ok {
		return nil, errors.New("RSA-PSS is not supported (CKM_RSA_PKCS_PSS is not implemented); use PKCS#1 v1.5")
	}
	h := opts.HashFunc()
	prefix, ok := digestInfoPrefix(h)
	if !ok {
		return nil, fmt.Errorf("hash %v is not supported; use SHA-256, SHA-384 or SHA-512", h)
	}
	if len(digest) != h.Size() {
		return nil, fmt.Errorf("digest is %d bytes, %v needs %d", len(digest), h, h.Size())
	}
	if s.alg.Curve() != nil {
		return digest, nil
	}
	if _, ok := s.pub.(*rsa.PublicKey); !ok {
		return nil, fmt.Errorf("key type %T cannot sign", s.pub)
	}
	return append(append(make([]byte, 0, len(prefix)+len(digest)), prefix...), digest...), nil
}

// digestInfoPrefix returns the DER DigestInfo up to the digest value for the
// hashes Trustline signs with (RFC 8017 §9.2, note 1).
func digestInfoPrefix(h crypto.Hash) ([]byte, bool) {
	switch h {
	case crypto.SHA256:
		return []byte{0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20}, true
	case crypto.SHA384:
		return []byte{0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02, 0x05, 0x00, 0x04, 0x30}, true
	case crypto.SHA512:
		return []byte{0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x03, 0x05, 0x00, 0x04, 0x40}, true
	}
	return nil, false
}

// ecdsaDER turns CKM_ECDSA's raw r||s (PKCS#11 v2.40 §2.3.1, each half the
// size of the group order) into the ECDSA-Sig-Value of RFC 3279 §2.2.3.
func ecdsaDER(raw []byte, size int) ([]byte, error) {
	if len(raw) != 2*size {
		return nil, fmt.Errorf("token returned a %d-byte ECDSA signature, want %d", len(raw), 2*size)
	}
	r := new(big.Int).SetBytes(raw[:size])
	sv := new(big.Int).SetBytes(raw[size:])
	if r.Sign() == 0 || sv.Sign() == 0 {
		return nil, errors.New("token returned an ECDSA signature with a zero half")
	}
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1BigInt(r)
		b.AddASN1BigInt(sv)
	})
	return b.Bytes()
}

// selfCheck signs a fixed digest and verifies it with the public key, so a
// public key object that does not belong to the private key is caught
// before it ends up in a certificate.
func (s *Signer) selfCheck(ctx context.Context) error {
	digest := sha256.Sum256([]byte("trustline pkcs11key self-check"))
	sig, err := s.SignContext(ctx, digest[:], crypto.SHA256)
	if err != nil {
		return fmt.Errorf("self-check: %w", err)
	}
	switch pub := s.pub.(type) {
	case *ecdsa.PublicKey:
		if !ecdsa.VerifyASN1(pub, digest[:], sig) {
			return errors.New("self-check: the signature does not verify with the public key object; private and public objects do not match")
		}
	case *rsa.PublicKey:
		if err := rsa.VerifyPKCS1v15(pub, crypto.SHA256, digest[:], sig); err != nil {
			return errors.New("self-check: the signature does not verify with the public key object; private and public objects do not match")
		}
	}
	return nil
}

var _ crypto.Signer = (*Signer)(nil)
