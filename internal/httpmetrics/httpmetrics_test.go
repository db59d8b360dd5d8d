package httpmetrics

import (
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
)

// byPattern groups requests by the ServeMux pattern that served them.
func byPattern(r *http.Request) string {
	switch r.Pattern {
	case "GET /api/v1/orders/{id}", "POST /api/v1/orders":
		return "orders"
	case "GET /healthz":
		return "health"
	}
	return "unmatched" // not in Routes: recorded as "other"
}

func testMux() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/orders/{id}", func(w http.ResponseWriter, r *http.Request) {
		if r.PathValue("id") == "missing" {
			http.Error(w, "no such order", http.StatusNotFound)
			return
		}
		io.WriteString(w, "{}")
	})
	mux.HandleFunc("POST /api/v1/orders", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusCreated) })
	mux.HandleFunc("GET /healthz", func(http.ResponseWriter, *http.Request) {}) // writes nothing: 200
	return mux
}

// steppingClock advances by step on every reading.
type steppingClock struct {
	mu   sync.Mutex
	t    time.Time
	step time.Duration
}

func (c *steppingClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(c.step)
	return c.t
}

func newTestMetrics(t *testing.T, reg prometheus.Registerer) *Metrics {
	t.Helper()
	m, err := New(Config{Server: "api", Routes: []string{"orders", "health"}, Buckets: []float64{0.01, 0.1, 1}}, byPattern, reg)
	if err != nil {
		t.Fatal(err)
	}
	clock := &steppingClock{t: time.Unix(0, 0), step: 50 * time.Millisecond}
	m.now = clock.now
	return m
}

func do(h http.Handler, method, target string) {
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(method, target, nil))
}

