// Package pki creates and loads Trustline's CA hierarchy: a self-signed
// root, the intermediates that sign subscriber certificates, and per
// intermediate a delegated OCSP responder certificate (RFC 6960 §4.2.2.2,
// BR §7.1.2.8: id-kp-OCSPSigning, id-pkix-ocsp-nocheck, short-lived and
// renewed before expiry).
//
// Private keys live behind Keys: files (mode 0600) under the PKI directory,
// or objects in a PKCS#11 token, in which case nothing secret is written to
// disk. Certificates and a manifest (pki.json) are written to the directory;
// a later Load reuses them.
//
// Used by issuer/ and cmd/ (`trustline dev`, `trustline ca init`).
package pki

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/sha1"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/trustline/trustline/crlgen/crlpub"
	"github.com/trustline/trustline/internal/issuerid"
	"github.com/trustline/trustline/internal/keyfile"
	"github.com/trustline/trustline/internal/shard"
)

// Keys generates and finds private keys by label. *pkcs11key.Token
// implements it, as does FileKeys.
type Keys interface {
	GenerateKey(ctx context.Context, label string, alg keyfile.Algorithm) (crypto.Signer, error)
	FindKey(ctx context.Context, label string) (crypto.Signer, error)
}

// IssuerSpec describes one intermediate to create.
type IssuerSpec struct {
	ID     issuerid.ID       `json:"id"`
	KeyAlg keyfile.Algorithm `json:"key_alg"`
}

// Config says what hierarchy to create and where.
type Config struct {
	// Dir receives the certificates and pki.json (DATA/ca in dev mode).
	Dir string
	// Organization and CommonPrefix name the CA in subjects.
	Organization string
	Country      string // ISO 3166-1 alpha-2; BR §7.1.2.10.2 requires it in CA subjects
	CommonPrefix string
	RootKeyAlg   keyfile.Algorithm
	Issuers      []IssuerSpec
	// BaseURL is the CRL origin's base URL ("http://127.0.0.1:8082"): the
	// intermediates' CRL distribution point and caIssuers point there.
	BaseURL string
	// KeySource is recorded in the manifest ("file" or "pkcs11") so that a
	// restart with the other kind of key storage fails clearly.
	KeySource string
	// ResponderValidity is the delegated responder certificates' lifetime;
	// they are renewed when less than a third remains.
	ResponderValidity time.Duration
	// RootKeys, when set, is where the root key is generated instead of
	// the Keys given to Create: another token, or a directory on
	// removable media. The hierarchy is then recorded as having an
	// offline root: nothing the plant runs needs the root key again, and
	// the root's CRL is signed in ceremonies (AttachRoot).
	RootKeys Keys `json:"-"`
}

// DefaultDev is the hierarchy `trustline dev` creates (CONTRACT.md): a P-384
// root, an ECDSA P-256 and an RSA-2048 intermediate.
func DefaultDev(dir, baseURL, keySource string) Config {
	return Config{
		Dir:          dir,
		Organization: "Trustline Dev",
		Country:      "US",
		CommonPrefix: "Trustline Dev",
		RootKeyAlg:   keyfile.ECDSAP384,
		Issuers: []IssuerSpec{
			{ID: "int-p256", KeyAlg: keyfile.ECDSAP256},
			{ID: "int-rsa2048", KeyAlg: keyfile.RSA2048},
		},
		BaseURL:           baseURL,
		KeySource:         keySource,
		ResponderValidity: 30 * 24 * time.Hour,
	}
}

