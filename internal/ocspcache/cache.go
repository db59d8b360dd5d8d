// Package ocspcache is Trustline's OCSP response cache: where the
// pre-signing pipeline puts signed responses and the responder finds them
// (DESIGN.md "Storage"). It declares the records (Entry, Item, State), the
// key scheme, the Cache method set both adapters implement, and the two
// adapters: Memory, an in-process map (the embedded default of `trustline
// dev`), and Redis, over a go-redis v9 UniversalClient (single node, Ring
// or Cluster) with pipelined writes, coalesced reads and pub/sub
// evictions. ocspcache/cachetest is the conformance suite both pass.
//
// Rules every adapter keeps:
//   - an entry lives until its response's nextUpdate and is never returned
//     after it (RFC 5019 §2.2.4 has clients refuse stale responses);
//   - a revoked response is never replaced by a non-revoked one, so a
//     refresh computed from data read before a revocation cannot undo it
//     (revocation is final: Trustline has no certificateHold);
//   - a State records which rebuild filled the cache; it vanishes with the
//     data (Redis restarted empty, FLUSHALL), which is how the pipeline
//     detects a lost cache and rebuilds it (warm start).
//
// Who may import it: the pre-signer (issuer/presign), the responder and
// cmd/. It imports only the standard library, go-redis and Trustline's
// vocabulary packages, never a database driver, PKCS#11 or issuer/.
package ocspcache

import (
	"context"
	"errors"
	"time"

	"github.com/trustline/trustline/internal/issuerid"
	"github.com/trustline/trustline/internal/ocspcodec"
	"github.com/trustline/trustline/internal/status"
)

// Entry is one signed OCSPResponse and what the responder needs to answer
// with it without parsing it (RFC 5019 §6 headers).
type Entry struct {
	// DER is the complete OCSPResponse. Adapters may share it between
	// callers: never modify it. Nil means "no entry".
	DER []byte
	// Status is what the response says (Good or Revoked; Unknown is never
	// pre-signed).
	Status status.Status
	// ThisUpdate and NextUpdate are the response's; the entry is dead at
	// NextUpdate.
	ThisUpdate, NextUpdate time.Time
	// RefreshAt is when the pipeline replaces the response (BR §4.9.10);
	// HTTP caches may keep it until then (Cache-Control max-age).
	RefreshAt time.Time
}

// Found reports whether e holds a response.
func (e *Entry) Found() bool { return e.DER != nil }

// Item is an entry to write under Key.
type Item struct {
	Key string
	Entry
	// Evict asks the adapter to tell every reader (Subscribe) that the
	// certificate's responses changed, so that in-process copies (the
	// responder's L1) are dropped. Set it when the status changes.
	Evict bool
}

// State records the rebuild that filled the cache. The zero State (Epoch
// "") is what a lost or never-filled cache reports.
type State struct {
	// Epoch names the rebuild (random, chosen by the pipeline). Non-empty
	// in any stored State.
	Epoch string
	// Complete is set when the rebuild has written every unexpired
	// certificate's responses: from then on a miss means "unknown serial".
	Complete bool
	// Seq is the store's status-change event sequence number up to which
	// the cache reflects every event.
	Seq int64
	// After is an unfinished rebuild's resume point: the responses of
	// every certificate whose serial sorts at or before it are written.
	// Empty when none is, and once Complete. A serial's hex: no spaces.
	After string
	// RefreshFloor (Unix seconds, 0 for none) is the earliest refresh
	// point of any response the rebuild writes: once it is Complete, no
	// pre-signed response in the cache is due before it, whatever the
	// store's per-certificate refresh points say (a rebuild does not
	// rewrite them).
	RefreshFloor int64
}

// Eviction names the responses that a write replaced: every key starting
// with Prefix (one certificate, all hash algorithms). An empty Prefix
// means "everything": the adapter may have missed evictions (its
// subscription dropped), and readers must not trust any copy they hold
// until they have read it again.
type Eviction struct {
	Prefix string
}

