package ctlog_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/json"
	"errors"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	ct "github.com/google/certificate-transparency-go"
	"github.com/google/certificate-transparency-go/client"
	"github.com/google/certificate-transparency-go/ctutil"
	"github.com/google/certificate-transparency-go/jsonclient"
	"github.com/google/certificate-transparency-go/loglist3"
	ctx509 "github.com/google/certificate-transparency-go/x509"

	"github.com/trustline/trustline/internal/testfix"
	"github.com/trustline/trustline/internal/testfix/ctlog"
)

// oidPoison is the precertificate poison extension (RFC 6962 §3.1).
var oidPoison = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 11129, 2, 4, 3}

// hierarchy is a root and an intermediate below it, both ECDSA.
type hierarchy struct {
	root, inter *testfix.CA
}

func newHierarchy(t *testing.T) hierarchy {
	t.Helper()
	now := time.Now()
	root := testfix.NewCA(t, "CT Test Root", now.Add(-time.Hour), now.Add(10*365*24*time.Hour))
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	inter := root.Issue(t, &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "CT Test Intermediate", Organization: []string{"Trustline Tests"}, Country: []string{"US"}},
		NotBefore:    now.Add(-time.Hour), NotAfter: now.Add(5 * 365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true, IsCA: true, MaxPathLenZero: true,
	}, key.Public())
	return hierarchy{root: root, inter: &testfix.CA{Cert: inter, Key: key}}
}

// leaf issues a TLS server certificate for name expiring at notAfter;
// precert makes it a precertificate (the poison extension, critical).
func (h hierarchy) leaf(t *testing.T, name string, notAfter time.Time, precert bool) *x509.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: name},
		DNSNames:     []string{name},
		NotBefore:    time.Now().Add(-time.Minute), NotAfter: notAfter,
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	if precert {
		tmpl.ExtraExtensions = []pkix.Extension{{Id: oidPoison, Critical: true, Value: asn1.NullBytes}}
	}
	return h.inter.Issue(t, tmpl, key.Public())
}

