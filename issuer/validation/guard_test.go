package validation

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// ipv4Cases are the IANA IPv4 Special-Purpose Address Registry's blocks
// that are not globally reachable, with the addresses on each side of
// every boundary.
var ipv4Cases = []struct {
	addr   string
	public bool
}{
	{"93.184.215.14", true},
	{"1.1.1.1", true},

	{"0.0.0.0", false}, // 0.0.0.0/8 "this network"
	{"0.255.255.255", false},
	{"1.0.0.0", true},

	{"9.255.255.255", true}, // 10.0.0.0/8
	{"10.0.0.0", false},
	{"10.255.255.255", false},
	{"11.0.0.0", true},

	{"100.63.255.255", true}, // 100.64.0.0/10 shared address space
	{"100.64.0.0", false},
	{"100.127.255.255", false},
	{"100.128.0.0", true},

	{"126.255.255.255", true}, // 127.0.0.0/8
	{"127.0.0.1", false},
	{"127.255.255.255", false},
	{"128.0.0.0", true},

	{"169.253.255.255", true}, // 169.254.0.0/16 link local
	{"169.254.0.0", false},
	{"169.254.169.254", false}, // cloud metadata
	{"169.254.255.255", false},
	{"169.255.0.0", true},

	{"172.15.255.255", true}, // 172.16.0.0/12
	{"172.16.0.0", false},
	{"172.31.255.255", false},
	{"172.32.0.0", true},

	{"191.255.255.255", true}, // 192.0.0.0/24 IETF protocol assignments
	{"192.0.0.0", false},
	{"192.0.0.9", false},   // PCP anycast: reachable, but never a web site
	{"192.0.0.170", false}, // NAT64 discovery
	{"192.0.0.255", false},
	{"192.0.1.0", true},

	{"192.0.2.0", false}, // 192.0.2.0/24 TEST-NET-1
	{"192.0.2.255", false},
	{"192.0.3.0", true},

	{"192.31.196.1", true}, // AS112-v4: globally reachable
	{"192.52.193.1", true}, // AMT: globally reachable

	{"192.88.98.255", true}, // 192.88.99.0/24 deprecated 6to4 relay anycast
	{"192.88.99.1", false},
	{"192.88.99.255", false},
	{"192.88.100.0", true},

	{"192.167.255.255", true}, // 192.168.0.0/16
	{"192.168.0.0", false},
	{"192.168.255.255", false},
	{"192.169.0.0", true},

	{"192.175.48.1", true}, // direct delegation AS112: globally reachable

	{"198.17.255.255", true}, // 198.18.0.0/15 benchmarking
	{"198.18.0.0", false},
	{"198.19.255.255", false},
	{"198.20.0.0", true},

	{"198.51.99.255", true}, // 198.51.100.0/24 TEST-NET-2
	{"198.51.100.0", false},
	{"198.51.100.255", false},
	{"198.51.101.0", true},

	{"203.0.112.255", true}, // 203.0.113.0/24 TEST-NET-3
	{"203.0.113.0", false},
	{"203.0.113.255", false},
	{"203.0.114.0", true},

	{"223.255.255.255", true}, // 224.0.0.0/4 multicast
	{"224.0.0.0", false},
	{"239.255.255.255", false},

	{"240.0.0.0", false}, // 240.0.0.0/4 reserved, and the broadcast address
	{"255.255.255.254", false},
	{"255.255.255.255", false},
}

