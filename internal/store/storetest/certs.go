package storetest

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/trustline/trustline/internal/reason"
	"github.com/trustline/trustline/internal/serial"
	"github.com/trustline/trustline/internal/status"
	"github.com/trustline/trustline/internal/store"
)

func testReserveSerial(t *testing.T, s store.Store) {
	must(t, s.ReserveSerial(ctx(t), sn(1), issuerA, t0), "reserving serial")
	for _, tc := range []struct {
		name   string
		serial serial.Serial
		want   error
	}{
		{"same serial, same issuer", sn(1), store.ErrDuplicate},
		{"other serial", sn(2), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantErr(t, s.ReserveSerial(ctx(t), tc.serial, issuerA, t0), tc.want, "reserving serial")
		})
	}
	// Serials are unique across issuers, not per issuer.
	wantErr(t, s.ReserveSerial(ctx(t), sn(1), issuerB, t0), store.ErrDuplicate, "reserving a serial taken by another issuer")
}

// eventsIgnoringSeq compares events without their store-assigned Seq.
var eventsIgnoringSeq = cmpopts.IgnoreFields(store.Event{}, "Seq")

func testInsertCertificate(t *testing.T, s store.Store) {
	c := cert(1, issuerA, 7)
	c.DER = der(c.Serial, 1200)
	a := auditFor("certificate.issued", c.Serial, t0.Add(time.Second))

	if err := s.InsertCertificate(ctx(t), c, a); err == nil {
		t.Fatal("InsertCertificate of a serial that was never reserved succeeded")
	}
	_, err := s.Certificate(ctx(t), c.Serial)
	wantErr(t, err, store.ErrNotFound, "reading the refused certificate")
	if es := allEvents(t, s); len(es) != 0 {
		t.Fatalf("a refused insert left events: %+v", es)
	}
	if es := allAudit(t, s); len(es) != 0 {
		t.Fatalf("a refused insert left audit entries: %+v", es)
	}

	must(t, s.ReserveSerial(ctx(t), c.Serial, c.IssuerID, t0), "reserving serial")
	must(t, s.InsertCertificate(ctx(t), c, a), "inserting certificate")
	got, err := s.Certificate(ctx(t), c.Serial)
	must(t, err, "reading certificate")
	if d := diff(c, got); d != "" {
		t.Errorf("Certificate (-want +got):\n%s", d)
	}
	wantEvents := []store.Event{{Kind: store.EventIssued, Serial: c.Serial, IssuerID: c.IssuerID, Shard: c.Shard, At: us(a.At)}}
	if d := diffEvents(wantEvents, allEvents(t, s)); d != "" {
		t.Errorf("events after insert (-want +got):\n%s", d)
	}
	audit := allAudit(t, s)
	if len(audit) != 1 || audit[0].Kind != a.Kind || audit[0].Subject != a.Subject || !audit[0].At.Equal(us(a.At)) {
		t.Errorf("audit after insert = %+v, want one %q entry for %s", audit, a.Kind, a.Subject)
	}

	wantErr(t, s.InsertCertificate(ctx(t), c, a), store.ErrDuplicate, "inserting the certificate again")
	if d := diffEvents(wantEvents, allEvents(t, s)); d != "" {
		t.Errorf("events after duplicate insert (-want +got):\n%s", d)
	}
	if n := len(allAudit(t, s)); n != 1 {
		t.Errorf("a duplicate insert left %d audit entries, want 1", n)
	}

	other := cert(2, issuerB, 1)
	must(t, s.ReserveSerial(ctx(t), other.Serial, issuerA, t0), "reserving serial for issuer A")
	if err := s.InsertCertificate(ctx(t), other, a); err == nil {
		t.Error("InsertCertificate under issuer B of a serial reserved for issuer A succeeded")
	}
	_, err = s.Certificate(ctx(t), sn(99))
	wantErr(t, err, store.ErrNotFound, "reading a missing certificate")
}

// diffEvents compares event logs ignoring Seq values, after checking that
// they are positive and strictly increasing.
func diffEvents(want, got []store.Event) string {
	if msg := seqProblem(got); msg != "" {
		return msg
	}
	return diff(want, got, eventsIgnoringSeq)
}

func seqProblem(es []store.Event) string {
	for i, e := range es {
		if e.Seq <= 0 || (i > 0 && e.Seq <= es[i-1].Seq) {
			return fmt.Sprintf("event %d has Seq %d: not positive and strictly increasing in %+v", i, e.Seq, es)
		}
	}
	return ""
}

