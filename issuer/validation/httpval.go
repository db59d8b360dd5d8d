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
	"net/url"
	"strconv"
	"strings"
	"sync"
	"syscall"
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

// The redirects checkRedirect refuses, told apart so that the subscriber
// hears which rule the answer broke.
var (
	errTooManyRedirects = errors.New("too many redirects")
	errRedirectStatus   = errors.New("redirect status refused")
	errRedirectTarget   = errors.New("redirect target refused")
)

// checkRedirect applies BR §3.2.2.4.18's rules to a redirect.
func (f *tokenFetcher) checkRedirect(req *http.Request, via []*http.Request) error {
	if len(via) > f.maxRedirects {
		return fmt.Errorf("%w: more than %d", errTooManyRedirects, f.maxRedirects)
	}
	if req.Response != nil {
		switch req.Response.StatusCode {
		case http.StatusMovedPermanently, http.StatusFound, http.StatusTemporaryRedirect, http.StatusPermanentRedirect:
		default:
			return fmt.Errorf("%w: status %d (the BR allow 301, 302, 307 and 308)", errRedirectStatus, req.Response.StatusCode)
		}
	}
	if !f.allowedURL(req.URL) {
		return fmt.Errorf("%w: %s is not http on port %d or https on port %d", errRedirectTarget, req.URL.Redacted(), f.httpPort, f.httpsPort)
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

// check fetches the file at contact and looks for want in it. A
// subscriber-side failure is a *checkFailure whose Detail says what went
// wrong in words from a fixed set (the CA's network, resolver and
// libraries stay out of it) and whose Internal keeps the raw error for
// reviewers; neither holds want.
func (f *tokenFetcher) check(ctx context.Context, contact, want string) (map[string]any, error) {
	return f.fetch(ctx, contact, want, fetchRule{
		section: "3.2.2.4.18",
		found:   func(body []byte) bool { return bytes.Contains(body, []byte(want)) },
		missing: "does not contain the random value",
	})
}

// checkKeyAuthorization is ACME http-01 (RFC 8555 §8.3, BR §3.2.2.4.19):
// the file at contact must be the key authorization, give or take white
// space at its end.
func (f *tokenFetcher) checkKeyAuthorization(ctx context.Context, contact, keyAuth string) (map[string]any, error) {
	return f.fetch(ctx, contact, keyAuth, fetchRule{
		section: "3.2.2.4.19",
		found:   func(body []byte) bool { return string(bytes.TrimRight(body, " \t\r\n")) == keyAuth },
		missing: "is not the key authorization",
	})
}

// fetchRule is what a fetched file must satisfy.
type fetchRule struct {
	section string            // the BR method, for messages and evidence
	found   func([]byte) bool // whether the body holds what is looked for
	missing string            // what the subscriber hears when it does not
}

// fetch gets the file at contact and applies rule to it; want is what
// is looked for, kept out of every message.
func (f *tokenFetcher) fetch(ctx context.Context, contact, want string, rule fetchRule) (map[string]any, error) {
	if want == "" {
		return nil, errors.New("validation: no random value to look for") // any file would contain it
	}
	u, err := f.fetchURL(contact)
	if err != nil {
		return nil, err
	}
	tr := &fetchTrace{}
	req, err := http.NewRequestWithContext(httptrace.WithClientTrace(ctx, tr.clientTrace()), http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("validation: building request: %w", err)
	}
	req.Header.Set("User-Agent", "Trustline domain validation (BR "+rule.section+")")
	req.Header.Set("Accept", "text/plain, */*")
	fail := func(detail string, err error) error {
		cf := &checkFailure{Detail: redact(detail, want)}
		if err != nil {
			cf.Internal = redact(truncate(tr.describe(err), 1000), want)
		}
		return cf
	}
	resp, err := f.client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		where := displayURL(u)
		if at := failedURL(u, resp, err); at != nil && displayURL(at) != where {
			where += " (redirected to " + displayURL(at) + ")"
		}
		return nil, fail("fetching "+where+" failed: "+f.failureReason(err, tr), err)
	}
	defer resp.Body.Close()
	final := displayURL(resp.Request.URL)
	if resp.StatusCode/100 != 2 {
		return nil, fail(fmt.Sprintf("GET %s answered %d; a 2xx answer is needed (BR %s)", final, resp.StatusCode, rule.section), nil)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxTokenBody+1))
	switch {
	case err != nil:
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fail("reading "+final+" failed: "+f.failureReason(err, tr), err)
	case len(body) > maxTokenBody:
		return nil, fail(fmt.Sprintf("the file at %s is larger than %d bytes", final, maxTokenBody), nil)
	case !rule.found(body):
		return nil, fail("the file at "+final+" "+rule.missing, nil)
	}
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return map[string]any{
		"br_section": rule.section, "url": u.String(), "final_url": resp.Request.URL.String(), "redirects": redirectChain(resp),
		"status": resp.StatusCode, "remote_addrs": tr.remotes, "bytes": len(body),
	}, nil
}