// Validate checks the configuration.
func (c Config) Validate() error {
	var errs []error
	if c.Dir == "" {
		errs = append(errs, errors.New("pki: Dir is required"))
	}
	if !c.RootKeyAlg.Valid() {
		errs = append(errs, errors.New("pki: RootKeyAlg is not a supported algorithm"))
	}
	if len(c.Issuers) == 0 {
		errs = append(errs, errors.New("pki: at least one issuer is required"))
	}
	seen := map[issuerid.ID]bool{issuerid.Root: true}
	for _, is := range c.Issuers {
		if !is.ID.Valid() {
			errs = append(errs, fmt.Errorf("pki: issuer id %q is invalid", is.ID))
		}
		if seen[is.ID] {
			errs = append(errs, fmt.Errorf("pki: issuer id %q used twice (or is the root's)", is.ID))
		}
		seen[is.ID] = true
		if !is.KeyAlg.Valid() {
			errs = append(errs, fmt.Errorf("pki: issuer %s: unsupported key algorithm", is.ID))
		}
	}
	if len(c.Country) != 2 {
		errs = append(errs, fmt.Errorf("pki: Country %q must be an ISO 3166-1 alpha-2 code", c.Country))
	}
	if c.BaseURL == "" {
		errs = append(errs, errors.New("pki: BaseURL is required"))
	}
	if c.ResponderValidity < 24*time.Hour || c.ResponderValidity > 90*24*time.Hour {
		errs = append(errs, fmt.Errorf("pki: ResponderValidity %v out of range [1 day, 90 days]", c.ResponderValidity))
	}
	return errors.Join(errs...)
}

// Issuer is one CA: its certificate and its signer, and for intermediates
// the delegated OCSP responder.
type Issuer struct {
	ID              issuerid.ID
	KeyAlg          keyfile.Algorithm
	Cert            *x509.Certificate
	Signer          crypto.Signer
	Responder       *x509.Certificate // nil for the root
	ResponderSigner crypto.Signer
}

// PKI is the loaded hierarchy.
type PKI struct {
	Root          *Issuer
	Intermediates []*Issuer
	dir           string // where certificates are exported; "" for none
	cfg           manifest
	rec           Records // where the hierarchy is recorded; nil before Record
	// mu guards the Responder fields, which RenewResponders replaces while
	// the process serves.
	mu sync.RWMutex
}

// ResponderCert returns an intermediate's current delegated responder
// certificate; safe while RenewResponders runs.
func (p *PKI) ResponderCert(is *Issuer) *x509.Certificate {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return is.Responder
}

// Issuer returns the intermediate with that id.
func (p *PKI) Issuer(id issuerid.ID) (*Issuer, bool) {
	for _, is := range p.Intermediates {
		if is.ID == id {
			return is, true
		}
	}
	return nil, false
}

// manifest is pki.json: what Load needs to find every key and certificate.
type manifest struct {
	Version           int           `json:"version"`
	KeySource         string        `json:"key_source"`
	BaseURL           string        `json:"base_url"`
	RootKeyAlg        string        `json:"root_key_alg"`
	Issuers           []issuerEntry `json:"issuers"`
	ResponderValidity string        `json:"responder_validity"`
	// RootOffline says the root key is kept apart from the plant's keys.
	RootOffline bool `json:"root_offline,omitempty"`
}

type issuerEntry struct {
	ID     issuerid.ID `json:"id"`
	KeyAlg string      `json:"key_alg"`
}

const manifestName = "pki.json"

// Exists reports whether dir already holds a hierarchy.
func Exists(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, manifestName))
	return err == nil
}

// Labels name keys in the key store.
func rootLabel() string                    { return "trustline-root" }
func issuerLabel(id issuerid.ID) string    { return "trustline-" + string(id) }
func responderLabel(id issuerid.ID) string { return "trustline-" + string(id) + "-ocsp" }

// CertPath is where an issuer's certificate is written: DIR/<id>.pem.
func CertPath(dir string, id issuerid.ID) string { return filepath.Join(dir, string(id)+".pem") }

// ResponderCertPath is where an intermediate's responder certificate is.
func ResponderCertPath(dir string, id issuerid.ID) string {
	return filepath.Join(dir, string(id)+"-ocsp.pem")
}

