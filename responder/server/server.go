// Package server is the fasthttp adapter of the OCSP responder: it takes
// requests as RFC 6960 Appendix A.1 carries them (POST with an
// application/ocsp-request body, GET with the base64 request in the path),
// asks a responder.Responder, and writes its Answer with the headers of
// RFC 5019 §6 (Content-Type, Cache-Control max-age until the response's
// refresh point, Last-Modified = thisUpdate, Expires = nextUpdate, ETag and
// 304 on If-None-Match, optional cache tags). GET /healthz answers "ok".
//
// GET paths are decoded from the raw request target (fasthttp normalises
// Path(), which would turn %2F into a path separator and collapse
// slashes): standard or URL-safe base64, with or without padding,
// percent-encoded or not, '+' turned into a space, extra leading slashes,
// absolute-form targets from proxies. POST bodies are bounded; slow
// clients are bounded by the read timeout.
//
// Who may import it: cmd/ and tests. Like responder, it imports nothing
// from issuer/, no database driver and no PKCS#11.
package server

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/valyala/fasthttp"

	"github.com/trustline/trustline/internal/ocspcodec"
	"github.com/trustline/trustline/responder"
)

// Answerer is the responder as the server uses it (*responder.Responder).
type Answerer interface {
	AnswerAt(ctx context.Context, der []byte, now time.Time) responder.Answer
}

// Config configures a Server.
type Config struct {
	// MaxBody bounds POST bodies, in octets; larger ones get 413. A
	// one-CertID request is about 80 octets; a signed one with a
	// certificate chain a few KB. 0 means 16 KiB.
	MaxBody int
	// ReadTimeout bounds reading one request, headers and body (slow
	// clients). 0 means 5 s.
	ReadTimeout time.Duration
	// WriteTimeout bounds writing one response. 0 means 5 s.
	WriteTimeout time.Duration
	// IdleTimeout bounds keep-alive waits. 0 means 60 s.
	IdleTimeout time.Duration
	// Concurrency caps connections served at once. 0 means fasthttp's
	// default (256 Ki).
	Concurrency int
	// PathPrefix is the path of the public OCSP URL ("/" or "/ocsp/",
	// ending in "/"): GET requests are answered under it and POSTs at it,
	// anything else gets 404. "" means "/".
	PathPrefix string
}

// Validate checks cfg.
func (cfg Config) Validate() error {
	if cfg.MaxBody < 0 || cfg.ReadTimeout < 0 || cfg.WriteTimeout < 0 || cfg.IdleTimeout < 0 || cfg.Concurrency < 0 {
		return errors.New("server: sizes and timeouts must not be negative")
	}
	if cfg.PathPrefix != "" && (cfg.PathPrefix[0] != '/' || cfg.PathPrefix[len(cfg.PathPrefix)-1] != '/') {
		return fmt.Errorf("server: PathPrefix %q must start and end with /", cfg.PathPrefix)
	}
	if cfg.MaxBody > 1<<20 {
		return fmt.Errorf("server: MaxBody %d is over 1 MiB; OCSP requests are small", cfg.MaxBody)
	}
	return nil
}

// Deps are the Server's collaborators.
type Deps struct {
	Responder Answerer // required
	// Registerer receives the HTTP metrics; nil registers nowhere.
	Registerer prometheus.Registerer
	// Metrics, if set, answers GET /metrics (a production responder role
	// has no other listener).
	Metrics fasthttp.RequestHandler
	// Ready, if set, decides /healthz: 503 while it returns an error (a
	// dependency is down). Nil means always ready.
	Ready func(context.Context) error
	Log   *slog.Logger // required
	// Now defaults to time.Now; it times requests and is what the
	// responder is given as the current time (so pass the responder's).
	Now func() time.Time
}

// Server serves OCSP over HTTP/1.1 with fasthttp.
type Server struct {
	cfg      Config
	resp     Answerer
	log      *slog.Logger
	now      func() time.Time
	base     context.Context
	stop     context.CancelFunc
	fast     *fasthttp.Server
	bufs     sync.Pool // *[]byte for decoded GET requests
	duration [2]prometheus.Observer
	notMod   prometheus.Counter
	refused  *prometheus.CounterVec
	metrics  fasthttp.RequestHandler
	ready    func(context.Context) error
}

