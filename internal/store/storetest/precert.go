package storetest

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/trustline/trustline/internal/reason"
	"github.com/trustline/trustline/internal/serial"
	"github.com/trustline/trustline/internal/shard"
	"github.com/trustline/trustline/internal/status"
	"github.com/trustline/trustline/internal/store"
)

// precert is c stored as its precertificate: same serial, Precertificate
// set, a DER of its own (a precertificate is a little shorter than its
// final certificate, which carries the SCTs).
func precert(c store.Certificate) store.Certificate {
	c.DER = der(c.Serial, 900)
	c.Precertificate = true
	return c
}

// finalDER is a stand-in for the final certificate of serial s: distinct
// from der(s, …) of any length, as a real one differs from its
// precertificate.
func finalDER(s serial.Serial, variant int) []byte {
	b := der(s, 1100+variant)
	b[len(b)-1] ^= 0xff
	return b
}

// sctList is a stand-in for a TLS-encoded SignedCertificateTimestampList.
func sctList(variant int) []byte {
	return []byte(fmt.Sprintf("\x00\x30\x00\x2e\x00sct-from-log-%02d-padded-to-look-like-one", variant))
}

// auditIgnoringChain compares audit entries without what the store assigns.
var auditIgnoringChain = cmpopts.IgnoreFields(store.AuditEntry{}, "Seq", "PrevHash", "Hash")

// completed is c as CompleteCertificate(c.Serial, final, …) leaves it.
func completed(c store.Certificate, final []byte) store.Certificate {
	c.DER, c.Precertificate, c.KeyHash = final, false, nil
	return c
}

// testPrecertificates: Precertificate goes in and comes out through every
// path that writes or reads certificate rows; a precertificate is listed,
// scanned and revoked like any other certificate.
func testPrecertificates(t *testing.T, s store.Store) {
	pre := precert(cert(1, issuerA, 3))
	plain := cert(2, issuerA, 3)
	toRevoke := precert(cert(3, issuerA, 3))
	for _, c := range []store.Certificate{pre, plain, toRevoke} {
		issue(t, s, c)
	}
	for _, c := range []store.Certificate{pre, plain, toRevoke} {
		got, err := s.Certificate(ctx(t), c.Serial)
		must(t, err, "reading certificate")
		if d := diff(c, got); d != "" {
			t.Errorf("Certificate(%s) (-want +got):\n%s", c.Serial, d)
		}
	}

	r := store.Revocation{Serial: toRevoke.Serial, Reason: reason.KeyCompromise, At: t0.Add(time.Minute)}
	got, err := s.Revoke(ctx(t), r, auditFor("certificate.revoked", r.Serial, r.At))
	must(t, err, "revoking a precertificate")
	wantRevoked := revoked(toRevoke, r.Reason, r.At)
	if d := diff(wantRevoked, got); d != "" {
		t.Errorf("Revoke of a precertificate returned (-want +got):\n%s", d)
	}
	stored, err := s.Certificate(ctx(t), toRevoke.Serial)
	must(t, err, "reading the revoked precertificate")
	if d := diff(wantRevoked, stored); d != "" {
		t.Errorf("revoked precertificate (-want +got):\n%s", d)
	}

	// Covered like any other: listed, in its shard, in its shard's CRL.
	all := []store.CertSummary{summary(pre), summary(plain), summary(wantRevoked)}
	list, err := s.ListCertificates(ctx(t), store.Page{})
	must(t, err, "listing certificates")
	if d := diff(all, list); d != "" {
		t.Errorf("ListCertificates (-want +got):\n%s", d)
	}
	for _, tc := range []struct {
		name string
		q    store.ShardQuery
		want []store.CertSummary
	}{
		{"whole shard", store.ShardQuery{Issuer: issuerA, Shard: 3}, all},
		{"revoked", store.ShardQuery{Issuer: issuerA, Shard: 3, RevokedOnly: true}, all[2:]},
	} {
		var got []store.CertSummary
		must(t, s.ScanShard(ctx(t), tc.q, func(c store.CertSummary) error {
			got = append(got, c)
			return nil
		}), "scanning")
		if d := diff(tc.want, got); d != "" {
			t.Errorf("ScanShard %s (-want +got):\n%s", tc.name, d)
		}
	}
	due, err := s.DueForOCSP(ctx(t), t0, t0, 0)
	must(t, err, "listing due for OCSP")
	if d := diff([]serial.Serial{pre.Serial, plain.Serial, toRevoke.Serial}, serials(due)); d != "" {
		t.Errorf("DueForOCSP (-want +got):\n%s", d)
	}

	// Nothing is kept in precertificates until a completion.
	for _, sn := range []serial.Serial{pre.Serial, plain.Serial, toRevoke.Serial, sn(99)} {
		_, err := s.Precertificate(ctx(t), sn)
		wantErr(t, err, store.ErrNotFound, fmt.Sprintf("reading the precertificate of %s", sn))
	}
}

