package main

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/trustline/trustline/internal/testenv"
	"github.com/trustline/trustline/internal/testfix/dnstest"
)

// acmeEnv is `trustline dev` with its validation resolver a test DNS
// zone, http-01 and tls-alpn-01 connecting to loopback ports a client's
// own servers bind, and a control URL certbot's manual hooks call to
// publish dns-01 records in the zone.
type acmeEnv struct {
	t       *testing.T
	dev     *devProc
	u       *user
	certbot string
	dir     string
	webPort string // where http-01 and http-token connect
	tlsPort string // where tls-alpn-01 connects
	acme    string // the URL ACME is reached at
	// proxyClient trusts the HTTPS proxy's certificate (newACMEEnv's
	// tlsProxy).
	proxyClient *http.Client
	hook        string // the dns-01 auth hook script
	ctrl        string // the URL the hooks post records to
	zone        *dnstest.Zone
}

func newCertbotEnv(t *testing.T) *acmeEnv {
	t.Helper()
	if testing.Short() {
		t.Skip("runs certbot against trustline dev")
	}
	e := newACMEEnv(t, false)
	e.certbot = testenv.NeedCommand(t, "certbot")
	return e
}

// newACMEEnv is the environment without certbot. With tlsProxy, ACME is
// reached through an HTTPS reverse proxy in front of the api (as in a
// deployment that terminates TLS before the api): e.acme is its URL, and
// e.proxyClient trusts its certificate.
func newACMEEnv(t *testing.T, tlsProxy bool) *acmeEnv {
	t.Helper()
	e := &acmeEnv{t: t, dir: t.TempDir(), zone: dnstest.Start(t)}
	var target atomic.Value
	acmeConf := ""
	if tlsProxy {
		proxy := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			u, _ := url.Parse(target.Load().(string))
			httputil.NewSingleHostReverseProxy(u).ServeHTTP(w, r)
		}))
		t.Cleanup(proxy.Close)
		e.acme, e.proxyClient = proxy.URL, proxy.Client()
		acmeConf = fmt.Sprintf("acme:\n  base_url: %q\n", proxy.URL)
	}
	testenv.NeedCommand(t, "openssl")
	testenv.NeedCommand(t, "curl")
	// The dns-01 hook adds a TXT value (a wildcard and its base name share
	// one record name, with a value each).
	var mu sync.Mutex
	txt := map[string][]string{}
	ctrl := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		name := r.FormValue("name")
		txt[name] = append(txt[name], r.FormValue("value"))
		e.zone.SetTXT(name, txt[name]...)
	}))
	t.Cleanup(ctrl.Close)
	e.ctrl = ctrl.URL
	e.hook = filepath.Join(e.dir, "dns-hook.sh")
	script := fmt.Sprintf("#!/bin/sh\nexec curl -fsS -o /dev/null %q --data-urlencode \"name=_acme-challenge.$CERTBOT_DOMAIN\" --data-urlencode \"value=$CERTBOT_VALIDATION\"\n", ctrl.URL)
	if err := os.WriteFile(e.hook, []byte(script), 0o700); err != nil {
		t.Fatal(err)
	}
	_, e.webPort, _ = net.SplitHostPort(testenv.FreeAddr(t))
	_, e.tlsPort, _ = net.SplitHostPort(testenv.FreeAddr(t))
	cfg := filepath.Join(e.dir, "dev.yaml")
	body := fmt.Sprintf("validation:\n  resolver: %q\n  allow_private_addresses: true\n  test_http_port: %s\n  test_https_port: %s\n%s",
		e.zone.Addr, e.webPort, e.tlsPort, acmeConf)
	if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(e.dir, "data")
	e.dev = startDev(t, "--data", data, "--config", cfg)
	target.Store(e.dev.api)
	if !tlsProxy {
		e.acme = e.dev.api
	}
	e.u = &user{t: t, p: e.dev, data: data, work: t.TempDir()}
	return e
}