// Errors callers branch on.
var (
	// ErrStateChanged: SwapState found another State than old.
	ErrStateChanged = errors.New("ocspcache: cache state changed")
	// ErrUnknown: no certificate with that serial was issued by that
	// issuer (or it expired). Live signers return it wrapped; the
	// responder answers unauthorized (RFC 5019 §2.2.3).
	ErrUnknown = errors.New("ocspcache: unknown certificate")
)

// Cache is the method set both adapters implement; it is declared here for
// them and for the conformance suite. Consumers declare the subset they use.
type Cache interface {
	// Get fills out[i] with the entry under keys[i], or the zero Entry
	// when there is none or it has passed its NextUpdate. len(out) must
	// be len(keys).
	Get(ctx context.Context, keys []string, out []Entry) error
	// Put writes items, each unless it would replace a revoked response
	// with a non-revoked one, each expiring at its NextUpdate. Items
	// already past their NextUpdate are skipped. Evictions of items with
	// Evict set are delivered to this process's subscribers before Put
	// returns, and to other processes' as soon as the adapter can.
	Put(ctx context.Context, items []Item) error
	// State returns the stored State, or the zero State if none.
	State(ctx context.Context) (State, error)
	// SwapState stores next if the stored State equals old (the zero
	// State matching "none"); otherwise it returns ErrStateChanged.
	SwapState(ctx context.Context, old, next State) error
	// Subscribe calls fn for every eviction until cancel is called. fn
	// must be quick and must not call back into the cache.
	Subscribe(fn func(Eviction)) (cancel func())
}

// Lossy is implemented by a cache that may drop live entries to keep
// within a bound (Memory with MaxBytes). Once Dropped reports true a miss
// no longer proves a certificate unknown, whatever State's Complete says;
// readers then ask a live signer instead. (Redis must never drop a live
// entry: docs/ocsp.md has it run with maxmemory-policy noeviction.)
type Lossy interface {
	Dropped() bool
}

// Key names the response for one certificate and one CertID hash
// algorithm: "<issuer>:<serial hex>:<algorithm number>", the serial being
// the lowercase hex of its minimal unsigned encoding (what serial.Serial
// holds, and what ocspcodec.CertID.Serial holds as bytes).
func Key(issuer issuerid.ID, serialHex string, h ocspcodec.HashAlg) string {
	b := make([]byte, 0, len(issuer)+len(serialHex)+3)
	b = append(b, issuer...)
	b = append(b, ':')
	b = append(b, serialHex...)
	b = append(b, ':', '0'+byte(h))
	return string(b)
}

// AppendKey appends the Key for a serial given as bytes (a parsed CertID's
// minimal unsigned serial). It does not allocate when dst has room.
func AppendKey(dst []byte, issuer issuerid.ID, serial []byte, h ocspcodec.HashAlg) []byte {
	const hexDigits = "0123456789abcdef"
	dst = append(dst, issuer...)
	dst = append(dst, ':')
	for _, c := range serial {
		dst = append(dst, hexDigits[c>>4], hexDigits[c&0x0f])
	}
	return append(dst, ':', '0'+byte(h))
}

// EvictionPrefix is the Eviction.Prefix covering every key of one
// certificate.
func EvictionPrefix(issuer issuerid.ID, serialHex string) string {
	return string(issuer) + ":" + serialHex + ":"
}

// prefixOf returns the eviction prefix of a key: everything up to and
// including its last ':'.
func prefixOf(key string) string {
	for i := len(key) - 1; i >= 0; i-- {
		if key[i] == ':' {
			return key[:i+1]
		}
	}
	return key
}

// evictionsOf returns the distinct prefixes of the items that ask for
// eviction, in order.
func evictionsOf(items []Item) []string {
	var out []string
	for i := range items {
		if !items[i].Evict {
			continue
		}
		p := prefixOf(items[i].Key)
		dup := false
		for _, q := range out {
			if q == p {
				dup = true
				break
			}
		}
		if !dup {
			out = append(out, p)
		}
	}
	return out
}

// mayReplace reports whether a response of status next may overwrite one
// of status cur (the no-downgrade rule).
func mayReplace(cur, next status.Status) bool {
	return cur != status.Revoked || next == status.Revoked
}
