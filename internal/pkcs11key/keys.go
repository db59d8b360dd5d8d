package pkcs11key

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/asn1"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"

	"github.com/miekg/pkcs11"
	"github.com/trustline/trustline/internal/keyfile"
)

// idLen is the size of the random CKA_ID given to generated keys; it only
// has to tie a private key to its public key.
const idLen = 16

// Named curve OIDs for CKA_EC_PARAMS (RFC 5480 §2.1.1.1).
var (
	oidP256 = asn1.ObjectIdentifier{1, 2, 840, 10045, 3, 1, 7}
	oidP384 = asn1.ObjectIdentifier{1, 3, 132, 0, 34}
)

// GenerateKey creates a key pair of the given algorithm inside the token,
// labelled label, and returns its signer, a *Signer. The private key is a
// token object that never leaves the device (CKA_SENSITIVE, not
// CKA_EXTRACTABLE). It refuses with ErrKeyExists when a key pair object
// already carries label.
func (t *Token) GenerateKey(ctx context.Context, label string, alg keyfile.Algorithm) (crypto.Signer, error) {
	s, err := t.generateKey(ctx, label, alg)
	if err != nil {
		return nil, err // a nil interface, not a nil *Signer in one
	}
	return s, nil
}

func (t *Token) generateKey(ctx context.Context, label string, alg keyfile.Algorithm) (*Signer, error) {
	if label == "" {
		return nil, errors.New("pkcs11key: generating key: empty label")
	}
	mech, pubTmpl, err := keyGenTemplate(alg)
	if err != nil {
		return nil, fmt.Errorf("pkcs11key: generating key %q: %w", label, err)
	}
	t.genMu.Lock()
	defer t.genMu.Unlock()

	var signer *Signer
	err = t.do(ctx, 0, func(sh pkcs11.SessionHandle) error {
		for _, class := range []uint{pkcs11.CKO_PRIVATE_KEY, pkcs11.CKO_PUBLIC_KEY} {
			found, err := t.findObjects(sh, class, label, nil)
			if err != nil {
				return err
			}
			if len(found) > 0 {
				return ErrKeyExists
			}
		}
		id, err := t.p11.GenerateRandom(sh, idLen)
		if err != nil {
			return fmt.Errorf("drawing CKA_ID from the token: %w", err)
		}
		common := []*pkcs11.Attribute{
			pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true),
			pkcs11.NewAttribute(pkcs11.CKA_LABEL, label),
			pkcs11.NewAttribute(pkcs11.CKA_ID, id),
		}
		pub := append([]*pkcs11.Attribute{
			pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_PUBLIC_KEY),
			pkcs11.NewAttribute(pkcs11.CKA_VERIFY, true),
		}, common...)
		pub = append(pub, pubTmpl...)
		priv := append([]*pkcs11.Attribute{
			pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_PRIVATE_KEY),
			pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, true),
			pkcs11.NewAttribute(pkcs11.CKA_SIGN, true),
			pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, true),
			pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, false),
		}, common...)
		pubH, privH, err := t.p11.GenerateKeyPair(sh, []*pkcs11.Mechanism{pkcs11.NewMechanism(mech, nil)}, pub, priv)
		if err != nil {
			return fmt.Errorf("C_GenerateKeyPair: %w", err)
		}
		pk, err := t.publicKey(sh, pubH)
		if err != nil {
			// %v, not %w: the pair exists now, so do must not retry
			// (the retry would only report ErrKeyExists).
			return fmt.Errorf("key pair created, but reading its public key failed (use FindKey): %v", err)
		}
		signer = newSigner(t, label, id, pk, alg, privH)
		t.log.Info("pkcs11 key generated", "token", t.cfg.TokenLabel, "label", label,
			"algorithm", alg.String(), "id", hex.EncodeToString(id))
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("pkcs11key: generating key %q: %w", label, err)
	}
	return signer, nil
}

