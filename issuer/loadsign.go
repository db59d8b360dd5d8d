package issuer

// SignForLoad's signing, without x509.CreateCertificate per certificate.
// CreateCertificate marshals the template with encoding/asn1 and then
// verifies the signature it has just made, unconditionally: for the bench's
// bulk loader the verification was half the cost of a certificate and the
// marshalling a fifth, the signature itself a quarter. The DV certificates one intermediate signs
// for one shard and one subscriber key differ only in serial, validity and
// name, so the loader signs one reference certificate per (issuer, shard,
// key, name length) with CreateCertificate and makes the others by patching
// those fields into a copy of the reference's TBSCertificate and signing
// that. Subscriber certificates never take this path: Issue lints what it
// signs.

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"

	"github.com/trustline/trustline/internal/der"
	"github.com/trustline/trustline/internal/issuerid"
	"github.com/trustline/trustline/internal/serial"
	"github.com/trustline/trustline/internal/shard"
	"github.com/trustline/trustline/issuer/pki"
	"github.com/trustline/trustline/issuer/profile"
)

// loadSerialLen is the length of SignForLoad's serials (see NewSerial):
// with the prefix octet below 0x80, also the INTEGER's content length.
const loadSerialLen = 17

// maxLoadRefs bounds the reference cache; combinations beyond it are
// signed with CreateCertificate. Populate needs shards × 16 keys per name
// length, at most 4096 × 16.
const maxLoadRefs = 1 << 16

// loadTemplate is the DV template SignForLoad signs for is, shard sh,
// serial sn, name and pub, valid from now.
func (ca *CA) loadTemplate(is *pki.Issuer, sh shard.Index, sn serial.Serial, name string, pub crypto.PublicKey, now time.Time) (*x509.Certificate, error) {
	return profile.Template(profile.Request{
		Profile: profile.DV, Serial: sn, Names: []string{name}, PublicKey: pub, NotBefore: now,
		Validity: ca.cfg.Validity, OCSPURL: ca.cfg.OCSPURL,
		CAIssuersURL: pki.CAIssuersURL(ca.cfg.caIssuersBase(), is.ID), CRLURL: pki.ShardCRLURL(ca.cfg.BaseURL, is.ID, int(sh)),
		// Load-test certificates keep the commonName whatever the CA's
		// choice: the fast path patches the name where it appears twice.
		Options: profile.Options{CommonName: true, RSAKeyEncipherment: ca.cfg.Profile.RSAKeyEncipherment},
	})
}

// signLoad signs tmpl, which loadTemplate made for is, sh and pub: from a
// reference certificate when tmpl fits one, else with CreateCertificate.
func (ca *CA) signLoad(tmpl *x509.Certificate, is *pki.Issuer, sh shard.Index, pub crypto.PublicKey) ([]byte, error) {
	name, ok := loadName(tmpl, pub)
	if !ok {
		return x509.CreateCertificate(ca.rand, tmpl, is.Cert, pub, is.Signer)
	}
	ref, err := ca.load.get(loadKey{issuer: is.ID, shard: sh, pub: pub, nameLen: len(name)}, func() (*loadRef, error) {
		return ca.newLoadRef(is, sh, pub, len(name))
	})
	if err != nil {
		return nil, err
	}
	if ref == nil || !ref.fits(tmpl) {
		return x509.CreateCertificate(ca.rand, tmpl, is.Cert, pub, is.Signer)
	}
	cert, err := ref.sign(ca.rand, is.Signer, tmpl, name)
	if err != nil {
		return nil, err
	}
	if !ref.verified.Load() {
		if err := checkLoadCert(cert, tmpl, is.Cert); err != nil {
			return nil, fmt.Errorf("the first certificate made from the reference of %s shard %d: %w", is.ID, sh, err)
		}
		ref.verified.Store(true)
	}
	return cert, nil
}

// loadName returns the name of a template the fast path can patch: one
// DNS name, also the CN, of letters, digits, hyphens and dots, which
// encode as a PrintableString like the reference's placeholder. Keys of
// other types than the profile's are for CreateCertificate to refuse.
func loadName(tmpl *x509.Certificate, pub crypto.PublicKey) (string, bool) {
	switch pub.(type) {
	case *ecdsa.PublicKey, *rsa.PublicKey:
	default:
		return "", false
	}
	if len(tmpl.DNSNames) != 1 || tmpl.Subject.CommonName != tmpl.DNSNames[0] {
		return "", false
	}
	name := tmpl.DNSNames[0]
	for i := 0; i < len(name); i++ {
		switch c := name[i]; {
		case 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '-', c == '.':
		default:
			return "", false
		}
	}
	return name, name != ""
}

// loadKey names a reference: the templates of equal keys differ only in
// serial, validity and name. Keys compare by identity, which is why the
// cache is bounded: Populate reuses a small pool of them.
type loadKey struct {
	issuer  issuerid.ID
	shard   shard.Index
	pub     crypto.PublicKey // *ecdsa.PublicKey or *rsa.PublicKey
	nameLen int
}

