package validation

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/netip"
	"net/url"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// Agreed-Upon Change to Website v2 (BR §3.2.2.4.18): the subscriber serves
// the random value in a file under /.well-known/pki-validation/ on the
// domain, named by a token that is not the value; the CA fetches it over
// http on port 80 and accepts a 2xx answer whose body contains the value.
// Redirects are followed only as the BR allow: 301, 302, 307 or 308, to
// http or https on an Authorized Port, at most MaxRedirects of them.
// Bodies and headers are bounded; proxies from the environment are never
// used.

// maxTokenBody bounds the file read; the value is 26 characters.
const maxTokenBody = 64 << 10

// tokenFetcher fetches http-token files.
type tokenFetcher struct {
	client       *http.Client
	httpPort     int
	httpsPort    int
	maxRedirects int
}

func newTokenFetcher(cfg Config, dial DialFunc) *tokenFetcher {
	f := &tokenFetcher{httpPort: cfg.HTTPPort, httpsPort: cfg.HTTPSPort, maxRedirects: cfg.MaxRedirects}
	tr := &http.Transport{
		Proxy:       nil,
		DialContext: dial,
		// The BR ask for a 2xx answer from the domain, not for a trusted
		// certificate: a site being validated often has none yet, so a
		// redirect to https is followed whatever it presents (as
		// Let's Encrypt does for HTTP-01).
		TLSClientConfig:        &tls.Config{InsecureSkipVerify: true},
		DisableKeepAlives:      true,
		DisableCompression:     true,
		MaxResponseHeaderBytes: 16 << 10,
		TLSHandshakeTimeout:    cfg.HTTPTimeout,
		ResponseHeaderTimeout:  cfg.HTTPTimeout,
	}
	f.client = &http.Client{Transport: tr, Timeout: cfg.HTTPTimeout, CheckRedirect: f.checkRedirect}
	return f
}

var errRedirect = errors.New("redirect refused")

// checkRedirect applies BR §3.2.2.4.18's rules to a redirect.
func (f *tokenFetcher) checkRedirect(req *http.Request, via []*http.Request) error {
	if len(via) > f.maxRedirects {
		return fmt.Errorf("%w: more than %d redirects", errRedirect, f.maxRedirects)
	}
	if req.Response != nil {
		switch req.Response.StatusCode {
		case http.StatusMovedPermanently, http.StatusFound, http.StatusTemporaryRedirect, http.StatusPermanentRedirect:
		default:
			return fmt.Errorf("%w: status %d (the BR allow 301, 302, 307 and 308)", errRedirect, req.Response.StatusCode)
		}
	}
	if !f.allowedURL(req.URL) {
		return fmt.Errorf("%w: %s is not http on port %d or https on port %d", errRedirect, req.URL.Redacted(), f.httpPort, f.httpsPort)
	}
	return nil
}

func (f *tokenFetcher) allowedURL(u *url.URL) bool {
	port := u.Port()
	switch u.Scheme {
	case "http":
		return port == strconv.Itoa(f.httpPort) || (port == "" && f.httpPort == 80)
	case "https":
		return port == strconv.Itoa(f.httpsPort) || (port == "" && f.httpsPort == 443)
	}
	return false
}

// fetchURL turns the stored contact URL into the one to fetch: the same,
// with the port when it is not 80.
func (f *tokenFetcher) fetchURL(contact string) (*url.URL, error) {
	u, err := url.Parse(contact)
	if err != nil || u.Scheme != "http" || u.Host == "" {
		return nil, fmt.Errorf("validation: stored http-token URL %q is malformed", contact)
	}
	if f.httpPort != 80 {
		u.Host = net.JoinHostPort(u.Hostname(), strconv.Itoa(f.httpPort))
	}
	return u, nil
}

