package presign_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"golang.org/x/crypto/ocsp"

	"github.com/trustline/trustline/internal/ocspcache"
	"github.com/trustline/trustline/internal/ocspcache/cachetest"
	"github.com/trustline/trustline/internal/ocspcodec"
	"github.com/trustline/trustline/internal/reason"
	"github.com/trustline/trustline/internal/store"
	"github.com/trustline/trustline/internal/testenv"
	"github.com/trustline/trustline/internal/testfix"
	"github.com/trustline/trustline/issuer/presign"
	"github.com/trustline/trustline/responder"
	"github.com/trustline/trustline/responder/server"
)

// flushDB is the Redis database the flush test owns: it is emptied with
// FLUSHDB (never FLUSHALL, which would empty every database).
const flushDB = 9

// plant is `trustline dev` in miniature: the CA with the pipeline as its
// sink, the pipeline's leader loop, and the responder serving the cache
// over HTTP on a loopback port named in the certificates' AIA.
type plant struct {
	*env
	url       string
	resp      *responder.Responder
	stopRun   context.CancelFunc
	runDone   chan struct{}
	responder *server.Server
}

type plantCache interface {
	ocspcache.Cache
}

// newPlant wires it all over cache (nil: memory). With run, the leader
// loop runs every 50 ms.
func newPlant(t *testing.T, cache plantCache, run bool) *plant {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + ln.Addr().String() + "/"
	e := newEnv(t, envOpts{cache: cache, ocspURL: url, realTime: true,
		cfg: presign.Config{Poll: 50 * time.Millisecond, Lease: 3 * time.Second}})
	var issuers []responder.Issuer
	for _, is := range e.pki.Intermediates {
		issuers = append(issuers, responder.Issuer{ID: is.ID, Cert: is.Cert})
	}
	resp, err := responder.New(responder.Config{Issuers: issuers, Presigned: e.p.HashAlgs(), L1Entries: 1000, LiveSigning: 8},
		responder.Deps{Cache: e.cache, Evictions: e.cache, Signer: e.p, Log: testfix.QuietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(server.Config{}, server.Deps{Responder: resp, Log: testfix.QuietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	p := &plant{env: e, url: url, resp: resp, responder: srv, runDone: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	p.stopRun = cancel
	if run {
		go func() { defer close(p.runDone); e.p.Run(ctx) }()
	} else {
		close(p.runDone)
	}
	t.Cleanup(func() {
		cancel()
		<-p.runDone
		sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer scancel()
		srv.Shutdown(sctx)
		resp.Close()
	})
	return p
}

// leafPEM writes a certificate for openssl and ocsptool.
func (p *plant) leafPEM(t *testing.T, c store.Certificate) string {
	path := filepath.Join(t.TempDir(), "leaf.pem")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.DER}), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func (p *plant) issuerPEM(c store.Certificate) string {
	return filepath.Join(p.dir, string(c.IssuerID)+".pem")
}

// ask POSTs an x/crypto/ocsp request for c and parses the answer.
func (p *plant) ask(t *testing.T, c store.Certificate, h crypto.Hash) *ocsp.Response {
	t.Helper()
	leaf, err := x509.ParseCertificate(c.DER)
	if err != nil {
		t.Fatal(err)
	}
	is := p.issuerCert(c.IssuerID)
	req, err := ocsp.CreateRequest(leaf, is, &ocsp.RequestOptions{Hash: h})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Post(p.url, "application/ocsp-request", bytes.NewReader(req))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	r, err := ocsp.ParseResponseForCert(body, leaf, is)
	if err != nil {
		t.Fatalf("parsing the answer (%x): %v", body, err)
	}
	return r
}

func runCmd(t *testing.T, name string, args ...string) (string, error) {
	t.Helper()
	bin := testenv.NeedCommand(t, name)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, args...).CombinedOutput()
	return string(out), err
}

// TestOpenSSLClient: `openssl ocsp` over POST, with and without a nonce,
// with SHA-1 and SHA-256 CertIDs, before and after a revocation.
func TestOpenSSLClient(t *testing.T) {
	p := newPlant(t, nil, false)
	c := p.issue("openssl.example.com")
	leaf := p.leafPEM(t, c)
	// openssl wants the CertID digest before -cert.
	rest := []string{"-issuer", p.issuerPEM(c), "-cert", leaf, "-url", p.url, "-CAfile", filepath.Join(p.dir, "root.pem")}
	variants := []struct {
		name string
		args []string
	}{
		{"nonce, SHA-1", nil},
		{"no nonce, SHA-1", []string{"-no_nonce"}},
		{"nonce, SHA-256", []string{"-sha256"}},
		{"no nonce, SHA-256", []string{"-no_nonce", "-sha256"}},
	}
	check := func(t *testing.T, args []string, want ...string) {
		out, err := runCmd(t, "openssl", append(append([]string{"ocsp"}, args...), rest...)...)
		if err != nil {
			t.Fatalf("openssl ocsp: %v\n%s", err, out)
		}
		for _, w := range append(want, "Response verify OK") {
			if !strings.Contains(out, w) {
				t.Errorf("openssl output lacks %q:\n%s", w, out)
			}
		}
	}
	for _, v := range variants {
		t.Run("good/"+v.name, func(t *testing.T) { check(t, v.args, leaf+": good") })
	}
	p.revoke(c.Serial, reason.KeyCompromise)
	for _, v := range variants {
		t.Run("revoked/"+v.name, func(t *testing.T) { check(t, v.args, leaf+": revoked", "Reason: keyCompromise") })
	}
}

// rawGET sends target exactly as written and returns the body.
func rawGET(t *testing.T, url, target string) []byte {
	t.Helper()
	addr := strings.TrimSuffix(strings.TrimPrefix(url, "http://"), "/")
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", target, addr)
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/ocsp-response" {
		t.Fatalf("GET %.40s…: %d %s", target, resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	return body
}

// TestGETEncodingsOpenSSL: an openssl-made request sent as GET in every
// encoding clients and CDNs use; openssl verifies each saved answer.
func TestGETEncodingsOpenSSL(t *testing.T) {
	p := newPlant(t, nil, false)
	c := p.issue("get.example.com")
	leaf := p.leafPEM(t, c)
	dir := t.TempDir()
	reqFile := filepath.Join(dir, "req.der")
	if out, err := runCmd(t, "openssl", "ocsp", "-no_nonce", "-sha256", "-issuer", p.issuerPEM(c), "-cert", leaf, "-reqout", reqFile); err != nil {
		t.Fatalf("openssl ocsp -reqout: %v\n%s", err, out)
	}
	der, err := os.ReadFile(reqFile)
	if err != nil {
		t.Fatal(err)
	}
	std := base64.StdEncoding.EncodeToString(der)
	urlsafe := base64.URLEncoding.EncodeToString(der)
	for name, target := range map[string]string{
		"standard":              "/" + std,
		"percent-encoded":       "/" + strings.NewReplacer("+", "%2B", "/", "%2F", "=", "%3D").Replace(std),
		"URL-safe":              "/" + urlsafe,
		"URL-safe, no padding":  "/" + strings.TrimRight(urlsafe, "="),
		"plus as space (%20)":   "/" + strings.ReplaceAll(std, "+", "%20"),
		"extra leading slashes": "//" + std,
	} {
		t.Run(name, func(t *testing.T) {
			respFile := filepath.Join(t.TempDir(), "resp.der")
			if err := os.WriteFile(respFile, rawGET(t, p.url, target), 0o644); err != nil {
				t.Fatal(err)
			}
			out, err := runCmd(t, "openssl", "ocsp", "-sha256", "-respin", respFile, "-issuer", p.issuerPEM(c), "-cert", leaf,
				"-CAfile", filepath.Join(p.dir, "root.pem"))
			if err != nil || !strings.Contains(out, leaf+": good") || !strings.Contains(out, "Response verify OK") {
				t.Errorf("openssl ocsp -respin: %v\n%s", err, out)
			}
		})
	}
}

// TestGnuTLSClient: GnuTLS ocsptool asks the responder and verifies the
// answer against the issuer, then verifies a saved response.
func TestGnuTLSClient(t *testing.T) {
	p := newPlant(t, nil, false)
	c := p.issue("gnutls.example.com")
	leaf := p.leafPEM(t, c)
	out, err := runCmd(t, "ocsptool", "--ask="+p.url, "--load-cert", leaf, "--load-issuer", p.issuerPEM(c),
		"--load-trust", p.issuerPEM(c))
	if err != nil || !strings.Contains(out, "Certificate Status: good") || !strings.Contains(out, "Verifying OCSP Response: Success") {
		t.Fatalf("ocsptool --ask: %v\n%s", err, out)
	}
	p.revoke(c.Serial, reason.Superseded)
	en := p.cached(c.IssuerID, c.Serial, ocspcodec.SHA1)
	respFile := filepath.Join(t.TempDir(), "resp.der")
	if err := os.WriteFile(respFile, en.DER, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err = runCmd(t, "ocsptool", "--verify-response", "--load-response", respFile, "--load-trust", p.issuerPEM(c))
	if err != nil || !strings.Contains(out, "Certificate Status: revoked") || !strings.Contains(out, "Success") {
		t.Errorf("ocsptool --verify-response: %v\n%s", err, out)
	}
}

// TestRevokeNextRequest: on the memory and on the Redis cache, the very
// next request after Revoke returns answers revoked, although the good
// response was in the responder's L1; a second responder instance on the
// same Redis learns of it through pub/sub.
func TestRevokeNextRequest(t *testing.T) {
	for _, kind := range []string{"memory", "redis"} {
		t.Run(kind, func(t *testing.T) {
			var cache plantCache
			var other *responder.Responder
			if kind == "redis" {
				client, prefix := cachetest.SharedRedis(t, 8)
				rc := newRedisCache(t, client, prefix)
				cache = rc
				rc2 := newRedisCache(t, client, prefix) // another process's view
				var err error
				p, _, _ := devPKI(t)
				var issuers []responder.Issuer
				for _, is := range p.Intermediates {
					issuers = append(issuers, responder.Issuer{ID: is.ID, Cert: is.Cert})
				}
				other, err = responder.New(responder.Config{Issuers: issuers, L1Entries: 100},
					responder.Deps{Cache: rc2, Evictions: rc2, Log: testfix.QuietLogger()})
				if err != nil {
					t.Fatal(err)
				}
				defer other.Close()
			}
			p := newPlant(t, cache, false)
			if _, err := p.p.Rebuild(context.Background()); err != nil { // mark the cache complete
				t.Fatal(err)
			}
			c := p.issue(kind + ".revoke.example.com")
			for range 3 { // into L1
				if r := p.ask(t, c, crypto.SHA256); r.Status != ocsp.Good {
					t.Fatalf("before revocation: status %d", r.Status)
				}
			}
			leaf, _ := x509.ParseCertificate(c.DER)
			reqDER, _ := ocsp.CreateRequest(leaf, p.issuerCert(c.IssuerID), &ocsp.RequestOptions{Hash: crypto.SHA256})
			if other != nil {
				if a := other.Answer(context.Background(), reqDER); a.Kind != responder.Good {
					t.Fatalf("other instance before revocation: %v", a.Kind)
				}
			}
			p.revoke(c.Serial, reason.KeyCompromise)
			if r := p.ask(t, c, crypto.SHA256); r.Status != ocsp.Revoked || r.RevocationReason != ocsp.KeyCompromise {
				t.Errorf("next request after revocation: status %d reason %d", r.Status, r.RevocationReason)
			}
			if other != nil {
				deadline := time.Now().Add(2 * time.Second)
				for {
					a := other.Answer(context.Background(), reqDER)
					if a.Kind == responder.Revoked {
						break
					}
					if time.Now().After(deadline) {
						t.Fatalf("other instance still answers %v", a.Kind)
					}
					time.Sleep(5 * time.Millisecond)
				}
			}
		})
	}
}

func newRedisCache(t *testing.T, client redis.UniversalClient, prefix string) *ocspcache.Redis {
	t.Helper()
	rc, err := ocspcache.NewRedis(ocspcache.RedisConfig{Prefix: prefix}, client, testfix.QuietLogger())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rc.Close() })
	return rc
}

// hammer asks about the certificates until stop is closed, recording any
// answer that contradicts want (tryLater is tolerated but counted).
type hammer struct {
	wrong, tryLater, answered atomic.Int64
	firstWrong                atomic.Value
	wg                        sync.WaitGroup
}

func (p *plant) hammer(t *testing.T, certs []store.Certificate, want map[string]int, stop chan struct{}) *hammer {
	h := &hammer{}
	var reqs [][]byte
	for _, c := range certs {
		leaf, _ := x509.ParseCertificate(c.DER)
		der, err := ocsp.CreateRequest(leaf, p.issuerCert(c.IssuerID), nil)
		if err != nil {
			t.Fatal(err)
		}
		reqs = append(reqs, der)
	}
	client := &http.Client{Timeout: 5 * time.Second}
	for w := range 4 {
		h.wg.Add(1)
		go func() {
			defer h.wg.Done()
			for i := w; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				c := certs[i%len(certs)]
				resp, err := client.Post(p.url, "application/ocsp-request", bytes.NewReader(reqs[i%len(reqs)]))
				if err != nil {
					h.firstWrong.CompareAndSwap(nil, err.Error())
					h.wrong.Add(1)
					continue
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				h.answered.Add(1)
				if bytes.Equal(body, ocspcodec.TryLater) {
					h.tryLater.Add(1)
					continue
				}
				r, err := ocsp.ParseResponse(body, p.issuerCert(c.IssuerID))
				if err != nil || r.Status != want[string(c.Serial)] || time.Now().After(r.NextUpdate) {
					h.firstWrong.CompareAndSwap(nil, fmt.Sprintf("%s: %v %v", c.Serial, err, r))
					h.wrong.Add(1)
				}
			}
		}()
	}
	return h
}

// TestRedisLossWhileServing: Redis is flushed (FLUSHDB on a database of
// this test's own) and, separately, a Redis server is restarted empty,
// while clients keep asking. Every answer stays correct, and the pipeline
// notices the loss and refills the cache.
func TestRedisLossWhileServing(t *testing.T) {
	for _, mode := range []string{"flushdb", "restart"} {
		t.Run(mode, func(t *testing.T) {
			var client *redis.Client
			var priv *cachetest.PrivateRedis
			prefix := "tlflush:"
			if mode == "flushdb" {
				testenv.NeedTCP(t, "Redis", cachetest.SharedRedisAddr)
				client = redis.NewClient(&redis.Options{Addr: cachetest.SharedRedisAddr, DB: flushDB})
				t.Cleanup(func() { client.FlushDB(context.Background()); client.Close() })
				if err := client.FlushDB(context.Background()).Err(); err != nil {
					t.Fatal(err)
				}
			} else {
				priv = cachetest.StartPrivateRedis(t)
				client = priv.Client()
			}
			rc := newRedisCache(t, client, prefix)
			p := newPlant(t, rc, true)
			ctx := context.Background()
			var certs []store.Certificate
			want := map[string]int{}
			for i := range 6 {
				c := p.issue(fmt.Sprintf("loss%d.example.com", i))
				want[string(c.Serial)] = ocsp.Good
				if i%3 == 0 {
					c = p.revoke(c.Serial, reason.KeyCompromise)
					want[string(c.Serial)] = ocsp.Revoked
				}
				certs = append(certs, c)
			}
			waitComplete := func(not string) string {
				deadline := time.Now().Add(15 * time.Second)
				for time.Now().Before(deadline) {
					if st, err := rc.State(ctx); err == nil && st.Complete && st.Epoch != not {
						return st.Epoch
					}
					time.Sleep(20 * time.Millisecond)
				}
				t.Fatal("cache not (re)built")
				return ""
			}
			first := waitComplete("")

			stop := make(chan struct{})
			h := p.hammer(t, certs, want, stop)
			time.Sleep(200 * time.Millisecond)
			if mode == "flushdb" {
				if err := client.FlushDB(ctx).Err(); err != nil {
					t.Fatal(err)
				}
			} else {
				priv.Restart()
			}
			second := waitComplete(first)
			time.Sleep(300 * time.Millisecond)
			close(stop)
			h.wg.Wait()
			if n := h.wrong.Load(); n > 0 {
				t.Errorf("%d wrong answers of %d (first: %v)", n, h.answered.Load(), h.firstWrong.Load())
			}
			t.Logf("%d answers, %d tryLater; epochs %s → %s", h.answered.Load(), h.tryLater.Load(), first, second)
			keys, err := client.Keys(ctx, prefix+"r:*").Result()
			if err != nil {
				t.Fatal(err)
			}
			if len(keys) < 2*len(certs) {
				t.Errorf("%d response keys after the refill, want at least %d", len(keys), 2*len(certs))
			}
		})
	}
}