// ipv6Cases: outside 2000::/3 nothing is public but NAT64 of a public
// IPv4 address; inside, the registry's blocks that are not globally
// reachable (and 6to4 and Teredo, whose relays the CA cannot vouch for).
var ipv6Cases = []struct {
	addr   string
	public bool
}{
	{"2606:2800:21f:cb07:6820:80da:af6b:8b2c", true},
	{"2a00:1450:4001:80b::200e", true},

	{"::", false},
	{"::1", false},
	{"::2", false},         // ::/96 IPv4-compatible (deprecated)
	{"::5db8:d70e", false}, // ::93.184.215.14
	{"::ffff:ffff", false}, // end of ::/96
	{"::1:0:0", false},     // reserved by the IETF (::/8)
	{"::fffe:5db8:d70e", false},
	{"::ffff:0:5db8:d70e", false}, // SIIT IPv4-translated (RFC 2765)

	{"::ffff:93.184.215.14", true}, // IPv4-mapped: unmapped and checked
	{"::ffff:127.0.0.1", false},
	{"::ffff:10.0.0.1", false},
	{"::ffff:169.254.169.254", false},

	{"64:ff9b::5db8:d70e", true},  // NAT64 of 93.184.215.14
	{"64:ff9b::a9fe:a9fe", false}, // NAT64 of 169.254.169.254
	{"64:ff9b::a00:1", false},     // NAT64 of 10.0.0.1
	{"64:ff9b::7f00:1", false},    // NAT64 of 127.0.0.1
	{"64:ff9b::", false},          // NAT64 of 0.0.0.0
	{"64:ff9b::ffff:ffff", false}, // NAT64 of 255.255.255.255
	{"64:ff9b::1:0:0", false},     // just past 64:ff9b::/96
	{"64:ff9a:ffff:ffff:ffff:ffff:ffff:ffff", false},

	{"64:ff9b:1::", false}, // 64:ff9b:1::/48 local-use NAT64 (RFC 8215)
	{"64:ff9b:1::5db8:d70e", false},
	{"64:ff9b:1:ffff:ffff:ffff:ffff:ffff", false},
	{"64:ff9b:2::", false},

	{"100::", false}, // 100::/64 discard only
	{"100::ffff:ffff:ffff:ffff", false},
	{"100:0:0:1::1", false}, // 100:0:0:1::/64 dummy prefix (RFC 9780)

	{"5f00::1", false}, // 5f00::/16 SRv6 SIDs
	{"5f00:ffff:ffff:ffff:ffff:ffff:ffff:ffff", false},

	{"1fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", false}, // 2000::/3 global unicast
	{"2000::", true},
	{"3fff:1000::", true},
	{"4000::", false},

	{"2000:ffff:ffff:ffff:ffff:ffff:ffff:ffff", true}, // 2001::/23 IETF protocol assignments
	{"2001::", false},
	{"2001:0:5db8:d70e::a247:28f1", false}, // Teredo with public server and client
	{"2001:1::1", false},
	{"2001:2::1", false},     // benchmarking
	{"2001:3::1", false},     // AMT
	{"2001:4:112::1", false}, // AS112-v6
	{"2001:10::1", false},    // ORCHID (deprecated)
	{"2001:20::1", false},    // ORCHIDv2
	{"2001:30::1", false},    // drone remote ID
	{"2001:1ff:ffff:ffff:ffff:ffff:ffff:ffff", false},
	{"2001:200::", true},

	{"2001:db7:ffff:ffff:ffff:ffff:ffff:ffff", true}, // 2001:db8::/32 documentation
	{"2001:db8::", false},
	{"2001:db8:ffff:ffff:ffff:ffff:ffff:ffff", false},
	{"2001:db9::", true},

	{"2001:ffff:ffff:ffff:ffff:ffff:ffff:ffff", true}, // 2002::/16 6to4
	{"2002::", false},
	{"2002:5db8:d70e::1", false}, // 6to4 of a public IPv4 address
	{"2002:a9fe:a9fe::1", false}, // 6to4 of 169.254.169.254
	{"2002:ffff:ffff:ffff:ffff:ffff:ffff:ffff", false},
	{"2003::", true},

	{"2620:4f:8000::1", true}, // direct delegation AS112-v6: globally reachable

	{"3ffe:ffff:ffff:ffff:ffff:ffff:ffff:ffff", true}, // 3fff::/20 documentation (RFC 9637)
	{"3fff::", false},
	{"3fff:fff:ffff:ffff:ffff:ffff:ffff:ffff", false},

	{"fbff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", false}, // reserved
	{"fc00::", false}, // fc00::/7 unique local
	{"fd00::1", false},
	{"fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", false},
	{"fe00::", false},  // reserved
	{"fe80::1", false}, // fe80::/10 link local
	{"febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff", false},
	{"fec0::1", false}, // fec0::/10 site local (deprecated)
	{"feff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", false},
	{"ff00::", false}, // ff00::/8 multicast
	{"ff02::1", false},
	{"ff0e::1", false},

	{"fe80::1%eth0", false}, // zoned addresses are link scoped
	{"2606:2800:21f:cb07:6820:80da:af6b:8b2c%eth0", false},
	{"::ffff:93.184.215.14%eth0", false},
}

func TestPublicAddr(t *testing.T) {
	for _, tt := range ipv4Cases {
		a := netip.MustParseAddr(tt.addr)
		if got := PublicAddr(a); got != tt.public {
			t.Errorf("PublicAddr(%s) = %v, want %v", a, got, tt.public)
		}
		// The same address, IPv4-mapped or through the NAT64 well-known
		// prefix, is what it is.
		b := a.As4()
		mapped := netip.AddrFrom16([16]byte{10: 0xff, 11: 0xff, 12: b[0], 13: b[1], 14: b[2], 15: b[3]})
		nat64 := netip.AddrFrom16([16]byte{1: 0x64, 2: 0xff, 3: 0x9b, 12: b[0], 13: b[1], 14: b[2], 15: b[3]})
		for _, x := range []netip.Addr{mapped, nat64} {
			if got := PublicAddr(x); got != tt.public {
				t.Errorf("PublicAddr(%s) = %v, want %v (as %s)", x, got, tt.public, a)
			}
		}
	}
	for _, tt := range ipv6Cases {
		a := netip.MustParseAddr(tt.addr)
		if got := PublicAddr(a); got != tt.public {
			t.Errorf("PublicAddr(%s) = %v, want %v", a, got, tt.public)
		}
	}
	if PublicAddr(netip.Addr{}) {
		t.Error("PublicAddr(zero Addr) = true")
	}
}

