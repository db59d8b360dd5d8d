package ocspcache

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"

	"github.com/redis/go-redis/v9"

	"github.com/trustline/trustline/internal/issuerid"
)

// The responder role has no database: it learns the issuers it answers
// for (their ids, which the cache keys hold, and their certificates, from
// which it computes CertID hashes: RFC 6960 §4.1.1) from one Redis key,
// "<prefix>issuers", which the CA role writes. Its value is, for each
// issuer in turn, a line "issuer <id>" and the certificate as a PEM
// CERTIFICATE block: text before a block is what RFC 7468 §5.2 lets
// parsers skip, so `redis-cli --raw GET` output reads as a PEM file. The
// key has no expiry: it holds the CA's current list until the CA
// publishes another.

// maxIssuersValue bounds the stored list, on write and on read: a few
// dozen issuers take a few tens of KiB, and a responder must not be made
// to read an arbitrarily large value at startup.
const maxIssuersValue = 1 << 20

// ErrNoIssuers: no issuer list is stored (never published, or Redis lost
// it). The responder cannot answer until the CA role publishes it.
var ErrNoIssuers = errors.New("ocspcache: no issuer certificates in Redis")

// IssuerCert is one issuer as the responder learns it.
type IssuerCert struct {
	ID issuerid.ID
	// DER is the issuer's certificate.
	DER []byte
}

// IssuerReader is the subset of redis.UniversalClient that LoadIssuers
// uses (one MULTI/EXEC round trip).
type IssuerReader interface {
	TxPipelined(ctx context.Context, fn func(redis.Pipeliner) error) ([]redis.Cmder, error)
}

func issuersKey(prefix string) string { return prefix + "issuers" }

// PublishIssuers stores issuers as the issuer list under prefix (the
// cache's RedisConfig.Prefix), replacing any previous list in one SET.
// Ids must be valid and distinct, certificates must parse.
func PublishIssuers(ctx context.Context, client redis.UniversalClient, prefix string, issuers []IssuerCert) error {
	if err := (RedisConfig{Prefix: prefix}).Validate(); err != nil {
		return err
	}
	v, err := encodeIssuers(issuers)
	if err != nil {
		return err
	}
	// Plain SET: it also clears any expiry someone put on the key.
	if err := client.Set(ctx, issuersKey(prefix), v, 0).Err(); err != nil {
		return fmt.Errorf("ocspcache: publishing %d issuer certificates: %w", len(issuers), err)
	}
	return nil
}

// LoadIssuers returns the issuers stored under prefix, in the order
// published, or ErrNoIssuers.
func LoadIssuers(ctx context.Context, client IssuerReader, prefix string) ([]IssuerCert, error) {
	if err := (RedisConfig{Prefix: prefix}).Validate(); err != nil {
		return nil, err
	}
	key := issuersKey(prefix)
	var exists *redis.IntCmd
	var head *redis.StringCmd
	// One round trip, atomic (one key, so one slot on a cluster): whether
	// the key exists, and at most one byte more than the bound.
	_, err := client.TxPipelined(ctx, func(p redis.Pipeliner) error {
		exists = p.Exists(ctx, key)
		head = p.GetRange(ctx, key, 0, maxIssuersValue)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("ocspcache: loading issuer certificates: %w", err)
	}
	if exists.Val() == 0 {
		return nil, ErrNoIssuers
	}
	v := head.Val()
	if len(v) > maxIssuersValue {
		return nil, fmt.Errorf("ocspcache: issuer list %s is over %d bytes: not read", key, maxIssuersValue)
	}
	issuers, err := decodeIssuers([]byte(v))
	if err != nil {
		return nil, fmt.Errorf("ocspcache: issuer list %s: %w", key, err)
	}
	return issuers, nil
}

// encodeIssuers is the stored form of issuers.
func encodeIssuers(issuers []IssuerCert) ([]byte, error) {
	if len(issuers) == 0 {
		return nil, errors.New("ocspcache: no issuer certificates to publish")
	}
	var b bytes.Buffer
	seen := map[issuerid.ID]bool{}
	for i, is := range issuers {
		if !is.ID.Valid() || seen[is.ID] {
			return nil, fmt.Errorf("ocspcache: issuer %d: id %q is invalid or repeated", i, is.ID)
		}
		seen[is.ID] = true
		if _, err := x509.ParseCertificate(is.DER); err != nil {
			return nil, fmt.Errorf("ocspcache: issuer %s certificate: %w", is.ID, err)
		}
		fmt.Fprintf(&b, "issuer %s\n", is.ID)
		pem.Encode(&b, &pem.Block{Type: "CERTIFICATE", Bytes: is.DER})
	}
	if b.Len() > maxIssuersValue {
		return nil, fmt.Errorf("ocspcache: %d issuer certificates take %d bytes, over the %d a responder reads", len(issuers), b.Len(), maxIssuersValue)
	}
	return b.Bytes(), nil
}

// decodeIssuers parses the stored form. Anything but "issuer <id>" lines
// each followed by a CERTIFICATE block holding an X.509 certificate, and
// whitespace, is corrupt (pem.Decode alone would skip text, and malformed
// blocks, before a block). Errors do not quote the value.
func decodeIssuers(v []byte) ([]IssuerCert, error) {
	begin := []byte("-----BEGIN ")
	var out []IssuerCert
	seen := map[issuerid.ID]bool{}
	for rest := bytes.TrimSpace(v); len(rest) > 0; rest = bytes.TrimSpace(rest) {
		n := len(out)
		line, next, _ := bytes.Cut(rest, []byte("\n"))
		name, ok := bytes.CutPrefix(bytes.TrimSpace(line), []byte("issuer "))
		if !ok || len(name) > issuerid.MaxLen {
			return nil, fmt.Errorf("entry %d does not start with an \"issuer <id>\" line", n)
		}
		id, err := issuerid.Parse(string(name))
		if err != nil || seen[id] {
			return nil, fmt.Errorf("entry %d: issuer id %q is invalid or repeated", n, name)
		}
		seen[id] = true
		rest = bytes.TrimSpace(next)
		block, next := pem.Decode(rest)
		if block == nil || !bytes.HasPrefix(rest, begin) || bytes.Count(rest[:len(rest)-len(next)], begin) != 1 {
			return nil, fmt.Errorf("issuer %s: no PEM block after its line", id)
		}
		if block.Type != "CERTIFICATE" || len(block.Headers) != 0 {
			return nil, fmt.Errorf("issuer %s: a %q block with %d headers, want a plain CERTIFICATE", id, block.Type, len(block.Headers))
		}
		if _, err := x509.ParseCertificate(block.Bytes); err != nil {
			return nil, fmt.Errorf("issuer %s: %w", id, err)
		}
		out = append(out, IssuerCert{ID: id, DER: block.Bytes})
		rest = next
	}
	if len(out) == 0 {
		return nil, errors.New("empty")
	}
	return out, nil
}
