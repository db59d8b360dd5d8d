// Package httpmetrics records Prometheus metrics for net/http handlers:
// requests by route group, method and status class, and their latency.
//
// Every label value comes from a small fixed set, so the number of series
// stays bounded whatever clients send: routes are the groups the caller
// declares (anything else is "other"), methods are the RFC 9110 §9 methods
// (anything else is "other"), and statuses are reduced to their class
// ("2xx"). Raw paths never become labels.
//
// Any HTTP listener may import it; it imports nothing of Trustline.
package httpmetrics

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Other is the label for a route outside Config.Routes and for a method
// outside RFC 9110's.
const Other = "other"

// DefaultBuckets are latency buckets in seconds, from 5 ms to 30 s: API
// calls that sign or validate take tens of milliseconds to seconds.
var DefaultBuckets = []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}

// Config configures one instrumented handler.
type Config struct {
	// Server names the listener ("api", "crl"); it is a constant "server"
	// label, so that several handlers can share one registry. Required.
	Server string
	// Routes are the route groups Route may return, at most 64. A value
	// Route returns outside them is recorded as Other.
	Routes []string
	// Buckets are the latency histogram's upper bounds in seconds,
	// increasing; nil means DefaultBuckets.
	Buckets []float64
}

// Validate checks the configuration.
func (c Config) Validate() error {
	var errs []error
	if c.Server == "" {
		errs = append(errs, errors.New("httpmetrics: Server is required"))
	}
	if len(c.Routes) == 0 || len(c.Routes) > 64 {
		errs = append(errs, fmt.Errorf("httpmetrics: %d Routes; want 1 to 64", len(c.Routes)))
	}
	for _, r := range c.Routes {
		if r == "" || r == Other {
			errs = append(errs, fmt.Errorf("httpmetrics: route %q is reserved", r))
		}
	}
	for i := 1; i < len(c.Buckets); i++ {
		if c.Buckets[i] <= c.Buckets[i-1] {
			errs = append(errs, errors.New("httpmetrics: Buckets must increase"))
			break
		}
	}
	return errors.Join(errs...)
}

// RouteFunc maps a request to its route group. It runs after the handler
// returns, so it may read r.Pattern as a ServeMux set it on r.
type RouteFunc func(r *http.Request) string

// Metrics instruments handlers with one configuration.
type Metrics struct {
	routes   []string
	route    RouteFunc
	requests *prometheus.CounterVec   // route, method, class
	latency  *prometheus.HistogramVec // route, method, class
	now      func() time.Time
}

// New registers the metrics with reg (nil: not registered) and returns
// the middleware.
func New(cfg Config, route RouteFunc, reg prometheus.Registerer) (*Metrics, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if route == nil {
		return nil, errors.New("httpmetrics: a RouteFunc is required")
	}
	if cfg.Buckets == nil {
		cfg.Buckets = DefaultBuckets
	}
	labels := []string{"route", "method", "class"}
	server := prometheus.Labels{"server": cfg.Server}
	m := &Metrics{
		routes: slices.Clone(cfg.Routes),
		route:  route,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name:        "trustline_http_requests_total",
			Help:        "HTTP requests answered, by route group, method and status class (1xx to 5xx).",
			ConstLabels: server,
		}, labels),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:        "trustline_http_request_duration_seconds",
			Help:        "Time from a request reaching the handler to the handler returning, by route group, method and status class.",
			ConstLabels: server,
			Buckets:     cfg.Buckets,
		}, labels),
		now: time.Now,
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.requests, m.latency} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("httpmetrics: registering metrics for server %q: %w", cfg.Server, err)
			}
		}
	}
	return m, nil
}

// Wrap returns next instrumented. A handler that panics is recorded as
// 5xx and the panic goes on up unchanged.
func (m *Metrics) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := m.now()
		rw := &recorder{ResponseWriter: w}
		returned := false
		defer func() {
			code := rw.code
			switch {
			case !returned:
				code = http.StatusInternalServerError
			case code == 0:
				code = http.StatusOK // nothing written: net/http sends 200
			}
			route := m.label(m.route(r))
			method, class := methodLabel(r.Method), classLabel(code)
			m.requests.WithLabelValues(route, method, class).Inc()
			m.latency.WithLabelValues(route, method, class).Observe(m.now().Sub(start).Seconds())
		}()
		next.ServeHTTP(rw, r)
		returned = true
	})
}

func (m *Metrics) label(route string) string {
	if slices.Contains(m.routes, route) {
		return route
	}
	return Other
}

// methodLabel keeps the methods of RFC 9110 §9 (and PATCH, RFC 5789):
// any other token a client sends would be a new series.
func methodLabel(method string) string {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodConnect, http.MethodOptions, http.MethodTrace:
		return method
	}
	return Other
}

func classLabel(code int) string {
	if code < 100 || code > 599 {
		return Other
	}
	return []string{"1xx", "2xx", "3xx", "4xx", "5xx"}[code/100-1]
}

// recorder remembers the status a handler sends. It passes Flush and
// Hijack through (http.ResponseController finds the rest via Unwrap).
type recorder struct {
	http.ResponseWriter
	code int
}

func (rw *recorder) WriteHeader(code int) {
	// Informational answers (103 Early Hints) precede the real one.
	if rw.code == 0 && (code >= 200 || code == http.StatusSwitchingProtocols) {
		rw.code = code
	}
	rw.ResponseWriter.WriteHeader(code)
}

func (rw *recorder) Write(b []byte) (int, error) {
	if rw.code == 0 {
		rw.code = http.StatusOK
	}
	return rw.ResponseWriter.Write(b)
}

func (rw *recorder) Flush() {
	if rw.code == 0 {
		rw.code = http.StatusOK
	}
	_ = http.NewResponseController(rw.ResponseWriter).Flush()
}

func (rw *recorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, brw, err := http.NewResponseController(rw.ResponseWriter).Hijack()
	if err == nil && rw.code == 0 {
		rw.code = http.StatusSwitchingProtocols
	}
	return c, brw, err
}

func (rw *recorder) Unwrap() http.ResponseWriter { return rw.ResponseWriter }