func testInsertCertificates(t *testing.T, s store.Store) {
	wantErr(t, bulkLoader(t, s).InsertCertificates(ctx(t), nil), nil, "inserting no certificates")
	var cs []store.Certificate
	var wantEvents []store.Event
	for i := 1; i <= 10; i++ {
		c := cert(i, issuerA, 0)
		if i%2 == 0 {
			c.IssuerID, c.Shard = issuerB, 3
		}
		cs = append(cs, c)
		wantEvents = append(wantEvents, store.Event{Kind: store.EventIssued, Serial: c.Serial, IssuerID: c.IssuerID, Shard: c.Shard, At: c.NotBefore})
	}
	must(t, bulkLoader(t, s).InsertCertificates(ctx(t), cs), "inserting certificates")
	n, err := s.CountCertificates(ctx(t))
	must(t, err, "counting certificates")
	if n != 10 {
		t.Errorf("CountCertificates = %d, want 10", n)
	}
	for _, c := range cs {
		got, err := s.Certificate(ctx(t), c.Serial)
		must(t, err, "reading certificate")
		if d := diff(c, got); d != "" {
			t.Errorf("Certificate(%s) (-want +got):\n%s", c.Serial, d)
		}
	}
	if d := diffEvents(wantEvents, allEvents(t, s)); d != "" {
		t.Errorf("events (-want +got):\n%s", d)
	}
	if n := len(allAudit(t, s)); n != 0 {
		t.Errorf("InsertCertificates wrote %d audit entries, want none", n)
	}

	// A duplicate fails the whole call.
	fresh := cert(11, issuerA, 0)
	wantErr(t, bulkLoader(t, s).InsertCertificates(ctx(t), []store.Certificate{fresh, cs[3]}), store.ErrDuplicate, "inserting a batch with a duplicate")
	_, err = s.Certificate(ctx(t), fresh.Serial)
	wantErr(t, err, store.ErrNotFound, "reading a certificate from the failed batch")
	if got := len(allEvents(t, s)); got != 10 {
		t.Errorf("a failed batch left %d events, want 10", got)
	}
}

func testRevoke(t *testing.T, s store.Store) {
	c := cert(1, issuerA, 2)
	issue(t, s, c)
	r := store.Revocation{Serial: c.Serial, Reason: reason.KeyCompromise, At: t0.Add(time.Hour)}
	got, err := s.Revoke(ctx(t), r, auditFor("certificate.revoked", c.Serial, r.At))
	must(t, err, "revoking")
	want := revoked(c, r.Reason, r.At)
	if d := diff(want, got); d != "" {
		t.Errorf("Revoke returned (-want +got):\n%s", d)
	}
	stored, err := s.Certificate(ctx(t), c.Serial)
	must(t, err, "reading revoked certificate")
	if d := diff(want, stored); d != "" {
		t.Errorf("stored after Revoke (-want +got):\n%s", d)
	}
	wantEvents := []store.Event{
		{Kind: store.EventIssued, Serial: c.Serial, IssuerID: c.IssuerID, Shard: c.Shard, At: c.NotBefore},
		{Kind: store.EventRevoked, Serial: c.Serial, IssuerID: c.IssuerID, Shard: c.Shard, At: us(r.At)},
	}
	if d := diffEvents(wantEvents, allEvents(t, s)); d != "" {
		t.Errorf("events after Revoke (-want +got):\n%s", d)
	}

	again := store.Revocation{Serial: c.Serial, Reason: reason.Superseded, At: t0.Add(2 * time.Hour)}
	_, err = s.Revoke(ctx(t), again, auditFor("certificate.revoked", c.Serial, again.At))
	wantErr(t, err, store.ErrAlreadyRevoked, "revoking again")
	stored, err = s.Certificate(ctx(t), c.Serial)
	must(t, err, "reading certificate")
	if d := diff(want, stored); d != "" {
		t.Errorf("a second Revoke changed the row (-want +got):\n%s", d)
	}
	if d := diffEvents(wantEvents, allEvents(t, s)); d != "" {
		t.Errorf("events after second Revoke (-want +got):\n%s", d)
	}
	if n := len(allAudit(t, s)); n != 2 {
		t.Errorf("audit has %d entries after issue, revoke and a refused revoke; want 2", n)
	}

	_, err = s.Revoke(ctx(t), store.Revocation{Serial: sn(99), Reason: reason.Unspecified, At: t0}, auditFor("certificate.revoked", sn(99), t0))
	wantErr(t, err, store.ErrNotFound, "revoking a missing certificate")
}

