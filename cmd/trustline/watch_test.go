package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"
	"go.yaml.in/yaml/v3"
	"golang.org/x/crypto/ocsp"

	"github.com/trustline/trustline/internal/store"
	"github.com/trustline/trustline/internal/testenv"
)

// startRedisServer runs a private redis-server on a free port and returns
// its address; the test's cleanup stops it by its PID.
func startRedisServer(t *testing.T) string {
	t.Helper()
	bin := testenv.NeedCommand(t, "redis-server")
	addr := testenv.FreeAddr(t)
	_, port, _ := net.SplitHostPort(addr)
	cmd := exec.Command(bin, "--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", t.TempDir())
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Signal(syscall.SIGTERM); cmd.Wait() })
	rc := redis.NewClient(&redis.Options{Addr: addr})
	defer rc.Close()
	waitFor(t, 10*time.Second, "redis-server "+addr, func() bool { return rc.Ping(context.Background()).Err() == nil })
	return addr
}

// snapshotRedis copies every key of from into to (DUMP and RESTORE): a
// Redis left on an old snapshot from then on.
func snapshotRedis(t *testing.T, from, to string) int {
	t.Helper()
	ctx := context.Background()
	src, dst := redis.NewClient(&redis.Options{Addr: from}), redis.NewClient(&redis.Options{Addr: to})
	defer src.Close()
	defer dst.Close()
	n := 0
	iter := src.Scan(ctx, 0, "*", 1000).Iterator()
	for iter.Next(ctx) {
		k := iter.Val()
		b, err := src.Dump(ctx, k).Result()
		if err != nil {
			t.Fatal(err)
		}
		if err := dst.RestoreReplace(ctx, k, 0, b).Err(); err != nil {
			t.Fatal(err)
		}
		n++
	}
	if err := iter.Err(); err != nil {
		t.Fatal(err)
	}
	return n
}

// wrongKeyResponder answers every OCSP request good, signed by a key and
// responder certificate of no CA of the plant.
func wrongKeyResponder(t *testing.T) string {
	t.Helper()
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(9), Subject: pkix.Name{CommonName: "Not Trustline"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageOCSPSigning}}
	der, _ := x509.CreateCertificate(rand.Reader, tmpl, tmpl, k.Public(), k)
	cert, _ := x509.ParseCertificate(der)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(r.URL.Path, "/ocsp/"))
		if err != nil {
			http.Error(w, "bad", 400)
			return
		}
		req, err := ocsp.ParseRequest(raw)
		if err != nil {
			http.Error(w, "bad", 400)
			return
		}
		now := time.Now().Truncate(time.Second)
		b, _ := ocsp.CreateResponse(cert, cert, ocsp.Response{Status: ocsp.Good, SerialNumber: req.SerialNumber,
			ThisUpdate: now.Add(-time.Minute), NextUpdate: now.Add(time.Hour), Certificate: cert}, k)
		w.Write(b)
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/ocsp/"
}