// fetchTrace follows a fetch's connections: where they went, for the
// evidence, and how far the last one got, to explain a failure.
type fetchTrace struct {
	mu        sync.Mutex
	remotes   []string
	connected bool // the request under way has a connection
	tlsFailed bool // and its TLS handshake failed
}

func (t *fetchTrace) clientTrace() *httptrace.ClientTrace {
	return &httptrace.ClientTrace{
		GetConn: func(string) {
			t.mu.Lock()
			defer t.mu.Unlock()
			t.connected, t.tlsFailed = false, false
		},
		TLSHandshakeDone: func(_ tls.ConnectionState, err error) {
			t.mu.Lock()
			defer t.mu.Unlock()
			t.tlsFailed = err != nil
		},
		GotConn: func(i httptrace.GotConnInfo) {
			t.mu.Lock()
			defer t.mu.Unlock()
			t.connected = true
			t.remotes = append(t.remotes, i.Conn.RemoteAddr().String())
		},
	}
}

// describe is err for reviewers, with the addresses connected to.
func (t *fetchTrace) describe(err error) string {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.remotes) == 0 {
		return err.Error()
	}
	return fmt.Sprintf("%v (connected to %s)", err, strings.Join(t.remotes, ", "))
}

// Why a fetch failed, as the subscriber is told: specific enough to act
// on, silent about the CA's side (addresses resolved, resolvers, error
// text of the network stack).
const (
	reasonNotPublic   = "the address it resolves to is not publicly routable"
	reasonNoSuchHost  = "the name does not resolve"
	reasonDNS         = "the name could not be resolved"
	reasonRefused     = "the connection was refused"
	reasonUnreachable = "the address is unreachable"
	reasonDialTimeout = "the connection timed out"
	reasonSlow        = "the answer did not come in time"
	reasonTLS         = "the TLS handshake failed"
	reasonReset       = "the connection was closed or reset before a complete answer"
	reasonBadRedirect = "a redirect used a status other than 301, 302, 307 or 308 (BR 3.2.2.4.18)"
	reasonNotHTTP     = "the answer is not valid HTTP"
	reasonOther       = "the connection failed"
)

// failureReason classifies err, the error of a fetch traced by t.
func (f *tokenFetcher) failureReason(err error, t *fetchTrace) string {
	t.mu.Lock()
	connected, tlsFailed := t.connected, t.tlsFailed
	t.mu.Unlock()
	switch {
	case errors.Is(err, errTooManyRedirects):
		return fmt.Sprintf("there were more than %d redirects", f.maxRedirects)
	case errors.Is(err, errRedirectStatus):
		return reasonBadRedirect
	case errors.Is(err, errRedirectTarget):
		return fmt.Sprintf("a redirect led elsewhere than http on port %d or https on port %d (BR 3.2.2.4.18)", f.httpPort, f.httpsPort)
	}
	// What went wrong before or while connecting is told as any dial's
	// failure is; what went wrong after, by how far the fetch got.
	base := dialReason(err)
	switch {
	case base == reasonNotPublic || base == reasonNoSuchHost || base == reasonDNS:
		return base
	case tlsFailed:
		return reasonTLS
	case base == reasonDialTimeout && connected:
		return reasonSlow
	case base != reasonOther:
		return base
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return reasonReset
	case connected:
		return reasonNotHTTP
	}
	return reasonOther
}

// failedURL is the URL whose fetch failed with err, when Do returned
// resp and err: a refused redirect's error names the Location as
// written, relative to the URL that answered it.
func failedURL(u *url.URL, resp *http.Response, err error) *url.URL {
	var ue *url.Error
	if !errors.As(err, &ue) {
		return nil
	}
	if resp != nil && resp.Request != nil {
		u = resp.Request.URL
	}
	at, perr := u.Parse(ue.URL)
	if perr != nil {
		return nil
	}
	return at
}

// displayURL is u as a subscriber may be shown it: scheme, host and path,
// bounded; a query is the subscriber's server's own business.
func displayURL(u *url.URL) string {
	return truncate((&url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path, RawPath: u.RawPath}).String(), 200)
}

// redact keeps the random value out of a text: a redirect's target is the
// subscriber's server's to choose.
func redact(s, value string) string {
	return strings.ReplaceAll(s, value, "[random-value]")
}

// redirectChain lists the URLs that redirected, first first.
func redirectChain(resp *http.Response) []string {
	var out []string
	for r := resp.Request.Response; r != nil; r = r.Request.Response {
		out = append([]string{fmt.Sprintf("%d %s", r.StatusCode, r.Request.URL)}, out...)
	}
	return out
}
