// Package clientip finds the address of the client behind a reverse proxy
// or load balancer the operator trusts, so that what is counted per source
// address (sign-ups, failed sign-ins; issuer/ratelimit) counts clients and
// not the proxy.
//
// Only a peer in a trusted network is believed: X-Forwarded-For is read
// from its right end (the entry the nearest proxy appended), skipping
// entries that are themselves trusted proxies, and the first address that
// is not is the client's. A client cannot forge its way past a trusted
// proxy, because everything to the left of what that proxy appended is the
// client's own text. With no trusted networks configured the header is
// ignored and the TCP peer is the client, as before.
//
// Only cmd/ wraps handlers with it.
package clientip

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// MaxForwardedEntries bounds the X-Forwarded-For entries examined.
const MaxForwardedEntries = 20

// Trusted is the set of networks whose peers' X-Forwarded-For is believed.
type Trusted struct {
	nets []netip.Prefix
}

// Parse reads CIDRs ("10.0.0.0/8", "::1/128") or single addresses.
func Parse(cidrs []string) (*Trusted, error) {
	t := &Trusted{}
	for _, c := range cidrs {
		c = strings.TrimSpace(c)
		if p, err := netip.ParsePrefix(c); err == nil {
			t.nets = append(t.nets, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(c)
		if err != nil {
			return nil, fmt.Errorf("clientip: %q is neither a network (CIDR) nor an address", c)
		}
		t.nets = append(t.nets, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
	}
	return t, nil
}

// contains reports whether a is in a trusted network.
func (t *Trusted) contains(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range t.nets {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// Client returns the client's address for r: the TCP peer, or, when the
// peer is trusted, the rightmost X-Forwarded-For entry that is not.
func (t *Trusted) Client(r *http.Request) netip.Addr {
	peer := peerAddr(r.RemoteAddr)
	if t == nil || len(t.nets) == 0 || !peer.IsValid() || !t.contains(peer) {
		return peer
	}
	entries := forwardedFor(r.Header.Values("X-Forwarded-For"))
	client := peer
	for i := len(entries) - 1; i >= 0 && len(entries)-i <= MaxForwardedEntries; i-- {
		a, err := netip.ParseAddr(entries[i])
		if err != nil {
			break // not an address a proxy wrote: stop believing
		}
		client = a.Unmap()
		if !t.contains(client) {
			break
		}
	}
	return client
}

// Handler serves next with r.RemoteAddr replaced by the client's address
// (port 0) when the peer is a trusted proxy.
func (t *Trusted) Handler(next http.Handler) http.Handler {
	if t == nil || len(t.nets) == 0 {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if c := t.Client(r); c.IsValid() && c != peerAddr(r.RemoteAddr) {
			r2 := r.Clone(r.Context())
			r2.RemoteAddr = netip.AddrPortFrom(c, 0).String()
			r = r2
		}
		next.ServeHTTP(w, r)
	})
}

// peerAddr parses a RemoteAddr ("ip:port").
func peerAddr(remote string) netip.Addr {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		host = remote
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}
	}
	return a.Unmap()
}

// forwardedFor splits X-Forwarded-For header lines into entries, in
// order; several lines count as one comma-separated list (RFC 9110
// §5.3). An entry may carry a port ("192.0.2.1:4711", "[2001:db8::1]:80").
func forwardedFor(lines []string) []string {
	var out []string
	for _, l := range lines {
		for _, e := range strings.Split(l, ",") {
			e = strings.TrimSpace(e)
			if host, _, err := net.SplitHostPort(e); err == nil {
				e = host
			}
			e = strings.TrimSuffix(strings.TrimPrefix(e, "["), "]")
			out = append(out, e)
		}
	}
	return out
}
