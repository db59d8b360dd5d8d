package issuer

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"log/slog"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/trustline/trustline/internal/linter"
	"github.com/trustline/trustline/internal/mail"
	"github.com/trustline/trustline/internal/reason"
	"github.com/trustline/trustline/internal/store"
	"github.com/trustline/trustline/internal/store/sqlite"
	"github.com/trustline/trustline/internal/testfix"
	"github.com/trustline/trustline/issuer/csrcheck"
	"github.com/trustline/trustline/issuer/profile"
	"github.com/trustline/trustline/issuer/review"
	"github.com/trustline/trustline/issuer/validation"
)

// mailbox is a hand-written mail.Sender that keeps what it is given, or
// fails when fail is set.
type mailbox struct {
	mu   sync.Mutex
	msgs []mail.Message
	fail bool
}

func (b *mailbox) Send(_ context.Context, m mail.Message) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.fail {
		return errors.New("mailbox: relay down")
	}
	b.msgs = append(b.msgs, m)
	return nil
}

var codeLine = regexp.MustCompile(`Validation code: (\S+)`)

// lastCode returns the validation code in the newest message.
func (b *mailbox) lastCode(t *testing.T) string {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.msgs) == 0 {
		t.Fatal("no mail sent")
	}
	m := codeLine.FindStringSubmatch(b.msgs[len(b.msgs)-1].Body)
	if m == nil {
		t.Fatal("no code in the mail")
	}
	return m[1]
}

// metricsHarness is the issuance core over SQLite with metrics on.
type metricsHarness struct {
	reg     *prometheus.Registry
	m       *Metrics
	st      *sqlite.Store
	ca      *CA
	box     *mailbox
	vals    *validation.Service
	orders  *Orders
	reviews *review.Service
	clock   *time.Time
	alice   store.Account
	revs    []store.Account
}

func newMetricsHarness(t *testing.T) *metricsHarness {
	t.Helper()
	ctx := context.Background()
	log := testfix.QuietLogger()
	st, err := sqlite.Open(ctx, sqlite.Config{Path: filepath.Join(t.TempDir(), "t.db")}, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	reg := prometheus.NewPedanticRegistry()
	m, err := NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	p, lt := testPKI(t)
	h := &metricsHarness{reg: reg, m: m, st: st, box: &mailbox{}}
	now := time.Now()
	h.clock = &now
	clock := func() time.Time { return *h.clock }
	if h.ca, err = New(Config{OCSPURL: "http://127.0.0.1:8081/", BaseURL: "http://127.0.0.1:8082", Shards: 4, SerialPrefix: 0x2b},
		Deps{Store: st, PKI: p, Linter: lt, Log: log, Metrics: m}); err != nil {
		t.Fatal(err)
	}
	if h.vals, err = validation.New(validation.Config{}, validation.Deps{Store: st, Mail: h.box, Log: log, Now: clock, Metrics: m}); err != nil {
		t.Fatal(err)
	}
	if h.orders, err = NewOrders("http://api.test", csrcheck.Policy{}, OrdersDeps{Store: st, CA: h.ca, Validations: h.vals, Mail: h.box, Log: log, Metrics: m}); err != nil {
		t.Fatal(err)
	}
	if h.reviews, err = review.New(review.Deps{Store: st, Orders: h.orders, Validations: h.vals, Log: log, Metrics: m}); err != nil {
		t.Fatal(err)
	}
	mk := func(email string, role store.Role) store.Account {
		a := store.Account{ID: NewID("acct_"), Email: email, Role: role, CreatedAt: now}
		_, key, _ := NewAPIKey(a.ID, now)
		if err := st.CreateAccount(ctx, a, key); err != nil {
			t.Fatal(err)
		}
		return a
	}
	h.alice = mk("alice@example.com", store.RoleSubscriber)
	h.revs = []store.Account{mk("r1@ca.example", store.RoleReviewer), mk("r2@ca.example", store.RoleReviewer)}
	return h
}

// validate gives alice a valid email validation of example.com, through
// the service.
func (h *metricsHarness) validate(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	v, err := h.vals.Start(ctx, h.alice, validation.StartRequest{Domain: "example.com", Method: validation.MethodEmail, Email: "admin@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.vals.Confirm(ctx, h.alice, v.ID, h.box.lastCode(t)); err != nil {
		t.Fatal(err)
	}
}

func (h *metricsHarness) order(t *testing.T, prof profile.Name) (store.Order, *ecdsa.PrivateKey) {
	t.Helper()
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	csr, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject: pkix.Name{CommonName: "example.com"}, DNSNames: []string{"example.com"}}, k)
	r := OrderRequest{CSR: csr, Profile: string(prof)}
	if prof == profile.EV {
		r.Organization = &profile.Organization{Name: "Example Bank plc", Locality: "London", Country: "GB", JurisdictionCountry: "GB",
			BusinessCategory: "Private Organization", RegistrationNumber: "01234567"}
	}
	ord, err := h.orders.Create(context.Background(), h.alice, r)
	if err != nil {
		t.Fatalf("%s order: %v", prof, err)
	}
	return ord, k
}

