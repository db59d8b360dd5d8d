package issuer

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/trustline/trustline/internal/status"
	"github.com/trustline/trustline/internal/testfix"
	"github.com/trustline/trustline/issuer/ct"
	"github.com/trustline/trustline/issuer/fault"
	"github.com/trustline/trustline/issuer/profile"
)

// stubLogs is a CTLogs whose logs cannot meet the policy: either known
// before anything is signed (refuse), or after the precertificate was
// submitted (fail).
type stubLogs struct {
	refuse, fail error
	chains       [][][]byte
}

func (s *stubLogs) CanMeet(_, _ time.Time) error { return s.refuse }
func (s *stubLogs) SCTs(_ context.Context, chain [][]byte, _, _ time.Time) (ct.Result, error) {
	s.chains = append(s.chains, chain)
	return ct.Result{}, s.fail
}
func (s *stubLogs) VerifyEmbedded(_, _ []byte) error { return errors.New("not reached") }
func (s *stubLogs) LogFinal([][]byte, time.Time)     {}

func newCTTestCA(t *testing.T, st CertStore, sink StatusSink, logs CTLogs) *CA {
	t.Helper()
	p, lt := testPKI(t)
	ca, err := New(Config{OCSPURL: "http://127.0.0.1:8081/", BaseURL: "http://127.0.0.1:8082", Shards: 8, SerialPrefix: 0x2a},
		Deps{Store: st, PKI: p, Linter: lt, Sink: sink, CT: logs, Log: testfix.QuietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

// TestCTPolicyUnmet: when the logs give too few SCTs, the precertificate
// stays stored (good, handed to the OCSP sink, so OCSP and CRLs cover its
// serial), the failure is audited, nothing more is signed, and the caller
// gets an unavailable error naming the serial; when the logs are known to
// be unable beforehand, nothing is signed at all.
func TestCTPolicyUnmet(t *testing.T) {
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	req := IssueRequest{AccountID: "acct1", OrderID: "ord1", Profile: profile.DV, Names: []string{"www.example.com"}, PublicKey: k.Public()}

	st, sink := newFakeStore(), &recordingSink{}
	logs := &stubLogs{fail: &ct.PolicyError{Policy: ct.DefaultPolicy, Got: 1, Operators: 1}}
	row, err := newCTTestCA(t, st, sink, logs).Issue(context.Background(), req)
	var un *fault.UnavailableError
	if row.Serial != "" || !errors.As(err, &un) || !strings.Contains(un.Detail, "gave 1 of the 2 timestamps") {
		t.Fatalf("Issue with the policy unmet = %+v, %v", row, err)
	}
	if len(st.certs) != 1 || len(sink.got) != 1 || len(logs.chains) != 1 {
		t.Fatalf("stored %d, sent to OCSP %d, submitted %d; want 1 each", len(st.certs), len(sink.got), len(logs.chains))
	}
	for sn, c := range st.certs {
		pre, err := x509.ParseCertificate(c.DER)
		if err != nil {
			t.Fatal(err)
		}
		poisoned := false
		for _, e := range pre.Extensions {
			poisoned = poisoned || (e.Id.Equal(ct.OIDPoison) && e.Critical)
		}
		if !c.Precertificate || c.Status != status.Good || !poisoned || !strings.Contains(un.Detail, string(sn)) {
			t.Errorf("stored %s: precertificate %v, status %v, poisoned %v; detail %q", sn, c.Precertificate, c.Status, poisoned, un.Detail)
		}
		if chain := logs.chains[0]; len(chain) != 3 || string(chain[0]) != string(c.DER) {
			t.Errorf("submitted a chain of %d, want precertificate, intermediate, root", len(chain))
		}
	}
	kinds := []string{}
	for _, a := range st.audits {
		kinds = append(kinds, a.Kind)
	}
	if strings.Join(kinds, ",") != "certificate.precertificate_signed,ct.policy_unmet" {
		t.Errorf("audited %v", kinds)
	}

	st2 := newFakeStore()
	_, err = newCTTestCA(t, st2, nil, &stubLogs{refuse: errors.New("breakers open")}).Issue(context.Background(), req)
	if !errors.As(err, &un) || !strings.Contains(un.Detail, "nothing was signed") || len(st2.certs) != 0 {
		t.Fatalf("Issue with the logs unable beforehand = %v, %d stored", err, len(st2.certs))
	}
}