// keyGenTemplate returns the mechanism and the algorithm-specific public
// key attributes that generate a key pair of alg.
func keyGenTemplate(alg keyfile.Algorithm) (uint, []*pkcs11.Attribute, error) {
	switch alg {
	case keyfile.ECDSAP256, keyfile.ECDSAP384:
		oid := oidP256
		if alg == keyfile.ECDSAP384 {
			oid = oidP384
		}
		params, err := asn1.Marshal(oid)
		if err != nil {
			return 0, nil, err
		}
		return pkcs11.CKM_EC_KEY_PAIR_GEN, []*pkcs11.Attribute{
			pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_EC),
			pkcs11.NewAttribute(pkcs11.CKA_EC_PARAMS, params),
		}, nil
	case keyfile.RSA2048, keyfile.RSA3072, keyfile.RSA4096:
		return pkcs11.CKM_RSA_PKCS_KEY_PAIR_GEN, []*pkcs11.Attribute{
			pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_RSA),
			pkcs11.NewAttribute(pkcs11.CKA_MODULUS_BITS, alg.RSABits()),
			pkcs11.NewAttribute(pkcs11.CKA_PUBLIC_EXPONENT, []byte{1, 0, 1}),
		}, nil
	}
	return 0, nil, fmt.Errorf("%w: %s", keyfile.ErrUnsupported, alg)
}

// FindKey returns the signer (a *Signer) for the private key labelled label
// and its public key object (matched by CKA_ID). ErrKeyNotFound when no
// private key has that label. Before returning, it signs a test digest and
// checks it with the public key, so a mismatched pair never signs a
// certificate.
func (t *Token) FindKey(ctx context.Context, label string) (crypto.Signer, error) {
	s, err := t.findKey(ctx, label)
	if err != nil {
		return nil, err
	}
	return s, nil
}

func (t *Token) findKey(ctx context.Context, label string) (*Signer, error) {
	if label == "" {
		return nil, errors.New("pkcs11key: finding key: empty label")
	}
	var signer *Signer
	err := t.do(ctx, 0, func(sh pkcs11.SessionHandle) error {
		privs, err := t.findObjects(sh, pkcs11.CKO_PRIVATE_KEY, label, nil)
		if err != nil {
			return err
		}
		switch len(privs) {
		case 0:
			return ErrKeyNotFound
		case 1:
		default:
			return fmt.Errorf("%d private keys carry this label; labels must be unique", len(privs))
		}
		attrs, err := t.p11.GetAttributeValue(sh, privs[0], []*pkcs11.Attribute{
			pkcs11.NewAttribute(pkcs11.CKA_ID, nil),
			pkcs11.NewAttribute(pkcs11.CKA_SIGN, nil),
		})
		if err != nil {
			return fmt.Errorf("reading private key attributes: %w", err)
		}
		id := attrs[0].Value
		if len(attrs[1].Value) != 1 || attrs[1].Value[0] == 0 {
			return errors.New("the private key does not permit signing (CKA_SIGN false)")
		}
		pubH, err := t.findPublic(sh, label, id)
		if err != nil {
			return err
		}
		pk, err := t.publicKey(sh, pubH)
		if err != nil {
			return err
		}
		alg, err := keyfile.Of(pk)
		if err != nil {
			return err
		}
		signer = newSigner(t, label, id, pk, alg, privs[0])
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("pkcs11key: finding key %q: %w", label, err)
	}
	if err := signer.selfCheck(ctx); err != nil {
		return nil, fmt.Errorf("pkcs11key: finding key %q: %w", label, err)
	}
	return signer, nil
}

// findPublic finds the public key object of a pair: by CKA_ID and label,
// then by CKA_ID alone (tools differ on labelling the public half).
func (t *Token) findPublic(sh pkcs11.SessionHandle, label string, id []byte) (pkcs11.ObjectHandle, error) {
	found, err := t.findObjects(sh, pkcs11.CKO_PUBLIC_KEY, label, id)
	if err != nil {
		return 0, err
	}
	if len(found) == 0 && len(id) > 0 {
		if found, err = t.findObjects(sh, pkcs11.CKO_PUBLIC_KEY, "", id); err != nil {
			return 0, err
		}
	}
	switch len(found) {
	case 0:
		return 0, errors.New("no public key object matches the private key's CKA_ID")
	case 1:
		return found[0], nil
	}
	return 0, fmt.Errorf("%d public key objects match the private key; CKA_ID and label must be unique", len(found))
}

// findObjects lists objects of a class, filtered by label and CKA_ID when
// they are not empty.
func (t *Token) findObjects(sh pkcs11.SessionHandle, class uint, label string, id []byte) ([]pkcs11.ObjectHandle, error) {
	tmpl := []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_CLASS, class)}
	if label != "" {
		tmpl = append(tmpl, pkcs11.NewAttribute(pkcs11.CKA_LABEL, label))
	}
	if len(id) > 0 {
		tmpl = append(tmpl, pkcs11.NewAttribute(pkcs11.CKA_ID, id))
	}
	if err := t.p11.FindObjectsInit(sh, tmpl); err != nil {
		return nil, fmt.Errorf("C_FindObjectsInit: %w", err)
	}
	var all []pkcs11.ObjectHandle
	var ferr error
	for {
		hs, _, err := t.p11.FindObjects(sh, 16)
		if err != nil {
			ferr = fmt.Errorf("C_FindObjects: %w", err)
			break
		}
		if len(hs) == 0 {
			break
		}
		all = append(all, hs...)
	}
	// Always end the search: a session left searching refuses the next one.
	if err := t.p11.FindObjectsFinal(sh); err != nil && ferr == nil {
		ferr = fmt.Errorf("C_FindObjectsFinal: %w", err)
	}
	return all, ferr
}

