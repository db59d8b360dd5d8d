package validation

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/trustline/trustline/internal/store"
)

// fetcherTo returns a token fetcher that connects every address to srv.
func fetcherTo(srv *httptest.Server, cfg Config) *tokenFetcher {
	cfg = cfg.withDefaults()
	dial := func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, srv.Listener.Addr().String())
	}
	return newTokenFetcher(cfg, dial)
}

func TestTokenFetch(t *testing.T) {
	const value = "RANDOMVALUE"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/.well-known/pki-validation/ok":
			w.Write([]byte("prefix " + value + " suffix"))
		case "/.well-known/pki-validation/big":
			w.Write([]byte(strings.Repeat("x", maxTokenBody+1)))
		case "/.well-known/pki-validation/500":
			http.Error(w, value, 500)
		case "/.well-known/pki-validation/slow":
			time.Sleep(2 * time.Second)
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	f := fetcherTo(srv, Config{HTTPTimeout: 500 * time.Millisecond})
	tests := []struct {
		path, want string // want "" means success
	}{
		{"ok", ""},
		{"missing", "answered 404"},
		{"500", "answered 500"},
		{"big", "larger than"},
		{"slow", "fetching"},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			ev, err := f.check(context.Background(), "http://example.com/.well-known/pki-validation/"+tt.path, value)
			if tt.want == "" {
				if err != nil || ev["status"] != 200 {
					t.Errorf("check: %v %v", ev, err)
				}
				return
			}
			var miss *checkFailure
			if !errors.As(err, &miss) || !strings.Contains(miss.Detail, tt.want) {
				t.Errorf("check: %v, want a failure with %q", err, tt.want)
			}
		})
	}
}

func TestRedirectRules(t *testing.T) {
	f := newTokenFetcher(Config{}.withDefaults(), nil)
	redirect := func(status int, to string) *http.Request {
		r, _ := http.NewRequest("GET", to, nil)
		r.Response = &http.Response{StatusCode: status}
		return r
	}
	via := func(n int) []*http.Request { return make([]*http.Request, n) }
	tests := []struct {
		name string
		req  *http.Request
		via  []*http.Request
		ok   bool
	}{
		{"301 http", redirect(301, "http://www.example.com/x"), via(1), true},
		{"302 https", redirect(302, "https://example.com/x"), via(1), true},
		{"307 explicit port 80", redirect(307, "http://example.com:80/x"), via(1), true},
		{"308 explicit port 443", redirect(308, "https://example.com:443/x"), via(1), true},
		{"303", redirect(303, "http://example.com/x"), via(1), false},
		{"300", redirect(300, "http://example.com/x"), via(1), false},
		{"port 8080", redirect(302, "http://example.com:8080/x"), via(1), false},
		{"https on 80", redirect(302, "https://example.com:80/x"), via(1), false},
		{"ftp", redirect(302, "ftp://example.com/x"), via(1), false},
		{"fifth redirect", redirect(302, "http://example.com/x"), via(5), true},
		{"sixth redirect", redirect(302, "http://example.com/x"), via(6), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := f.checkRedirect(tt.req, tt.via)
			if (err == nil) != tt.ok {
				t.Errorf("checkRedirect: %v, want ok=%v", err, tt.ok)
			}
		})
	}
}

func TestPublicAddr(t *testing.T) {
	tests := []struct {
		addr   string
		public bool
	}{
		{"93.184.215.14", true},
		{"2606:2800:21f:cb07:6820:80da:af6b:8b2c", true},
		{"127.0.0.1", false},
		{"10.1.2.3", false},
		{"172.16.0.1", false},
		{"192.168.1.1", false},
		{"169.254.169.254", false}, // cloud metadata
		{"100.64.0.1", false},
		{"0.0.0.0", false},
		{"::1", false},
		{"fe80::1", false},
		{"fd00::1", false},
		{"::ffff:127.0.0.1", false},
		{"224.0.0.1", false},
		{"192.0.2.1", false},
	}
	for _, tt := range tests {
		if got := PublicAddr(netip.MustParseAddr(tt.addr)); got != tt.public {
			t.Errorf("PublicAddr(%s) = %v, want %v", tt.addr, got, tt.public)
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

func TestCovers(t *testing.T) {
	v := func(method, domain string) store.Validation { return store.Validation{Method: method, Domain: domain} }
	tests := []struct {
		val  store.Validation
		name string
		want bool
	}{
		{v(MethodEmail, "example.com"), "example.com", true},
		{v(MethodEmail, "example.com"), "a.b.example.com", true},
		{v(MethodEmail, "example.com"), "notexample.com", false},
		{v(MethodEmail, "example.com"), "*.example.com", false},
		{v(MethodWhoisEmail, "example.com"), "www.example.com", true},
		{v(MethodWhoisEmail, "example.com"), "*.example.com", false},
		{v(MethodDNSTXT, "example.com"), "*.example.com", true},
		{v(MethodDNSTXT, "example.com"), "*.www.example.com", true},
		{v(MethodDNSTXT, "example.com"), "www.example.com", true},
		{v(MethodHTTPToken, "example.com"), "example.com", true},
		{v(MethodHTTPToken, "example.com"), "www.example.com", false},
		{v(MethodHTTPToken, "example.com"), "*.example.com", false},
	}
	for _, tt := range tests {
		if got := covers(tt.val, tt.name); got != tt.want {
			t.Errorf("%s validation of %s covers %s = %v, want %v", tt.val.Method, tt.val.Domain, tt.name, got, tt.want)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"zero", Config{}, ""},
		{"full", Config{Resolver: "127.0.0.1:53", DNSTransport: "tcp", WhoisEmail: true, WhoisServer: "whois.iana.org:43"}, ""},
		{"resolver without port", Config{Resolver: "127.0.0.1"}, "host:port"},
		{"transport", Config{DNSTransport: "doh"}, "DNSTransport"},
		{"whois without server", Config{WhoisEmail: true}, "WhoisServer"},
		{"lifetime over 30 days", Config{ChallengeLifetime: 31 * 24 * time.Hour}, "30 days"},
		{"redirects", Config{MaxRedirects: 11}, "MaxRedirects"},
		{"port", Config{HTTPPort: 70000}, "HTTPPort"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if (tt.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tt.want)) {
				t.Errorf("Validate: %v, want %q", err, tt.want)
			}
		})
	}
}