// loadRefs caches the references; the zero value is empty. A nil
// reference is one that was refused.
type loadRefs struct {
	mu   sync.Mutex
	refs map[loadKey]*loadEntry
}

type loadEntry struct {
	once sync.Once
	ref  *loadRef
	err  error
}

// get returns k's reference, made by newRef the first time; nil when the
// cache is full. An error is not cached.
func (c *loadRefs) get(k loadKey, newRef func() (*loadRef, error)) (*loadRef, error) {
	c.mu.Lock()
	e, ok := c.refs[k]
	if !ok {
		if len(c.refs) >= maxLoadRefs {
			c.mu.Unlock()
			return nil, nil
		}
		if c.refs == nil {
			c.refs = map[loadKey]*loadEntry{}
		}
		e = &loadEntry{}
		c.refs[k] = e
	}
	c.mu.Unlock()
	e.once.Do(func() { e.ref, e.err = newRef() })
	if e.err != nil {
		c.mu.Lock()
		if c.refs[k] == e {
			delete(c.refs, k)
		}
		c.mu.Unlock()
	}
	return e.ref, e.err
}

// loadRef is a reference certificate's TBSCertificate and where the fields
// that vary are in it.
type loadRef struct {
	tbs      []byte
	sigAlg   []byte      // the reference's signatureAlgorithm element
	hash     crypto.Hash // of the signature algorithm
	serial   int         // offset of the serial's content octets
	validity int         // offset of the notBefore element; notAfter follows
	timeLen  int         // length of each of the two Time elements
	names    [2]int      // offsets of the name in the subject CN and in the SAN
	nameLen  int
	verified atomic.Bool // a certificate made from it has been checked
}

// newLoadRef signs a reference certificate for is, sh and pub with a
// random serial and a random placeholder name of nameLen letters, and
// locates those and its validity in its TBSCertificate. It returns nil
// (and logs why) if the layout is not the one expected.
func (ca *CA) newLoadRef(is *pki.Issuer, sh shard.Index, pub crypto.PublicKey, nameLen int) (*loadRef, error) {
	rnd := make([]byte, loadSerialLen+nameLen)
	if _, err := io.ReadFull(ca.serial, rnd); err != nil {
		return nil, fmt.Errorf("reading reference randomness: %w", err)
	}
	sb := rnd[:loadSerialLen]
	sb[0] = ca.cfg.SerialPrefix
	name := rnd[loadSerialLen:]
	for i, b := range name {
		name[i] = 'a' + b%26
	}
	sn, err := serial.FromBytes(sb)
	if err != nil {
		return nil, err
	}
	tmpl, err := ca.loadTemplate(is, sh, sn, string(name), pub, ca.now())
	if err != nil {
		return nil, err
	}
	cert, err := x509.CreateCertificate(ca.rand, tmpl, is.Cert, pub, is.Signer)
	if err != nil {
		return nil, fmt.Errorf("signing the reference certificate: %w", err)
	}
	c, err := x509.ParseCertificate(cert)
	if err != nil {
		return nil, fmt.Errorf("parsing the reference certificate: %w", err)
	}
	ref, err := locate(c, sb, name)
	if err != nil {
		ca.log.Warn("load certificates fall back to x509.CreateCertificate", "issuer", is.ID, "shard", sh,
			"name_length", nameLen, "reason", err)
		return nil, nil
	}
	return ref, nil
}

// locate finds the serial content sn, the validity and the name in c's
// TBSCertificate, each only where expected.
func locate(c *x509.Certificate, sn, name []byte) (*loadRef, error) {
	hash, ok := loadHash(c.SignatureAlgorithm)
	if !ok {
		return nil, fmt.Errorf("signature algorithm %v", c.SignatureAlgorithm)
	}
	var outer, tbs, sigAlg cryptobyte.String
	in := cryptobyte.String(c.Raw)
	if !in.ReadASN1(&outer, cbasn1.SEQUENCE) || !outer.ReadASN1Element(&tbs, cbasn1.SEQUENCE) ||
		!outer.ReadASN1Element(&sigAlg, cbasn1.SEQUENCE) {
		return nil, errors.New("malformed certificate")
	}
	nb, na := der.AppendTime(nil, c.NotBefore), der.AppendTime(nil, c.NotAfter)
	if len(nb) != len(na) {
		return nil, errors.New("notBefore and notAfter have different lengths")
	}
	r := &loadRef{tbs: tbs, sigAlg: sigAlg, hash: hash, timeLen: len(nb), nameLen: len(name)}
	at, err := positions(tbs, sn, der.AppendHeader(nil, der.TagInteger, len(sn)))
	if err != nil {
		return nil, fmt.Errorf("serial: %w", err)
	}
	r.serial = at[0]
	if at, err = positions(tbs, nb, der.AppendHeader(nil, der.TagSequence, 2*len(nb))); err != nil {
		return nil, fmt.Errorf("notBefore: %w", err)
	}
	r.validity = at[0]
	if _, err := positions(tbs, na, nb); err != nil {
		return nil, fmt.Errorf("notAfter: %w", err)
	}
	const tagPrintableString, tagDNSName = 0x13, 0x82 // dNSName: [2] IMPLICIT IA5String
	if at, err = positions(tbs, name, der.AppendHeader(nil, tagPrintableString, len(name)),
		der.AppendHeader(nil, tagDNSName, len(name))); err != nil {
		return nil, fmt.Errorf("name (subject CN and SAN): %w", err)
	}
	copy(r.names[:], at)
	return r, nil
}