// Create builds a new hierarchy. It refuses to overwrite an existing one.
func Create(ctx context.Context, cfg Config, keys Keys, now time.Time, random io.Reader) (*PKI, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Dir != "" {
		if Exists(cfg.Dir) {
			return nil, fmt.Errorf("pki: %s already holds a hierarchy", cfg.Dir)
		}
		if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
			return nil, fmt.Errorf("pki: %w", err)
		}
	}
	now = now.UTC().Truncate(time.Second)
	rootKeys := keys
	if cfg.RootKeys != nil {
		rootKeys = cfg.RootKeys
	}
	rootKey, err := rootKeys.GenerateKey(ctx, rootLabel(), cfg.RootKeyAlg)
	if err != nil {
		return nil, fmt.Errorf("pki: generating root key: %w", err)
	}
	rootTmpl := &x509.Certificate{
		Subject:               pkix.Name{Country: []string{cfg.Country}, Organization: []string{cfg.Organization}, CommonName: cfg.CommonPrefix + " Root"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.AddDate(20, 0, 0),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	root, err := sign(random, rootTmpl, nil, rootKey.Public(), rootKey)
	if err != nil {
		return nil, fmt.Errorf("pki: signing root: %w", err)
	}
	p := &PKI{Root: &Issuer{ID: issuerid.Root, KeyAlg: cfg.RootKeyAlg, Cert: root, Signer: rootKey}, dir: cfg.Dir}
	if err := p.writeCert(issuerid.Root, root); err != nil {
		return nil, err
	}
	for _, spec := range cfg.Issuers {
		key, err := keys.GenerateKey(ctx, issuerLabel(spec.ID), spec.KeyAlg)
		if err != nil {
			return nil, fmt.Errorf("pki: generating %s key: %w", spec.ID, err)
		}
		tmpl := &x509.Certificate{
			Subject:               pkix.Name{Country: []string{cfg.Country}, Organization: []string{cfg.Organization}, CommonName: cfg.CommonPrefix + " " + string(spec.ID)},
			NotBefore:             now.Add(-time.Hour),
			NotAfter:              now.AddDate(8, 0, 0),
			KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
			ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
			BasicConstraintsValid: true,
			IsCA:                  true,
			MaxPathLen:            0,
			MaxPathLenZero:        true,
			// anyPolicy: the intermediates are the root's own (affiliated)
			// CAs and sign DV, OV and EV alike (BR §7.1.2.10.5 allows
			// exactly one reserved OID or anyPolicy).
			Policies:              []x509.OID{mustOID("2.5.29.32.0")},
			CRLDistributionPoints: []string{FullCRLURL(cfg.BaseURL, issuerid.Root)},
			IssuingCertificateURL: []string{CAIssuersURL(cfg.BaseURL, issuerid.Root)},
		}
		cert, err := sign(random, tmpl, root, key.Public(), rootKey)
		if err != nil {
			return nil, fmt.Errorf("pki: signing %s: %w", spec.ID, err)
		}
		if err := p.writeCert(spec.ID, cert); err != nil {
			return nil, err
		}
		is := &Issuer{ID: spec.ID, KeyAlg: spec.KeyAlg, Cert: cert, Signer: key}
		rkey, err := keys.GenerateKey(ctx, responderLabel(spec.ID), spec.KeyAlg)
		if err != nil {
			return nil, fmt.Errorf("pki: generating %s responder key: %w", spec.ID, err)
		}
		is.ResponderSigner = rkey
		if err := p.renewResponder(ctx, is, cfg.ResponderValidity, now, random); err != nil {
			return nil, err
		}
		p.Intermediates = append(p.Intermediates, is)
	}
	m := manifest{Version: 1, KeySource: cfg.KeySource, BaseURL: cfg.BaseURL, RootKeyAlg: cfg.RootKeyAlg.String(),
		ResponderValidity: cfg.ResponderValidity.String(), RootOffline: cfg.RootKeys != nil}
	for _, is := range p.Intermediates {
		m.Issuers = append(m.Issuers, issuerEntry{ID: is.ID, KeyAlg: is.KeyAlg.String()})
	}
	p.cfg = m
	if cfg.Dir != "" {
		b, _ := json.MarshalIndent(m, "", "  ")
		if err := writeAtomic(filepath.Join(cfg.Dir, manifestName), append(b, '\n'), 0o644); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// Load reads an existing hierarchy from dir and finds its keys.
func Load(ctx context.Context, dir string, keys Keys, keySource string) (*PKI, error) {
	b, err := os.ReadFile(filepath.Join(dir, manifestName))
	if err != nil {
		return nil, fmt.Errorf("pki: %w", err)
	}
	var m manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("pki: %s: %w", manifestName, err)
	}
	if m.KeySource != keySource {
		return nil, fmt.Errorf("pki: %s was created with %s keys, now started with %s keys", dir, m.KeySource, keySource)
	}
	p := &PKI{dir: dir, cfg: m}
	load := func(id issuerid.ID, label, algName string) (*Issuer, error) {
		alg, err := keyfile.Parse(algName)
		if err != nil {
			return nil, fmt.Errorf("pki: %s: %w", id, err)
		}
		cert, err := readCert(CertPath(dir, id))
		if err != nil {
			return nil, err
		}
		key, err := keys.FindKey(ctx, label)
		if err != nil {
			return nil, fmt.Errorf("pki: finding %s key: %w", id, err)
		}
		if !publicKeysEqual(key.Public(), cert.PublicKey) {
			return nil, fmt.Errorf("pki: %s key does not match %s", id, CertPath(dir, id))
		}
		return &Issuer{ID: id, KeyAlg: alg, Cert: cert, Signer: key}, nil
	}
	if p.Root, err = load(issuerid.Root, rootLabel(), m.RootKeyAlg); err != nil {
		return nil, err
	}
	for _, e := range m.Issuers {
		is, err := load(e.ID, issuerLabel(e.ID), e.KeyAlg)
		if err != nil {
			return nil, err
		}
		if is.Responder, err = readCert(ResponderCertPath(dir, e.ID)); err != nil {
			return nil, err
		}
		if is.ResponderSigner, err = keys.FindKey(ctx, responderLabel(e.ID)); err != nil {
			return nil, fmt.Errorf("pki: finding %s responder key: %w", e.ID, err)
		}
		p.Intermediates = append(p.Intermediates, is)
	}
	return p, nil
}

// RenewResponders re-issues every delegated responder certificate that has
// less than a third of its lifetime left at now (same key, new
// certificate), and reports how many it renewed.
func (p *PKI) RenewResponders(ctx context.Context, now time.Time, random io.Reader) (int, error) {
	validity, err := time.ParseDuration(p.cfg.ResponderValidity)
	if err != nil {
		return 0, fmt.Errorf("pki: manifest responder_validity: %w", err)
	}
	n := 0
	for _, is := range p.Intermediates {
		if is.Responder != nil && is.Responder.NotAfter.Sub(now) > validity/3 {
			continue
		}
		if err := p.renewResponder(ctx, is, validity, now, random); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

var oidOCSPNoCheck = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 48, 1, 5}

func (p *PKI) renewResponder(ctx context.Context, is *Issuer, validity time.Duration, now time.Time, random io.Reader) error {
	now = now.UTC().Truncate(time.Second)
	tmpl := &x509.Certificate{
		Subject:      pkix.Name{Country: is.Cert.Subject.Country, Organization: is.Cert.Subject.Organization, CommonName: is.Cert.Subject.CommonName + " OCSP"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(validity - time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageOCSPSigning},
		SubjectKeyId: keyID(is.ResponderSigner.Public()),
		// id-pkix-ocsp-nocheck: clients need not check this certificate's
		// revocation (RFC 6960 §4.2.2.2.1); its short life is the control.
		ExtraExtensions: []pkix.Extension{{Id: oidOCSPNoCheck, Value: []byte{0x05, 0x00}}},
	}
	cert, err := sign(random, tmpl, is.Cert, is.ResponderSigner.Public(), is.Signer)
	if err != nil {
		return fmt.Errorf("pki: signing %s responder certificate: %w", is.ID, err)
	}
	if p.rec != nil {
		if err := p.rec.PutMeta(ctx, responderKeyPrefix+string(is.ID), cert.Raw); err != nil {
			return fmt.Errorf("pki: recording %s responder certificate: %w", is.ID, err)
		}
	}
	if p.dir != "" {
		if err := writeCert(ResponderCertPath(p.dir, is.ID), cert); err != nil {
			return err
		}
	}
	p.mu.Lock()
	is.Responder = cert
	p.mu.Unlock()
	return nil
}

// URLs published in certificates and served by the origin.

// ShardCRLURL is the CRL distribution point of a shard.
func ShardCRLURL(base string, id issuerid.ID, shard int) string {
	return crlpub.URL(base, id, shard)
}

// FullCRLURL is the URL of an issuer's unpartitioned CRL (the root's).
func FullCRLURL(base string, id issuerid.ID) string { return crlpub.URL(base, id, shard.Full) }

// CAIssuersURL is where an issuer's certificate is served (DER).
func CAIssuersURL(base string, id issuerid.ID) string { return base + "/" + string(id) + ".cer" }

// sign creates a certificate; parent nil means self-signed. Serials are
// 16 random octets with the top bit cleared (positive, ≤ 20 octets).
func sign(random io.Reader, tmpl, parent *x509.Certificate, pub crypto.PublicKey, key crypto.Signer) (*x509.Certificate, error) {
	b := make([]byte, 16)
	if _, err := io.ReadFull(random, b); err != nil {
		return nil, err
	}
	b[0] = b[0]&0x7f | 0x40
	tmpl.SerialNumber = new(big.Int).SetBytes(b)
	if parent == nil {
		parent = tmpl
		tmpl.SubjectKeyId = keyID(pub)
		// A root names itself as its authority too (BR §7.1.2.1.2
		// RECOMMENDED; its keyIdentifier equal to the SKI, §7.1.2.1.3):
		// path builders then match it like any other issuer.
		tmpl.AuthorityKeyId = tmpl.SubjectKeyId
	}
	der, err := x509.CreateCertificate(random, tmpl, parent, pub, key)
	if err != nil {
		return nil, err
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	if parent != tmpl {
		if err := c.CheckSignatureFrom(parent); err != nil {
			return nil, fmt.Errorf("signature does not verify: %w", err)
		}
	}
	return c, nil
}

// keyID is the RFC 5280 §4.2.1.2 method (1) key identifier: SHA-1 of the
// subjectPublicKey BIT STRING.
func keyID(pub crypto.PublicKey) []byte {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil
	}
	var spki struct {
		Algorithm pkix.AlgorithmIdentifier
		PublicKey asn1.BitString
	}
	if _, err := asn1.Unmarshal(der, &spki); err != nil {
		return nil
	}
	h := sha1.Sum(spki.PublicKey.Bytes)
	return h[:]
}

func publicKeysEqual(a, b crypto.PublicKey) bool {
	ka, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && ka.Equal(b)
}

func mustOID(s string) x509.OID {
	o, err := x509.ParseOID(s)
	if err != nil {
		panic(err)
	}
	return o
}

// writeCert exports an issuer certificate when the PKI has a directory.
func (p *PKI) writeCert(id issuerid.ID, c *x509.Certificate) error {
	if p.dir == "" {
		return nil
	}
	return writeCert(CertPath(p.dir, id), c)
}

func writeCert(path string, c *x509.Certificate) error {
	return writeAtomic(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw}), 0o644)
}

func readCert(path string) (*x509.Certificate, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("pki: %w", err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("pki: %s holds no PEM certificate", path)
	}
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("pki: %s: %w", path, err)
	}
	return c, nil
}

func writeAtomic(path string, b []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return fmt.Errorf("pki: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return fmt.Errorf("pki: writing %s: %w", path, err)
	}
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return fmt.Errorf("pki: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("pki: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("pki: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("pki: %w", err)
	}
	return nil
}

// FileKeys keeps keys as PKCS#8 PEM files (mode 0600) in Dir, one per
// label: Dir/<label>.key.
type FileKeys struct {
	Dir  string
	Rand io.Reader
}

// GenerateKey creates a key and writes it; an existing file is an error.
func (f FileKeys) GenerateKey(_ context.Context, label string, alg keyfile.Algorithm) (crypto.Signer, error) {
	if err := os.MkdirAll(f.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("pki: %w", err)
	}
	r := f.Rand
	if r == nil {
		r = rand.Reader
	}
	k, err := keyfile.Generate(alg, r)
	if err != nil {
		return nil, err
	}
	if err := keyfile.Write(filepath.Join(f.Dir, label+".key"), k); err != nil {
		return nil, err
	}
	return k, nil
}

// FindKey loads the key file for label.
func (f FileKeys) FindKey(_ context.Context, label string) (crypto.Signer, error) {
	return keyfile.Load(filepath.Join(f.Dir, label+".key"))
}

// Dir is the directory the hierarchy lives in.
func (p *PKI) Dir() string { return p.dir }
