package storetest

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/trustline/trustline/internal/issuerid"
	"github.com/trustline/trustline/internal/reason"
	"github.com/trustline/trustline/internal/shard"
	"github.com/trustline/trustline/internal/store"
)

func crl(issuer issuerid.ID, shard int, number int64) store.CRL {
	this := us(t0.Add(time.Duration(number) * time.Hour))
	return store.CRL{
		IssuerID:   issuer,
		Shard:      shard,
		Number:     number,
		ThisUpdate: this,
		NextUpdate: this.Add(7 * 24 * time.Hour),
		DER:        []byte(fmt.Sprintf("crl-der-%s-%d-%d", issuer, shard, number)),
		Holder:     fmt.Sprintf("crlgen-%d", number%3),
	}
}

func testPublishCRL(t *testing.T, s store.Store) {
	_, err := s.CRL(ctx(t), issuerA, 0)
	wantErr(t, err, store.ErrNotFound, "reading a CRL never published")
	// Steps run in order against one (issuer, shard); stored is the Number
	// stored after the step.
	for _, tc := range []struct {
		name   string
		number int64
		prev   int64
		want   error
		stored int64
	}{
		{"first", 1, 0, nil, 1},
		{"first again", 2, 0, store.ErrConflict, 1},
		{"wrong prev", 3, 2, store.ErrConflict, 1},
		{"not greater than prev", 1, 1, store.ErrConflict, 1},
		{"lower than prev", 0, 1, store.ErrConflict, 1},
		{"next", 2, 1, nil, 2},
		{"stale prev", 3, 1, store.ErrConflict, 2},
		{"skip ahead", 10, 2, nil, 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantErr(t, s.PublishCRL(ctx(t), crl(issuerA, 0, tc.number), tc.prev, store.AuditEntry{}), tc.want, "publishing")
			got, err := s.CRL(ctx(t), issuerA, 0)
			must(t, err, "reading CRL")
			if d := diff(crl(issuerA, 0, tc.stored), got); d != "" {
				t.Errorf("stored CRL (-want +got):\n%s", d)
			}
		})
	}
	// Shards and issuers are independent, and the full CRL is shard -1.
	must(t, s.PublishCRL(ctx(t), crl(issuerA, shard.Full, 1), 0, store.AuditEntry{}), "publishing the full CRL")
	must(t, s.PublishCRL(ctx(t), crl(issuerB, 0, 1), 0, store.AuditEntry{}), "publishing issuer B's shard 0")
	got, err := s.CRL(ctx(t), issuerA, shard.Full)
	must(t, err, "reading the full CRL")
	if d := diff(crl(issuerA, shard.Full, 1), got); d != "" {
		t.Errorf("full CRL (-want +got):\n%s", d)
	}
}

// testPublishCRLAudited: the audit entry given to PublishCRL is in the
// log exactly when the swap happened.
func testPublishCRLAudited(t *testing.T, s store.Store) {
	entry := func(n int64) store.AuditEntry {
		return store.AuditEntry{At: time.Unix(1700000000+n, 0).UTC(), Kind: "crl.published", Actor: "system",
			Subject: fmt.Sprintf("%s/0", issuerA), Payload: []byte(fmt.Sprintf(`{"number":%d}`, n))}
	}
	must(t, s.PublishCRL(ctx(t), crl(issuerA, 0, 1), 0, entry(1)), "publishing 1")
	wantErr(t, s.PublishCRL(ctx(t), crl(issuerA, 0, 2), 0, entry(2)), store.ErrConflict, "publishing 2 on a stale compare")
	must(t, s.PublishCRL(ctx(t), crl(issuerA, 0, 3), 1, entry(3)), "publishing 3")
	var got []string
	must(t, s.ScanAudit(ctx(t), 0, func(e store.AuditEntry) error {
		got = append(got, string(e.Payload))
		return nil
	}), "scanning the audit log")
	if d := diff([]string{`{"number":1}`, `{"number":3}`}, got); d != "" {
		t.Errorf("audited publications (-want +got):\n%s", d)
	}
	if _, err := s.AppendAudit(ctx(t), entry(4)); err != nil {
		t.Errorf("the chain does not continue after an audited publication: %v", err)
	}
}