func counter(t *testing.T, c *prometheus.CounterVec, labels ...string) float64 {
	t.Helper()
	return testutil.ToFloat64(c.WithLabelValues(labels...))
}

func TestMetricsFollowAnOrderThroughReview(t *testing.T) {
	h := newMetricsHarness(t)
	ctx := context.Background()
	h.validate(t)

	dv, key := h.order(t, profile.DV)
	if dv.Status != store.OrderIssued {
		t.Fatalf("dv order %s", dv.Status)
	}
	is, err := h.ca.IssuerFor(profile.DV, key.Public())
	if err != nil {
		t.Fatal(err)
	}
	if got := counter(t, h.m.orders, "dv", outcomeIssued); got != 1 {
		t.Errorf("dv issued orders: %v, want 1", got)
	}
	if got := counter(t, h.m.issued, string(is.ID), "dv"); got != 1 {
		t.Errorf("certificates issued by %s: %v, want 1", is.ID, got)
	}

	ev, _ := h.order(t, profile.EV)
	rejectMe, _ := h.order(t, profile.EV)
	if got := counter(t, h.m.orders, "ev", outcomePendingReview); got != 2 {
		t.Errorf("ev orders queued: %v, want 2", got)
	}
	queue := func(ev int) string {
		return `
# HELP trustline_review_queue_depth Orders pending review, by profile, counted on scrape (at most 1000 in all).
# TYPE trustline_review_queue_depth gauge
trustline_review_queue_depth{profile="dv"} 0
trustline_review_queue_depth{profile="ev"} ` + strconv.Itoa(ev) + `
trustline_review_queue_depth{profile="ov"} 0
`
	}
	if err := testutil.GatherAndCompare(h.reg, strings.NewReader(queue(2)), "trustline_review_queue_depth"); err != nil {
		t.Error(err)
	}

	for _, r := range h.revs {
		if _, err := h.reviews.Approve(ctx, r, ev.ID, review.Decision{}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := h.reviews.Reject(ctx, h.revs[0], rejectMe.ID, "the registration number belongs to another company"); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		vec  *prometheus.CounterVec
		lv   []string
		want float64
	}{
		{"approvals", h.m.decisions, []string{review.DecisionApprove}, 2},
		{"rejections", h.m.decisions, []string{review.DecisionReject}, 1},
		{"ev issued", h.m.orders, []string{"ev", outcomeIssued}, 1},
		{"ev rejected", h.m.orders, []string{"ev", outcomeRejected}, 1},
		{"ev failed", h.m.orders, []string{"ev", outcomeFailed}, 0},
	} {
		if got := counter(t, c.vec, c.lv...); got != c.want {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
	if err := testutil.GatherAndCompare(h.reg, strings.NewReader(queue(0)), "trustline_review_queue_depth"); err != nil {
		t.Error(err)
	}

	if _, err := h.ca.Revoke(ctx, RevokeRequest{Serial: dv.Serial, Reason: reason.KeyCompromise, Actor: h.alice.ID}); err != nil {
		t.Fatal(err)
	}
	if got := counter(t, h.m.revocations, "keyCompromise"); got != 1 {
		t.Errorf("keyCompromise revocations: %v, want 1", got)
	}
	if n := testutil.CollectAndCount(h.m.revocations); n != 1 {
		t.Errorf("%d revocation series, want 1", n)
	}
}

// failingCA is a hand-written Issuing that fails every signature with err.
type failingCA struct{ err error }

func (failingCA) CheckKeyNotBlocked(context.Context, crypto.PublicKey) error { return nil }

func (f failingCA) Issue(context.Context, IssueRequest) (store.Certificate, error) {
	return store.Certificate{}, f.err
}

func TestMetricsCountFailedAndLintRejectedOrders(t *testing.T) {
	for _, tt := range []struct {
		name    string
		err     error
		outcome string
	}{
		{"store down", errors.New("database is locked"), outcomeFailed},
		{"lint failure", &linter.Failure{What: "certificate", Findings: []linter.Finding{{Lint: "e_test"}}}, outcomeRejected},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := newMetricsHarness(t)
			h.validate(t)
			var err error
			h.orders, err = NewOrders("http://api.test", csrcheck.Policy{}, OrdersDeps{Store: h.st, CA: failingCA{tt.err}, Validations: h.vals,
				Mail: h.box, Log: slog.New(slog.DiscardHandler), Metrics: h.m})
			if err != nil {
				t.Fatal(err)
			}
			k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			csr, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{DNSNames: []string{"www.example.com"}}, k)
			h.orders.Create(context.Background(), h.alice, OrderRequest{CSR: csr, Profile: "dv"})
			for _, o := range []string{outcomeIssued, outcomeRejected, outcomeFailed} {
				want := 0.0
				if o == tt.outcome {
					want = 1
				}
				if got := counter(t, h.m.orders, "dv", o); got != want {
					t.Errorf("dv %s: %v, want %v", o, got, want)
				}
			}
			if n := testutil.CollectAndCount(h.m.issued); n != 0 {
				t.Errorf("%d certificate series after a failure", n)
			}
		})
	}
}

