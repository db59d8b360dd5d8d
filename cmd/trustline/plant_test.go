package main

import (
	"bytes"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/trustline/trustline/internal/testenv"
	"github.com/trustline/trustline/internal/testenv/pgtest"
	"github.com/trustline/trustline/internal/testfix"
)

// The plant test runs every role as its own process on one PostgreSQL
// database and a Redis Cluster of 3 masters and 3 replicas, with Varnish in
// front of the responders and origins as a CDN: two API instances, two
// pre-signers, three responders, two origins, two CRL generators. It
// issues and revokes through both APIs, checks every responder and the
// CDN, then kills a pre-signer, a CRL generator, a responder and a Redis
// master with SIGKILL while an OCSP load runs, and checks that no answer
// was ever wrong or expired and that the survivors carry on.

// roleProc is one running role.
type roleProc struct {
	name string
	addr string
	cmd  *exec.Cmd
	logs *testfix.Buffer
	done chan struct{}
}

// startRoleProc starts `trustline <role> --config cfg --listen <free>`
// and waits until its /healthz answers 200.
func startRoleProc(t *testing.T, role, cfg string) *roleProc {
	t.Helper()
	addr := testenv.FreeAddr(t)
	cmd := exec.Command(binary, role, "--config", cfg, "--listen", addr)
	p := &roleProc{name: role, addr: addr, cmd: cmd, logs: &testfix.Buffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.logs, p.logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-p.done:
			case <-time.After(20 * time.Second):
				cmd.Process.Kill()
				<-p.done
			}
		}
		if t.Failed() {
			t.Logf("--- %s %s logs:\n%s", role, addr, tailLines(p.logs.String(), 40))
		}
	})
	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case <-p.done:
			t.Fatalf("%s exited at start:\n%s", role, p.logs)
		default:
		}
		if resp, err := http.Get("http://" + addr + "/healthz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return p
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not ready after 60s:\n%s", role, p.logs)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (p *roleProc) kill9(t *testing.T) {
	t.Helper()
	p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
	t.Logf("killed %s %s with SIGKILL", p.name, p.addr)
}

func tailLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// plantVCL routes /ocsp/ to the responders and /crl/ to the origins, round
// robin over healthy backends, and takes PURGE and BAN from localhost.
// Backends and probes are the test's own; vcl_recv is the deployed one.
func plantVCL(t *testing.T, responders, origins []*roleProc) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("vcl 4.1;\nimport directors;\n")
	backend := func(name, addr string) {
		host, port, _ := net.SplitHostPort(addr)
		fmt.Fprintf(&b, "backend %s { .host = %q; .port = %q; .probe = { .url = \"/healthz\"; .interval = 500ms; .timeout = 500ms; .window = 2; .threshold = 1; } }\n", name, host, port)
	}
	for i, r := range responders {
		backend("r"+strconv.Itoa(i), r.addr)
	}
	for i, o := range origins {
		backend("o"+strconv.Itoa(i), o.addr)
	}
	b.WriteString("acl purgers { \"127.0.0.1\"; }\nsub vcl_init {\n  new ocsp = directors.round_robin();\n")
	for i := range responders {
		fmt.Fprintf(&b, "  ocsp.add_backend(r%d);\n", i)
	}
	b.WriteString("  new crl = directors.round_robin();\n")
	for i := range origins {
		fmt.Fprintf(&b, "  crl.add_backend(o%d);\n", i)
	}
	b.WriteString("}\n")
	b.WriteString(deployedVCLRecv(t))
	return b.String()
}

// deployedVCLRecv is the vcl_recv of the VCL that deploy/plant/plant.sh
// writes, so that the test routes, purges and bans as the deployed CDN
// does. The script's heredoc expands nothing inside vcl_recv, so its text
// is what Varnish gets.
func deployedVCLRecv(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "deploy", "plant", "plant.sh"))
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	i := strings.Index(s, "\nsub vcl_recv {\n")
	if i < 0 {
		t.Fatal("deploy/plant/plant.sh: no vcl_recv")
	}
	n := strings.Index(s[i:], "\n}\n")
	if n < 0 {
		t.Fatal("deploy/plant/plant.sh: vcl_recv not closed")
	}
	return s[i+1 : i+n+3]
}

// plantCert is an issued certificate the test queries.
type plantCert struct {
	cert, issuer *x509.Certificate
	req          []byte // DER OCSP request, SHA-1 CertID
	revoked      atomic.Bool
	revokedAt    atomic.Int64 // unix nanoseconds, set with revoked
	serial       string
}

