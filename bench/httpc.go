package bench

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/valyala/fasthttp"
)

// endpoint is a parsed --target URL.
type endpoint struct {
	raw      string
	addr     string // host:port to dial
	host     string // Host header
	tls      bool
	basePath string // path without a trailing slash, "" for the root
}

func parseEndpoint(raw string) (endpoint, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return endpoint{}, fmt.Errorf("bench: target %q: want an http:// or https:// URL", raw)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return endpoint{}, fmt.Errorf("bench: target %q: no query or fragment, please", raw)
	}
	e := endpoint{raw: raw, host: u.Host, tls: u.Scheme == "https", basePath: strings.TrimRight(u.EscapedPath(), "/")}
	port := u.Port()
	if port == "" {
		port = "80"
		if e.tls {
			port = "443"
		}
	}
	e.addr = net.JoinHostPort(u.Hostname(), port)
	return e, nil
}

// client returns an HTTP/1.1 client holding at most one connection: each
// worker owns one, as wrk's connections do. Paths are sent exactly as
// built (no normalisation: base64 holds '/' and '+').
func (e endpoint) client(timeout time.Duration, maxBody int) *fasthttp.HostClient {
	return &fasthttp.HostClient{
		Addr:                     e.addr,
		IsTLS:                    e.tls,
		MaxConns:                 1,
		ReadTimeout:              timeout,
		WriteTimeout:             timeout,
		MaxIdleConnDuration:      time.Minute,
		MaxResponseBodySize:      maxBody,
		NoDefaultUserAgentHeader: true,
		DisablePathNormalizing:   true,
	}
}

// transportFailure classifies a client error.
func transportFailure(err error) error {
	var ne net.Error
	if errors.Is(err, fasthttp.ErrTimeout) || errors.Is(err, os.ErrDeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
		return fail("timeout", err)
	}
	return fail("transport", err)
}

// statusFailure is the error for an unexpected HTTP status.
func statusFailure(code int, body []byte) error {
	return fail("http_"+strconv.Itoa(code), fmt.Errorf("HTTP %d: %s", code, clip(string(body), 100)))
}
