package clientip

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"
)

func TestClient(t *testing.T) {
	tr, err := Parse([]string{"10.0.0.0/8", "2001:db8:1::/48", "192.0.2.7"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, peer string
		xff        []string
		want       string
	}{
		{"no proxy", "198.51.100.1:5000", nil, "198.51.100.1"},
		{"untrusted peer's header is ignored", "198.51.100.1:5000", []string{"203.0.113.9"}, "198.51.100.1"},
		{"trusted proxy", "10.1.2.3:5000", []string{"203.0.113.9"}, "203.0.113.9"},
		{"client forges entries to the left", "10.1.2.3:5000", []string{"1.2.3.4, 203.0.113.9"}, "203.0.113.9"},
		{"two trusted proxies", "10.1.2.3:5000", []string{"203.0.113.9, 192.0.2.7"}, "203.0.113.9"},
		{"several header lines", "10.1.2.3:5000", []string{"1.2.3.4", "203.0.113.9"}, "203.0.113.9"},
		{"with ports", "10.1.2.3:5000", []string{"203.0.113.9:4711"}, "203.0.113.9"},
		{"IPv6", "[2001:db8:1::5]:443", []string{"[2001:db8:2::9]:80"}, "2001:db8:2::9"},
		{"mapped IPv4 peer", "[::ffff:10.1.2.3]:5000", []string{"203.0.113.9"}, "203.0.113.9"},
		{"garbage stops at the proxy's view", "10.1.2.3:5000", []string{"203.0.113.9, not-an-ip"}, "10.1.2.3"},
		{"only proxies", "10.1.2.3:5000", []string{"10.9.9.9"}, "10.9.9.9"},
		{"trusted peer, no header", "10.1.2.3:5000", nil, "10.1.2.3"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/", nil)
			r.RemoteAddr = tc.peer
			for _, v := range tc.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			if got := tr.Client(r); got != netip.MustParseAddr(tc.want) {
				t.Fatalf("Client = %v, want %s", got, tc.want)
			}
		})
	}
}

func TestHandlerRewritesRemoteAddr(t *testing.T) {
	tr, _ := Parse([]string{"127.0.0.1"})
	var seen string
	h := tr.Handler(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) { seen = r.RemoteAddr }))
	r := httptest.NewRequest("GET", "/", nil)
	r.RemoteAddr = "127.0.0.1:999"
	r.Header.Set("X-Forwarded-For", "2001:db8::7")
	h.ServeHTTP(httptest.NewRecorder(), r)
	if seen != "[2001:db8::7]:0" {
		t.Fatalf("RemoteAddr %q", seen)
	}
	none, _ := Parse(nil)
	r.RemoteAddr = "127.0.0.1:999"
	none.Handler(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) { seen = r.RemoteAddr })).ServeHTTP(httptest.NewRecorder(), r)
	if seen != "127.0.0.1:999" {
		t.Fatalf("no trusted proxies: RemoteAddr %q", seen)
	}
}

func TestParseRefuses(t *testing.T) {
	for _, s := range []string{"10.0.0.0/33", "proxy.example", ""} {
		if _, err := Parse([]string{s}); err == nil {
			t.Errorf("Parse(%q) accepted", s)
		}
	}
}

// FuzzClient: X-Forwarded-For is untrusted text. Client never panics, and
// the address it returns is the peer or one written in the header.
func FuzzClient(f *testing.F) {
	for _, s := range []string{"203.0.113.9", "1.2.3.4, 203.0.113.9", "[2001:db8::1]:80", "", ",,,", "10.0.0.1, 10.0.0.2", "[::ffff:1.2.3.4]"} {
		f.Add("10.1.2.3:5000", s)
	}
	tr, _ := Parse([]string{"10.0.0.0/8"})
	f.Fuzz(func(t *testing.T, peer, xff string) {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = peer
		r.Header.Set("X-Forwarded-For", xff)
		got := tr.Client(r)
		if p := peerAddr(peer); got != p && !tr.contains(p) {
			t.Fatalf("an untrusted peer %q was replaced by %v", peer, got)
		}
	})
}