func testListCRLs(t *testing.T, s store.Store) {
	want := []store.CRL{crl(issuerA, shard.Full, 4), crl(issuerA, 0, 1), crl(issuerA, 1, 2), crl(issuerA, 12, 3)}
	for _, i := range []int{2, 0, 3, 1} {
		must(t, s.PublishCRL(ctx(t), want[i], 0, store.AuditEntry{}), "publishing")
	}
	must(t, s.PublishCRL(ctx(t), crl(issuerB, 0, 1), 0, store.AuditEntry{}), "publishing issuer B")
	for _, tc := range []struct {
		issuer issuerid.ID
		want   []store.CRL
	}{
		{issuerA, want},
		{issuerB, []store.CRL{crl(issuerB, 0, 1)}},
		{"int-none", nil},
	} {
		t.Run(string(tc.issuer), func(t *testing.T) {
			got, err := s.ListCRLs(ctx(t), tc.issuer)
			must(t, err, "listing CRLs")
			if d := diff(tc.want, got); d != "" {
				t.Errorf("ListCRLs (-want +got):\n%s", d)
			}
		})
	}
}

func testLeases(t *testing.T, s store.Store) {
	const name = "crlgen/int-a"
	at := func(m int) time.Time { return t0.Add(time.Duration(m) * time.Minute) }
	// Steps run in order against one lease.
	for _, tc := range []struct {
		name    string
		release bool // ReleaseLease instead of AcquireLease
		holder  string
		now     int // minutes after t0
		until   int
		want    bool
	}{
		{name: "free", holder: "a", now: 0, until: 5, want: true},
		{name: "held by another", holder: "b", now: 1, until: 6, want: false},
		{name: "renewed by holder", holder: "a", now: 2, until: 10, want: true},
		{name: "old expiry does not free it", holder: "b", now: 7, until: 12, want: false},
		{name: "expired exactly now", holder: "b", now: 10, until: 15, want: true},
		{name: "previous holder locked out", holder: "a", now: 11, until: 20, want: false},
		{name: "release by non-holder is a no-op", release: true, holder: "a", now: 11},
		{name: "still held", holder: "c", now: 12, until: 20, want: false},
		{name: "release by holder", release: true, holder: "b", now: 12},
		{name: "free after release", holder: "a", now: 12, until: 20, want: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.release {
				must(t, s.ReleaseLease(ctx(t), name, tc.holder), "releasing")
				return
			}
			got, err := s.AcquireLease(ctx(t), name, tc.holder, at(tc.now), at(tc.until))
			must(t, err, "acquiring")
			if got != tc.want {
				t.Errorf("AcquireLease(%s, now=+%dm, until=+%dm) = %v, want %v", tc.holder, tc.now, tc.until, got, tc.want)
			}
		})
	}
	ok, err := s.AcquireLease(ctx(t), "presigner", "b", at(12), at(20))
	must(t, err, "acquiring another lease")
	if !ok {
		t.Error("leases are not independent: could not take a different one")
	}
}

func testAudit(t *testing.T, s store.Store) {
	var appended []store.AuditEntry
	for i := range 3 {
		e := store.AuditEntry{
			At:      t0.Add(time.Duration(i) * time.Second),
			Kind:    "review.approved",
			Actor:   fmt.Sprintf("acct-%d", i),
			Subject: fmt.Sprintf("order-%d", i),
			Payload: []byte(fmt.Sprintf(`{"i":%d}`, i)),
		}
		if i == 1 {
			e.Payload = nil
		}
		got, err := s.AppendAudit(ctx(t), e)
		must(t, err, "appending")
		want := e
		want.Seq, want.At = int64(i+1), us(e.At)
		if len(appended) > 0 {
			want.PrevHash = appended[len(appended)-1].Hash
		}
		want.Hash = store.ChainHash(want.PrevHash, want)
		if d := diff(want, got); d != "" {
			t.Errorf("AppendAudit returned (-want +got):\n%s", d)
		}
		appended = append(appended, got)
	}
	if d := diff(appended, allAudit(t, s)); d != "" {
		t.Errorf("ScanAudit (-want +got):\n%s", d)
	}
	var tail []store.AuditEntry
	must(t, s.ScanAudit(ctx(t), 2, func(e store.AuditEntry) error {
		tail = append(tail, e)
		return nil
	}), "scanning after 2")
	if d := diff(appended[2:], tail); d != "" {
		t.Errorf("ScanAudit(2) (-want +got):\n%s", d)
	}
	errStop := errors.New("stop")
	calls := 0
	err := s.ScanAudit(ctx(t), 0, func(store.AuditEntry) error { calls++; return errStop })
	if !errors.Is(err, errStop) || calls != 1 {
		t.Errorf("ScanAudit returned %v after %d calls, want the callback's error after 1", err, calls)
	}
}

