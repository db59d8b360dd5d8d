package responder

import (
	"context"
	"errors"
	"time"

	"github.com/trustline/trustline/internal/issuerid"
	"github.com/trustline/trustline/internal/ocspcache"
	"github.com/trustline/trustline/internal/ocspcodec"
)

// source yields the response for one parsed request. It is the one
// interface the responder's tiers share: the L1, the response cache and
// live signing each implement it, and grow by wrapping the next one
// (doc.go describes the chain). A source returns a rendered response, or
// an error that wraps ocspcache.ErrUnknown when the certificate is proved
// unknown (answered unauthorized); any other error is answered tryLater.
//
// l is passed by value and holds its key inline, so that a call through
// the interface moves nothing to the heap: an L1 hit does not allocate.
type source interface {
	Response(ctx context.Context, l lookup) (*rendered, error)
}

// maxKey bounds a cache key: an issuer id, a serial of at most 20 octets
// in hex, separators and the algorithm.
const maxKey = issuerid.MaxLen + 2*20 + 3

// lookup is one request as sources see it.
type lookup struct {
	is  *issuer
	now time.Time
	h   ocspcodec.HashAlg
	// key[:n] is the ocspcache key, in a fixed buffer so that it costs no
	// allocation while it stays a value; str is the same key as a string
	// once a source has needed one, so that the tiers below share one
	// conversion.
	n   uint8
	key [maxKey]byte
	str string
}

// set makes l the lookup for serial (a parsed CertID's minimal unsigned
// octets, at most serial.MaxOctets) at now. l must be zero: it is filled
// in place, the hot path's one copy being the call that passes it on.
func (l *lookup) set(is *issuer, h ocspcodec.HashAlg, serial []byte, now time.Time) {
	l.is, l.h, l.now = is, h, now
	l.n = uint8(len(ocspcache.AppendKey(l.key[:0], is.id, serial, h)))
}

// keyBytes is the key, pointing into l.
func (l *lookup) keyBytes() []byte { return l.key[:l.n] }

// keyString is the key as a string, converted once per request by
// withKeyString.
func (l *lookup) keyString() string {
	if l.str == "" {
		return string(l.keyBytes())
	}
	return l.str
}

// withKeyString converts the key to a string for the sources below the
// one that calls it (which leave the L1's allocation-free path).
func (l *lookup) withKeyString() {
	if l.str == "" {
		l.str = string(l.keyBytes())
	}
}

// serialHex is the certificate's serial as the key spells it.
func (l *lookup) serialHex() string {
	k := l.keyString()
	return k[len(l.is.id)+1 : len(k)-2]
}

// errUnavailable: no tier had a response and live signing is off.
var errUnavailable = errors.New("responder: no response in the caches and no live signing")

// unavailable ends the chain when live signing is off: what the caches
// did not have is answered tryLater.
type unavailable struct{}

func (unavailable) Response(context.Context, lookup) (*rendered, error) { return nil, errUnavailable }