// run runs certbot with the environment's directories and server.
func (e *acmeEnv) run(args ...string) string {
	e.t.Helper()
	base := []string{"--non-interactive", "--config-dir", filepath.Join(e.dir, "certbot"), "--work-dir", filepath.Join(e.dir, "certbot-work"),
		"--logs-dir", filepath.Join(e.dir, "certbot-logs"), "--server", e.acme + "/acme/directory"}
	cmd := exec.Command(e.certbot, append(args[:1:1], append(base, args[1:]...)...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		log, _ := os.ReadFile(filepath.Join(e.dir, "certbot-logs", "letsencrypt.log"))
		e.t.Fatalf("certbot %s: %v\n%s\n--- certbot log (tail) ---\n%s\n--- trustline dev ---\n%s", strings.Join(args, " "), err, out, tail(string(log), 4000), tail(e.dev.logs.String(), 4000))
	}
	return string(out)
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// saved copies a certificate lineage's files into the user's work
// directory as name.pem (the leaf) and name-chain.pem (leaf and issuer),
// checks the chain against the dev root with openssl, and returns the
// serial in hex.
func (e *acmeEnv) saved(lineage, name string) string {
	e.t.Helper()
	live := filepath.Join(e.dir, "certbot", "live", lineage)
	for src, dst := range map[string]string{"cert.pem": name + ".pem", "fullchain.pem": name + "-chain.pem", "chain.pem": name + "-issuer.pem"} {
		b, err := os.ReadFile(filepath.Join(live, src))
		if err != nil {
			e.t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(e.u.work, dst), b, 0o600); err != nil {
			e.t.Fatal(err)
		}
	}
	out := e.u.openssl("verify", "-CAfile", filepath.Join(e.u.data, "ca", "root.pem"), "-untrusted", name+"-issuer.pem", name+".pem")
	if !strings.Contains(out, name+".pem: OK") {
		e.t.Fatalf("openssl verify of certbot's %s: %s", lineage, out)
	}
	sn := e.u.openssl("x509", "-in", name+".pem", "-noout", "-serial")
	return strings.TrimSpace(strings.TrimPrefix(sn, "serial="))
}

// TestCertbot: certbot (Debian's package, unmodified) obtains a
// certificate with http-01 (its standalone server) and one for a name and
// its wildcard with dns-01 (manual hooks that publish the TXT records),
// renews the first and revokes it; the chains verify with openssl, the
// responder answers good then revoked, and the serial reaches its CRL
// shard.
func TestCertbot(t *testing.T) {
	e := newCertbotEnv(t)
	e.zone.SetA("web.example.org", "127.0.0.1")

	out := e.run("certonly", "--standalone", "--preferred-challenges", "http", "--http-01-port", e.webPort, "--http-01-address", "127.0.0.1",
		"--agree-tos", "-m", "certbot@example.org", "--key-type", "ecdsa", "--cert-name", "web", "-d", "web.example.org")
	if !strings.Contains(out, "Successfully received certificate") {
		t.Fatalf("certbot http-01:\n%s", out)
	}
	first := e.saved("web", "web")
	e.u.ocspStatus("web", "good")

	out = e.run("certonly", "--manual", "--preferred-challenges", "dns", "--manual-auth-hook", e.hook,
		"--key-type", "rsa", "--cert-name", "dns", "-d", "dns.example.org", "-d", "*.dns.example.org")
	if !strings.Contains(out, "Successfully received certificate") {
		t.Fatalf("certbot dns-01:\n%s", out)
	}
	e.saved("dns", "dns")
	text := e.u.openssl("x509", "-in", "dns.pem", "-noout", "-ext", "subjectAltName")
	if !strings.Contains(text, "DNS:*.dns.example.org") || !strings.Contains(text, "DNS:dns.example.org") {
		t.Fatalf("the dns-01 certificate's names:\n%s", text)
	}

	// Renewal reuses the saved account and answers http-01 again.
	out = e.run("renew", "--cert-name", "web", "--force-renewal", "--no-random-sleep-on-renew")
	if !strings.Contains(out, "renewed") && !strings.Contains(out, "Congratulations") {
		t.Fatalf("certbot renew:\n%s", out)
	}
	renewed := e.saved("web", "web")
	if renewed == first {
		t.Fatalf("renewal kept serial %s", first)
	}

	out = e.run("revoke", "--cert-name", "web", "--reason", "keycompromise", "--no-delete-after-revoke")
	if !strings.Contains(out, "Congratulations") && !strings.Contains(out, "revoked") {
		t.Fatalf("certbot revoke:\n%s", out)
	}
	e.u.ocspStatus("web", "revoked")
	e.u.revoked = renewed
	e.u.checkCRLOf("web.pem")
}
