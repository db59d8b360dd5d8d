package perspective

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"time"
)

// selfSigned makes the throwaway certificate that carries key in a TLS
// handshake; the peer looks only at its public key.
func selfSigned(key crypto.Signer, name string) (tls.Certificate, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 64))
	if err != nil {
		return tls.Certificate{}, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial, Subject: pkix.Name{CommonName: name},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(10 * 365 * 24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("perspective: making the TLS certificate: %w", err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}

// pinned returns a VerifyPeerCertificate function that accepts a peer
// whose certificate carries one of keys, and nothing else.
func pinned(keys []crypto.PublicKey) (func([][]byte, [][]*x509.Certificate) error, error) {
	var spkis [][]byte
	for _, k := range keys {
		der, err := x509.MarshalPKIXPublicKey(k)
		if err != nil {
			return nil, fmt.Errorf("perspective: encoding a pinned key: %w", err)
		}
		spkis = append(spkis, der)
	}
	return func(raw [][]byte, _ [][]*x509.Certificate) error {
		if len(raw) == 0 {
			return errors.New("perspective: the peer presented no certificate")
		}
		c, err := x509.ParseCertificate(raw[0])
		if err != nil {
			return fmt.Errorf("perspective: the peer's certificate: %w", err)
		}
		for _, s := range spkis {
			if bytes.Equal(c.RawSubjectPublicKeyInfo, s) {
				return nil
			}
		}
		return errors.New("perspective: the peer's key is not one this side is configured with")
	}, nil
}