// editConfig rewrites the YAML configuration at path through edit.
func editConfig(t *testing.T, path string, edit func(map[string]any)) {
	t.Helper()
	var m map[string]any
	if err := yaml.Unmarshal([]byte(readFile(t, path)), &m); err != nil {
		t.Fatal(err)
	}
	edit(m)
	b, err := yaml.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// watchConfig writes a copy of the plant's configuration with a watch
// section (and, if set, another public OCSP URL) and returns its path.
func watchConfig(t *testing.T, base, name, publicOCSP string, responders, origins []string) string {
	t.Helper()
	path := filepath.Join(filepath.Dir(base), name+".yaml")
	if err := os.WriteFile(path, []byte(readFile(t, base)), 0o600); err != nil {
		t.Fatal(err)
	}
	editConfig(t, path, func(m map[string]any) {
		if publicOCSP != "" {
			m["public"].(map[string]any)["ocsp_url"] = publicOCSP
		}
		m["watch"] = map[string]any{"responders": responders, "origins": origins, "interval": "1s", "sample": 10,
			"ocsp_revocation_delay": "3s", "crl_revocation_delay": "8s"}
	})
	return path
}

// report runs `trustline watch report` and returns its output.
func report(t *testing.T, cfg string) string {
	t.Helper()
	out, err := exec.Command(binary, "watch", "report", "--config", cfg, "--since", "1h").CombinedOutput()
	if err != nil {
		t.Fatalf("watch report: %v\n%s", err, out)
	}
	return string(out)
}

// findingLines are the report's lines naming kind at a URL starting with url.
func findingLines(rep, kind, url string) []string {
	var out []string
	for _, l := range strings.Split(rep, "\n") {
		f := strings.Fields(l)
		if len(f) >= 4 && f[2] == kind && strings.HasPrefix(f[3], url) {
			out = append(out, l)
		}
	}
	return out
}

// TestWatch is issue #18's acceptance on a plant of one api, pre-signer,
// responder, origin and CRL generator behind Varnish: against the healthy
// plant, rounds of checks find nothing; then each fault is detected,
// named (object and kind), placed (the URL that lies) and timed (when it
// was fetched): an OCSP response signed with a wrong key, a responder left
// on an old Redis snapshot, a CDN that overstays its TTL, a certificate
// revoked in the store while its cache write is blocked, and a CRL
// generator stopped past its shards' nextUpdate.
func TestWatch(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a plant")
	}
	testenv.NeedCommand(t, "openssl")
	db := freshDatabase(t)
	mainRedis := startRedisServer(t)
	dir := t.TempDir()
	etc := filepath.Join(dir, "etc")
	cdn := testenv.FreeAddr(t)
	public := "http://" + cdn
	out, err := exec.Command(binary, "init", "--dir", etc, "--postgres", db, "--redis", "redis://"+mainRedis,
		"--ocsp-url", public+"/ocsp/", "--crl-url", public+"/crl", "--dev-urls", "--mail-dir", filepath.Join(dir, "mail"),
		"--crl-period", "10s", "--crl-revocation-delay", "2s", "--crl-shards", "2", "--purge-cache", public).CombinedOutput()
	if err != nil {
		t.Fatalf("init: %v\n%s", err, out)
	}
	cfg := filepath.Join(etc, "trustline.yaml")
	// Short CRL validity, so that a stopped generator's CRLs expire within the test.
	editConfig(t, cfg, func(m map[string]any) { m["crl"].(map[string]any)["validity"] = "25s" })

	api := startRoleProc(t, "api", cfg)
	presigner := startRoleProc(t, "presigner", cfg)
	responder := startRoleProc(t, "responder", cfg)
	origin := startRoleProc(t, "origin", cfg)
	crlgen := startRoleProc(t, "crlgen", cfg)
	testenv.StartVarnish(t, cdn, plantVCL(t, []*roleProc{responder}, []*roleProc{origin}))

	p := &devProc{api: "http://" + api.addr, ocsp: public + "/ocsp", crl: public + "/crl"}
	u := &user{t: t, p: p, data: filepath.Join(dir), work: t.TempDir()}
	acct := u.call("POST", "/api/v1/accounts", map[string]string{"email": "watch@example.com"}, 201)
	u.key = acct["api_key"].(string)
	v := u.call("POST", "/api/v1/validations", map[string]string{"domain": "example.com", "method": "email", "email": "admin@example.com"}, 201)
	u.call("POST", "/api/v1/validations/"+v["id"].(string)+"/confirm", map[string]string{"code": u.mailedCode("admin@example.com")}, 200)
	serials := map[string]string{}
	for _, name := range []string{"a", "b", "c", "d", "e"} {
		u.openssl("req", "-new", "-nodes", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-keyout", name+".key", "-out", name+".csr",
			"-subj", "/CN=www.example.com", "-addext", "subjectAltName=DNS:www.example.com")
		csr, _ := os.ReadFile(filepath.Join(u.work, name+".csr"))
		ord := u.call("POST", "/api/v1/orders", map[string]string{"csr": string(csr), "profile": "dv"}, 201)
		serials[name] = ord["serial"].(string)
	}
	responderURL := "http://" + responder.addr + "/ocsp/"
	originURL := "http://" + origin.addr

	// A CDN that overstays its TTL: it caches OCSP an hour and knows no purge.
	cdn2 := testenv.FreeAddr(t)
	host, port, _ := net.SplitHostPort(responder.addr)
	testenv.StartVarnish(t, cdn2, fmt.Sprintf(`vcl 4.1;
backend r { .host = %q; .port = %q; }
sub vcl_backend_response { set beresp.ttl = 1h; set beresp.http.Cache-Control = "max-age=3600"; return (deliver); }
`, host, port))
	// A responder left on an old Redis snapshot, taken now.
	oldRedis := startRedisServer(t)
	if n := snapshotRedis(t, mainRedis, oldRedis); n == 0 {
		t.Fatal("the snapshot copied nothing")
	}
	oldCfg := strings.Replace(readFile(t, cfg), "redis://"+mainRedis, "redis://"+oldRedis, 1)
	os.WriteFile(filepath.Join(etc, "old-snapshot.yaml"), []byte(oldCfg), 0o600)
	stale := startRoleProc(t, "responder", filepath.Join(etc, "old-snapshot.yaml"))
	staleURL := "http://" + stale.addr + "/ocsp/"
	wrongKey := wrongKeyResponder(t)

	t.Logf("public %s, responder %s, origin %s; faults: CDN %s, old-snapshot responder %s, wrong-key responder %s",
		public, responderURL, originURL, cdn2, staleURL, wrongKey)
	healthy := startRoleProc(t, "watch", watchConfig(t, cfg, "watch-healthy", "", []string{responderURL}, []string{originURL}))
	faults := startRoleProc(t, "watch", watchConfig(t, cfg, "watch-faults", "http://"+cdn2+"/ocsp/", []string{staleURL, wrongKey}, nil))
	rounds := func(p *roleProc) int {
		return strings.Count(p.logs.String(), `msg="watch round"`) + strings.Count(p.logs.String(), `"msg":"watch round"`)
	}
	// The overstaying CDN caches b's good response before b is revoked.
	waitFor(t, 30*time.Second, "two rounds of the fault watcher", func() bool { return rounds(faults) >= 2 })

	// A revocation through the API: every honest URL follows.
	u.call("POST", "/api/v1/certificates/"+serials["b"]+"/revoke", map[string]string{"reason": "keyCompromise"}, 200)
	revokedB := time.Now()
	// A revocation written to the store while the cache write is blocked
	// (the pre-signer is down): no event, nothing written to Redis, the
	// responder and the CDN still answer good.
	waitFor(t, 10*time.Second, "b revoked at the responder", func() bool {
		return strings.Contains(u.openssl("ocsp", "-issuer", filepath.Join(etc, "ca", "int-p256.pem"), "-serial", "0x"+serials["b"],
			"-url", responderURL, "-noverify"), ": revoked")
	})
	presigner.cmd.Process.Signal(syscall.SIGTERM)
	<-presigner.done
	conn, err := pgx.Connect(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(context.Background(), `UPDATE certificates SET status = 2, revoked_at = now(), reason = 1 WHERE serial = $1`, serials["d"]); err != nil {
		t.Fatal(err)
	}
	time.Sleep(12 * time.Second) // past both promised delays, and a CRL period
	n := rounds(healthy)
	waitFor(t, 30*time.Second, "three more rounds", func() bool { return rounds(healthy) >= n+3 })

	// The two watchers share the CRLs through the lease: the first one
	// started holds it, the other checks OCSP only.
	if !strings.Contains(healthy.logs.String(), `"crls":true`) || strings.Contains(faults.logs.String(), `"crls":true`) {
		t.Errorf("the CRL lease: the first watcher checked CRLs %v, the second %v",
			strings.Contains(healthy.logs.String(), `"crls":true`), strings.Contains(faults.logs.String(), `"crls":true`))
	}
	healthyCfg := filepath.Join(etc, "watch-healthy.yaml")
	rep := report(t, healthyCfg)
	t.Logf("report:\n%s", rep)
	if !regexp.MustCompile(`Checked: [1-9][0-9]* rounds by 2 watchers; [1-9][0-9]* certificates sampled, [1-9][0-9]* OCSP responses and [1-9][0-9]* CRLs`).MatchString(rep) {
		t.Errorf("the report does not say what was checked")
	}
	// What the healthy watcher found is the blocked cache write only: d,
	// good at the CDN and the responder, revoked in the store.
	for _, l := range strings.Split(rep, "\n") {
		f := strings.Fields(l)
		if len(f) >= 5 && strings.HasPrefix(f[0], "20") && (f[1] == "ocsp" || f[1] == "crl") {
			if f[4] != serials["d"] && !strings.Contains(l, stale.addr) && !strings.Contains(l, cdn2) && !strings.Contains(l, wrongKey) {
				t.Errorf("a finding against the healthy plant: %s", l)
			}
		}
	}
	if len(findingLines(rep, "status_mismatch", public+"/ocsp/")) == 0 || len(findingLines(rep, "status_mismatch", responderURL)) == 0 {
		t.Errorf("the revocation written around the cache was not found at the CDN and the responder")
	}
	// The faults, each named and placed.
	for _, want := range []struct{ kind, url, what string }{
		{"bad_signature", wrongKey, "a response signed with a wrong key"},
		{"status_mismatch", staleURL, "a responder on an old Redis snapshot"},
		{"status_mismatch", "http://" + cdn2 + "/ocsp/", "a CDN overstaying its TTL"},
	} {
		lines := findingLines(rep, want.kind, want.url)
		if len(lines) == 0 {
			t.Errorf("%s: no %s finding at %s", want.what, want.kind, want.url)
			continue
		}
		if want.kind == "status_mismatch" && want.url != wrongKey && !strings.Contains(lines[0], serials["b"]) && !strings.Contains(lines[0], serials["d"]) {
			t.Errorf("%s: %s", want.what, lines[0])
		}
	}
	if t.Failed() {
		return
	}
	_ = revokedB

	// A CRL generator stopped past its shards' nextUpdate (25 s).
	crlgen.cmd.Process.Signal(syscall.SIGTERM)
	<-crlgen.done
	stopped := time.Now()
	waitFor(t, 90*time.Second, "an expired CRL found", func() bool {
		return len(findingLines(report(t, healthyCfg), "expired", originURL)) > 0
	})
	t.Logf("the stopped generator's expired CRL was found %v after it stopped", time.Since(stopped).Round(time.Second))
	rep = report(t, healthyCfg)
	if len(findingLines(rep, "expired", public+"/crl/")) == 0 {
		t.Errorf("the expired CRL was not found at the CDN too:\n%s", rep)
	}
	_ = store.WatchFinding{}
}
