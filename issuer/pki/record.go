package pki

import (
	"context"
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/trustline/trustline/internal/issuerid"
	"github.com/trustline/trustline/internal/keyfile"
)

// The hierarchy's public part is recorded in the store, so that every
// instance of every role, on every machine, uses the same root,
// intermediates and responder certificates. The record is written once
// (Record, refused when one exists); responder certificates are replaced
// as they are renewed by one leader and re-read by everyone else
// (ReloadResponders).

// Records is the store subset the hierarchy is kept in (store.Store's
// metadata methods).
type Records interface {
	Meta(ctx context.Context, key string) ([]byte, error)
	PutMeta(ctx context.Context, key string, value []byte) error
	// InsertMeta fails, wrapping an error IsDuplicate recognises, when the
	// key exists.
	InsertMeta(ctx context.Context, key string, value []byte) error
}

// Meta keys.
const (
	recordKey          = "pki.hierarchy"
	responderKeyPrefix = "pki.responder."
)

// ErrNoHierarchy: the store holds no hierarchy yet.
var ErrNoHierarchy = errors.New("pki: the store holds no CA hierarchy")

// ErrHierarchyExists: Record found a hierarchy in the store already.
var ErrHierarchyExists = errors.New("pki: the store already holds a CA hierarchy")

// record is what the store keeps under recordKey.
type record struct {
	manifest
	Root  []byte        `json:"root"` // DER
	Certs []recordedInt `json:"intermediates"`
}

type recordedInt struct {
	ID   issuerid.ID `json:"id"`
	Cert []byte      `json:"cert"` // DER
}

// Record writes p's hierarchy into the store, once: when the store already
// holds one it returns ErrHierarchyExists and changes nothing.
// isDuplicate tells the store's duplicate-key error (store.ErrDuplicate).
func (p *PKI) Record(ctx context.Context, rec Records, isDuplicate func(error) bool) error {
	r := record{manifest: p.cfg, Root: p.Root.Cert.Raw}
	for _, is := range p.Intermediates {
		r.Certs = append(r.Certs, recordedInt{ID: is.ID, Cert: is.Cert.Raw})
	}
	b, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("pki: encoding the hierarchy: %w", err)
	}
	// Responder certificates first: a reader that finds the hierarchy
	// finds them too.
	for _, is := range p.Intermediates {
		if err := rec.PutMeta(ctx, responderKeyPrefix+string(is.ID), is.Responder.Raw); err != nil {
			return fmt.Errorf("pki: recording %s responder certificate: %w", is.ID, err)
		}
	}
	if err := rec.InsertMeta(ctx, recordKey, b); err != nil {
		if isDuplicate(err) {
			return ErrHierarchyExists
		}
		return fmt.Errorf("pki: recording the hierarchy: %w", err)
	}
	p.rec = rec
	return nil
}

// Recorded reports whether the store holds a hierarchy.
func Recorded(ctx context.Context, rec Records, isNotFound func(error) bool) (bool, error) {
	_, err := rec.Meta(ctx, recordKey)
	switch {
	case err == nil:
		return true, nil
	case isNotFound(err):
		return false, nil
	}
	return false, fmt.Errorf("pki: reading the hierarchy: %w", err)
}

// KeyNeeds says which private keys a role must find.
type KeyNeeds int

const (
	// CertsOnly loads certificates and no key (responder, origin).
	CertsOnly KeyNeeds = iota
	// IssuingKeys loads the intermediates' and responders' keys, and the
	// root's when the key store has it (an offline root is not there).
	IssuingKeys
)

