package issuer_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/trustline/trustline/internal/store"
	"github.com/trustline/trustline/issuer"
	"github.com/trustline/trustline/issuer/caa"
)

// verdictCAA is a CAA checker whose verdict the test sets.
type verdictCAA struct {
	forbid atomic.Bool
	calls  atomic.Int64
}

func (v *verdictCAA) Check(_ context.Context, r caa.Request) (caa.Result, error) {
	v.calls.Add(1)
	res := caa.Result{Name: r.Name, Permitted: !v.forbid.Load(), Reason: "test verdict", At: time.Now()}
	if v.forbid.Load() {
		res.Reason = `example.com CAA 0 issue "other-ca.example": it names other-ca.example`
		return res, fmt.Errorf("%w for %s: %s", caa.ErrForbidden, r.Name, res.Reason)
	}
	return res, nil
}

// TestCAARecheckedBeforeSigning: an order that waited longer than a CAA
// check stays good (BR 3.2.2.8: 8 hours) is checked again before it is
// signed; a forbidding answer then rejects it with the record as the
// reason, and a fresh order is not checked twice.
func TestCAARecheckedBeforeSigning(t *testing.T) {
	ctx := context.Background()
	checker := &verdictCAA{}
	var now atomic.Int64
	now.Store(time.Now().UnixNano())
	clock := func() time.Time { return time.Unix(0, now.Load()) }
	st, orders, acct := wire(t, t.TempDir(), func(d *issuer.OrdersDeps) { d.CAA, d.Now = checker, clock })

	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	csr, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "example.com"}, DNSNames: []string{"example.com"}}, key)
	pending := func(id string, age time.Duration) store.Order {
		t.Helper()
		o := store.Order{ID: id, AccountID: acct.ID, Profile: "dv", CSR: csr, Names: []string{"example.com"},
			Status: store.OrderProcessing, CreatedAt: clock().Add(-age), UpdatedAt: clock().Add(-age)}
		if err := st.CreateOrder(ctx, o); err != nil {
			t.Fatal(err)
		}
		o, err := st.Order(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		return o
	}

	fresh := pending("ord_fresh", time.Hour)
	checker.forbid.Store(true) // would refuse, if it were asked
	if out, err := orders.Process(ctx, fresh, "reviewer"); err != nil || out.Status != store.OrderIssued || checker.calls.Load() != 0 {
		t.Fatalf("an order 1 h old: %v %v after %d CAA checks; want issued without a new check", out.Status, err, checker.calls.Load())
	}

	stale := pending("ord_stale", caa.MaxAge+time.Minute)
	out, err := orders.Process(ctx, stale, "reviewer")
	if err != nil || out.Status != store.OrderRejected || !strings.Contains(out.RejectReason, "other-ca.example") || checker.calls.Load() != 1 {
		t.Fatalf("an order past caa.MaxAge with CAA now forbidding: %v %q %v after %d checks; want rejected naming the record",
			out.Status, out.RejectReason, err, checker.calls.Load())
	}

	checker.forbid.Store(false)
	stale2 := pending("ord_stale2", caa.MaxAge+time.Minute)
	if out, err := orders.Process(ctx, stale2, "reviewer"); err != nil || out.Status != store.OrderIssued || checker.calls.Load() != 2 {
		t.Fatalf("an order past caa.MaxAge with CAA permitting: %v %v after %d checks; want issued after one more check", out.Status, err, checker.calls.Load())
	}
	var evidence int
	st.ScanAudit(ctx, 0, func(a store.AuditEntry) error {
		if a.Kind == "caa.checked" && strings.HasPrefix(a.Subject, "ord_stale") {
			evidence++
		}
		return nil
	})
	if evidence != 2 {
		t.Errorf("%d caa.checked entries for the rechecked orders, want 2", evidence)
	}
}
