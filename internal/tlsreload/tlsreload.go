// Package tlsreload serves TLS (RFC 8446, RFC 5246) from a certificate
// file and a key file that can be re-read while the server runs, so that a
// renewed certificate is picked up without a restart.
//
// A Reloader loads the pair once when built and again on each Reload; a
// pair that does not load (a file missing, the key not matching the
// certificate, the certificate expired) is refused and the previous pair
// keeps serving. Handshakes read the current pair through GetCertificate,
// so a swap is atomic: a connection sees the old pair or the new one,
// never half of each.
//
// The package does not watch files or signals: cmd/ calls Reload on
// SIGHUP. The private key never reaches a log line or an error message.
// Any listener may import it; it imports nothing of Trustline.
package tlsreload

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// Reloader holds the current certificate and key and swaps them on Reload.
type Reloader struct {
	certFile, keyFile string
	log               *slog.Logger
	now               func() time.Time

	mu  sync.Mutex // serialises Reload
	cur atomic.Pointer[tls.Certificate]
}

// New loads the pair from certFile (PEM: the leaf first, then any
// intermediates) and keyFile (PEM private key).
func New(certFile, keyFile string, log *slog.Logger) (*Reloader, error) {
	if certFile == "" || keyFile == "" {
		return nil, errors.New("tlsreload: certificate file and key file are required")
	}
	if log == nil {
		return nil, errors.New("tlsreload: a logger is required")
	}
	r := &Reloader{certFile: certFile, keyFile: keyFile, log: log, now: time.Now}
	c, err := r.load()
	if err != nil {
		return nil, err
	}
	r.cur.Store(c)
	r.log.Info("TLS certificate loaded", certAttrs(c.Leaf)...)
	return r, nil
}

// Reload re-reads both files and swaps the new pair in if it loads. On an
// error the previous pair keeps serving and the error is returned.
func (r *Reloader) Reload() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	c, err := r.load()
	if err != nil {
		r.log.Error("TLS certificate reload failed; still serving the previous one", "err", err)
		return err
	}
	old := r.cur.Swap(c)
	r.log.Info("TLS certificate reloaded", append(certAttrs(c.Leaf), "previous_serial", old.Leaf.SerialNumber.Text(16))...)
	return nil
}

// GetCertificate returns the current pair, for tls.Config.GetCertificate.
// It serves the same pair whatever the ClientHello names.
func (r *Reloader) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return r.cur.Load(), nil
}

// Leaf returns the certificate now being served.
func (r *Reloader) Leaf() *x509.Certificate { return r.cur.Load().Leaf }

// TLSConfig returns a new server configuration that serves the current
// pair: TLS 1.2 at least, and under TLS 1.2 only forward-secret AEAD
// suites (TLS 1.3 suites are not configurable and all qualify). It leaves
// NextProtos empty: http.Server.ServeTLS and ListenAndServeTLS (with empty
// file names) add "h2" and "http/1.1" themselves.
func (r *Reloader) TLSConfig() *tls.Config {
	return &tls.Config{
		MinVersion:     tls.VersionTLS12,
		GetCertificate: r.GetCertificate,
		CipherSuites: []uint16{
			tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
			tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
			tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
			tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
			tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
			tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
		},
	}
}

// load reads and checks the pair. Its errors name the files and what is
// wrong, never the key's contents: crypto/tls's key-pair errors carry none.
func (r *Reloader) load() (*tls.Certificate, error) {
	certPEM, err := os.ReadFile(r.certFile)
	if err != nil {
		return nil, fmt.Errorf("tlsreload: reading certificate: %w", err)
	}
	keyPEM, err := os.ReadFile(r.keyFile)
	if err != nil {
		return nil, fmt.Errorf("tlsreload: reading key: %w", err)
	}
	c, err := tls.X509KeyPair(certPEM, keyPEM)
	clear(keyPEM)
	if err != nil {
		return nil, fmt.Errorf("tlsreload: %s and %s: %w", r.certFile, r.keyFile, err)
	}
	leaf := c.Leaf
	if leaf == nil { // X509KeyPair fills Leaf unless GODEBUG x509keypairleaf=0
		if leaf, err = x509.ParseCertificate(c.Certificate[0]); err != nil {
			return nil, fmt.Errorf("tlsreload: %s: parsing the certificate: %w", r.certFile, err)
		}
		c.Leaf = leaf
	}
	now := r.now()
	if !now.Before(leaf.NotAfter) {
		return nil, fmt.Errorf("tlsreload: %s: certificate expired at %s", r.certFile, leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	if now.Before(leaf.NotBefore) {
		// Clients with a correct clock will refuse it until then; a
		// small skew is common right after issuance, so serve it.
		r.log.Warn("TLS certificate is not yet valid", "file", r.certFile, "not_before", leaf.NotBefore)
	}
	if fi, err := os.Stat(r.keyFile); err == nil && fi.Mode().Perm()&0o004 != 0 {
		r.log.Warn("TLS key file is readable by everyone", "file", r.keyFile, "mode", fi.Mode().Perm().String())
	}
	return &c, nil
}

// certAttrs describes a certificate for the log: never the key.
func certAttrs(leaf *x509.Certificate) []any {
	sum := sha256.Sum256(leaf.Raw)
	return []any{
		"subject", leaf.Subject.String(), "dns_names", leaf.DNSNames,
		"serial", leaf.SerialNumber.Text(16), "not_after", leaf.NotAfter, "sha256", hex.EncodeToString(sum[:]),
	}
}
