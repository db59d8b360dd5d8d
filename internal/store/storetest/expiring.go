package storetest

import (
	"testing"
	"time"

	"github.com/trustline/trustline/internal/reason"
	"github.com/trustline/trustline/internal/serial"
	"github.com/trustline/trustline/internal/store"
)

// testExpiringCertificates: the window is (from, to] at the stores'
// microsecond precision, soonest first and then by serial, revoked
// certificates included, limit honoured.
func testExpiringCertificates(t *testing.T, s store.Store) {
	// from and to have nanoseconds (t0 does): a NotAfter stored as us(from)
	// is before from, one microsecond later is after it.
	from := t0
	to := t0.Add(24 * time.Hour)
	notAfter := map[int]time.Time{
		1:  us(from),                          // at from: out (from is exclusive)
		2:  us(from).Add(time.Microsecond),    // just after from: in, first
		3:  us(to),                            // at to: in (to is inclusive), last
		4:  us(to).Add(time.Microsecond),      // just after to: out
		5:  us(from.Add(time.Hour)),           // in
		6:  us(from.Add(time.Hour)),           // ties with 5: serial order
		7:  us(from.Add(30 * time.Minute)),    // in, revoked below
		8:  us(from.Add(-time.Hour)),          // expired before the window: out
		9:  us(from.Add(90 * 24 * time.Hour)), // far after the window: out
		10: us(from.Add(2 * time.Hour)),       // in, another issuer and shard
	}
	cs := map[int]store.Certificate{}
	var bulk []store.Certificate
	// Inserted in reverse serial order, so that neither insertion nor
	// serial order is what sorts the result.
	for i := len(notAfter); i >= 1; i-- {
		c := cert(i, issuerA, 1)
		if i == 10 {
			c.IssuerID, c.Shard = issuerB, 3
		}
		c.NotBefore = us(from.Add(-24 * time.Hour))
		c.NotAfter = notAfter[i]
		cs[i] = c
		bulk = append(bulk, c)
	}
	must(t, bulkLoader(t, s).InsertCertificates(ctx(t), bulk), "inserting certificates")
	r := store.Revocation{Serial: sn(7), Reason: reason.KeyCompromise, At: from.Add(-time.Minute)}
	rc, err := s.Revoke(ctx(t), r, auditFor("certificate.revoked", r.Serial, r.At))
	must(t, err, "revoking")
	cs[7] = rc

	sums := func(is ...int) []store.CertSummary {
		var out []store.CertSummary
		for _, i := range is {
			out = append(out, summary(cs[i]))
		}
		return out
	}
	for _, tc := range []struct {
		name     string
		from, to time.Time
		limit    int
		want     []store.CertSummary
	}{
		{"window", from, to, 0, sums(2, 7, 5, 6, 10, 3)},
		{"limit splits a tie", from, to, 3, sums(2, 7, 5)},
		{"limit after a tie", from, to, 4, sums(2, 7, 5, 6)},
		{"limit 1", from, to, 1, sums(2)},
		{"limit above the count", from, to, 50, sums(2, 7, 5, 6, 10, 3)},
		{"to at a NotAfter", from, us(from.Add(time.Hour)), 0, sums(2, 7, 5, 6)},
		{"from at a NotAfter", us(from.Add(time.Hour)), to, 0, sums(10, 3)},
		{"wide", from.Add(-48 * time.Hour), from.Add(365 * 24 * time.Hour), 0, sums(8, 1, 2, 7, 5, 6, 10, 3, 4, 9)},
		{"empty window", from.Add(3 * time.Hour), from.Add(4 * time.Hour), 0, nil},
		{"from equals to", us(to), us(to), 0, nil},
		{"to before from", to, from, 0, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.ExpiringCertificates(ctx(t), tc.from, tc.to, tc.limit)
			must(t, err, "listing expiring certificates")
			if d := diff(tc.want, got); d != "" {
				t.Errorf("ExpiringCertificates(%v, %v, %d) (-want +got):\n%s", tc.from, tc.to, tc.limit, d)
			}
		})
	}
}

// testExpiringCertificatesDefaultLimit: limit 0 returns the 100 soonest;
// a larger limit is not capped to it.
func testExpiringCertificatesDefaultLimit(t *testing.T, s store.Store) {
	const n = 150
	var bulk []store.Certificate
	// Serial i expires at from + (n+1-i) minutes: the higher the serial,
	// the sooner it expires.
	for i := 1; i <= n; i++ {
		c := cert(i, issuerA, 0)
		c.NotAfter = us(t0.Add(time.Duration(n+1-i) * time.Minute))
		bulk = append(bulk, c)
	}
	must(t, bulkLoader(t, s).InsertCertificates(ctx(t), bulk), "inserting certificates")
	soonest := func(k int) []serial.Serial {
		var out []serial.Serial
		for i := n; i > n-k; i-- {
			out = append(out, sn(i))
		}
		return out
	}
	for _, tc := range []struct {
		name  string
		limit int
		want  []serial.Serial
	}{
		{"default", 0, soonest(100)},
		{"above the default", 120, soonest(120)},
		{"all", n + 10, soonest(n)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.ExpiringCertificates(ctx(t), t0, t0.Add(24*time.Hour), tc.limit)
			must(t, err, "listing expiring certificates")
			if d := diff(tc.want, serials(got)); d != "" {
				t.Errorf("ExpiringCertificates limit %d (-want +got):\n%s", tc.limit, d)
			}
		})
	}
}