// New builds a Server.
func New(cfg Config, d Deps) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if d.Responder == nil || d.Log == nil {
		return nil, errors.New("server: Responder and Log are required")
	}
	if cfg.MaxBody == 0 {
		cfg.MaxBody = 16 << 10
	}
	if cfg.ReadTimeout == 0 {
		cfg.ReadTimeout = 5 * time.Second
	}
	if cfg.WriteTimeout == 0 {
		cfg.WriteTimeout = 5 * time.Second
	}
	if cfg.IdleTimeout == 0 {
		cfg.IdleTimeout = 60 * time.Second
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	base, stop := context.WithCancel(context.Background())
	s := &Server{cfg: cfg, resp: d.Responder, log: d.Log, now: d.Now, base: base, stop: stop, metrics: d.Metrics, ready: d.Ready}
	s.bufs.New = func() any { b := make([]byte, 0, ocspcodec.MaxGETLen); return &b }
	dur := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "trustline_ocsp_http_request_duration_seconds",
		Help:    "Time to answer an OCSP request, by method, from the handler's start to the response being ready.",
		Buckets: []float64{10e-6, 25e-6, 50e-6, 100e-6, 250e-6, 500e-6, 1e-3, 5e-3, 25e-3, 100e-3, 1},
	}, []string{"method"})
	s.duration[0], s.duration[1] = dur.WithLabelValues("get"), dur.WithLabelValues("post")
	notMod := prometheus.NewCounter(prometheus.CounterOpts{
		Name: "trustline_ocsp_http_not_modified_total",
		Help: "Conditional GETs answered 304 Not Modified.",
	})
	s.notMod = notMod
	s.refused = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "trustline_ocsp_http_refused_total",
		Help: "Requests refused at the HTTP level, by reason (method, too_large, timeout, bad_request).",
	}, []string{"reason"})
	if d.Registerer != nil {
		for _, c := range []prometheus.Collector{dur, notMod, s.refused} {
			if err := d.Registerer.Register(c); err != nil {
				return nil, fmt.Errorf("server: registering metrics: %w", err)
			}
		}
	}
	s.fast = &fasthttp.Server{
		Handler:                      s.Handler,
		Name:                         "",
		NoDefaultServerHeader:        true,
		NoDefaultContentType:         true,
		DisablePreParseMultipartForm: true,
		ReadTimeout:                  cfg.ReadTimeout,
		WriteTimeout:                 cfg.WriteTimeout,
		IdleTimeout:                  cfg.IdleTimeout,
		MaxRequestBodySize:           cfg.MaxBody,
		Concurrency:                  cfg.Concurrency,
		// The request line carries GET requests: up to MaxGETLen octets
		// plus method, version and headers.
		ReadBufferSize: ocspcodec.MaxGETLen + 4096,
		Logger:         slogPrintf{d.Log},
		ErrorHandler:   s.requestError,
	}
	return s, nil
}

// Serve serves on ln until Shutdown.
func (s *Server) Serve(ln net.Listener) error { return s.fast.Serve(ln) }

// Shutdown stops accepting, waits for open requests (bounded by ctx) and
// cancels in-flight live signatures.
func (s *Server) Shutdown(ctx context.Context) error {
	err := s.fast.ShutdownWithContext(ctx)
	s.stop()
	return err
}

// Header names and fixed values.
const (
	ctOCSP       = "application/ocsp-response"
	ccNoStore    = "no-store"
	ccSuffix     = ", public, no-transform, must-revalidate"
	healthzPath  = "/healthz"
	metricsPath  = "/metrics"
	allowMethods = "GET, HEAD, POST"
)