func TestEmbeddedIPv4(t *testing.T) {
	tests := []struct {
		addr string
		want []string
	}{
		{"64:ff9b::a9fe:a9fe", []string{"169.254.169.254"}},
		{"2002:a9fe:a9fe::1", []string{"169.254.169.254"}},
		// RFC 4380's layout: server 65.54.227.120, client 192.0.2.45
		// (port 40000), the client's bits inverted.
		{"2001:0:4136:e378:8000:63bf:3fff:fdd2", []string{"65.54.227.120", "192.0.2.45"}},
		{"2606:2800:21f:cb07:6820:80da:af6b:8b2c", nil},
	}
	for _, tt := range tests {
		var got []string
		for _, a := range embeddedIPv4(netip.MustParseAddr(tt.addr)) {
			got = append(got, a.String())
		}
		if d := cmp.Diff(tt.want, got); d != "" {
			t.Errorf("embeddedIPv4(%s) (-want +got):\n%s", tt.addr, d)
		}
	}
}

func TestGuardedDialerRefusesPrivateAddresses(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if _, err := guardedDialer("", false)(context.Background(), "tcp", ln.Addr().String()); !errors.Is(err, errNotPublic) {
		t.Errorf("dial loopback: %v, want errNotPublic", err)
	}
	c, err := guardedDialer("", true)(context.Background(), "tcp", ln.Addr().String())
	if err != nil {
		t.Fatalf("dial loopback with AllowPrivateAddresses: %v", err)
	}
	c.Close()
}

// carriedIPv4 is the test's own reading of the IPv4 addresses an IPv6
// address carries or leads to: IPv4-mapped and -compatible, NAT64 with
// the well-known prefix and, in RFC 6052's /48 layout, the local-use
// prefix, 6to4, and Teredo's server and client.
func carriedIPv4(b [16]byte) []netip.Addr {
	v4 := func(p ...byte) netip.Addr { return netip.AddrFrom4([4]byte(p)) }
	var out []netip.Addr
	zero := func(bs ...byte) bool { return bytes.Count(bs, []byte{0}) == len(bs) }
	switch {
	case zero(b[:10]...) && b[10] == 0xff && b[11] == 0xff, zero(b[:12]...):
		out = append(out, v4(b[12:]...))
	case bytes.Equal(b[:4], []byte{0, 0x64, 0xff, 0x9b}) && zero(b[4:12]...):
		out = append(out, v4(b[12:]...))
	case bytes.Equal(b[:6], []byte{0, 0x64, 0xff, 0x9b, 0, 1}):
		out = append(out, v4(b[6], b[7], b[9], b[10]), v4(b[12:]...))
	case b[0] == 0x20 && b[1] == 0x02:
		out = append(out, v4(b[2:6]...))
	case bytes.Equal(b[:4], []byte{0x20, 0x01, 0, 0}):
		out = append(out, v4(b[4:8]...), v4(^b[12], ^b[13], ^b[14], ^b[15]))
	}
	return out
}

func FuzzPublicAddr(f *testing.F) {
	for _, c := range ipv4Cases {
		b := netip.AddrFrom16(netip.MustParseAddr(c.addr).As16()).As16()
		f.Add(b[:])
	}
	for _, c := range ipv6Cases {
		b := netip.MustParseAddr(c.addr).As16()
		f.Add(b[:])
	}
	global := netip.MustParsePrefix("2000::/3")
	f.Fuzz(func(t *testing.T, in []byte) {
		var b [16]byte
		copy(b[:], in)
		a := netip.AddrFrom16(b)
		public := PublicAddr(a)
		if public != PublicAddr(a.Unmap()) {
			t.Fatalf("PublicAddr(%s) = %v but PublicAddr(%s) = %v", a, public, a.Unmap(), !public)
		}
		if !public {
			return
		}
		if !a.Is4In6() && !global.Contains(a) && !nat64WKP.Contains(a) {
			t.Fatalf("PublicAddr(%s) = true outside 2000::/3, ::ffff:0:0/96 and 64:ff9b::/96", a)
		}
		for _, v4 := range carriedIPv4(b) {
			if !v4.IsGlobalUnicast() || v4.IsPrivate() || !PublicAddr(v4) {
				t.Fatalf("PublicAddr(%s) = true, but it leads to %s", a, v4)
			}
		}
	})
}