// testAuditFromCertificates: entries written by InsertCertificate and Revoke
// join the same chain as AppendAudit's.
func testAuditFromCertificates(t *testing.T, s store.Store) {
	_, err := s.AppendAudit(ctx(t), store.AuditEntry{At: t0, Kind: "ceremony", Actor: "admin", Subject: "int-a"})
	must(t, err, "appending")
	c := cert(1, issuerA, 0)
	issue(t, s, c)
	_, err = s.Revoke(ctx(t), store.Revocation{Serial: c.Serial, Reason: reason.Superseded, At: t0.Add(time.Hour)},
		auditFor("certificate.revoked", c.Serial, t0.Add(time.Hour)))
	must(t, err, "revoking")
	_, err = s.AppendAudit(ctx(t), store.AuditEntry{At: t0.Add(2 * time.Hour), Kind: "crl.published", Actor: "system", Subject: "int-a/0"})
	must(t, err, "appending")
	var kinds []string
	for _, e := range allAudit(t, s) {
		kinds = append(kinds, e.Kind)
	}
	if d := diff([]string{"ceremony", "certificate.issued", "certificate.revoked", "crl.published"}, kinds); d != "" {
		t.Errorf("audit kinds (-want +got):\n%s", d)
	}
}

func testMeta(t *testing.T, s store.Store) {
	_, err := s.Meta(ctx(t), "instance-prefix")
	wantErr(t, err, store.ErrNotFound, "reading a missing key")
	for _, v := range [][]byte{[]byte("\x01"), []byte(`{"pki":"ready"}`), {}} {
		must(t, s.PutMeta(ctx(t), "instance-prefix", v), "putting")
		got, err := s.Meta(ctx(t), "instance-prefix")
		must(t, err, "reading")
		if !bytes.Equal(got, v) {
			t.Errorf("Meta = %q, want %q", got, v)
		}
	}
	must(t, s.PutMeta(ctx(t), "other", []byte("x")), "putting another key")
	got, err := s.Meta(ctx(t), "instance-prefix")
	must(t, err, "reading")
	if len(got) != 0 {
		t.Errorf("putting another key changed this one to %q", got)
	}
}

// testAuditHead: every path that appends (AppendAudit, InsertCertificate,
// Revoke) moves the anchored head to the entry it wrote; the bulk path,
// which writes no entries, leaves it.
func testAuditHead(t *testing.T, s store.Store) {
	_, err := s.AuditHead(ctx(t))
	wantErr(t, err, store.ErrNotFound, "reading the head of an empty log")
	wantHead := func(doing string, seq int64) {
		t.Helper()
		es := allAudit(t, s)
		newest := es[len(es)-1]
		got, err := s.AuditHead(ctx(t))
		must(t, err, "reading the head after "+doing)
		if d := diff(store.AuditHead{Seq: newest.Seq, Hash: newest.Hash}, got); d != "" || got.Seq != seq {
			t.Errorf("head after %s (-newest entry +head), want seq %d:\n%s", doing, seq, d)
		}
	}
	_, err = s.AppendAudit(ctx(t), store.AuditEntry{At: t0, Kind: "ceremony", Actor: "admin", Subject: "int-a"})
	must(t, err, "appending")
	wantHead("AppendAudit", 1)
	c := cert(1, issuerA, 0)
	issue(t, s, c)
	wantHead("InsertCertificate", 2)
	_, err = s.Revoke(ctx(t), store.Revocation{Serial: c.Serial, Reason: reason.Superseded, At: t0.Add(time.Hour)},
		auditFor("certificate.revoked", c.Serial, t0.Add(time.Hour)))
	must(t, err, "revoking")
	wantHead("Revoke", 3)
	must(t, bulkLoader(t, s).InsertCertificates(ctx(t), []store.Certificate{cert(2, issuerA, 0)}), "bulk insert")
	wantHead("InsertCertificates", 3)
}

// deleteNewestAudit is what an intruder covering their tracks would run.
const deleteNewestAudit = `DELETE FROM audit WHERE seq = (SELECT max(seq) FROM audit)`