// testPrecertificatesBulk: the bulk path keeps the flag too.
func testPrecertificatesBulk(t *testing.T, s store.Store) {
	var cs []store.Certificate
	for i := 1; i <= 6; i++ {
		c := cert(i, issuerA, shard.Index(i%2))
		if i%3 != 0 {
			c = precert(c)
		}
		cs = append(cs, c)
	}
	must(t, bulkLoader(t, s).InsertCertificates(ctx(t), cs), "inserting certificates")
	for _, c := range cs {
		got, err := s.Certificate(ctx(t), c.Serial)
		must(t, err, "reading certificate")
		if d := diff(c, got); d != "" {
			t.Errorf("Certificate(%s) (-want +got):\n%s", c.Serial, d)
		}
	}
	// A bulk-loaded precertificate completes like any other.
	final := finalDER(cs[0].Serial, 0)
	must(t, s.CompleteCertificate(ctx(t), cs[0].Serial, final, sctList(0), t0, auditFor("certificate.completed", cs[0].Serial, t0)),
		"completing a bulk-loaded precertificate")
	got, err := s.Certificate(ctx(t), cs[0].Serial)
	must(t, err, "reading certificate")
	if d := diff(completed(cs[0], final), got); d != "" {
		t.Errorf("completed bulk-loaded certificate (-want +got):\n%s", d)
	}
}

