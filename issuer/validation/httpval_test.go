package validation

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"syscall"
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

// fetcherVia returns a token fetcher whose dial always reaches addr.
func fetcherVia(cfg Config, addr string) *tokenFetcher {
	return newTokenFetcher(cfg.withDefaults(), func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	})
}

// rawServer answers every connection on loopback with reply, then closes
// it, after reading the request (at most one read).
func rawServer(t *testing.T, reply string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Read(make([]byte, 4096))
			c.Write([]byte(reply))
			c.Close()
		}
	}()
	return ln.Addr().String()
}

func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// TestTokenFetchFailureDetail: the subscriber hears what failed in words
// from a fixed set; the raw error, with addresses and resolvers, is kept
// for reviewers only; the random value is in neither.
func TestTokenFetchFailureDetail(t *testing.T) {
	const value = "RANDOMVALUE"
	const base = "http://example.com/.well-known/pki-validation/"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/.well-known/pki-validation/slow":
			time.Sleep(time.Second)
		case "/.well-known/pki-validation/loop":
			http.Redirect(w, r, r.URL.Path, http.StatusFound)
		case "/.well-known/pki-validation/303":
			http.Redirect(w, r, "/"+value+"/x?"+value, http.StatusSeeOther)
		case "/.well-known/pki-validation/8080":
			http.Redirect(w, r, "http://example.com:8080/x", http.StatusFound)
		case "/.well-known/pki-validation/tls":
			http.Redirect(w, r, "https://example.com:8443/.well-known/pki-validation/tls", http.StatusFound)
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	errDial := func(err error) DialFunc {
		return func(context.Context, string, string) (net.Conn, error) { return nil, err }
	}
	dnsErr := func(notFound bool) error {
		return &net.OpError{Op: "dial", Net: "tcp", Err: &net.DNSError{
			Err: "no such host", Name: "example.com", Server: "10.53.0.1:53", IsNotFound: notFound}}
	}
	cfg := Config{HTTPTimeout: 300 * time.Millisecond, HTTPSPort: 8443}.withDefaults()
	tests := []struct {
		name     string
		f        *tokenFetcher
		path     string
		detail   string // the whole Detail
		internal string // in Internal
	}{
		{"refused", fetcherVia(cfg, closedPort(t)), "a",
			"fetching " + base + "a failed: the connection was refused", "connection refused"},
		{"not public", newTokenFetcher(cfg, func(ctx context.Context, network, _ string) (net.Conn, error) {
			return guardedDialer("", false)(ctx, network, srv.Listener.Addr().String())
		}), "a",
			"fetching " + base + "a failed: the address it resolves to is not publicly routable", "127.0.0.1"},
		{"no such host", newTokenFetcher(cfg, errDial(dnsErr(true))), "a",
			"fetching " + base + "a failed: the name does not resolve", "10.53.0.1:53"},
		{"resolver failure", newTokenFetcher(cfg, errDial(dnsErr(false))), "a",
			"fetching " + base + "a failed: the name could not be resolved", "10.53.0.1:53"},
		{"unreachable", newTokenFetcher(cfg, errDial(&net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.EHOSTUNREACH)})), "a",
			"fetching " + base + "a failed: the address is unreachable", "no route to host"},
		{"connect timeout", newTokenFetcher(cfg, func(ctx context.Context, _, _ string) (net.Conn, error) {
			<-ctx.Done()
			return nil, &net.OpError{Op: "dial", Net: "tcp", Err: ctx.Err()}
		}), "a",
			"fetching " + base + "a failed: the connection timed out", "deadline exceeded"},
		{"slow", fetcherTo(srv, cfg), "slow",
			"fetching " + base + "slow failed: the answer did not come in time", "Client.Timeout"},
		{"too many redirects", fetcherTo(srv, cfg), "loop",
			"fetching " + base + "loop failed: there were more than 5 redirects", "too many redirects"},
		{"303", fetcherTo(srv, cfg), "303",
			"fetching " + base + "303 (redirected to http://example.com/[random-value]/x) failed: a redirect used a status other than 301, 302, 307 or 308 (BR 3.2.2.4.18)", "status 303"},
		{"redirect to 8080", fetcherTo(srv, cfg), "8080",
			"fetching " + base + "8080 (redirected to http://example.com:8080/x) failed: a redirect led elsewhere than http on port 80 or https on port 8443 (BR 3.2.2.4.18)", "example.com:8080"},
		{"tls", fetcherTo(srv, cfg), "tls",
			"fetching " + base + "tls (redirected to https://example.com:8443/.well-known/pki-validation/tls) failed: the TLS handshake failed", "HTTPS client"},
		{"not http", fetcherVia(cfg, rawServer(t, "SSH-2.0-OpenSSH_9.6\r\n\r\n")), "a",
			"fetching " + base + "a failed: the answer is not valid HTTP", "malformed HTTP"},
		{"closed", fetcherVia(cfg, rawServer(t, "")), "a",
			"fetching " + base + "a failed: the connection was closed or reset before a complete answer", "EOF"},
		{"short body", fetcherVia(cfg, rawServer(t, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nRANDOM")), "a",
			"reading " + base + "a failed: the connection was closed or reset before a complete answer", "unexpected EOF"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.f.check(context.Background(), base+tt.path, value)
			var miss *checkFailure
			if !errors.As(err, &miss) {
				t.Fatalf("check: %v, want a *checkFailure", err)
			}
			if miss.Detail != tt.detail {
				t.Errorf("Detail:\n got %q\nwant %q", miss.Detail, tt.detail)
			}
			if !strings.Contains(miss.Internal, tt.internal) {
				t.Errorf("Internal %q lacks %q", miss.Internal, tt.internal)
			}
			for _, s := range []string{miss.Detail, miss.Internal} {
				if strings.Contains(s, value) {
					t.Errorf("the random value is in %q", s)
				}
			}
			for _, raw := range []string{"127.0.0.1", "10.53.0.1", "dial", "tcp", "Get "} {
				if strings.Contains(miss.Detail, raw) {
					t.Errorf("Detail %q holds raw text %q", miss.Detail, raw)
				}
			}
		})
	}
}

