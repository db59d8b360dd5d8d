package main

import (
	"bytes"
	"context"
	"crypto/x509"
	"io"
	"math/big"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"golang.org/x/crypto/ocsp"

	"github.com/trustline/trustline/internal/status"
	"github.com/trustline/trustline/internal/store"
	"github.com/trustline/trustline/internal/store/sqlite"
	"github.com/trustline/trustline/internal/testenv"
	"github.com/trustline/trustline/internal/testfix"
)

// TestRebuildResumesAfterKill9: `trustline dev --redis` rebuilding the
// response cache of 40,000 certificates is killed with SIGKILL midway. The
// restarted process resumes the same rebuild after the serial it had
// recorded, leaves the responses written before untouched (not re-signed),
// and answers every OCSP request correctly while it finishes.
func TestRebuildResumesAfterKill9(t *testing.T) {
	testenv.NeedTCP(t, "Redis", "127.0.0.1:6379")
	const n, db = 40000, 9
	data := filepath.Join(t.TempDir(), "dev")
	if out, err := exec.Command(binary, "bench", "populate", "--data", data, "--certs", strconv.Itoa(n)).CombinedOutput(); err != nil {
		t.Fatalf("bench populate: %v\n%s", err, out)
	}
	certs := listCertificates(t, data, n)
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379", DB: db})
	t.Cleanup(func() { rdb.Close() })
	// The killed process keeps the pre-signer's lease until it expires;
	// one signer leaves the test a wide window to kill the rebuild in.
	cfg := filepath.Join(t.TempDir(), "dev.yaml")
	if err := os.WriteFile(cfg, []byte("presign:\n  lease: 3s\n  workers: 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	args := []string{"--config", cfg, "--data", data, "--redis", "redis://127.0.0.1:6379/" + strconv.Itoa(db)}

	p := startDev(t, args...)
	prefix := "trustline:ocsp:" + p.instance + ":"
	t.Cleanup(func() { dropRedisKeys(t, db, prefix+"*") })
	var st []string // the stored State's fields: v2 epoch complete seq refresh-floor after|-
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(5 * time.Millisecond) {
		st = strings.Fields(rdb.Get(context.Background(), prefix+"state").Val())
		if len(st) == 6 && (st[5] != "-" || st[2] == "1") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no rebuild resume point in Redis after a minute (state %q)", st)
		}
	}
	if st[2] == "1" {
		t.Fatalf("the rebuild finished before the test could kill it (state %q)", st)
	}
	p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
	// Read the state again: a save may have landed before the kill.
	st = strings.Fields(rdb.Get(context.Background(), prefix+"state").Val())
	if len(st) != 6 || st[2] != "0" || st[5] == "-" {
		t.Fatalf("state after SIGKILL %q: want an unfinished rebuild with a resume point", st)
	}
	epoch, after := st[1], st[5]
	var written, pending []store.CertSummary
	for _, c := range certs {
		if string(c.Serial) <= after {
			written = append(written, c)
		} else {
			pending = append(pending, c)
		}
	}
	if len(written) == 0 || len(pending) == 0 {
		t.Fatalf("resume point %s splits %d certificates into %d and %d", after, n, len(written), len(pending))
	}
	before := map[string]string{}
	for _, c := range sample(written, 50) {
		k := prefix + "r:" + string(c.IssuerID) + ":" + string(c.Serial) + ":1"
		v, err := rdb.Get(context.Background(), k).Result()
		if err != nil {
			t.Fatalf("%s is before the resume point %s but %s is not in Redis: %v", c.Serial, after, k, err)
		}
		before[k] = v
	}
	t.Logf("killed at resume point %s: %d certificates written, %d to go", after, len(written), len(pending))

	p2 := startDev(t, args...)
	issuers := map[string]*x509.Certificate{}
	for _, id := range []string{"int-p256", "int-rsa2048"} {
		b, err := os.ReadFile(filepath.Join(data, "ca", id+".pem"))
		if err != nil {
			t.Fatal(err)
		}
		issuers[id] = testfix.ParsePEMChain(t, b)[0]
	}
	// Both sides of the resume point, while the rebuild finishes.
	for _, c := range append(sample(pending, 20), sample(written, 20)...) {
		checkOCSP(t, p2.ocsp, c, issuers[string(c.IssuerID)])
	}
	waitFor(t, 60*time.Second, "the resumed rebuild to complete", func() bool {
		st = strings.Fields(rdb.Get(context.Background(), prefix+"state").Val())
		return len(st) == 6 && st[2] == "1"
	})
	if st[1] != epoch {
		t.Errorf("completed epoch %s, want the resumed %s", st[1], epoch)
	}
	for k, v := range before {
		if got := rdb.Get(context.Background(), k).Val(); got != v {
			t.Fatalf("%s was rewritten by the resumed rebuild", k)
		}
	}
	p2.stop(t)
	logs := p2.logs.String()
	if !strings.Contains(logs, `msg="resuming the OCSP response cache rebuild"`) || !strings.Contains(logs, "after_serial="+after) {
		t.Errorf("no resume line naming serial %s in the log:\n%s", after, tailLines(logs, 30))
	}
	m := regexp.MustCompile(`msg="OCSP response cache rebuilt".* certificates=(\d+)`).FindStringSubmatch(logs)
	if m == nil {
		t.Fatalf("no rebuilt line in the log:\n%s", tailLines(logs, 30))
	}
	if signed, _ := strconv.Atoi(m[1]); signed != len(pending) {
		t.Errorf("the resumed rebuild signed %d certificates, want the %d after the resume point", signed, len(pending))
	}
}

// listCertificates reads the populated store's certificates in serial order.
func listCertificates(t *testing.T, data string, n int) []store.CertSummary {
	t.Helper()
	st, err := sqlite.Open(context.Background(), sqlite.Config{Path: filepath.Join(data, "trustline.db")}, testfix.QuietLogger())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	certs, err := st.ListCertificates(context.Background(), store.Page{Limit: n + 1})
	if err != nil || len(certs) != n {
		t.Fatalf("ListCertificates: %d certificates, %v; want %d", len(certs), err, n)
	}
	return certs
}

// sample returns k certificates spread over cs, its first and last included.
func sample(cs []store.CertSummary, k int) []store.CertSummary {
	if len(cs) <= k {
		return cs
	}
	out := make([]store.CertSummary, 0, k)
	for i := range k {
		out = append(out, cs[i*(len(cs)-1)/(k-1)])
	}
	return out
}

// checkOCSP asks the responder about c and requires a verified, unexpired
// answer with c's status.
func checkOCSP(t *testing.T, url string, c store.CertSummary, issuer *x509.Certificate) {
	t.Helper()
	sn, ok := new(big.Int).SetString(string(c.Serial), 16)
	if !ok {
		t.Fatalf("serial %q", c.Serial)
	}
	req, err := ocsp.CreateRequest(&x509.Certificate{SerialNumber: sn}, issuer, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Post(url, "application/ocsp-request", bytes.NewReader(req))
	if err != nil {
		t.Fatalf("OCSP %s: %v", c.Serial, err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	r, err := ocsp.ParseResponseForCert(body, nil, issuer)
	if err != nil {
		t.Fatalf("OCSP %s: %v", c.Serial, err)
	}
	want := ocsp.Good
	if c.Status == status.Revoked {
		want = ocsp.Revoked
	}
	if r.Status != want || r.SerialNumber.Cmp(sn) != 0 || !r.NextUpdate.After(time.Now()) {
		t.Errorf("OCSP %s: status %d serial %x nextUpdate %v; want status %d, unexpired", c.Serial, r.Status, r.SerialNumber, r.NextUpdate, want)
	}
}