func logClient(t *testing.T, l *ctlog.Log) *client.LogClient {
	t.Helper()
	c, err := client.New(l.URL, &http.Client{Timeout: 10 * time.Second}, jsonclient.Options{PublicKeyDER: l.PublicKeyDER})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// submit posts chain (leaf first) with add-chain or add-pre-chain. The
// client checks the SCT's signature with the log's key.
func submit(t *testing.T, l *ctlog.Log, precert bool, chain ...*x509.Certificate) (*ct.SignedCertificateTimestamp, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	var raw []ct.ASN1Cert
	for _, c := range chain {
		raw = append(raw, ct.ASN1Cert{Data: c.Raw})
	}
	if precert {
		return logClient(t, l).AddPreChain(ctx, raw)
	}
	return logClient(t, l).AddChain(ctx, raw)
}

// verifySCT checks sct over chain (leaf first, then its issuer) with
// ctutil, as a relying party would, and returns the MerkleTreeLeaf the
// log signed. Both take certificate-transparency-go's x509 fork.
func verifySCT(t *testing.T, l *ctlog.Log, sct *ct.SignedCertificateTimestamp, precert bool, chain ...*x509.Certificate) *ct.MerkleTreeLeaf {
	t.Helper()
	parsed := ctChain(t, chain...)
	if err := ctutil.VerifySCT(logKey(t, l), parsed, sct, false); err != nil {
		t.Errorf("SCT does not verify: %v", err)
	}
	if sct.LogID.KeyID != l.LogID {
		t.Errorf("SCT log ID %x, want %x", sct.LogID.KeyID, l.LogID)
	}
	typ := ct.X509LogEntryType
	if precert {
		typ = ct.PrecertLogEntryType
	}
	leaf, err := ct.MerkleTreeLeafFromChain(parsed, typ, sct.Timestamp)
	if err != nil {
		t.Fatal(err)
	}
	return leaf
}

// ctChain parses certificates with certificate-transparency-go's x509.
func ctChain(t *testing.T, chain ...*x509.Certificate) []*ctx509.Certificate {
	t.Helper()
	var parsed []*ctx509.Certificate
	for _, c := range chain {
		p, err := ctx509.ParseCertificate(c.Raw)
		if err != nil {
			t.Fatal(err)
		}
		parsed = append(parsed, p)
	}
	return parsed
}

func logKey(t *testing.T, l *ctlog.Log) crypto.PublicKey {
	t.Helper()
	pub, err := ctx509.ParsePKIXPublicKey(l.PublicKeyDER)
	if err != nil {
		t.Fatal(err)
	}
	return pub
}

// TestSubmitAndRead: a certificate and a precertificate logged, their
// SCTs verified, and both read back from the data tiles.
func TestSubmitAndRead(t *testing.T) {
	t.Parallel()
	h := newHierarchy(t)
	l := ctlog.Start(t, ctlog.Options{Roots: [][]byte{h.root.Cert.Raw}, Name: "argon"})
	if !strings.HasSuffix(l.URL, "/argon") || l.LogID != sha256.Sum256(l.PublicKeyDER) {
		t.Fatalf("URL %s, LogID %x", l.URL, l.LogID)
	}
	roots, err := logClient(t, l).GetAcceptedRoots(context.Background())
	if err != nil || len(roots) != 1 || !bytes.Equal(roots[0].Data, h.root.Cert.Raw) {
		t.Fatalf("get-roots: %v, %v", roots, err)
	}

	notAfter := time.Now().Add(90 * 24 * time.Hour)
	cert := h.leaf(t, "cert.example.test", notAfter, false)
	began := time.Now()
	certSCT, err := submit(t, l, false, cert, h.inter.Cert)
	if err != nil {
		t.Fatalf("add-chain: %v", err)
	}
	t.Logf("add-chain answered in %v", time.Since(began))
	verifySCT(t, l, certSCT, false, cert, h.inter.Cert)

	pre := h.leaf(t, "pre.example.test", notAfter, true)
	preSCT, err := submit(t, l, true, pre, h.inter.Cert, h.root.Cert) // the root may be given too
	if err != nil {
		t.Fatalf("add-pre-chain: %v", err)
	}
	preLeaf := verifySCT(t, l, preSCT, true, pre, h.inter.Cert)
	if ctutil.VerifySCT(logKey(t, l), ctChain(t, cert, h.inter.Cert), preSCT, false) == nil {
		t.Error("the precertificate's SCT verifies for the certificate")
	}

	// A precertificate is not a certificate, nor the reverse.
	if _, err := submit(t, l, false, pre, h.inter.Cert); err == nil {
		t.Error("add-chain took a precertificate")
	}
	if _, err := submit(t, l, true, cert, h.inter.Cert); err == nil {
		t.Error("add-pre-chain took a certificate")
	}

	// No waiting: the SCTs came once a checkpoint had their entries.
	entries := l.Entries(t)
	if len(entries) != 2 || l.Size(t) != 2 {
		t.Fatalf("%d entries (size %d), want 2: %+v", len(entries), l.Size(t), entries)
	}
	chainFPs := [][32]byte{sha256.Sum256(h.inter.Cert.Raw), sha256.Sum256(h.root.Cert.Raw)}
	e := entries[0]
	if e.Index != 0 || e.Precert || !bytes.Equal(e.Certificate, cert.Raw) || e.Timestamp != certSCT.Timestamp ||
		e.PreCertificate != nil || e.IssuerKeyHash != [32]byte{} {
		t.Errorf("certificate entry: %+v", e)
	}
	if !equalFPs(e.ChainFingerprints, chainFPs) {
		t.Errorf("certificate entry chain %x, want %x", e.ChainFingerprints, chainFPs)
	}
	e = entries[1]
	if e.Index != 1 || !e.Precert || e.Timestamp != preSCT.Timestamp {
		t.Errorf("precertificate entry: %+v", e)
	}
	if !bytes.Equal(e.PreCertificate, pre.Raw) {
		t.Error("precertificate entry: pre_certificate is not the submitted precertificate")
	}
	if want := sha256.Sum256(h.inter.Cert.RawSubjectPublicKeyInfo); e.IssuerKeyHash != want {
		t.Errorf("precertificate entry: issuer_key_hash %x, want %x", e.IssuerKeyHash, want)
	}
	if !bytes.Equal(e.Certificate, preLeaf.TimestampedEntry.PrecertEntry.TBSCertificate) {
		t.Error("precertificate entry: tbs_certificate is not the one the SCT signs")
	}
	if bytes.Contains(e.Certificate, []byte{0x06, 0x0a, 0x2b, 0x06, 0x01, 0x04, 0x01, 0xd6, 0x79, 0x02, 0x04, 0x03}) {
		t.Error("precertificate entry: tbs_certificate still has the poison extension")
	}
	if !equalFPs(e.ChainFingerprints, chainFPs) {
		t.Errorf("precertificate entry chain %x, want %x", e.ChainFingerprints, chainFPs)
	}

	// The same certificate again: the log answers with the first SCT.
	again, err := submit(t, l, false, cert, h.inter.Cert)
	if err != nil || again.Timestamp != certSCT.Timestamp {
		t.Errorf("add-chain again: %v, %v (first timestamp %d)", again, err, certSCT.Timestamp)
	}
	if n := len(l.WaitForEntries(t, 2)); n != 2 {
		t.Errorf("%d entries after a duplicate, want 2", n)
	}
}

func equalFPs(a, b [][32]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestManyEntries: past one full data tile (256 entries), submitted
// concurrently; Entries reads the full tile and the partial one after.
func TestManyEntries(t *testing.T) {
	if testing.Short() {
		t.Skip("logs 300 certificates")
	}
	t.Parallel()
	h := newHierarchy(t)
	l := ctlog.Start(t, ctlog.Options{Roots: [][]byte{h.root.Cert.Raw}})
	const n = 300
	certs := make([]*x509.Certificate, n)
	for i := range certs {
		certs[i] = h.leaf(t, "many.example.test", time.Now().Add(24*time.Hour), i%3 == 0)
	}
	errs := make(chan error, n)
	sem := make(chan struct{}, 32)
	for i, c := range certs {
		go func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			_, err := submit(t, l, i%3 == 0, c, h.inter.Cert)
			errs <- err
		}()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	entries := l.Entries(t)
	if len(entries) != n {
		t.Fatalf("%d entries, want %d", len(entries), n)
	}
	if _, err := os.Stat(filepath.Join(l.Dir, "tile", "data", "000")); err != nil {
		t.Errorf("no full data tile: %v", err)
	}
	seen := map[string]bool{}
	for i, e := range entries {
		if e.Index != uint64(i) {
			t.Errorf("entry %d has index %d", i, e.Index)
		}
		der := e.Certificate
		if e.Precert {
			der = e.PreCertificate
		}
		seen[string(der)] = true
	}
	for i, c := range certs {
		if !seen[string(c.Raw)] {
			t.Errorf("certificate %d not in the log", i)
		}
	}
}

// TestTemporal: a log sharded by NotAfter takes what expires in its
// interval only.
func TestTemporal(t *testing.T) {
	t.Parallel()
	h := newHierarchy(t)
	start := time.Now().Add(30 * 24 * time.Hour).Truncate(time.Second)
	limit := start.Add(30 * 24 * time.Hour)
	l := ctlog.Start(t, ctlog.Options{Roots: [][]byte{h.root.Cert.Raw}, Name: "shard", NotAfterStart: start, NotAfterLimit: limit})
	for _, c := range []struct {
		notAfter time.Time
		ok       bool
	}{
		{start.Add(-time.Second), false},
		{start, true},
		{limit.Add(-time.Second), true},
		{limit, false},
	} {
		_, err := submit(t, l, true, h.leaf(t, "temporal.example.test", c.notAfter, true), h.inter.Cert)
		var rsp jsonclient.RspError
		switch {
		case c.ok && err != nil:
			t.Errorf("NotAfter %v: %v", c.notAfter, err)
		case !c.ok && (!errors.As(err, &rsp) || rsp.StatusCode != http.StatusBadRequest):
			t.Errorf("NotAfter %v: %v, want HTTP 400", c.notAfter, err)
		}
	}
	if n := len(l.Entries(t)); n != 2 {
		t.Errorf("%d entries, want 2", n)
	}
}

// TestLogList: loglist3 reads the list, and finds every log under its
// operator with its key, URL and temporal interval.
func TestLogList(t *testing.T) {
	t.Parallel()
	h := newHierarchy(t)
	roots := [][]byte{h.root.Cert.Raw}
	start := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	a := ctlog.Start(t, ctlog.Options{Roots: roots, Name: "a"})
	b := ctlog.Start(t, ctlog.Options{Roots: roots, Name: "b", NotAfterStart: start, NotAfterLimit: start.AddDate(0, 6, 0)})
	c := ctlog.Start(t, ctlog.Options{Roots: roots, Name: "c"})
	js := ctlog.LogListJSON(map[string][]*ctlog.Log{"Zeta CT": {c}, "Alpha CT": {a, b}})
	if again := ctlog.LogListJSON(map[string][]*ctlog.Log{"Zeta CT": {c}, "Alpha CT": {a, b}}); !bytes.Equal(js, again) {
		t.Error("the list is not deterministic")
	}

	list, err := loglist3.NewFromJSON(js)
	if err != nil {
		t.Fatalf("%v\n%s", err, js)
	}
	// Nothing loglist3 does not know either.
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.DisallowUnknownFields()
	if err := dec.Decode(new(loglist3.LogList)); err != nil {
		t.Errorf("%v\n%s", err, js)
	}
	if len(list.Operators) != 2 || list.Operators[0].Name != "Alpha CT" || list.Operators[1].Name != "Zeta CT" {
		t.Fatalf("operators: %s", js)
	}
	want := [][]*ctlog.Log{{a, b}, {c}}
	for i, op := range list.Operators {
		if len(op.Email) == 0 || op.Logs == nil || len(op.Logs) != 0 || len(op.TiledLogs) != len(want[i]) {
			t.Fatalf("operator %s: %s", op.Name, js)
		}
		for j, tl := range op.TiledLogs {
			l := want[i][j]
			if !bytes.Equal(tl.Key, l.PublicKeyDER) || !bytes.Equal(tl.LogID, l.LogID[:]) ||
				tl.SubmissionURL != l.URL+"/" || tl.MonitoringURL != l.URL+"/" || tl.MMD != 86400 ||
				tl.State.LogStatus() != loglist3.UsableLogStatus || tl.State.Usable.Timestamp.After(time.Now()) ||
				!strings.Contains(tl.Description, l.Name) {
				t.Errorf("log %s: %s", l.Name, js)
			}
			switch {
			case l == b && (tl.TemporalInterval == nil || !tl.TemporalInterval.StartInclusive.Equal(start) ||
				!tl.TemporalInterval.EndExclusive.Equal(start.AddDate(0, 6, 0))):
				t.Errorf("log b's temporal interval: %s", js)
			case l != b && tl.TemporalInterval != nil:
				t.Errorf("log %s has a temporal interval: %s", l.Name, js)
			}
		}
	}
}

// TestStop: a stopped log refuses connections; Stop again is a no-op;
// what it logged is still there.
func TestStop(t *testing.T) {
	t.Parallel()
	h := newHierarchy(t)
	l := ctlog.Start(t, ctlog.Options{Roots: [][]byte{h.root.Cert.Raw}})
	if _, err := submit(t, l, false, h.leaf(t, "stop.example.test", time.Now().Add(time.Hour), false), h.inter.Cert); err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	l.Stop()
	t.Logf("stopped in %v", time.Since(began))
	l.Stop()
	resp, err := http.Get(l.URL + "/ct/v1/get-roots")
	if err == nil {
		resp.Body.Close()
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("get-roots from a stopped log: %v, want connection refused", err)
	}
	if n := len(l.Entries(t)); n != 1 {
		t.Errorf("%d entries after Stop, want 1", n)
	}
}