// fuzzValue is the random value FuzzTokenFetch looks for.
const fuzzValue = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"

// pipeDial connects every fetch to a server that reads the request (or
// TLS ClientHello: one write either way), answers raw and hangs up; every
// redirect comes back to it.
func pipeDial(raw []byte) DialFunc {
	return func(context.Context, string, string) (net.Conn, error) {
		client, server := net.Pipe()
		go func() {
			defer server.Close()
			if _, err := server.Read(make([]byte, 64<<10)); err != nil {
				return
			}
			go io.Copy(io.Discard, server)
			server.Write(raw)
		}()
		return client, nil
	}
}

// answerBody is the body of raw's final answer, read as http.Transport
// reads it (informational answers skipped), if it is a 2xx one.
func answerBody(raw []byte) ([]byte, bool) {
	br := bufio.NewReader(bytes.NewReader(raw))
	req, _ := http.NewRequest(http.MethodGet, "http://example.com/", nil)
	for range 10 {
		resp, err := http.ReadResponse(br, req)
		if err != nil {
			return nil, false
		}
		if resp.StatusCode/100 == 1 && resp.StatusCode != http.StatusSwitchingProtocols {
			continue
		}
		body, _ := io.ReadAll(io.LimitReader(resp.Body, maxTokenBody+1))
		return body, resp.StatusCode/100 == 2
	}
	return nil, false
}

