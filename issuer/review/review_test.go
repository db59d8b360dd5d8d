package review_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"errors"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/trustline/trustline/internal/mail"
	"github.com/trustline/trustline/internal/store"
	"github.com/trustline/trustline/internal/store/sqlite"
	"github.com/trustline/trustline/internal/testfix"
	"github.com/trustline/trustline/issuer"
	"github.com/trustline/trustline/issuer/fault"
	"github.com/trustline/trustline/issuer/issuertest"
	"github.com/trustline/trustline/issuer/profile"
	"github.com/trustline/trustline/issuer/review"
	"github.com/trustline/trustline/issuer/validation"
)

// barrier releases its callers once n of them wait.
type barrier struct {
	t     *testing.T
	n     int
	mu    sync.Mutex
	count int
	ch    chan struct{}
}

func newBarrier(t *testing.T, n int) *barrier { return &barrier{t: t, n: n, ch: make(chan struct{})} }

func (b *barrier) wait() {
	b.mu.Lock()
	b.count++
	if b.count == b.n {
		close(b.ch)
	}
	b.mu.Unlock()
	select {
	case <-b.ch:
	case <-time.After(10 * time.Second):
		b.t.Error("barrier: the other approval never arrived")
	}
}

// racingStore makes two approvals meet: both record their review before
// either reads the reviews to finish (AddReview barrier), and both read
// them before either swaps the order (a barrier on the 3rd and 4th
// Reviews call: the 1st and 2nd are the approvals' pre-checks).
type racingStore struct {
	*sqlite.Store
	added     *barrier
	read      *barrier
	reads     atomic.Int64
	conflicts atomic.Int64
}

func (s *racingStore) AddReview(ctx context.Context, r store.Review) error {
	err := s.Store.AddReview(ctx, r)
	if s.added != nil {
		s.added.wait()
	}
	return err
}

func (s *racingStore) Reviews(ctx context.Context, id string) ([]store.Review, error) {
	rs, err := s.Store.Reviews(ctx, id)
	if n := s.reads.Add(1); s.read != nil && (n == 3 || n == 4) {
		s.read.wait()
	}
	return rs, err
}

func (s *racingStore) UpdateOrder(ctx context.Context, o store.Order) (store.Order, error) {
	out, err := s.Store.UpdateOrder(ctx, o)
	if errors.Is(err, store.ErrConflict) {
		s.conflicts.Add(1)
	}
	return out, err
}

type reviewHarness struct {
	st      *racingStore
	orders  *issuer.Orders
	reviews *review.Service
	alice   store.Account
	revs    []store.Account
}

func newReviewHarness(t *testing.T) *reviewHarness {
	t.Helper()
	ctx := context.Background()
	log := testfix.QuietLogger()
	sq := issuertest.SQLite(t)
	st := &racingStore{Store: sq}
	ca := issuertest.New(t, st, 0x22).CA
	m := mail.Dir{Path: filepath.Join(t.TempDir(), "mail")}
	vals := validation.NewEmailOnly(st, m, nil)
	wf := issuertest.NewWorkflow(t, st, ca, vals, m, log)
	h := &reviewHarness{st: st, orders: wf.Orders, reviews: wf.Reviews}
	now := time.Now()
	mk := func(email string, role store.Role) store.Account {
		a := store.Account{ID: issuer.NewID("acct_"), Email: email, Role: role, CreatedAt: now}
		_, key, _ := issuer.NewAPIKey(a.ID, now)
		if err := sq.CreateAccount(ctx, a, key); err != nil {
			t.Fatal(err)
		}
		return a
	}
	h.alice = mk("alice@example.com", store.RoleSubscriber)
	for _, e := range []string{"r1@ca.example", "r2@ca.example", "r3@ca.example"} {
		h.revs = append(h.revs, mk(e, store.RoleReviewer))
	}
	if err := sq.CreateValidation(ctx, store.Validation{ID: issuer.NewID("val_"), AccountID: h.alice.ID, Domain: "example.com", Method: "email",
		Contact: "admin@example.com", Status: store.ValidationValid, CreatedAt: now, ExpiresAt: now.Add(time.Hour),
		ValidatedAt: now, ValidUntil: now.Add(24 * time.Hour)}); err != nil {
		t.Fatal(err)
	}
	return h
}