// testAuditTruncated: deleting the newest entries around the store is
// reported by VerifyAudit, and stays visible after later appends.
func testAuditTruncated(t *testing.T, s store.Store, exec func(*testing.T, store.Store, string)) {
	if exec == nil {
		t.Fatal("the adapter's test gives no Adapter.Exec")
	}
	_, err := s.AppendAudit(ctx(t), store.AuditEntry{At: t0, Kind: "ceremony", Actor: "admin", Subject: "int-a"})
	must(t, err, "appending")
	c := cert(1, issuerA, 0)
	issue(t, s, c)
	_, err = s.Revoke(ctx(t), store.Revocation{Serial: c.Serial, Reason: reason.KeyCompromise, At: t0.Add(time.Hour)},
		auditFor("certificate.revoked", c.Serial, t0.Add(time.Hour)))
	must(t, err, "revoking")
	if n := len(allAudit(t, s)); n != 3 {
		t.Fatalf("%d entries, want 3", n)
	}

	exec(t, s, deleteNewestAudit)
	_, _, err = store.VerifyAudit(ctx(t), s)
	var te *store.TruncatedError
	if !errors.As(err, &te) || te.Head != 3 || te.Newest != 2 {
		t.Fatalf("VerifyAudit after deleting the newest entry = %v, want a TruncatedError (head 3, newest 2)", err)
	}
	if want := "the anchored head is entry 3 but the newest entry is 2: entries were deleted"; !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not say %q", err, want)
	}

	// The next append chains from the anchor, leaving a gap where the
	// deleted entry was.
	e, err := s.AppendAudit(ctx(t), store.AuditEntry{At: t0.Add(2 * time.Hour), Kind: "crl.published", Actor: "system", Subject: "int-a/0"})
	must(t, err, "appending after the deletion")
	if e.Seq != 4 {
		t.Errorf("appended entry %d, want 4 (after the anchored head)", e.Seq)
	}
	_, _, err = store.VerifyAudit(ctx(t), s)
	var ce *store.ChainError
	if !errors.As(err, &ce) || ce.Seq != 4 {
		t.Errorf("VerifyAudit after a further append = %v, want a ChainError at entry 4 (3 is missing)", err)
	}

	exec(t, s, `DELETE FROM audit`)
	_, _, err = store.VerifyAudit(ctx(t), s)
	if !errors.As(err, &te) || te.Head != 4 || te.Newest != 0 {
		t.Errorf("VerifyAudit of an emptied log = %v, want a TruncatedError (head 4, empty)", err)
	}
}

// testAuditUnanchored: a log without an anchor (a store from before
// anchoring) is verified without one, and is anchored by its next append.
func testAuditUnanchored(t *testing.T, s store.Store, exec func(*testing.T, store.Store, string)) {
	if exec == nil {
		t.Fatal("the adapter's test gives no Adapter.Exec")
	}
	for i := range 3 {
		_, err := s.AppendAudit(ctx(t), store.AuditEntry{At: t0.Add(time.Duration(i) * time.Second), Kind: "test", Actor: "a", Subject: fmt.Sprint(i)})
		must(t, err, "appending")
	}
	exec(t, s, `DELETE FROM audit_head`)
	_, err := s.AuditHead(ctx(t))
	wantErr(t, err, store.ErrNotFound, "reading a removed head")
	exec(t, s, deleteNewestAudit)
	n, _, err := store.VerifyAudit(ctx(t), s)
	if err != nil || n != 2 {
		t.Fatalf("VerifyAudit without an anchor = %d entries, %v; want 2, nil", n, err)
	}
	e, err := s.AppendAudit(ctx(t), store.AuditEntry{At: t0.Add(time.Minute), Kind: "test", Actor: "a", Subject: "again"})
	must(t, err, "appending to an unanchored log")
	if e.Seq != 3 {
		t.Errorf("appended entry %d, want 3 (after the newest)", e.Seq)
	}
	if n := len(allAudit(t, s)); n != 3 {
		t.Errorf("%d entries, want 3", n)
	}
	exec(t, s, deleteNewestAudit)
	var te *store.TruncatedError
	if _, _, err := store.VerifyAudit(ctx(t), s); !errors.As(err, &te) || te.Head != 3 {
		t.Errorf("VerifyAudit once re-anchored = %v, want a TruncatedError at head 3", err)
	}
}

func testInsertMeta(t *testing.T, s store.Store) {
	const key = "pki.hierarchy"
	must(t, s.InsertMeta(ctx(t), key, []byte("first")), "inserting")
	wantMeta := func(want string) {
		t.Helper()
		got, err := s.Meta(ctx(t), key)
		must(t, err, "reading")
		if string(got) != want {
			t.Errorf("Meta = %q, want %q", got, want)
		}
	}
	wantMeta("first")
	wantErr(t, s.InsertMeta(ctx(t), key, []byte("second")), store.ErrDuplicate, "inserting an existing key")
	wantMeta("first")
	must(t, s.PutMeta(ctx(t), key, []byte("replaced")), "putting")
	wantErr(t, s.InsertMeta(ctx(t), key, nil), store.ErrDuplicate, "inserting a key PutMeta wrote")
	wantMeta("replaced")
	must(t, s.InsertMeta(ctx(t), "empty", nil), "inserting an empty value")
	got, err := s.Meta(ctx(t), "empty")
	if err != nil || got == nil || len(got) != 0 {
		t.Errorf("Meta of an empty value = %q (nil %v), %v; want empty, non-nil", got, got == nil, err)
	}
}