// detailShape is every Detail check may give: URLs (escaped, so without
// spaces) and the fixed reasons, nothing of the network stack's text.
func detailShape(f *tokenFetcher) *regexp.Regexp {
	reasons := []string{
		reasonNotPublic, reasonNoSuchHost, reasonDNS, reasonRefused, reasonUnreachable, reasonDialTimeout,
		reasonSlow, reasonTLS, reasonReset, reasonBadRedirect, reasonNotHTTP, reasonOther,
		fmt.Sprintf("there were more than %d redirects", f.maxRedirects),
		fmt.Sprintf("a redirect led elsewhere than http on port %d or https on port %d (BR 3.2.2.4.18)", f.httpPort, f.httpsPort),
	}
	for i, r := range reasons {
		reasons[i] = regexp.QuoteMeta(r)
	}
	why := "(" + strings.Join(reasons, "|") + ")"
	return regexp.MustCompile(`^(fetching \S+( \(redirected to \S+\))? failed: ` + why +
		`|reading \S+ failed: ` + why +
		`|GET \S+ answered \d+; a 2xx answer is needed \(BR 3\.2\.2\.4\.18\)` +
		fmt.Sprintf(`|the file at \S+ is larger than %d bytes`, maxTokenBody) +
		`|the file at \S+ does not contain the random value)$`)
}

func FuzzTokenFetch(f *testing.F) {
	for _, s := range []string{
		"HTTP/1.1 200 OK\r\nContent-Length: 26\r\n\r\n" + fuzzValue,
		"HTTP/1.1 200 OK\r\n\r\nprefix " + fuzzValue + " suffix",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nd\r\nABCDEFGHIJKLM\r\nd\r\nNOPQRSTUVWXYZ\r\n0\r\n\r\n",
		"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n\r\n" + fuzzValue,
		"HTTP/1.0 200 OK\r\nContent-Length: 5\r\n\r\n" + fuzzValue,
		"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort",
		"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n",
		"HTTP/1.1 302 Found\r\nLocation: /.well-known/pki-validation/next\r\n\r\n",
		"HTTP/1.1 301 Moved Permanently\r\nLocation: https://example.com/x\r\n\r\n",
		"HTTP/1.1 303 See Other\r\nLocation: http://example.com/" + fuzzValue + "?" + fuzzValue + "\r\n\r\n",
		"HTTP/1.1 302 Found\r\nLocation: http://example.com:8080/\r\n\r\n",
		"HTTP/1.1 307 Temporary Redirect\r\nLocation: http://[::1\r\n\r\n",
		"HTTP/1.1 200 OK\r\nX: " + strings.Repeat("a", 17<<10) + "\r\n\r\n",
		"HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\n",
		"SSH-2.0-OpenSSH_9.6\r\n",
		"",
	} {
		f.Add([]byte(s))
	}
	const contact = "http://example.com/.well-known/pki-validation/0123456789abcdef"
	cfg := Config{HTTPTimeout: 5 * time.Second}.withDefaults()
	shape := detailShape(newTokenFetcher(cfg, nil))
	f.Fuzz(func(t *testing.T, raw []byte) {
		fetcher := newTokenFetcher(cfg, pipeDial(raw))
		ev, err := fetcher.check(context.Background(), contact, fuzzValue)
		if err == nil {
			if body, ok := answerBody(raw); !ok || !bytes.Contains(body, []byte(fuzzValue)) {
				t.Fatalf("check succeeded (%v) on an answer whose body lacks the value: %q", ev, raw)
			}
			return
		}
		var miss *checkFailure
		if !errors.As(err, &miss) {
			t.Fatalf("check: %v, want a *checkFailure", err)
		}
		if !shape.MatchString(miss.Detail) {
			t.Fatalf("Detail %q is not one of the fixed forms (Internal %q)", miss.Detail, miss.Internal)
		}
		if strings.Contains(miss.Detail, fuzzValue) || strings.Contains(miss.Internal, fuzzValue) {
			t.Fatalf("the random value is in %q or %q", miss.Detail, miss.Internal)
		}
	})
}