func (h *reviewHarness) evOrder(t *testing.T) store.Order {
	t.Helper()
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	csr, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "example.com"}, DNSNames: []string{"example.com"}}, k)
	org := &profile.Organization{Name: "Example Bank plc", Locality: "London", Country: "GB", JurisdictionCountry: "GB",
		BusinessCategory: "Private Organization", RegistrationNumber: "01234567"}
	ord, err := h.orders.Create(context.Background(), h.alice, issuer.OrderRequest{CSR: csr, Profile: "ev", Organization: org})
	if err != nil || ord.Status != store.OrderPendingReview {
		t.Fatalf("order: %v %v", ord.Status, err)
	}
	return ord
}

func (h *reviewHarness) issued(t *testing.T, orderID string) int {
	t.Helper()
	n := 0
	h.st.ScanAudit(context.Background(), 0, func(a store.AuditEntry) error {
		var p struct{ Order string }
		json.Unmarshal(a.Payload, &p)
		if a.Kind == "certificate.issued" && p.Order == orderID {
			n++
		}
		return nil
	})
	return n
}

func TestRacingFinalApprovalsSignOnce(t *testing.T) {
	h := newReviewHarness(t)
	ctx := context.Background()
	ord := h.evOrder(t)
	if out, err := h.reviews.Approve(ctx, h.revs[0], ord.ID, review.Decision{}); err != nil || out.Approvals != 1 {
		t.Fatalf("first approval: %+v %v", out, err)
	}
	h.st.reads.Store(0)
	h.st.added, h.st.read = newBarrier(t, 2), newBarrier(t, 2)
	var wg sync.WaitGroup
	outs := make([]review.Outcome, 2)
	errs := make([]error, 2)
	for i, r := range h.revs[1:] {
		wg.Add(1)
		go func() {
			defer wg.Done()
			outs[i], errs[i] = h.reviews.Approve(ctx, r, ord.ID, review.Decision{Notes: r.Email})
		}()
	}
	wg.Wait()
	for i := range errs {
		if errs[i] != nil {
			t.Errorf("approval %d: %v", i, errs[i])
		}
	}
	if n := h.st.conflicts.Load(); n != 1 {
		t.Errorf("%d lost compare-and-swaps, want 1: the race did not happen as staged", n)
	}
	if n := h.issued(t, ord.ID); n != 1 {
		t.Fatalf("%d certificates issued for one order", n)
	}
	got, _ := h.st.Order(ctx, ord.ID)
	if got.Status != store.OrderIssued {
		t.Errorf("order %s", got.Status)
	}
}

func TestApprovalFinishesAfterCrash(t *testing.T) {
	h := newReviewHarness(t)
	ctx := context.Background()
	ord := h.evOrder(t)
	// Both approvals recorded, then the process died before the swap.
	for _, r := range h.revs[:2] {
		if err := h.st.AddReview(ctx, store.Review{OrderID: ord.ID, ReviewerID: r.ID, Decision: review.DecisionApprove, At: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	out, err := h.reviews.Approve(ctx, h.revs[0], ord.ID, review.Decision{})
	if err != nil || out.Order.Status != store.OrderIssued || out.Approvals != 2 {
		t.Fatalf("re-approval: %+v %v", out, err)
	}
	if n := h.issued(t, ord.ID); n != 1 {
		t.Errorf("%d certificates issued", n)
	}
}

func TestReviewerRoleRequired(t *testing.T) {
	h := newReviewHarness(t)
	ord := h.evOrder(t)
	var fb *fault.ForbiddenError
	if _, err := h.reviews.Approve(context.Background(), h.alice, ord.ID, review.Decision{}); !errors.As(err, &fb) {
		t.Errorf("subscriber approves: %v, want ForbiddenError", err)
	}
	if _, err := h.reviews.Queue(context.Background(), store.Account{ID: "x", Role: store.RoleAdmin}, 10); !errors.As(err, &fb) {
		t.Errorf("admin reads the queue: %v, want ForbiddenError", err)
	}
}