func testEvents(t *testing.T, s store.Store) {
	last, err := s.LastEventSeq(ctx(t))
	must(t, err, "reading last seq of an empty log")
	if last != 0 {
		t.Errorf("LastEventSeq of an empty log = %d, want 0", last)
	}
	var cs []store.Certificate
	for i := 1; i <= 10; i++ {
		cs = append(cs, cert(i, issuerA, 1))
	}
	must(t, bulkLoader(t, s).InsertCertificates(ctx(t), cs), "inserting certificates")
	for _, i := range []int{7, 3} {
		_, err := s.Revoke(ctx(t), store.Revocation{Serial: sn(i), Reason: reason.Superseded, At: t0.Add(time.Hour)},
			auditFor("certificate.revoked", sn(i), t0.Add(time.Hour)))
		must(t, err, "revoking")
	}
	all := allEvents(t, s)
	var kinds []string
	for _, e := range all {
		kinds = append(kinds, string(e.Kind)+":"+string(e.Serial))
	}
	var wantKinds []string
	for _, c := range cs {
		wantKinds = append(wantKinds, "issued:"+string(c.Serial))
	}
	wantKinds = append(wantKinds, "revoked:"+string(sn(7)), "revoked:"+string(sn(3)))
	if d := diff(wantKinds, kinds); d != "" {
		t.Fatalf("event log (-want +got):\n%s", d)
	}
	if msg := seqProblem(all); msg != "" {
		t.Fatal(msg)
	}

	for _, limit := range []int{1, 5, 12, 100} {
		var paged []store.Event
		after := int64(0)
		for range 100 {
			page, err := s.EventsAfter(ctx(t), after, limit)
			must(t, err, "paging events")
			if len(page) > limit {
				t.Fatalf("EventsAfter(%d, %d) returned %d events", after, limit, len(page))
			}
			if len(page) == 0 {
				break
			}
			paged = append(paged, page...)
			after = page[len(page)-1].Seq
		}
		if d := diff(all, paged); d != "" {
			t.Errorf("paging with limit %d (-want +got):\n%s", limit, d)
		}
	}
	last, err = s.LastEventSeq(ctx(t))
	must(t, err, "reading last seq")
	if want := all[len(all)-1].Seq; last != want {
		t.Errorf("LastEventSeq = %d, want %d", last, want)
	}
	rest, err := s.EventsAfter(ctx(t), last, 10)
	must(t, err, "reading after the last event")
	if len(rest) != 0 {
		t.Errorf("EventsAfter(last) = %+v, want none", rest)
	}
	def, err := s.EventsAfter(ctx(t), 0, 0)
	must(t, err, "reading with the default limit")
	if len(def) != len(all) {
		t.Errorf("EventsAfter(0, 0) returned %d events, want all %d", len(def), len(all))
	}
}

// seedShards stores, for the shard tests:
//
//	A/1: 1 good, 2 revoked, 3 good expired at t0+1h, 4 revoked expired at t0+1h
//	A/2: 5 revoked    B/1: 6 revoked
func seedShards(t *testing.T, s store.Store) map[int]store.Certificate {
	t.Helper()
	cs := map[int]store.Certificate{
		1: cert(1, issuerA, 1), 2: cert(2, issuerA, 1), 3: cert(3, issuerA, 1), 4: cert(4, issuerA, 1),
		5: cert(5, issuerA, 2), 6: cert(6, issuerB, 1),
	}
	for _, i := range []int{3, 4} {
		c := cs[i]
		c.NotAfter = us(t0.Add(time.Hour))
		cs[i] = c
	}
	var bulk []store.Certificate
	for i := 1; i <= 6; i++ {
		bulk = append(bulk, cs[i])
	}
	must(t, bulkLoader(t, s).InsertCertificates(ctx(t), bulk), "inserting certificates")
	for _, i := range []int{2, 4, 5, 6} {
		r := store.Revocation{Serial: sn(i), Reason: reason.KeyCompromise, At: t0.Add(30 * time.Minute)}
		c, err := s.Revoke(ctx(t), r, auditFor("certificate.revoked", sn(i), r.At))
		must(t, err, "revoking")
		cs[i] = c
	}
	return cs
}

