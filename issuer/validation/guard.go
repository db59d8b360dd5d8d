package validation

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"syscall"
	"time"
)

// The SSRF guard of http-token and of WHOIS referrals: the subscriber
// names the host, so a connection goes only to an address that is
// globally reachable, judged after resolution (a name that resolves to
// 10.0.0.1 is refused as 10.0.0.1 is) and, for the IPv6 forms that carry
// an IPv4 address, by the IPv4 address they lead to.

// errNotPublic: the guard refused to connect to an address that is not
// publicly routable.
var errNotPublic = errors.New("address is not publicly routable")

// guardedDialer dials as net.Dialer does, resolving names through resolver
// (host:port; "" means the system's) and, unless allowPrivate, refusing
// addresses PublicAddr refuses.
func guardedDialer(resolver string, allowPrivate bool) DialFunc {
	d := &net.Dialer{Timeout: 10 * time.Second}
	if resolver != "" {
		d.Resolver = &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var nd net.Dialer
			return nd.DialContext(ctx, network, resolver)
		}}
	}
	if !allowPrivate {
		d.ControlContext = func(_ context.Context, _, address string, _ syscall.RawConn) error {
			ap, err := netip.ParseAddrPort(address)
			if err != nil {
				return err
			}
			if !PublicAddr(ap.Addr()) {
				return fmt.Errorf("%w: %s", errNotPublic, ap.Addr())
			}
			return nil
		}
	}
	return d.DialContext
}

// refusedIPv4 are the blocks of the IANA IPv4 Special-Purpose Address
// Registry (RFC 6890 and successors) that are not globally reachable, and
// multicast. 192.0.0.0/24 and 192.88.99.0/24 go whole: their few globally
// reachable members are anycast services, never a web site.
var refusedIPv4 = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),       // "this network" (RFC 791)
	netip.MustParsePrefix("10.0.0.0/8"),      // private (RFC 1918)
	netip.MustParsePrefix("100.64.0.0/10"),   // shared address space (RFC 6598)
	netip.MustParsePrefix("127.0.0.0/8"),     // loopback
	netip.MustParsePrefix("169.254.0.0/16"),  // link local, cloud metadata (RFC 3927)
	netip.MustParsePrefix("172.16.0.0/12"),   // private (RFC 1918)
	netip.MustParsePrefix("192.0.0.0/24"),    // IETF protocol assignments (RFC 6890)
	netip.MustParsePrefix("192.0.2.0/24"),    // documentation (RFC 5737)
	netip.MustParsePrefix("192.88.99.0/24"),  // 6to4 relay anycast, deprecated (RFC 7526)
	netip.MustParsePrefix("192.168.0.0/16"),  // private (RFC 1918)
	netip.MustParsePrefix("198.18.0.0/15"),   // benchmarking (RFC 2544)
	netip.MustParsePrefix("198.51.100.0/24"), // documentation (RFC 5737)
	netip.MustParsePrefix("203.0.113.0/24"),  // documentation (RFC 5737)
	netip.MustParsePrefix("224.0.0.0/4"),     // multicast
	netip.MustParsePrefix("240.0.0.0/4"),     // reserved, and broadcast (RFC 1112, RFC 919)
}

var (
	// globalUnicast is the IPv6 space IANA allocates for global unicast;
	// the rest is reserved, unique local, link or site local, multicast,
	// or holds one of the IPv4-embedding and special forms (::/96,
	// ::ffff:0:0/96, 64:ff9b:1::/48, 100::/64, 5f00::/16, …).
	globalUnicast = netip.MustParsePrefix("2000::/3")
	// nat64WKP is the NAT64 well-known prefix (RFC 6052): on a NAT64
	// network 64:ff9b::a9fe:a9fe reaches 169.254.169.254, so the IPv4
	// address in its last 32 bits decides.
	nat64WKP  = netip.MustParsePrefix("64:ff9b::/96")
	teredo    = netip.MustParsePrefix("2001::/32")
	sixToFour = netip.MustParsePrefix("2002::/16")
)

// refusedIPv6 are the blocks of the IANA IPv6 Special-Purpose Address
// Registry inside 2000::/3 that are not globally reachable. 6to4 and
// Teredo (whose reachability the registry leaves "N/A") go whole too:
// they depend on relays the CA cannot vouch for, and the IPv4 address
// they embed is checked besides, in case they are ever let through.
var refusedIPv6 = []netip.Prefix{
	netip.MustParsePrefix("2001::/23"),     // IETF protocol assignments, Teredo, benchmarking, ORCHID (RFC 2928)
	netip.MustParsePrefix("2001:db8::/32"), // documentation (RFC 3849)
	sixToFour,                              // 6to4 (RFC 3056)
	netip.MustParsePrefix("3fff::/20"),     // documentation (RFC 9637)
}

// PublicAddr reports whether a is a globally reachable unicast address:
// not loopback, private, link-local, multicast, unspecified, reserved or
// special-purpose, nor an IPv6 address that carries (IPv4-mapped) or
// leads to (NAT64, 6to4, Teredo) an IPv4 address that is not.
func PublicAddr(a netip.Addr) bool {
	if a.Zone() != "" {
		return false // a zone scopes the address to a link
	}
	a = a.Unmap()
	switch {
	case !a.IsValid():
		return false
	case a.Is4():
		return !anyContains(refusedIPv4, a)
	case !globalUnicast.Contains(a) && !nat64WKP.Contains(a):
		return false
	}
	for _, v4 := range embeddedIPv4(a) {
		if !PublicAddr(v4) {
			return false
		}
	}
	return !anyContains(refusedIPv6, a)
}

// embeddedIPv4 returns the IPv4 addresses an IPv6 address leads to: the
// last 32 bits of a NAT64 well-known-prefix address (RFC 6052), bits
// 16–47 of a 6to4 address (RFC 3056), and a Teredo address's server
// (bits 32–63) and client (the last 32 bits, inverted; RFC 4380).
func embeddedIPv4(a netip.Addr) []netip.Addr {
	b := a.As16()
	switch {
	case nat64WKP.Contains(a):
		return []netip.Addr{netip.AddrFrom4([4]byte(b[12:16]))}
	case sixToFour.Contains(a):
		return []netip.Addr{netip.AddrFrom4([4]byte(b[2:6]))}
	case teredo.Contains(a):
		return []netip.Addr{
			netip.AddrFrom4([4]byte(b[4:8])),
			netip.AddrFrom4([4]byte{^b[12], ^b[13], ^b[14], ^b[15]}),
		}
	}
	return nil
}

func anyContains(ps []netip.Prefix, a netip.Addr) bool {
	for _, p := range ps {
		if p.Contains(a) {
			return true
		}
	}
	return false
}