func TestMetricsCountValidations(t *testing.T) {
	h := newMetricsHarness(t)
	ctx := context.Background()
	start := func() store.Validation {
		t.Helper()
		v, err := h.vals.Start(ctx, h.alice, validation.StartRequest{Domain: "example.com", Method: validation.MethodEmail, Email: "hostmaster@example.com"})
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	want := func(started, completed, failed float64) {
		t.Helper()
		for _, c := range []struct {
			name string
			vec  *prometheus.CounterVec
			want float64
		}{{"started", h.m.valStarted, started}, {"completed", h.m.valCompleted, completed}, {"failed", h.m.valFailed, failed}} {
			if got := counter(t, c.vec, validation.MethodEmail); got != c.want {
				t.Errorf("email validations %s: %v, want %v", c.name, got, c.want)
			}
		}
	}

	ok := start()
	if _, err := h.vals.Confirm(ctx, h.alice, ok.ID, h.box.lastCode(t)); err != nil {
		t.Fatal(err)
	}
	want(1, 1, 0)

	guessed := start()
	for range validation.MaxAttempts {
		h.vals.Confirm(ctx, h.alice, guessed.ID, "WRONG")
	}
	h.vals.Confirm(ctx, h.alice, guessed.ID, "WRONG") // dead already: not counted again
	want(2, 1, 1)

	late := start()
	*h.clock = h.clock.Add(validation.CodeLifetime + time.Minute)
	if _, err := h.vals.Confirm(ctx, h.alice, late.ID, h.box.lastCode(t)); err == nil {
		t.Fatal("confirmed an expired validation")
	}
	want(3, 1, 2)

	h.box.fail = true
	if _, err := h.vals.Start(ctx, h.alice, validation.StartRequest{Domain: "example.com", Method: validation.MethodEmail, Email: "admin@example.com"}); err == nil {
		t.Fatal("started a validation whose code was not mailed")
	}
	want(4, 1, 3)
	if got := counter(t, h.m.valStarted, validation.MethodDNSTXT); got != 0 {
		t.Errorf("dns-txt started: %v", got)
	}
}

// blockingLister answers ListOrders only when its context ends, or with
// err at once.
type blockingLister struct{ err error }

func (b blockingLister) ListOrders(ctx context.Context, _ store.OrderFilter) ([]store.Order, error) {
	if b.err != nil {
		return nil, b.err
	}
	<-ctx.Done()
	return nil, ctx.Err()
}

func TestQueueDepthIsBounded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		reg := prometheus.NewPedanticRegistry()
		m, err := NewMetrics(reg)
		if err != nil {
			t.Fatal(err)
		}
		if n, err := testutil.GatherAndCount(reg, "trustline_review_queue_depth"); err != nil || n != 0 {
			t.Errorf("no store watched: %d samples, %v; want none", n, err)
		}
		m.WatchQueue(blockingLister{}.ListOrders)
		start := time.Now()
		if n, err := testutil.GatherAndCount(reg, "trustline_review_queue_depth"); err != nil || n != 0 {
			t.Errorf("slow store: %d samples, %v; want none", n, err)
		}
		if waited := time.Since(start); waited != queueScrapeTimeout {
			t.Errorf("the scrape waited %v for the store, want the %v bound", waited, queueScrapeTimeout)
		}
		m.WatchQueue(blockingLister{err: errors.New("connection refused")}.ListOrders)
		testutil.GatherAndCount(reg, "trustline_review_queue_depth")
		if got := testutil.ToFloat64(m.queue.errors); got != 2 {
			t.Errorf("queue scrape errors: %v, want 2", got)
		}
	})
}

func TestNilMetricsCountNothing(t *testing.T) {
	var m *Metrics
	m.orderOutcome("dv", outcomeIssued)
	m.orderProcessed("dv", store.Order{Status: store.OrderIssued}, nil)
	m.certificateIssued("int-ecdsa", profile.DV)
	m.revoked(reason.Superseded)
	m.ValidationStarted(validation.MethodEmail)
	m.ValidationCompleted(validation.MethodEmail)
	m.ValidationFailed(validation.MethodEmail)
	m.ReviewDecided(review.DecisionApprove)
	m.OrderRejected("dv")
	m.WatchQueue(blockingLister{}.ListOrders)
}

func TestNewMetricsOncePerRegistry(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	if _, err := NewMetrics(reg); err != nil {
		t.Fatal(err)
	}
	if _, err := NewMetrics(reg); err == nil {
		t.Error("a second Metrics registered on the same registry")
	}
	problems, err := testutil.GatherAndLint(reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("metric lint: %s: %s", p.Metric, p.Text)
	}
}
