// Package storetest is the conformance suite for store.Store and
// store.BulkLoader: one set of tests that every adapter
// (internal/store/sqlite, internal/store/postgres) must pass, so that they
// behave alike down to error values, orderings and time precision.
//
// Who may import it: the adapters' tests only.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/trustline/trustline/internal/issuerid"
	"github.com/trustline/trustline/internal/reason"
	"github.com/trustline/trustline/internal/serial"
	"github.com/trustline/trustline/internal/shard"
	"github.com/trustline/trustline/internal/status"
	"github.com/trustline/trustline/internal/store"
)

// Adapter is what the suite needs from an adapter's tests.
type Adapter struct {
	// Open returns a fresh, empty store each time it is called and closes
	// it (and deletes whatever backs it) in t.Cleanup.
	Open func(t *testing.T) store.Store
	// Exec runs one SQL statement on the database behind s (a store Open
	// returned), around the store: the tamper tests use it as an intruder
	// with write access to the database would. The statements are plain
	// SQL that SQLite and PostgreSQL both accept.
	Exec func(t *testing.T, s store.Store, sql string)
}

// Run runs the suite.
func Run(t *testing.T, a Adapter) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s store.Store)
	}{
		{"Accounts", testAccounts},
		{"AccountAtomicity", testAccountAtomicity},
		{"APIKeys", testAPIKeys},
		{"Staff", testStaff},
		{"RateCounters", testRateCounters},
		{"Validations", testValidations},
		{"UpdateValidation", testUpdateValidation},
		{"ValidValidations", testValidValidations},
		{"ListValidations", testListValidations},
		{"Orders", testOrders},
		{"ListOrders", testListOrders},
		{"Reviews", testReviews},
		{"ReviewPatterns", testReviewPatterns},
		{"ReserveSerial", testReserveSerial},
		{"InsertCertificate", testInsertCertificate},
		{"InsertCertificates", testInsertCertificates},
		{"Revoke", testRevoke},
		{"Precertificates", testPrecertificates},
		{"PrecertificatesBulk", testPrecertificatesBulk},
		{"CompleteCertificate", testCompleteCertificate},
		{"CompleteRevokedPrecertificate", testCompleteRevokedPrecertificate},
		{"BlockedKeys", testBlockedKeys},
		{"Events", testEvents},
		{"ScanShard", testScanShard},
		{"ScanShardPages", testScanShardPages},
		{"ListCertificates", testListCertificates},
		{"DueForOCSP", testDueForOCSP},
		{"ExpiringCertificates", testExpiringCertificates},
		{"ExpiringCertificatesDefaultLimit", testExpiringCertificatesDefaultLimit},
		{"SetOCSPRefresh", testSetOCSPRefresh},
		{"TimePrecision", testTimePrecision},
		{"PublishCRL", testPublishCRL},
		{"PublishCRLAudited", testPublishCRLAudited},
		{"ListCRLs", testListCRLs},
		{"Leases", testLeases},
		{"Audit", testAudit},
		{"AuditFromCertificates", testAuditFromCertificates},
		{"AuditHead", testAuditHead},
		{"AuditTruncated", func(t *testing.T, s store.Store) { testAuditTruncated(t, s, a.Exec) }},
		{"AuditUnanchored", func(t *testing.T, s store.Store) { testAuditUnanchored(t, s, a.Exec) }},
		{"Meta", testMeta},
		{"InsertMeta", testInsertMeta},
		{"PortalSessions", testPortalSessions},
		{"PortalSessionTouch", testPortalSessionTouch},
		{"PortalSessionsPerAccount", testPortalSessionsPerAccount},
		{"DeleteExpiredPortalSessions", testDeleteExpiredPortalSessions},
		{"SignInLinks", testSignInLinks},
		{"SignInLinkTimes", testSignInLinkTimes},
		{"SignInLinkInterval", testSignInLinkInterval},
		{"SignInLinksPerAccount", testSignInLinksPerAccount},
		{"SignInLinksTotal", testSignInLinksTotal},
		{"DeleteExpiredSignInLinks", testDeleteExpiredSignInLinks},
		{"ACMEAccounts", testACMEAccounts},
		{"ACMEEABKeys", testACMEEABKeys},
		{"UpdateACMEAccount", testUpdateACMEAccount},
		{"ACMEOrders", testACMEOrders},
		{"UpdateACMEOrder", testUpdateACMEOrder},
		{"UpdateACMEAuthorization", testUpdateACMEAuthorization},
		{"ListACMEOrders", testListACMEOrders},
		{"ACMEOrderFinalizedAt", testACMEOrderFinalizedAt},
		{"PlanRevocations", testPlanRevocations},
		{"PlannedRevocations", testPlannedRevocations},
		{"CancelPlannedRevocation", testCancelPlannedRevocation},
		{"WatchFindings", testWatchFindings},
		{"WatchFindingText", testWatchFindingText},
		{"WatchFindingsPages", testWatchFindingsPages},
		{"DeleteWatchFindings", testDeleteWatchFindings},
		{"WatchFindingLargeBody", testWatchFindingLargeBody},
		{"ConcurrentPublishCRL", testConcurrentPublishCRL},
		{"ConcurrentAcquireLease", testConcurrentAcquireLease},
		{"ConcurrentAppendAudit", testConcurrentAppendAudit},
		{"ConcurrentReserveSerial", testConcurrentReserveSerial},
		{"ConcurrentRevoke", testConcurrentRevoke},
		{"ConcurrentCompleteCertificate", testConcurrentCompleteCertificate},
		{"ConcurrentInsertMeta", testConcurrentInsertMeta},
		{"ConcurrentPortalSignIns", testConcurrentPortalSignIns},
		{"ConcurrentConsumeSignInLink", testConcurrentConsumeSignInLink},
		{"ConcurrentSignInLinks", testConcurrentSignInLinks},
		{"ConcurrentACMEBinding", testConcurrentACMEBinding},
		{"ConcurrentRecordWatchFindings", testConcurrentRecordWatchFindings},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := a.Open(t)
			tc.fn(t, s)
		})
	}
}