func testScanShard(t *testing.T, s store.Store) {
	cs := seedShards(t, s)
	sums := func(is ...int) []store.CertSummary {
		var out []store.CertSummary
		for _, i := range is {
			out = append(out, summary(cs[i]))
		}
		return out
	}
	horizon := t0.Add(time.Hour)
	for _, tc := range []struct {
		name string
		q    store.ShardQuery
		want []store.CertSummary
	}{
		{"whole shard", store.ShardQuery{Issuer: issuerA, Shard: 1}, sums(1, 2, 3, 4)},
		{"revoked", store.ShardQuery{Issuer: issuerA, Shard: 1, RevokedOnly: true}, sums(2, 4)},
		{"not expired", store.ShardQuery{Issuer: issuerA, Shard: 1, NotAfterAfter: horizon}, sums(1, 2)},
		{"revoked, not expired", store.ShardQuery{Issuer: issuerA, Shard: 1, RevokedOnly: true, NotAfterAfter: horizon}, sums(2)},
		{"expired kept until horizon passes them", store.ShardQuery{Issuer: issuerA, Shard: 1, RevokedOnly: true, NotAfterAfter: horizon.Add(-time.Microsecond)}, sums(2, 4)},
		{"other shard", store.ShardQuery{Issuer: issuerA, Shard: 2}, sums(5)},
		{"other issuer", store.ShardQuery{Issuer: issuerB, Shard: 1, RevokedOnly: true}, sums(6)},
		{"empty shard", store.ShardQuery{Issuer: issuerA, Shard: 3}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []store.CertSummary
			must(t, s.ScanShard(ctx(t), tc.q, func(c store.CertSummary) error {
				got = append(got, c)
				return nil
			}), "scanning")
			if d := diff(tc.want, got); d != "" {
				t.Errorf("ScanShard(%+v) (-want +got):\n%s", tc.q, d)
			}
		})
	}

	t.Run("callback error stops the scan", func(t *testing.T) {
		errStop := errors.New("stop")
		calls := 0
		err := s.ScanShard(ctx(t), store.ShardQuery{Issuer: issuerA, Shard: 1}, func(store.CertSummary) error {
			calls++
			return errStop
		})
		if !errors.Is(err, errStop) || calls != 1 {
			t.Errorf("ScanShard returned %v after %d calls, want the callback's error after 1", err, calls)
		}
	})
}

// testScanShardPages crosses an adapter's internal page size (thousands).
func testScanShardPages(t *testing.T, s store.Store) {
	const n = 9000
	cs := make([]store.Certificate, n)
	for i := range cs {
		cs[i] = cert(i+1, issuerA, 4)
		cs[i].DER = nil
	}
	must(t, bulkLoader(t, s).InsertCertificates(ctx(t), cs), "inserting certificates")
	var got []serial.Serial
	must(t, s.ScanShard(ctx(t), store.ShardQuery{Issuer: issuerA, Shard: 4}, func(c store.CertSummary) error {
		got = append(got, c.Serial)
		return nil
	}), "scanning")
	if len(got) != n {
		t.Fatalf("ScanShard returned %d certificates, want %d", len(got), n)
	}
	for i, sn := range got {
		if sn != cs[i].Serial {
			t.Fatalf("ScanShard result %d is %s, want %s (serial order, no repeats)", i, sn, cs[i].Serial)
		}
	}
	revoked := 0
	must(t, s.ScanShard(ctx(t), store.ShardQuery{Issuer: issuerA, Shard: 4, RevokedOnly: true}, func(store.CertSummary) error {
		revoked++
		return nil
	}), "scanning revoked")
	if revoked != 0 {
		t.Errorf("RevokedOnly scan of a shard without revocations returned %d", revoked)
	}
}