// positions returns the offsets of v in b, which must occur exactly
// len(headers) times, the i-th time right after headers[i].
func positions(b, v []byte, headers ...[]byte) ([]int, error) {
	var at []int
	for i := 0; ; {
		j := bytes.Index(b[i:], v)
		if j < 0 {
			break
		}
		at = append(at, i+j)
		i += j + 1
	}
	if len(at) != len(headers) {
		return nil, fmt.Errorf("occurs %d times, want %d", len(at), len(headers))
	}
	for i, h := range headers {
		if !bytes.HasSuffix(b[:at[i]], h) {
			return nil, fmt.Errorf("occurrence %d is not after % x", i+1, h)
		}
	}
	return at, nil
}

// loadHash returns the hash of the signature algorithms the fast path
// signs with: ECDSA and RSA PKCS #1 v1.5, which take a digest.
func loadHash(alg x509.SignatureAlgorithm) (crypto.Hash, bool) {
	switch alg {
	case x509.ECDSAWithSHA256, x509.SHA256WithRSA:
		return crypto.SHA256, true
	case x509.ECDSAWithSHA384, x509.SHA384WithRSA:
		return crypto.SHA384, true
	case x509.ECDSAWithSHA512, x509.SHA512WithRSA:
		return crypto.SHA512, true
	}
	return 0, false
}

// fits reports whether tmpl's serial and validity encode at the
// reference's lengths (the caller has checked the name's).
func (r *loadRef) fits(tmpl *x509.Certificate) bool {
	sn := tmpl.SerialNumber
	nb, ok1 := der.TimeLen(tmpl.NotBefore)
	na, ok2 := der.TimeLen(tmpl.NotAfter)
	return sn.Sign() > 0 && sn.BitLen() > 8*(loadSerialLen-1) && sn.BitLen() < 8*loadSerialLen &&
		ok1 && ok2 && nb == r.timeLen && na == r.timeLen
}

// sign makes the certificate for tmpl, which fits r, and name: the
// reference's TBSCertificate with tmpl's serial, validity and name,
// signed with key.
func (r *loadRef) sign(rand io.Reader, key crypto.Signer, tmpl *x509.Certificate, name string) ([]byte, error) {
	tbs := slices.Clone(r.tbs)
	tmpl.SerialNumber.FillBytes(tbs[r.serial : r.serial+loadSerialLen])
	der.PutTime(tbs[r.validity:], tmpl.NotBefore)
	der.PutTime(tbs[r.validity+r.timeLen:], tmpl.NotAfter)
	for _, at := range r.names {
		copy(tbs[at:at+r.nameLen], name)
	}
	h := r.hash.New()
	h.Write(tbs)
	sig, err := key.Sign(rand, h.Sum(nil), r.hash)
	if err != nil {
		return nil, err
	}
	// Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm,
	// signatureValue BIT STRING } (RFC 5280 §4.1)
	n := len(tbs) + len(r.sigAlg) + der.ElementLen(1+len(sig))
	b := der.AppendHeader(make([]byte, 0, der.ElementLen(n)), der.TagSequence, n)
	b = append(b, tbs...)
	b = append(b, r.sigAlg...)
	b = der.AppendHeader(b, der.TagBitString, 1+len(sig))
	b = append(b, 0) // no unused bits
	return append(b, sig...), nil
}

// checkLoadCert checks that cert parses, is signed by issuer, and carries
// tmpl's serial, validity and name.
func checkLoadCert(cert []byte, tmpl, issuer *x509.Certificate) error {
	c, err := x509.ParseCertificate(cert)
	if err != nil {
		return err
	}
	if err := c.CheckSignatureFrom(issuer); err != nil {
		return err
	}
	if c.SerialNumber.Cmp(tmpl.SerialNumber) != 0 || !c.NotBefore.Equal(tmpl.NotBefore) || !c.NotAfter.Equal(tmpl.NotAfter) ||
		c.Subject.CommonName != tmpl.Subject.CommonName || !slices.Equal(c.DNSNames, tmpl.DNSNames) {
		return errors.New("it does not carry the serial, validity and name asked for")
	}
	return nil
}