// Handler is the fasthttp handler.
func (s *Server) Handler(ctx *fasthttp.RequestCtx) {
	start := s.now()
	switch {
	case ctx.IsGet() || ctx.IsHead():
		uri := ctx.Request.Header.RequestURI()
		if string(uri) == healthzPath {
			s.health(ctx)
			return
		}
		if s.metrics != nil && string(uri) == metricsPath {
			s.metrics(ctx)
			return
		}
		path, ok := s.underPrefix(originForm(uri))
		if !ok {
			s.refused.WithLabelValues("path").Inc()
			ctx.Error("not found\n", fasthttp.StatusNotFound)
			return
		}
		bp := s.bufs.Get().(*[]byte)
		der, err := ocspcodec.DecodeGET(path, (*bp)[:0])
		if err == nil {
			*bp = der[:0] // keep the buffer if DecodeGET grew it
		} else {
			der = nil // answered malformedRequest
		}
		ans := s.resp.AnswerAt(s.base, der, start)
		s.bufs.Put(bp)
		s.write(ctx, &ans, true)
		s.duration[0].Observe(s.now().Sub(start).Seconds())
	case ctx.IsPost():
		if !s.atPrefix(ctx.Request.Header.RequestURI()) {
			s.refused.WithLabelValues("path").Inc()
			ctx.Error("not found\n", fasthttp.StatusNotFound)
			return
		}
		body := ctx.PostBody()
		if len(body) > s.cfg.MaxBody { // fasthttp refuses these first; belt and braces
			s.refused.WithLabelValues("too_large").Inc()
			ctx.Error("request body too large\n", fasthttp.StatusRequestEntityTooLarge)
			return
		}
		ans := s.resp.AnswerAt(s.base, body, start)
		s.write(ctx, &ans, false)
		s.duration[1].Observe(s.now().Sub(start).Seconds())
	default:
		s.refused.WithLabelValues("method").Inc()
		ctx.Response.Header.Set("Allow", allowMethods)
		ctx.Error("method not allowed\n", fasthttp.StatusMethodNotAllowed)
	}
}

// health answers /healthz: 200 "ok", or 503 while Ready fails.
func (s *Server) health(ctx *fasthttp.RequestCtx) {
	ctx.Response.Header.Set("Cache-Control", ccNoStore)
	ctx.Response.Header.SetContentType("text/plain; charset=utf-8")
	if s.ready != nil {
		rctx, cancel := context.WithTimeout(s.base, 2*time.Second)
		err := s.ready(rctx)
		cancel()
		if err != nil {
			ctx.SetStatusCode(fasthttp.StatusServiceUnavailable)
			s.log.Warn("not ready", "err", err)
			ctx.Response.SetBodyString("unavailable\n")
			return
		}
	}
	ctx.Response.SetBodyString("ok\n")
}

// requestError answers requests fasthttp could not read: 413 for bodies
// over MaxBody, 431 for request lines or headers over the read buffer, 408
// for timeouts, 400 otherwise. fasthttp closes the connection after it.
func (s *Server) requestError(ctx *fasthttp.RequestCtx, err error) {
	var small *fasthttp.ErrSmallBuffer
	var netErr net.Error
	switch {
	case errors.Is(err, fasthttp.ErrBodyTooLarge):
		s.refused.WithLabelValues("too_large").Inc()
		ctx.Error("request body too large\n", fasthttp.StatusRequestEntityTooLarge)
	case errors.As(err, &small):
		s.refused.WithLabelValues("too_large").Inc()
		ctx.Error("request line or headers too large\n", fasthttp.StatusRequestHeaderFieldsTooLarge)
	case errors.As(err, &netErr) && netErr.Timeout():
		s.refused.WithLabelValues("timeout").Inc()
		ctx.Error("request timeout\n", fasthttp.StatusRequestTimeout)
	default:
		s.refused.WithLabelValues("bad_request").Inc()
		ctx.Error("bad request\n", fasthttp.StatusBadRequest)
	}
}