func testListCertificates(t *testing.T, s store.Store) {
	var cs []store.Certificate
	for i := 1; i <= 7; i++ {
		c := cert(i, issuerA, 0)
		if i%3 == 0 {
			c.IssuerID = issuerB
		}
		if i == 2 || i == 5 {
			c.NotAfter = us(t0.Add(time.Hour))
		}
		cs = append(cs, c)
	}
	// Insert in reverse to show order comes from the serial, not insertion.
	rev := make([]store.Certificate, len(cs))
	for i, c := range cs {
		rev[len(cs)-1-i] = c
	}
	must(t, bulkLoader(t, s).InsertCertificates(ctx(t), rev), "inserting certificates")
	sums := func(is ...int) []serial.Serial {
		var out []serial.Serial
		for _, i := range is {
			out = append(out, cs[i-1].Serial)
		}
		return out
	}
	for _, tc := range []struct {
		name string
		p    store.Page
		want [][]serial.Serial
	}{
		{"pages of 3", store.Page{Limit: 3}, [][]serial.Serial{sums(1, 2, 3), sums(4, 5, 6), sums(7)}},
		{"skip expired", store.Page{Limit: 3, NotAfterAfter: t0.Add(time.Hour)}, [][]serial.Serial{sums(1, 3, 4), sums(6, 7)}},
		{"default limit", store.Page{}, [][]serial.Serial{sums(1, 2, 3, 4, 5, 6, 7)}},
		{"start mid-way", store.Page{AfterSerial: sn(5)}, [][]serial.Serial{sums(6, 7)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got [][]serial.Serial
			p := tc.p
			for range 10 {
				page, err := s.ListCertificates(ctx(t), p)
				must(t, err, "listing")
				if len(page) == 0 {
					break
				}
				got = append(got, serials(page))
				p.AfterSerial = page[len(page)-1].Serial
			}
			if d := diff(tc.want, got); d != "" {
				t.Errorf("pages (-want +got):\n%s", d)
			}
		})
	}
	page, err := s.ListCertificates(ctx(t), store.Page{Limit: 1})
	must(t, err, "listing")
	if d := diff([]store.CertSummary{summary(cs[0])}, page); d != "" {
		t.Errorf("ListCertificates summary (-want +got):\n%s", d)
	}
}

func testDueForOCSP(t *testing.T, s store.Store) {
	now := t0.Add(10 * time.Minute)
	due := t0.Add(time.Hour)
	refresh := map[int]time.Time{
		1: due,                       // exactly at due: included
		2: t0.Add(30 * time.Minute),  // due
		3: {},                        // zero: due now, first
		4: t0.Add(2 * time.Hour),     // not yet
		5: t0,                        // due but expired
		6: t0.Add(30 * time.Minute),  // ties with 2: serial order
		7: due.Add(time.Microsecond), // just after due
	}
	var cs []store.Certificate
	for i := 1; i <= 7; i++ {
		c := cert(i, issuerA, 0)
		c.OCSPRefreshAt = us(refresh[i])
		if i == 5 {
			c.NotAfter = us(t0)
		}
		cs = append(cs, c)
	}
	must(t, bulkLoader(t, s).InsertCertificates(ctx(t), cs), "inserting certificates")
	// Revoked certificates still need fresh OCSP responses.
	_, err := s.Revoke(ctx(t), store.Revocation{Serial: sn(1), Reason: reason.KeyCompromise, At: t0}, auditFor("certificate.revoked", sn(1), t0))
	must(t, err, "revoking")
	for _, tc := range []struct {
		name  string
		limit int
		want  []serial.Serial
	}{
		{"all due", 0, []serial.Serial{sn(3), sn(2), sn(6), sn(1)}},
		{"limit", 2, []serial.Serial{sn(3), sn(2)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.DueForOCSP(ctx(t), due, now, tc.limit)
			must(t, err, "listing due")
			if d := diff(tc.want, serials(got)); d != "" {
				t.Errorf("DueForOCSP (-want +got):\n%s", d)
			}
		})
	}
	got, err := s.DueForOCSP(ctx(t), due, now, 1)
	must(t, err, "listing due")
	if d := diff([]store.CertSummary{summary(cs[2])}, got); d != "" {
		t.Errorf("DueForOCSP summary (-want +got):\n%s", d)
	}
	if got[0].Status != status.Good || !got[0].OCSPRefreshAt.IsZero() {
		t.Errorf("zero OCSPRefreshAt came back as %v", got[0].OCSPRefreshAt)
	}
}