func testCompleteCertificate(t *testing.T, s store.Store) {
	keyHash := bytes.Repeat([]byte{0x5a}, 32)
	c := precert(cert(1, issuerA, 5))
	c.KeyHash = keyHash
	issue(t, s, c)
	plain := cert(2, issuerA, 5)
	issue(t, s, plain)
	eventsBefore := allEvents(t, s)
	auditBefore := allAudit(t, s)

	final := finalDER(c.Serial, 0)
	scts := sctList(0)
	at := t0.Add(5 * time.Minute) // nanoseconds: stored at microseconds
	a := auditFor("certificate.completed", c.Serial, at)
	must(t, s.CompleteCertificate(ctx(t), c.Serial, final, scts, at, a), "completing the certificate")

	want := completed(c, final)
	got, err := s.Certificate(ctx(t), c.Serial)
	must(t, err, "reading the completed certificate")
	if d := diff(want, got); d != "" {
		t.Errorf("completed certificate (-want +got):\n%s", d)
	}
	wantPre := store.Precertificate{Serial: c.Serial, DER: c.DER, SCTList: scts, CreatedAt: us(at)}
	gotPre, err := s.Precertificate(ctx(t), c.Serial)
	must(t, err, "reading the kept precertificate")
	if d := diff(wantPre, gotPre); d != "" {
		t.Errorf("Precertificate (-want +got):\n%s", d)
	}
	if gotPre.CreatedAt.Location() != time.UTC {
		t.Errorf("Precertificate.CreatedAt in %v, want UTC", gotPre.CreatedAt.Location())
	}
	keyed, err := s.CertificatesWithKey(ctx(t), keyHash)
	must(t, err, "listing certificates of the key")
	if d := diff([]serial.Serial{c.Serial}, keyed); d != "" {
		t.Errorf("CertificatesWithKey after completion (-want +got):\n%s", d)
	}
	list, err := s.ListCertificates(ctx(t), store.Page{})
	must(t, err, "listing certificates")
	if d := diff([]store.CertSummary{summary(want), summary(plain)}, list); d != "" {
		t.Errorf("ListCertificates after completion (-want +got):\n%s", d)
	}
	// The status does not change: no event.
	if d := diff(eventsBefore, allEvents(t, s)); d != "" {
		t.Errorf("events after completion (-want +got):\n%s", d)
	}
	// One audit entry, chained (allAudit verifies the chain) and anchored.
	audit := allAudit(t, s)
	if len(audit) != len(auditBefore)+1 {
		t.Fatalf("audit has %d entries after completion, want %d", len(audit), len(auditBefore)+1)
	}
	last := audit[len(audit)-1]
	wantAudit := a
	wantAudit.At = us(a.At)
	if d := diff(wantAudit, last, auditIgnoringChain); d != "" {
		t.Errorf("completion's audit entry (-want +got):\n%s", d)
	}
	head, err := s.AuditHead(ctx(t))
	must(t, err, "reading the audit head")
	if head.Seq != last.Seq || !bytes.Equal(head.Hash, last.Hash) {
		t.Errorf("audit head = %d %x, want the completion's entry %d %x", head.Seq, head.Hash, last.Seq, last.Hash)
	}

	// Refusals change nothing.
	unchanged := func(doing string, auditLen int) {
		t.Helper()
		got, err := s.Certificate(ctx(t), c.Serial)
		must(t, err, "reading the completed certificate")
		if d := diff(want, got); d != "" {
			t.Errorf("%s changed the certificate (-want +got):\n%s", doing, d)
		}
		gotPre, err := s.Precertificate(ctx(t), c.Serial)
		must(t, err, "reading the kept precertificate")
		if d := diff(wantPre, gotPre); d != "" {
			t.Errorf("%s changed the kept precertificate (-want +got):\n%s", doing, d)
		}
		gotPlain, err := s.Certificate(ctx(t), plain.Serial)
		must(t, err, "reading the plain certificate")
		if d := diff(plain, gotPlain); d != "" {
			t.Errorf("%s changed the plain certificate (-want +got):\n%s", doing, d)
		}
		if n := len(allAudit(t, s)); n != auditLen {
			t.Errorf("%s: audit has %d entries, want %d", doing, n, auditLen)
		}
		if d := diff(eventsBefore, allEvents(t, s)); d != "" {
			t.Errorf("%s changed the events (-want +got):\n%s", doing, d)
		}
	}
	later := at.Add(time.Minute)
	err = s.CompleteCertificate(ctx(t), c.Serial, finalDER(c.Serial, 1), sctList(1), later, auditFor("certificate.completed", c.Serial, later))
	wantErr(t, err, store.ErrConflict, "completing the certificate again")
	unchanged("a second completion", len(audit))

	err = s.CompleteCertificate(ctx(t), plain.Serial, finalDER(plain.Serial, 0), sctList(0), later, auditFor("certificate.completed", plain.Serial, later))
	wantErr(t, err, store.ErrConflict, "completing a certificate that was never a precertificate")
	_, err = s.Precertificate(ctx(t), plain.Serial)
	wantErr(t, err, store.ErrNotFound, "reading the precertificate of a plain certificate")
	unchanged("completing a plain certificate", len(audit))

	err = s.CompleteCertificate(ctx(t), sn(99), finalDER(sn(99), 0), sctList(0), later, auditFor("certificate.completed", sn(99), later))
	wantErr(t, err, store.ErrNotFound, "completing a missing certificate")
	_, err = s.Precertificate(ctx(t), sn(99))
	wantErr(t, err, store.ErrNotFound, "reading the precertificate of a missing certificate")
	unchanged("completing a missing certificate", len(audit))

	// A serial reserved but never inserted is no certificate either.
	must(t, s.ReserveSerial(ctx(t), sn(98), issuerA, t0), "reserving a serial")
	err = s.CompleteCertificate(ctx(t), sn(98), finalDER(sn(98), 0), sctList(0), later, auditFor("certificate.completed", sn(98), later))
	wantErr(t, err, store.ErrNotFound, "completing a reserved serial without a certificate")
	unchanged("completing a reserved serial", len(audit))

	// The completed certificate revokes like any other.
	r := store.Revocation{Serial: c.Serial, Reason: reason.Superseded, At: later}
	rev, err := s.Revoke(ctx(t), r, auditFor("certificate.revoked", c.Serial, later))
	must(t, err, "revoking the completed certificate")
	if d := diff(revoked(want, r.Reason, r.At), rev); d != "" {
		t.Errorf("Revoke of the completed certificate (-want +got):\n%s", d)
	}
}