// write sends ans. Only GET answers may be cached (RFC 5019 §5: POST
// responses are not), but the same headers are harmless on POST and let
// clients see the validity; conditional requests are honoured on GET.
func (s *Server) write(ctx *fasthttp.RequestCtx, ans *responder.Answer, get bool) {
	h := &ctx.Response.Header
	h.SetContentType(ctOCSP)
	if !ans.Cacheable() {
		h.Set("Cache-Control", ccNoStore)
		ctx.Response.SetBodyRaw(ans.Body())
		return
	}
	var cc [64]byte
	v := append(cc[:0], "max-age="...)
	v = strconv.AppendInt(v, ans.MaxAge, 10)
	v = append(v, ccSuffix...)
	h.SetBytesV("Cache-Control", v)
	h.SetBytesV("Last-Modified", ans.LastModified())
	h.SetBytesV("Expires", ans.Expires())
	h.SetBytesV("ETag", ans.ETag())
	if name := ans.CacheTagHeader(); name != "" {
		h.SetBytesV(name, ans.CacheTags())
	}
	if get && notModified(&ctx.Request.Header, ans) {
		s.notMod.Inc()
		ctx.SetStatusCode(fasthttp.StatusNotModified)
		return
	}
	ctx.Response.SetBodyRaw(ans.Body())
}

// notModified evaluates the request's preconditions in RFC 9110 §13.2.2
// order: If-None-Match when present, else If-Modified-Since against
// Last-Modified (thisUpdate).
func notModified(req *fasthttp.RequestHeader, ans *responder.Answer) bool {
	if inm := req.Peek("If-None-Match"); len(inm) > 0 {
		return etagMatches(inm, ans.ETag())
	}
	ims := req.Peek("If-Modified-Since")
	if len(ims) == 0 {
		return false
	}
	since, err := fasthttp.ParseHTTPDate(ims)
	if err != nil {
		return false // an invalid date is ignored (RFC 9110 §13.1.3)
	}
	modified, err := fasthttp.ParseHTTPDate(ans.LastModified())
	return err == nil && !modified.After(since)
}

// etagMatches applies If-None-Match's weak comparison (RFC 9110 §13.1.2):
// "*", or any listed tag equal to ours once a W/ prefix is ignored.
func etagMatches(header, etag []byte) bool {
	for len(header) > 0 {
		var item []byte
		if i := bytes.IndexByte(header, ','); i >= 0 {
			item, header = header[:i], header[i+1:]
		} else {
			item, header = header, nil
		}
		item = bytes.TrimSpace(item)
		item = bytes.TrimPrefix(item, []byte("W/"))
		if string(item) == "*" || bytes.Equal(item, etag) {
			return true
		}
	}
	return false
}

// originForm strips the scheme and authority of an absolute-form request
// target ("http://ocsp.example/MEIw…", as proxies send), leaving the path.
// underPrefix returns the part of a GET request's path that follows the
// configured prefix, keeping one leading '/'.
func (s *Server) underPrefix(uri []byte) ([]byte, bool) {
	pre := s.cfg.PathPrefix
	if pre == "" || pre == "/" {
		return uri, true
	}
	if len(uri) < len(pre) || string(uri[:len(pre)]) != pre {
		return nil, false
	}
	return uri[len(pre)-1:], true
}

// atPrefix reports whether a POST targets the OCSP URL's path (with or
// without its trailing slash).
func (s *Server) atPrefix(uri []byte) bool {
	pre := s.cfg.PathPrefix
	if pre == "" || pre == "/" {
		return true
	}
	p := originForm(uri)
	if i := bytes.IndexByte(p, '?'); i >= 0 {
		p = p[:i]
	}
	return string(p) == pre || string(p) == pre[:len(pre)-1]
}

func originForm(uri []byte) []byte {
	for _, scheme := range []string{"http://", "https://"} {
		if len(uri) >= len(scheme) && strings.EqualFold(string(uri[:len(scheme)]), scheme) {
			rest := uri[len(scheme):]
			if i := bytes.IndexByte(rest, '/'); i >= 0 {
				return rest[i:]
			}
			return nil
		}
	}
	return uri
}

// slogPrintf adapts slog to fasthttp's Logger (connection errors).
type slogPrintf struct{ log *slog.Logger }

func (l slogPrintf) Printf(format string, args ...any) {
	l.log.Debug("fasthttp", "msg", strings.TrimSpace(fmt.Sprintf(format, args...)))
}