func testSetOCSPRefresh(t *testing.T, s store.Store) {
	var cs []store.Certificate
	for i := 1; i <= 3; i++ {
		cs = append(cs, cert(i, issuerA, 0))
	}
	must(t, bulkLoader(t, s).InsertCertificates(ctx(t), cs), "inserting certificates")
	must(t, s.SetOCSPRefresh(ctx(t), nil), "setting nothing")
	later := t0.Add(5 * time.Hour)
	must(t, s.SetOCSPRefresh(ctx(t), []store.OCSPRefresh{{Serial: sn(1), At: later}, {Serial: sn(2), At: later.Add(time.Hour)}}), "moving refresh")
	for i, want := range map[int]time.Time{1: us(later), 2: us(later.Add(time.Hour)), 3: us(t0)} {
		c, err := s.Certificate(ctx(t), sn(i))
		must(t, err, "reading certificate")
		if !c.OCSPRefreshAt.Equal(want) {
			t.Errorf("certificate %d OCSPRefreshAt = %v, want %v", i, c.OCSPRefreshAt, want)
		}
	}
	due, err := s.DueForOCSP(ctx(t), t0.Add(time.Hour), t0, 0)
	must(t, err, "listing due")
	if d := diff([]serial.Serial{sn(3)}, serials(due)); d != "" {
		t.Errorf("DueForOCSP after moving 1 and 2 (-want +got):\n%s", d)
	}

	// A serial listed twice: the last entry wins, as if applied in order.
	must(t, s.SetOCSPRefresh(ctx(t), []store.OCSPRefresh{{Serial: sn(1), At: later.Add(2 * time.Hour)}, {Serial: sn(2), At: later},
		{Serial: sn(1), At: later.Add(3 * time.Hour)}}), "moving refresh twice")
	for i, want := range map[int]time.Time{1: us(later.Add(3 * time.Hour)), 2: us(later)} {
		c, err := s.Certificate(ctx(t), sn(i))
		must(t, err, "reading certificate")
		if !c.OCSPRefreshAt.Equal(want) {
			t.Errorf("after a repeated serial: certificate %d OCSPRefreshAt = %v, want %v", i, c.OCSPRefreshAt, want)
		}
	}

	err = s.SetOCSPRefresh(ctx(t), []store.OCSPRefresh{{Serial: sn(3), At: later}, {Serial: sn(99), At: later}})
	wantErr(t, err, store.ErrNotFound, "moving refresh of a missing certificate")
	c, err := s.Certificate(ctx(t), sn(3))
	must(t, err, "reading certificate")
	if !c.OCSPRefreshAt.Equal(us(t0)) {
		t.Errorf("a failed SetOCSPRefresh still moved certificate 3 to %v", c.OCSPRefreshAt)
	}
}

// testTimePrecision: times come back in UTC at microsecond precision,
// whatever zone and precision went in; zero stays zero; far dates survive.
func testTimePrecision(t *testing.T, s store.Store) {
	zone := time.FixedZone("IST", 5*3600+1800)
	in := time.Date(2026, 1, 2, 3, 4, 5, 999_999_999, zone)
	a := account(1)
	a.CreatedAt = in
	must(t, s.CreateAccount(ctx(t), a, apiKey(1, a.ID)), "creating account")
	c := cert(1, issuerA, 0)
	c.NotBefore = in
	c.NotAfter = time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC) // RFC 5280 "no expiry"
	c.OCSPRefreshAt = time.Time{}
	must(t, bulkLoader(t, s).InsertCertificates(ctx(t), []store.Certificate{c}), "inserting certificate")

	gotA, err := s.Account(ctx(t), a.ID)
	must(t, err, "reading account")
	gotC, err := s.Certificate(ctx(t), c.Serial)
	must(t, err, "reading certificate")
	for _, tc := range []struct {
		name      string
		got, want time.Time
	}{
		{"account CreatedAt", gotA.CreatedAt, time.Date(2026, 1, 1, 21, 34, 5, 999_999_000, time.UTC)},
		{"certificate NotBefore", gotC.NotBefore, time.Date(2026, 1, 1, 21, 34, 5, 999_999_000, time.UTC)},
		{"certificate NotAfter", gotC.NotAfter, c.NotAfter},
		{"zero OCSPRefreshAt", gotC.OCSPRefreshAt, time.Time{}},
		{"zero RevokedAt", gotC.RevokedAt, time.Time{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if !tc.got.Equal(tc.want) {
				t.Errorf("got %v, want %v", tc.got, tc.want)
			}
			if !tc.want.IsZero() && tc.got.Location() != time.UTC {
				t.Errorf("got location %v, want UTC", tc.got.Location())
			}
			if tc.want.IsZero() && !tc.got.IsZero() {
				t.Errorf("zero time came back as %v", tc.got)
			}
		})
	}
}