// testCompleteRevokedPrecertificate: a precertificate revoked before its
// final certificate is signed completes, and stays revoked.
func testCompleteRevokedPrecertificate(t *testing.T, s store.Store) {
	c := precert(cert(1, issuerB, 2))
	issue(t, s, c)
	r := store.Revocation{Serial: c.Serial, Reason: reason.KeyCompromise, At: t0.Add(time.Minute)}
	rc, err := s.Revoke(ctx(t), r, auditFor("certificate.revoked", c.Serial, r.At))
	must(t, err, "revoking the precertificate")
	eventsBefore := allEvents(t, s)
	at := t0.Add(2 * time.Minute)
	final := finalDER(c.Serial, 0)
	must(t, s.CompleteCertificate(ctx(t), c.Serial, final, sctList(0), at, auditFor("certificate.completed", c.Serial, at)),
		"completing the revoked precertificate")

	want := completed(rc, final)
	if want.Status != status.Revoked {
		t.Fatalf("Revoke returned status %v", want.Status)
	}
	got, err := s.Certificate(ctx(t), c.Serial)
	must(t, err, "reading the completed certificate")
	if d := diff(want, got); d != "" {
		t.Errorf("completed revoked certificate (-want +got):\n%s", d)
	}
	var crl []store.CertSummary
	must(t, s.ScanShard(ctx(t), store.ShardQuery{Issuer: issuerB, Shard: 2, RevokedOnly: true}, func(c store.CertSummary) error {
		crl = append(crl, c)
		return nil
	}), "scanning revoked")
	if d := diff([]store.CertSummary{summary(want)}, crl); d != "" {
		t.Errorf("revoked entries after completion (-want +got):\n%s", d)
	}
	if d := diff(eventsBefore, allEvents(t, s)); d != "" {
		t.Errorf("events after completion (-want +got):\n%s", d)
	}
	var kinds []string
	for _, e := range allAudit(t, s) {
		kinds = append(kinds, e.Kind)
	}
	if d := diff([]string{"certificate.issued", "certificate.revoked", "certificate.completed"}, kinds); d != "" {
		t.Errorf("audit kinds (-want +got):\n%s", d)
	}
	_, err = s.Revoke(ctx(t), store.Revocation{Serial: c.Serial, Reason: reason.Superseded, At: at}, auditFor("certificate.revoked", c.Serial, at))
	wantErr(t, err, store.ErrAlreadyRevoked, "revoking the completed certificate again")
}

// testConcurrentCompleteCertificate: of racing completions of one
// precertificate exactly one wins; the others see ErrConflict, and the
// stored certificate, kept SCT list and audit are the winner's alone.
func testConcurrentCompleteCertificate(t *testing.T, s store.Store) {
	c := precert(cert(1, issuerA, 0))
	issue(t, s, c)
	errs := race(racers, func(i int) error {
		at := t0.Add(time.Duration(i) * time.Second)
		return s.CompleteCertificate(ctx(t), c.Serial, finalDER(c.Serial, i), sctList(i), at, auditFor("certificate.completed", c.Serial, at))
	})
	w := oneWinner(t, errs, store.ErrConflict, "completing")
	got, err := s.Certificate(ctx(t), c.Serial)
	must(t, err, "reading the completed certificate")
	if d := diff(completed(c, finalDER(c.Serial, w)), got); d != "" {
		t.Errorf("completed certificate is not the winner's (-want +got):\n%s", d)
	}
	pre, err := s.Precertificate(ctx(t), c.Serial)
	must(t, err, "reading the kept precertificate")
	wantPre := store.Precertificate{Serial: c.Serial, DER: c.DER, SCTList: sctList(w), CreatedAt: us(t0.Add(time.Duration(w) * time.Second))}
	if d := diff(wantPre, pre); d != "" {
		t.Errorf("kept precertificate is not the winner's (-want +got):\n%s", d)
	}
	if n := len(allAudit(t, s)); n != 2 {
		t.Errorf("audit has %d entries, want 2 (issued, completed)", n)
	}
}