func TestRecordsRouteMethodAndClass(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	m := newTestMetrics(t, reg)
	h := m.Wrap(testMux())
	do(h, "GET", "/api/v1/orders/ord_1")
	do(h, "GET", "/api/v1/orders/ord_2")
	do(h, "GET", "/api/v1/orders/missing")
	do(h, "POST", "/api/v1/orders")
	do(h, "GET", "/healthz")
	do(h, "GET", "/nowhere/ord_3")          // 404 from the mux
	do(h, "DELETE", "/api/v1/orders/ord_1") // 405 from the mux

	want := `
# HELP trustline_http_requests_total HTTP requests answered, by route group, method and status class (1xx to 5xx).
# TYPE trustline_http_requests_total counter
trustline_http_requests_total{class="2xx",method="GET",route="health",server="api"} 1
trustline_http_requests_total{class="2xx",method="GET",route="orders",server="api"} 2
trustline_http_requests_total{class="2xx",method="POST",route="orders",server="api"} 1
trustline_http_requests_total{class="4xx",method="DELETE",route="other",server="api"} 1
trustline_http_requests_total{class="4xx",method="GET",route="orders",server="api"} 1
trustline_http_requests_total{class="4xx",method="GET",route="other",server="api"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "trustline_http_requests_total"); err != nil {
		t.Error(err)
	}
	// Each request takes one 50 ms clock step: in the 0.1 bucket.
	var hist dto.Metric
	if err := m.latency.WithLabelValues("orders", "GET", "2xx").(prometheus.Metric).Write(&hist); err != nil {
		t.Fatal(err)
	}
	var buckets []uint64
	for _, b := range hist.GetHistogram().GetBucket() {
		buckets = append(buckets, b.GetCumulativeCount())
	}
	if diff := cmp.Diff([]uint64{0, 2, 2}, buckets); diff != "" {
		t.Errorf("GET orders 2xx latency buckets (-want +got):\n%s", diff)
	}
	if got := hist.GetHistogram().GetSampleSum(); math.Abs(got-0.1) > 1e-9 {
		t.Errorf("latency sum %v, want 0.1", got)
	}
	if n := testutil.CollectAndCount(m.latency); n != 6 {
		t.Errorf("%d latency series, want one per request series (6)", n)
	}
}

// Whatever paths and methods clients send, the series stay within
// routes × methods × classes.
func TestLabelsStayBounded(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	m := newTestMetrics(t, reg)
	h := m.Wrap(testMux())
	for i := range 500 {
		do(h, "GET", fmt.Sprintf("/api/v1/certificates/%d", i))
		do(h, fmt.Sprintf("M%d", i), fmt.Sprintf("/x/%d", i))
		do(h, "GET", fmt.Sprintf("/api/v1/orders/ord_%d", i))
	}
	if n := testutil.CollectAndCount(m.requests); n > 3 {
		t.Errorf("%d request series after 1500 distinct requests, want at most 3", n)
	}
	if got := testutil.ToFloat64(m.requests.WithLabelValues(Other, Other, "4xx")); got != 500 {
		t.Errorf("unknown methods on unknown routes: %v, want 500", got)
	}
}

func TestPanicIsRecordedAs5xx(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	m := newTestMetrics(t, reg)
	h := m.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Pattern = "GET /healthz"
		w.WriteHeader(http.StatusOK)
		panic(http.ErrAbortHandler)
	}))
	func() {
		defer func() {
			if p := recover(); p != http.ErrAbortHandler {
				t.Errorf("recovered %v, want the handler's panic", p)
			}
		}()
		do(h, "GET", "/healthz")
	}()
	if got := testutil.ToFloat64(m.requests.WithLabelValues("health", "GET", "5xx")); got != 1 {
		t.Errorf("panicking request counted %v times as 5xx", got)
	}
}

func TestClassLabel(t *testing.T) {
	for code, want := range map[int]string{100: "1xx", 103: "1xx", 200: "2xx", 204: "2xx", 304: "3xx", 404: "4xx", 429: "4xx", 503: "5xx", 599: "5xx", 600: Other, 42: Other} {
		if got := classLabel(code); got != want {
			t.Errorf("classLabel(%d) = %q, want %q", code, got, want)
		}
	}
}

// Early hints are not the status the request ends with.
func TestInformationalStatusIsNotTheAnswer(t *testing.T) {
	m := newTestMetrics(t, nil)
	h := m.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Pattern = "GET /healthz"
		w.WriteHeader(http.StatusEarlyHints)
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	do(h, "GET", "/healthz")
	if got := testutil.ToFloat64(m.requests.WithLabelValues("health", "GET", "5xx")); got != 1 {
		t.Errorf("503 after 103 counted %v times as 5xx", got)
	}
}

// The wrapper keeps the optional interfaces handlers rely on.
func TestFlushAndResponseControllerPassThrough(t *testing.T) {
	m := newTestMetrics(t, nil)
	srv := httptest.NewServer(m.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Pattern = "GET /healthz"
		if _, ok := w.(http.Flusher); !ok {
			t.Error("the wrapped writer is not an http.Flusher")
		}
		rc := http.NewResponseController(w)
		if err := rc.SetWriteDeadline(time.Now().Add(time.Minute)); err != nil {
			t.Errorf("SetWriteDeadline through the wrapper: %v", err)
		}
		io.WriteString(w, "part")
		if err := rc.Flush(); err != nil {
			t.Errorf("Flush: %v", err)
		}
	})))
	defer srv.Close()
	resp, err := srv.Client().Get(srv.URL + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if got := testutil.ToFloat64(m.requests.WithLabelValues("health", "GET", "2xx")); got != 1 {
		t.Errorf("counted %v, want 1", got)
	}
}

func TestServersShareARegistry(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	route := func(*http.Request) string { return "all" }
	if _, err := New(Config{Server: "api", Routes: []string{"all"}}, route, reg); err != nil {
		t.Fatal(err)
	}
	if _, err := New(Config{Server: "crl", Routes: []string{"all"}}, route, reg); err != nil {
		t.Errorf("a second server on the registry: %v", err)
	}
	if _, err := New(Config{Server: "api", Routes: []string{"all"}}, route, reg); err == nil {
		t.Error("the same server registered twice")
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		ok   bool
	}{
		{"minimal", Config{Server: "api", Routes: []string{"a"}}, true},
		{"no server", Config{Routes: []string{"a"}}, false},
		{"no routes", Config{Server: "api"}, false},
		{"reserved route", Config{Server: "api", Routes: []string{"a", Other}}, false},
		{"empty route", Config{Server: "api", Routes: []string{""}}, false},
		{"too many routes", Config{Server: "api", Routes: make([]string, 65)}, false},
		{"decreasing buckets", Config{Server: "api", Routes: []string{"a"}, Buckets: []float64{1, 0.5}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.cfg.Validate(); (err == nil) != tt.ok {
				t.Errorf("Validate() = %v, want ok=%v", err, tt.ok)
			}
		})
	}
	if _, err := New(Config{Server: "api", Routes: []string{"a"}}, nil, nil); err == nil {
		t.Error("New accepted a nil RouteFunc")
	}
}
