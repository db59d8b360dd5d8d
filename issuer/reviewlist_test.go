package issuer_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"testing"
	"time"

	"github.com/trustline/trustline/internal/store"
	"github.com/trustline/trustline/issuer"
)

// TestReviewListLookAlikeGoesToReview: with *bank* listed, a DV order for
// mybаnk (Cyrillic а) waits for review, and a pattern stored before
// patterns were validated neither matches nor stops orders.
func TestReviewListLookAlikeGoesToReview(t *testing.T) {
	ctx := context.Background()
	st, orders, acct := wire(t, t.TempDir())
	t.Cleanup(func() { st.Close() })
	for i, p := range []string{"*paypal*[", "*bank*"} {
		if err := st.AddReviewPattern(ctx, store.ReviewPattern{ID: issuer.NewID("rl_"), Pattern: p, CreatedBy: acct.ID,
			CreatedAt: time.Now().Add(time.Duration(i) * time.Second)}); err != nil {
			t.Fatal(err)
		}
	}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	for _, tt := range []struct {
		name, listed string
		status       store.OrderStatus
	}{
		{"xn--mybnk-6ve.example.com", "*bank*", store.OrderPendingReview}, // mybаnk
		{"login.xn--l-7sba6dbr.example.com", "", store.OrderIssued},       // раураl: *paypal*[ is malformed
		{"shop.example.com", "", store.OrderIssued},
	} {
		t.Run(tt.name, func(t *testing.T) {
			listed, err := orders.ReviewListPattern(ctx, []string{"example.com", tt.name})
			if err != nil {
				t.Fatal(err)
			}
			if listed != tt.listed {
				t.Errorf("ReviewListPattern = %q, want %q", listed, tt.listed)
			}
			csr, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
				Subject: pkix.Name{CommonName: tt.name}, DNSNames: []string{tt.name}}, key)
			ord, err := orders.Create(ctx, acct, issuer.OrderRequest{CSR: csr, Profile: "dv"})
			if err != nil {
				t.Fatal(err)
			}
			if ord.Status != tt.status {
				t.Errorf("order status %s, want %s", ord.Status, tt.status)
			}
		})
	}
}