// t0 has nanoseconds on purpose: stores keep microseconds, and the suite
// compares against want values truncated by us().
var t0 = time.Date(2026, 3, 1, 12, 0, 0, 123456789, time.UTC)

// us is what a store returns for t: UTC, microsecond precision.
func us(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return t.UTC().Truncate(time.Microsecond)
}

// diff compares want and got, treating nil and empty slices alike (a store
// need not tell them apart).
func diff(want, got any, opts ...cmp.Option) string {
	return cmp.Diff(want, got, append(opts, cmpopts.EquateEmpty())...)
}

// bulkLoader returns the bulk path of s: every adapter implements
// store.BulkLoader besides store.Store, for the bench.
func bulkLoader(tb testing.TB, s store.Store) store.BulkLoader {
	tb.Helper()
	b, ok := s.(store.BulkLoader)
	if !ok {
		tb.Fatalf("%T does not implement store.BulkLoader", s)
	}
	return b
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	t.Cleanup(cancel)
	return c
}

func must(t *testing.T, err error, doing string) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", doing, err)
	}
}

// wantErr fails unless errors.Is(err, want); want nil means success.
func wantErr(t *testing.T, err, want error, doing string) {
	t.Helper()
	switch {
	case want == nil && err != nil:
		t.Fatalf("%s: unexpected error %v", doing, err)
	case want != nil && !errors.Is(err, want):
		t.Fatalf("%s: error %v, want errors.Is(%v)", doing, err, want)
	}
}

// sn is the i-th test serial: canonical hex, a 0x7f prefix byte so there is
// never a leading zero octet, and serial order equal to i order.
func sn(i int) serial.Serial { return serial.MustParse(fmt.Sprintf("7f%010x", i)) }

const (
	issuerA issuerid.ID = "int-a"
	issuerB issuerid.ID = "int-b"
)

func account(i int) store.Account {
	return store.Account{
		ID:        fmt.Sprintf("acct-%d", i),
		Email:     fmt.Sprintf("user%d@example.com", i),
		Role:      store.RoleSubscriber,
		CreatedAt: us(t0.Add(time.Duration(i) * time.Second)),
	}
}

