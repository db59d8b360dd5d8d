package bench

import (
	"context"
	"crypto"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"time"

	"github.com/trustline/trustline/internal/issuerid"
	"github.com/trustline/trustline/internal/keyfile"
	"github.com/trustline/trustline/internal/ocspcodec"
	"github.com/trustline/trustline/internal/status"
	"github.com/trustline/trustline/responder/floor"
)

// Response validity the bench signs with: the pipeline's default (72 h,
// backdated 1 h), so that peers serve responses shaped like Trustline's.
const (
	benchValidity = 72 * time.Hour
	benchBackdate = time.Hour
)

// keyPath is where `trustline dev` keeps a file key: DIR/keys/<label>.key,
// labels trustline-<issuer> and trustline-<issuer>-ocsp (issuer/pki).
func keyPath(dataDir string, id issuerid.ID, responder bool) string {
	label := "trustline-" + string(id)
	if responder {
		label += "-ocsp"
	}
	return filepath.Join(dataDir, "keys", label+".key")
}

// signable is what the presign scenario and the floor server sign from:
// DIR's issuers, its certificates, and a signer for each issuer of them.
type signable struct {
	issuers map[issuerid.ID]*Issuer
	certs   []Cert
	sig     map[issuerid.ID]*ocspcodec.Signer
}

// loadSignable reads DIR's issuers, up to limit of its unexpired
// certificates (see readCerts) and the signers of their issuers (see
// signers).
func loadSignable(ctx context.Context, dataDir, postgresURL string, limit int, issuerKey bool, now time.Time) (signable, error) {
	var (
		s   signable
		err error
	)
	if s.issuers, err = loadIssuers(dataDir); err != nil {
		return s, err
	}
	if s.certs, err = readCerts(ctx, dataDir, postgresURL, limit, now); err != nil {
		return s, err
	}
	var ids []issuerid.ID
	for _, c := range s.certs {
		if !slices.Contains(ids, c.IssuerID) {
			ids = append(ids, c.IssuerID)
		}
	}
	s.sig, err = signers(dataDir, s.issuers, ids, issuerKey)
	return s, err
}

// signers builds an ocspcodec.Signer per issuer from DIR's file keys:
// the delegated responder's (as the pipeline signs by default) or, with
// issuerKey, the issuer's own. Keys held in a PKCS#11 token cannot be
// read this way; the error says so.
func signers(dataDir string, issuers map[issuerid.ID]*Issuer, ids []issuerid.ID, issuerKey bool) (map[issuerid.ID]*ocspcodec.Signer, error) {
	out := map[issuerid.ID]*ocspcodec.Signer{}
	for _, id := range ids {
		is, ok := issuers[id]
		if !ok {
			return nil, fmt.Errorf("bench: no certificate for issuer %q in DIR/ca", id)
		}
		delegated := !issuerKey && is.Responder != nil
		path := keyPath(dataDir, id, delegated)
		key, err := keyfile.Load(path)
		if err != nil {
			return nil, fmt.Errorf("bench: loading %s (file keys only; a DIR whose keys live in an HSM cannot be signed for here): %w", path, err)
		}
		cfg := ocspcodec.Config{Issuer: is.Cert, Key: key}
		if delegated {
			cfg.Responder = is.Responder
		}
		s, err := ocspcodec.NewSigner(cfg)
		if err != nil {
			return nil, fmt.Errorf("bench: signer for %s: %w", id, err)
		}
		out[id] = s
	}
	return out, nil
}

// sign signs c's response for CertID hash h at now.
func sign(s *ocspcodec.Signer, c *Cert, h crypto.Hash, now time.Time, rand io.Reader) ([]byte, error) {
	alg := ocspcodec.SHA1
	if h == crypto.SHA256 {
		alg = ocspcodec.SHA256
	}
	one := ocspcodec.Single{ID: ocspcodec.CertID{Hash: alg, Serial: c.SN.Bytes()}, Status: c.Status,
		ThisUpdate: now.Add(-benchBackdate), NextUpdate: now.Add(benchValidity - benchBackdate)}
	if c.Status == status.Revoked {
		one.RevokedAt, one.Reason = c.RevokedAt, c.Reason
		if one.RevokedAt.After(one.ThisUpdate) {
			one.ThisUpdate = one.RevokedAt
		}
	}
	return s.Sign(nil, one, now, rand)
}

// signedPair is one certificate's request and its signed response.
type signedPair struct {
	cert *Cert
	hash crypto.Hash
	floor.Pair
}

// signPairs signs, for every certificate, the response to the request the
// bench sends for it with each hash in hashes (no nonce): what the floor
// server and cfssl serve.
func signPairs(certs []Cert, issuers map[issuerid.ID]*Issuer, sig map[issuerid.ID]*ocspcodec.Signer, hashes []crypto.Hash,
	now time.Time, rand io.Reader) ([]signedPair, error) {
	keys := map[issuerid.ID]issuerKey{}
	var out []signedPair
	for i := range certs {
		c := &certs[i]
		k, ok := keys[c.IssuerID]
		if !ok {
			var err error
			if k, err = newIssuerKey(issuers[c.IssuerID].Cert); err != nil {
				return nil, err
			}
			keys[c.IssuerID] = k
		}
		for _, h := range hashes {
			req, err := buildRequest(k, h, c.SN, nil)
			if err != nil {
				return nil, err
			}
			resp, err := sign(sig[c.IssuerID], c, h, now, rand)
			if err != nil {
				return nil, err
			}
			out = append(out, signedPair{cert: c, hash: h, Pair: floor.Pair{Request: req, Response: resp}})
		}
	}
	return out, nil
}