// LoadRecorded loads the store's hierarchy. With IssuingKeys it finds
// every intermediate and responder key in keys and refuses, naming the
// root's fingerprint, when one is missing or does not match its
// certificate: an instance whose keys are another hierarchy's never
// starts. keys may be nil with CertsOnly.
func LoadRecorded(ctx context.Context, rec Records, isNotFound func(error) bool, keys Keys, keySource string, need KeyNeeds) (*PKI, error) {
	b, err := rec.Meta(ctx, recordKey)
	if err != nil {
		if isNotFound(err) {
			return nil, ErrNoHierarchy
		}
		return nil, fmt.Errorf("pki: reading the hierarchy: %w", err)
	}
	var r record
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("pki: the store's hierarchy record is corrupt: %w", err)
	}
	root, err := x509.ParseCertificate(r.Root)
	if err != nil {
		return nil, fmt.Errorf("pki: the store's root certificate: %w", err)
	}
	fp := Fingerprint(root)
	if need == IssuingKeys && r.KeySource != keySource {
		return nil, fmt.Errorf("pki: the store's hierarchy (root SHA-256 %s) keeps its keys in %s, but this instance was given %s keys", fp, r.KeySource, keySource)
	}
	rootAlg, err := keyfile.Parse(r.RootKeyAlg)
	if err != nil {
		return nil, fmt.Errorf("pki: root: %w", err)
	}
	p := &PKI{cfg: r.manifest, rec: rec, Root: &Issuer{ID: issuerid.Root, KeyAlg: rootAlg, Cert: root}}
	findKey := func(id issuerid.ID, label string, cert *x509.Certificate) (crypto.Signer, error) {
		k, err := keys.FindKey(ctx, label)
		if err != nil {
			return nil, fmt.Errorf("pki: the store's hierarchy (root SHA-256 %s) needs the %s key %q, which this instance's %s keys do not hold: is this instance configured for another plant? (%v)",
				fp, id, label, keySource, err)
		}
		if cert != nil && !publicKeysEqual(k.Public(), cert.PublicKey) {
			return nil, fmt.Errorf("pki: the %s key %q of this instance does not match the store's %s certificate (root SHA-256 %s): it belongs to another hierarchy", id, label, id, fp)
		}
		return k, nil
	}
	if need == IssuingKeys {
		// The root key is optional: a plant whose root stays offline signs
		// nothing with it while it runs.
		if k, err := keys.FindKey(ctx, rootLabel()); err == nil {
			if !publicKeysEqual(k.Public(), root.PublicKey) {
				return nil, fmt.Errorf("pki: the root key of this instance does not match the store's root (SHA-256 %s): it belongs to another hierarchy", fp)
			}
			p.Root.Signer = k
		}
	}
	for _, c := range r.Certs {
		cert, err := x509.ParseCertificate(c.Cert)
		if err != nil {
			return nil, fmt.Errorf("pki: the store's %s certificate: %w", c.ID, err)
		}
		var alg keyfile.Algorithm
		for _, e := range r.Issuers {
			if e.ID == c.ID {
				if alg, err = keyfile.Parse(e.KeyAlg); err != nil {
					return nil, fmt.Errorf("pki: %s: %w", c.ID, err)
				}
			}
		}
		is := &Issuer{ID: c.ID, KeyAlg: alg, Cert: cert}
		rb, err := rec.Meta(ctx, responderKeyPrefix+string(c.ID))
		if err != nil {
			return nil, fmt.Errorf("pki: reading the %s responder certificate: %w", c.ID, err)
		}
		if is.Responder, err = x509.ParseCertificate(rb); err != nil {
			return nil, fmt.Errorf("pki: the store's %s responder certificate: %w", c.ID, err)
		}
		if need == IssuingKeys {
			if is.Signer, err = findKey(c.ID, issuerLabel(c.ID), cert); err != nil {
				return nil, err
			}
			if is.ResponderSigner, err = findKey(c.ID, responderLabel(c.ID), is.Responder); err != nil {
				return nil, err
			}
		}
		p.Intermediates = append(p.Intermediates, is)
	}
	return p, nil
}