func apiKey(i int, accountID string) store.APIKey {
	return store.APIKey{
		ID:        fmt.Sprintf("key-%d", i),
		AccountID: accountID,
		Hash:      []byte(fmt.Sprintf("sha256-of-secret-%d-padded-to-32b", i))[:32],
		CreatedAt: us(t0),
	}
}

// seedAccount creates account i with key i.
func seedAccount(t *testing.T, s store.Store, i int) store.Account {
	t.Helper()
	a := account(i)
	must(t, s.CreateAccount(ctx(t), a, apiKey(i, a.ID)), "creating account")
	return a
}

// der is a stand-in for a certificate's DER: distinct per serial and about
// as long as a real leaf (n bytes).
func der(s serial.Serial, n int) []byte {
	b := make([]byte, n)
	copy(b, "0\x82\x04\x00")
	for i := 4; i < n; i++ {
		b[i] = s[i%len(s)] ^ byte(i)
	}
	return b
}

// cert is a good certificate of issuer/shard with serial sn(i), valid for
// 90 days from t0, its OCSP refresh due at t0.
func cert(i int, issuer issuerid.ID, sh shard.Index) store.Certificate {
	s := sn(i)
	return store.Certificate{
		Serial:        s,
		IssuerID:      issuer,
		Shard:         sh,
		AccountID:     "acct-1",
		OrderID:       fmt.Sprintf("order-%d", i),
		DER:           der(s, 64),
		NotBefore:     us(t0),
		NotAfter:      us(t0.Add(90 * 24 * time.Hour)),
		Status:        status.Good,
		OCSPRefreshAt: us(t0),
	}
}

// issue reserves c's serial and inserts c with an audit entry.
func issue(t *testing.T, s store.Store, c store.Certificate) {
	t.Helper()
	must(t, s.ReserveSerial(ctx(t), c.Serial, c.IssuerID, c.NotBefore), "reserving serial")
	must(t, s.InsertCertificate(ctx(t), c, auditFor("certificate.issued", c.Serial, c.NotBefore)), "inserting certificate")
}

func auditFor(kind string, subject serial.Serial, at time.Time) store.AuditEntry {
	return store.AuditEntry{
		At:      at,
		Kind:    kind,
		Actor:   "system",
		Subject: string(subject),
		Payload: []byte(`{"serial":"` + string(subject) + `"}`),
	}
}

func summary(c store.Certificate) store.CertSummary {
	return store.CertSummary{
		Serial:        c.Serial,
		IssuerID:      c.IssuerID,
		Shard:         c.Shard,
		AccountID:     c.AccountID,
		NotAfter:      c.NotAfter,
		Status:        c.Status,
		RevokedAt:     c.RevokedAt,
		Reason:        c.Reason,
		OCSPRefreshAt: c.OCSPRefreshAt,
	}
}

func serials(cs []store.CertSummary) []serial.Serial {
	out := make([]serial.Serial, len(cs))
	for i, c := range cs {
		out[i] = c.Serial
	}
	return out
}

// allEvents reads the whole event log.
func allEvents(t *testing.T, s store.Store) []store.Event {
	t.Helper()
	es, err := s.EventsAfter(ctx(t), 0, 1<<20)
	must(t, err, "reading events")
	return es
}

// allAudit reads the whole audit log after checking its chain with
// store.VerifyAudit (Seq 1, 2, …; PrevHash links; Hash = ChainHash).
func allAudit(t *testing.T, s store.Store) []store.AuditEntry {
	t.Helper()
	n, _, err := store.VerifyAudit(ctx(t), s)
	must(t, err, "verifying the audit chain")
	var es []store.AuditEntry
	must(t, s.ScanAudit(ctx(t), 0, func(e store.AuditEntry) error {
		es = append(es, e)
		return nil
	}), "scanning audit")
	if int64(len(es)) != n {
		t.Fatalf("ScanAudit returned %d entries, VerifyAudit counted %d", len(es), n)
	}
	return es
}

// revoked is c as Revoke should return it.
func revoked(c store.Certificate, r reason.Reason, at time.Time) store.Certificate {
	c.Status, c.Reason, c.RevokedAt = status.Revoked, r, us(at)
	return c
}