func loadPlantCert(t *testing.T, work, keyName, serial string) *plantCert {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(work, keyName+"-chain.pem"))
	if err != nil {
		t.Fatal(err)
	}
	certs := testfix.ParsePEMChain(t, b)
	if len(certs) < 2 {
		t.Fatalf("chain of %d certificates", len(certs))
	}
	req, err := ocsp.CreateRequest(certs[0], certs[1], nil)
	if err != nil {
		t.Fatal(err)
	}
	return &plantCert{cert: certs[0], issuer: certs[1], req: req, serial: serial}
}

// ocspVerdict asks url (POST, or GET when get) and checks the answer:
// "" when it is a verified, unexpired response with the expected status;
// "unavailable" for tryLater or a transport failure; anything else is a
// wrong answer.
// A request sent before the revocation was recorded may be answered good;
// an edge (CDN) answer may be good until its purge lands, within edgeGrace.
func ocspVerdict(client *http.Client, url string, c *plantCert, get bool, now time.Time) string {
	wantRevoked := c.revoked.Load()
	var resp *http.Response
	var err error
	if get {
		resp, err = client.Get(url + base64.StdEncoding.EncodeToString(c.req))
	} else {
		resp, err = client.Post(url, "application/ocsp-request", bytes.NewReader(c.req))
	}
	if err != nil {
		return "unavailable"
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode >= 500 {
		return "unavailable"
	}
	if resp.StatusCode != 200 {
		return fmt.Sprintf("HTTP %d", resp.StatusCode)
	}
	r, err := ocsp.ParseResponseForCert(body, c.cert, c.issuer)
	if err != nil {
		if re, ok := err.(ocsp.ResponseError); ok && re.Status == ocsp.TryLater {
			return "unavailable"
		}
		return "unparsable or unverified: " + err.Error()
	}
	if !r.NextUpdate.After(now) {
		return "expired response"
	}
	switch {
	case r.Status == ocsp.Revoked:
		return ""
	case r.Status == ocsp.Good && !wantRevoked:
		return ""
	case r.Status == ocsp.Good && get && time.Since(time.Unix(0, c.revokedAt.Load())) < edgeGrace:
		return "" // a CDN copy cached before the revocation, its BAN on its way
	case r.Status == ocsp.Good:
		// A revocation is final: good after it is a wrong answer, unless
		// it is an edge copy cached before the revocation (the CDN is
		// purged; the responders themselves must never say it).
		return "good after revocation"
	}
	return fmt.Sprintf("status %d", r.Status)
}

// edgeGrace is how long after a revocation the CDN may still hand out a
// copy cached before it: the BAN is queued before the revoke call returns
// and sent at once, so a few milliseconds are usual.
const edgeGrace = 2 * time.Second

func (c *plantCert) markRevoked() {
	c.revokedAt.Store(time.Now().UnixNano())
	c.revoked.Store(true)
}

func TestPlant(t *testing.T) {
	if testing.Short() {
		t.Skip("the plant test starts 20 processes")
	}
	db := freshDatabase(t)
	rc := testenv.StartRedisCluster(t, 3, 1)
	dir := t.TempDir()
	etc := filepath.Join(dir, "etc")
	cdn := testenv.FreeAddr(t)
	public := "http://" + cdn
	rootKeys := filepath.Join(dir, "offline-root")
	initArgs := []string{"init", "--dir", etc, "--postgres", db, "--redis-cluster", rc.URL(),
		"--ocsp-url", public + "/ocsp/", "--crl-url", public + "/crl", "--dev-urls",
		"--crl-period", "2m", "--crl-revocation-delay", "2s", "--crl-shards", "4", "--purge-cache", public,
		"--root-key-dir", rootKeys}
	out, err := exec.Command(binary, initArgs...).CombinedOutput()
	if err != nil {
		t.Fatalf("init: %v\n%s", err, out)
	}
	for _, want := range []string{"root SHA-256", "trustline.yaml", "trustline api", "trustline ca root-crl"} {
		if !bytes.Contains(out, []byte(want)) {
			t.Errorf("init output lacks %q:\n%s", want, out)
		}
	}
	rootFP := regexp.MustCompile(`root SHA-256\s+(\S+)`).FindSubmatch(out)
	// A second init on the same store refuses and creates nothing.
	other := filepath.Join(dir, "other")
	again := append([]string{"init", "--dir", other}, initArgs[3:]...)
	out2, err := exec.Command(binary, again...).CombinedOutput()
	if err == nil || !bytes.Contains(out2, []byte("already holds a CA hierarchy")) || (rootFP != nil && !bytes.Contains(out2, rootFP[1])) {
		t.Errorf("a second init on the same store: %v\n%s", err, out2)
	}
	if _, err := os.Stat(filepath.Join(other, "keys")); err == nil {
		t.Error("the refused init created keys")
	}
	cfg := filepath.Join(etc, "trustline.yaml")
	// The origins read the store as a user that may only SELECT.
	originCfg := filepath.Join(etc, "origin.yaml")
	roURL := pgtest.ReadOnlyUser(t, db)
	if body := readFile(t, cfg); !strings.Contains(body, db) {
		t.Fatalf("trustline.yaml does not hold the database URL %s", db)
	} else if err := os.WriteFile(originCfg, []byte(strings.Replace(body, db, roURL, 1)), 0o600); err != nil {
		t.Fatal(err)
	}

	var (
		apis       = []*roleProc{startRoleProc(t, "api", cfg), startRoleProc(t, "api", cfg)}
		presigners = []*roleProc{startRoleProc(t, "presigner", cfg), startRoleProc(t, "presigner", cfg)}
		responders = []*roleProc{startRoleProc(t, "responder", cfg), startRoleProc(t, "responder", cfg), startRoleProc(t, "responder", cfg)}
		origins    = []*roleProc{startRoleProc(t, "origin", originCfg), startRoleProc(t, "origin", originCfg)}
		crlgens    = []*roleProc{startRoleProc(t, "crlgen", cfg), startRoleProc(t, "crlgen", cfg)}
	)
	testenv.StartVarnish(t, cdn, plantVCL(t, responders, origins))

	// One leader per lease: exactly one pre-signer leads.
	waitFor(t, 30*time.Second, "one pre-signer leader", func() bool {
		n := 0
		for _, p := range presigners {
			if strings.Contains(p.logs.String(), `"leader":true`) {
				n++
			}
		}
		return n == 1
	})

	// A subscriber issues through API 1 and API 2.
	admin := strings.TrimSpace(readFile(t, filepath.Join(etc, "admin.key")))
	if admin == "" {
		t.Fatal("no admin key")
	}
	p1 := &devProc{api: "http://" + apis[0].addr, ocsp: public + "/ocsp", crl: public + "/crl"}
	p2 := &devProc{api: "http://" + apis[1].addr, ocsp: public + "/ocsp", crl: public + "/crl"}
	u1 := &user{t: t, p: p1, data: etc, work: t.TempDir()}
	acct := u1.call("POST", "/api/v1/accounts", map[string]string{"email": "plant@example.com"}, 201)
	u1.key = acct["api_key"].(string)
	v := u1.call("POST", "/api/v1/validations", map[string]string{"domain": "example.com", "method": "email", "email": "admin@example.com"}, 201)
	u1.call("POST", "/api/v1/validations/"+v["id"].(string)+"/confirm", map[string]string{"code": u1.mailedCode("admin@example.com")}, 200)
	u2 := &user{t: t, p: p2, data: etc, work: u1.work, key: u1.key}
	sn1 := u1.issueAndVerify("ec1", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256")
	sn2 := u2.issueAndVerify("ec2", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256")
	sn3 := u2.issueAndVerify("rsa3", "-newkey", "rsa:2048")
	certs := []*plantCert{loadPlantCert(t, u1.work, "ec1", sn1), loadPlantCert(t, u1.work, "ec2", sn2), loadPlantCert(t, u1.work, "rsa3", sn3)}

	client := &http.Client{Timeout: 3 * time.Second}
	urls := func() []string {
		var out []string
		for _, r := range responders {
			select {
			case <-r.done:
				continue
			default:
			}
			out = append(out, "http://"+r.addr+"/ocsp/")
		}
		return out
	}
	checkAll := func(when string) {
		t.Helper()
		for _, c := range certs {
			for _, u := range urls() {
				if v := ocspVerdict(client, u, c, false, time.Now()); v != "" {
					t.Errorf("%s: responder %s, serial %s: %s", when, u, c.serial, v)
				}
			}
			if v := ocspVerdict(client, public+"/ocsp/", c, true, time.Now()); v != "" {
				t.Errorf("%s: CDN GET, serial %s: %s", when, c.serial, v)
			}
		}
	}
	checkAll("after issuance")

	// Revoke through the other API: every responder says revoked at once,
	// and the serial is on the CDN's CRL within seconds.
	crlBefore := cdnCRLNumber(t, public, certs[0])
	u2.call("POST", "/api/v1/certificates/"+sn1+"/revoke", map[string]string{"reason": "keyCompromise"}, 200)
	certs[0].markRevoked()
	for _, u := range urls() {
		r := mustOCSP(t, client, u, certs[0])
		if r.Status != ocsp.Revoked {
			t.Errorf("responder %s answers %d right after the revoke call returned, want revoked", u, r.Status)
		}
	}
	waitFor(t, 30*time.Second, "the CDN's CRL to list the revoked serial", func() bool {
		return cdnCRLHas(t, public, certs[0])
	})
	if n := cdnCRLNumber(t, public, certs[0]); n <= crlBefore {
		t.Errorf("CRL number %d after the revocation, %d before", n, crlBefore)
	}
	checkAll("after the revocation")

	// The root is offline: its key is not with the plant's, no CRL
	// generator signs its CRL (init signed the first, valid a year), and
	// the ceremony signs the next one, which the CDN serves.
	if m, _ := filepath.Glob(filepath.Join(etc, "keys", "*root*")); len(m) != 0 {
		t.Errorf("the offline root's key is among the plant's keys: %v", m)
	}
	if m, _ := filepath.Glob(filepath.Join(rootKeys, "*")); len(m) == 0 {
		t.Errorf("no key in the offline root's directory %s", rootKeys)
	}
	for _, g := range crlgens {
		if !strings.Contains(g.logs.String(), "the root is offline") {
			t.Errorf("crlgen %s does not say the root is offline:\n%s", g.addr, tailLines(g.logs.String(), 20))
		}
	}
	rootPEM, _ := pem.Decode([]byte(readFile(t, filepath.Join(etc, "ca", "root.pem"))))
	rootCert, err := x509.ParseCertificate(rootPEM.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	rootCRLURL := certs[0].issuer.CRLDistributionPoints[0]
	rootCRL := func() *x509.RevocationList {
		resp, err := client.Get(rootCRLURL)
		if err != nil {
			t.Fatalf("root CRL: %v", err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		crl, err := x509.ParseRevocationList(b)
		if err != nil || crl.CheckSignatureFrom(rootCert) != nil {
			t.Fatalf("root CRL from the CDN (%d): %v", resp.StatusCode, err)
		}
		return crl
	}
	first := rootCRL()
	if got := first.NextUpdate.Sub(first.ThisUpdate); got != 365*24*time.Hour {
		t.Errorf("the root's first CRL is valid %v, want 365 days", got)
	}
	out, err = exec.Command(binary, "ca", "root-crl", "--config", cfg, "--root-key-dir", rootKeys, "--days", "200").CombinedOutput()
	if err != nil || !bytes.Contains(out, []byte("Root CRL")) {
		t.Fatalf("ca root-crl: %v\n%s", err, out)
	}
	waitFor(t, 30*time.Second, "the CDN to serve the ceremony's root CRL", func() bool {
		return rootCRL().Number.Cmp(first.Number) > 0
	})
	if c := rootCRL(); c.NextUpdate.Sub(c.ThisUpdate) != 200*24*time.Hour {
		t.Errorf("the ceremony's root CRL is valid %v, want 200 days", c.NextUpdate.Sub(c.ThisUpdate))
	}

	// Chaos under load: OCSP through every responder and the CDN while a
	// pre-signer, a CRL generator, a responder and a Redis master die.
	var (
		stop               atomic.Bool
		wrong, unavail, ok atomic.Int64
		wrongMu            sync.Mutex
		wrongSeen          []string
		wg                 sync.WaitGroup
	)
	for w := range 4 {
		wg.Go(func() {
			rnd := rand.New(rand.NewPCG(uint64(w), 7))
			for !stop.Load() {
				c := certs[rnd.IntN(len(certs))]
				us := urls()
				var v string
				if w == 0 {
					v = ocspVerdict(client, public+"/ocsp/", c, rnd.IntN(2) == 0, time.Now())
				} else {
					v = ocspVerdict(client, us[rnd.IntN(len(us))], c, false, time.Now())
				}
				switch v {
				case "":
					ok.Add(1)
				case "unavailable":
					unavail.Add(1)
				default:
					wrong.Add(1)
					wrongMu.Lock()
					if len(wrongSeen) < 10 {
						wrongSeen = append(wrongSeen, c.serial+": "+v)
					}
					wrongMu.Unlock()
				}
			}
		})
	}
	time.Sleep(time.Second)
	presigners[0].kill9(t)
	crlgens[0].kill9(t)
	responders[2].kill9(t)
	rc.KillMaster(0)
	took := rc.WaitOK(60 * time.Second)
	t.Logf("Redis Cluster failed over in %v", took)

	// The survivors carry on: a revocation now reaches every live
	// responder and the CDN's CRL, with a higher CRL number.
	before := cdnCRLNumber(t, public, certs[1])
	u1.call("POST", "/api/v1/certificates/"+sn2+"/revoke", map[string]string{"reason": "superseded"}, 200)
	certs[1].markRevoked()
	for _, u := range urls() {
		// A responder whose Redis client has not yet followed the
		// failover may say tryLater for a moment: unavailable, not wrong.
		var r *ocsp.Response
		waitFor(t, 15*time.Second, "responder "+u+" to answer after the failover", func() bool {
			var err error
			r, err = ocspAnswer(client, u, certs[1])
			return err == nil
		})
		if r.Status != ocsp.Revoked {
			t.Errorf("after the failures, responder %s answers %d for a revoked serial", u, r.Status)
		}
	}
	waitFor(t, 150*time.Second, "the surviving CRL generator to publish the new revocation", func() bool {
		return cdnCRLHas(t, public, certs[1])
	})
	if n := cdnCRLNumber(t, public, certs[1]); n <= before {
		t.Errorf("CRL number %d after the failover revocation, %d before", n, before)
	}
	waitFor(t, 60*time.Second, "the surviving pre-signer to lead", func() bool {
		return strings.Contains(presigners[1].logs.String(), `"leader":true`)
	})
	time.Sleep(time.Second)
	stop.Store(true)
	wg.Wait()
	t.Logf("OCSP under chaos: %d verified answers, %d unavailable (tryLater or transport), %d wrong", ok.Load(), unavail.Load(), wrong.Load())
	if wrong.Load() != 0 {
		t.Errorf("%d wrong answers under chaos, e.g. %v", wrong.Load(), wrongSeen)
	}
	if ok.Load() == 0 {
		t.Error("no verified answer under chaos")
	}
	checkAll("after the failures")
	// The store's audit chain is whole.
	if out, err := exec.Command(binary, "audit", "verify", "--postgres", db).CombinedOutput(); err != nil {
		t.Errorf("audit verify: %v\n%s", err, out)
	}
}

func mustOCSP(t *testing.T, client *http.Client, url string, c *plantCert) *ocsp.Response {
	t.Helper()
	r, err := ocspAnswer(client, url, c)
	if err != nil {
		t.Fatalf("OCSP %s: %v", url, err)
	}
	return r
}

// ocspAnswer POSTs c's request to url and returns the verified response.
func ocspAnswer(client *http.Client, url string, c *plantCert) (*ocsp.Response, error) {
	resp, err := client.Post(url, "application/ocsp-request", bytes.NewReader(c.req))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return ocsp.ParseResponseForCert(body, c.cert, c.issuer)
}

// cdnCRL fetches the certificate's CRL through the CDN.
func cdnCRL(t *testing.T, c *plantCert) *x509.RevocationList {
	t.Helper()
	if len(c.cert.CRLDistributionPoints) != 1 {
		t.Fatalf("certificate has CRL distribution points %v", c.cert.CRLDistributionPoints)
	}
	resp, err := http.Get(c.cert.CRLDistributionPoints[0])
	if err != nil {
		t.Fatalf("CRL: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		return nil
	}
	crl, err := x509.ParseRevocationList(b)
	if err != nil {
		t.Fatalf("CRL from the CDN: %v", err)
	}
	if err := crl.CheckSignatureFrom(c.issuer); err != nil {
		t.Fatalf("CRL signature: %v", err)
	}
	return crl
}

func cdnCRLHas(t *testing.T, public string, c *plantCert) bool {
	crl := cdnCRL(t, c)
	if crl == nil {
		return false
	}
	for _, e := range crl.RevokedCertificateEntries {
		if e.SerialNumber.Cmp(c.cert.SerialNumber) == 0 {
			return true
		}
	}
	return false
}

func cdnCRLNumber(t *testing.T, public string, c *plantCert) int64 {
	var crl *x509.RevocationList
	waitFor(t, 60*time.Second, "the CDN to serve the shard's CRL", func() bool {
		crl = cdnCRL(t, c)
		return crl != nil
	})
	return crl.Number.Int64()
}

func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