// RootOffline reports whether the hierarchy keeps its root key apart from
// the plant's keys (Config.RootKeys): no role has it, and the root's CRL
// is signed in ceremonies.
func (p *PKI) RootOffline() bool { return p.cfg.RootOffline }

// AttachRoot finds the root key in keys (the offline root's token or
// directory, brought out for a ceremony) and installs it as p.Root.Signer.
// A key that is not the root's is refused.
func (p *PKI) AttachRoot(ctx context.Context, keys Keys) error {
	k, err := keys.FindKey(ctx, rootLabel())
	if err != nil {
		return fmt.Errorf("pki: the root key %q is not there: %w", rootLabel(), err)
	}
	if !publicKeysEqual(k.Public(), p.Root.Cert.PublicKey) {
		return fmt.Errorf("pki: the key %q is not this hierarchy's root (SHA-256 %s): it belongs to another hierarchy", rootLabel(), Fingerprint(p.Root.Cert))
	}
	p.Root.Signer = k
	return nil
}

// ReloadResponders re-reads the responder certificates from the store and
// installs those that changed (renewed by another instance); it reports
// how many changed. Only for a PKI loaded with LoadRecorded.
func (p *PKI) ReloadResponders(ctx context.Context) (int, error) {
	if p.rec == nil {
		return 0, nil
	}
	n := 0
	for _, is := range p.Intermediates {
		b, err := p.rec.Meta(ctx, responderKeyPrefix+string(is.ID))
		if err != nil {
			return n, fmt.Errorf("pki: reading the %s responder certificate: %w", is.ID, err)
		}
		cur := p.ResponderCert(is)
		if cur != nil && string(cur.Raw) == string(b) {
			continue
		}
		c, err := x509.ParseCertificate(b)
		if err != nil {
			return n, fmt.Errorf("pki: the store's %s responder certificate: %w", is.ID, err)
		}
		if is.ResponderSigner != nil && !publicKeysEqual(is.ResponderSigner.Public(), c.PublicKey) {
			return n, fmt.Errorf("pki: the store's %s responder certificate is for another key", is.ID)
		}
		if cur != nil && !c.NotAfter.After(cur.NotAfter) {
			continue // never go back to an older certificate
		}
		p.mu.Lock()
		is.Responder = c
		p.mu.Unlock()
		n++
	}
	return n, nil
}

// Export writes the hierarchy's certificates as PEM into dir (the dev
// data dir's ca/: root.pem, <id>.pem, <id>-ocsp.pem and pki.json), for
// people and tools that want files. The store stays the source of truth.
func (p *PKI) Export(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("pki: %w", err)
	}
	if err := writeCert(CertPath(dir, issuerid.Root), p.Root.Cert); err != nil {
		return err
	}
	for _, is := range p.Intermediates {
		if err := writeCert(CertPath(dir, is.ID), is.Cert); err != nil {
			return err
		}
		if err := writeCert(ResponderCertPath(dir, is.ID), p.ResponderCert(is)); err != nil {
			return err
		}
	}
	b, _ := json.MarshalIndent(p.cfg, "", "  ")
	if err := writeAtomic(filepath.Join(dir, manifestName), append(b, '\n'), 0o644); err != nil {
		return err
	}
	p.dir = dir
	return nil
}

// Fingerprint is a certificate's SHA-256 fingerprint as colon-separated
// uppercase hex (the form `openssl x509 -fingerprint -sha256` prints).
func Fingerprint(c *x509.Certificate) string {
	sum := sha256.Sum256(c.Raw)
	h := strings.ToUpper(hex.EncodeToString(sum[:]))
	var b strings.Builder
	for i := 0; i < len(h); i += 2 {
		if i > 0 {
			b.WriteByte(':')
		}
		b.WriteString(h[i : i+2])
	}
	return b.String()
}

// ResponderValidity is the configured delegated responder lifetime.
func (p *PKI) ResponderValidity() time.Duration {
	d, _ := time.ParseDuration(p.cfg.ResponderValidity)
	return d
}