// publicKey reads a public key object as a Go public key.
func (t *Token) publicKey(sh pkcs11.SessionHandle, h pkcs11.ObjectHandle) (crypto.PublicKey, error) {
	attrs, err := t.p11.GetAttributeValue(sh, h, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, nil)})
	if err != nil {
		return nil, fmt.Errorf("reading the public key type: %w", err)
	}
	kt, err := ulong(attrs[0].Value)
	if err != nil {
		return nil, fmt.Errorf("reading the public key type: %w", err)
	}
	switch kt {
	case pkcs11.CKK_EC:
		attrs, err := t.p11.GetAttributeValue(sh, h, []*pkcs11.Attribute{
			pkcs11.NewAttribute(pkcs11.CKA_EC_PARAMS, nil),
			pkcs11.NewAttribute(pkcs11.CKA_EC_POINT, nil),
		})
		if err != nil {
			return nil, fmt.Errorf("reading the EC public key: %w", err)
		}
		return ecPublicKey(attrs[0].Value, attrs[1].Value)
	case pkcs11.CKK_RSA:
		attrs, err := t.p11.GetAttributeValue(sh, h, []*pkcs11.Attribute{
			pkcs11.NewAttribute(pkcs11.CKA_MODULUS, nil),
			pkcs11.NewAttribute(pkcs11.CKA_PUBLIC_EXPONENT, nil),
		})
		if err != nil {
			return nil, fmt.Errorf("reading the RSA public key: %w", err)
		}
		return rsaPublicKey(attrs[0].Value, attrs[1].Value)
	}
	return nil, fmt.Errorf("%w: PKCS#11 key type 0x%x", keyfile.ErrUnsupported, kt)
}

// ecPublicKey decodes CKA_EC_PARAMS (a named curve OID) and CKA_EC_POINT
// (PKCS#11 v2.40 §2.3.3: DER OCTET STRING holding the X9.62 uncompressed
// point; some modules omit the OCTET STRING, which is accepted too).
func ecPublicKey(params, point []byte) (*ecdsa.PublicKey, error) {
	var oid asn1.ObjectIdentifier
	rest, err := asn1.Unmarshal(params, &oid)
	if err != nil || len(rest) != 0 {
		return nil, fmt.Errorf("%w: CKA_EC_PARAMS is not a named curve OID", keyfile.ErrUnsupported)
	}
	var curve elliptic.Curve
	switch {
	case oid.Equal(oidP256):
		curve = elliptic.P256()
	case oid.Equal(oidP384):
		curve = elliptic.P384()
	default:
		return nil, fmt.Errorf("%w: EC curve %s", keyfile.ErrUnsupported, oid)
	}
	var raw []byte
	if rest, err := asn1.Unmarshal(point, &raw); err != nil || len(rest) != 0 {
		raw = point
	}
	pub, err := ecdsa.ParseUncompressedPublicKey(curve, raw)
	if err != nil {
		return nil, fmt.Errorf("decoding CKA_EC_POINT: %w", err)
	}
	return pub, nil
}

func rsaPublicKey(modulus, exponent []byte) (*rsa.PublicKey, error) {
	e := new(big.Int).SetBytes(exponent)
	if !e.IsInt64() || e.Int64() < 3 || e.Int64() > 1<<31-1 || e.Bit(0) == 0 {
		return nil, fmt.Errorf("%w: RSA public exponent %s", keyfile.ErrUnsupported, e)
	}
	return &rsa.PublicKey{N: new(big.Int).SetBytes(modulus), E: int(e.Int64())}, nil
}

// ulong decodes a CK_ULONG attribute value, which modules return in the
// host's byte order and width.
func ulong(b []byte) (uint, error) {
	switch len(b) {
	case 8:
		return uint(binary.NativeEndian.Uint64(b)), nil
	case 4:
		return uint(binary.NativeEndian.Uint32(b)), nil
	}
	return 0, fmt.Errorf("CK_ULONG attribute of %d bytes", len(b))
}