// check fetches the file at contact and looks for want in it.
func (f *tokenFetcher) check(ctx context.Context, contact, want string) (map[string]any, error) {
	u, err := f.fetchURL(contact)
	if err != nil {
		return nil, err
	}
	var (
		mu      sync.Mutex
		remotes []string
	)
	trace := &httptrace.ClientTrace{GotConn: func(i httptrace.GotConnInfo) {
		mu.Lock()
		defer mu.Unlock()
		remotes = append(remotes, i.Conn.RemoteAddr().String())
	}}
	req, err := http.NewRequestWithContext(httptrace.WithClientTrace(ctx, trace), http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("validation: building request: %w", err)
	}
	req.Header.Set("User-Agent", "Trustline domain validation (BR 3.2.2.4.18)")
	req.Header.Set("Accept", "text/plain, */*")
	resp, err := f.client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, &checkFailure{Detail: "fetching " + u.String() + " failed: " + truncate(unwrapURLError(err).Error(), 200)}
	}
	defer resp.Body.Close()
	final := resp.Request.URL.String()
	if resp.StatusCode/100 != 2 {
		return nil, &checkFailure{Detail: fmt.Sprintf("GET %s answered %d; a 2xx answer is needed (BR 3.2.2.4.18)", final, resp.StatusCode)}
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxTokenBody+1))
	switch {
	case err != nil:
		return nil, &checkFailure{Detail: "reading " + final + " failed: " + truncate(unwrapURLError(err).Error(), 200)}
	case len(body) > maxTokenBody:
		return nil, &checkFailure{Detail: fmt.Sprintf("the file at %s is larger than %d bytes", final, maxTokenBody)}
	case !bytes.Contains(body, []byte(want)):
		return nil, &checkFailure{Detail: "the file at " + final + " does not contain the random value"}
	}
	mu.Lock()
	defer mu.Unlock()
	return map[string]any{
		"br_section": "3.2.2.4.18", "url": u.String(), "final_url": final, "redirects": redirectChain(resp),
		"status": resp.StatusCode, "remote_addrs": remotes, "bytes": len(body),
	}, nil
}

// redirectChain lists the URLs that redirected, first first.
func redirectChain(resp *http.Response) []string {
	var out []string
	for r := resp.Request.Response; r != nil; r = r.Request.Response {
		out = append([]string{fmt.Sprintf("%d %s", r.StatusCode, r.Request.URL)}, out...)
	}
	return out
}

func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// errNotPublic: a connection to a non-public address was refused.
var errNotPublic = errors.New("address is not publicly routable")

// guardedDialer dials as net.Dialer does, resolving names through resolver
// (host:port; "" means the system's) and, unless allowPrivate, refusing
// addresses that are not public — after resolution, so a name that
// resolves to 10.0.0.1 is refused as 10.0.0.1 is.
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

// specialPrefixes are global-unicast-looking ranges that are not the
// public Internet (RFC 6890 and successors).
var specialPrefixes = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),
	netip.MustParsePrefix("100.64.0.0/10"),
	netip.MustParsePrefix("192.0.0.0/24"),
	netip.MustParsePrefix("192.0.2.0/24"),
	netip.MustParsePrefix("198.18.0.0/15"),
	netip.MustParsePrefix("198.51.100.0/24"),
	netip.MustParsePrefix("203.0.113.0/24"),
	netip.MustParsePrefix("240.0.0.0/4"),
	netip.MustParsePrefix("64:ff9b:1::/48"),
	netip.MustParsePrefix("2001::/23"),
	netip.MustParsePrefix("2001:db8::/32"),
	netip.MustParsePrefix("2002::/16"),
}

// PublicAddr reports whether a is a public unicast address: not loopback,
// private, link-local, multicast, unspecified or special-purpose.
func PublicAddr(a netip.Addr) bool {
	a = a.Unmap()
	if !a.IsGlobalUnicast() || a.IsPrivate() {
		return false
	}
	for _, p := range specialPrefixes {
		if p.Contains(a) {
			return false
		}
	}
	return true
}
