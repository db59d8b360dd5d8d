package bench

import (
	"bytes"
	"cmp"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/trustline/trustline/internal/cli"
	"github.com/trustline/trustline/internal/serial"
)

// IssueConfig configures `trustline bench issue`: DV orders through the
// issuance API, as a subscriber makes them.
type IssueConfig struct {
	Name    string `json:"name"`
	API     string `json:"api"`      // the API's base URL
	DataDir string `json:"data_dir"` // admin.key, mail/, ca/*.pem
	// APIKey and Domain name a pre-validated account: its key, and a
	// domain it holds a valid validation for. Without them the bench
	// creates an account and validates a fresh domain by the mailed code,
	// as a user would (which needs DIR/mail: dev mode's mail files).
	APIKey string     `json:"-"`
	Domain string     `json:"domain"`
	Load   LoadConfig `json:"-"`
	// KeyType of the subscriber keys in the CSRs: "ecdsa" (P-256) or
	// "rsa" (2048). CSRs are made before the run, CSRs of them.
	KeyType     string        `json:"key_type"`
	CSRs        int           `json:"csrs"`
	VerifyEvery int           `json:"verify_every"`
	Timeout     time.Duration `json:"-"`
}

// Validate reports what is wrong with cfg.
func (cfg IssueConfig) Validate() error {
	switch {
	case cfg.API == "":
		return errors.New("bench: --api is required (the issuance API's base URL)")
	case cfg.APIKey == "" && cfg.DataDir == "":
		return errors.New("bench: give --data DIR (to validate by mail) or --api-key with --domain (a pre-validated account)")
	case cfg.APIKey != "" && cfg.Domain == "":
		return errors.New("bench: --api-key needs --domain, a domain that account has validated")
	case cfg.KeyType != "ecdsa" && cfg.KeyType != "rsa":
		return fmt.Errorf("bench: --key %q: want ecdsa or rsa", cfg.KeyType)
	case cfg.CSRs < 1 || cfg.CSRs > 10000:
		return errors.New("bench: --csrs must be in 1–10000")
	case cfg.VerifyEvery < 1:
		return errors.New("bench: --verify-every must be at least 1")
	case cfg.Timeout <= 0:
		return errors.New("bench: --timeout must be positive")
	}
	return cfg.Load.Validate()
}

// issueCSR is a prepared order.
type issueCSR struct {
	name string
	pub  crypto.PublicKey
	body []byte // the order's JSON
}

// issued is an order whose certificate is checked after the run (outside
// the measured time).
type issued struct {
	serial string
	csr    *issueCSR
}

// Issue runs the issuance scenario. rnd makes the subscriber keys.
func Issue(ctx context.Context, cfg IssueConfig, now func() time.Time, rnd io.Reader) (*Run, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	ep, err := parseEndpoint(cfg.API)
	if err != nil {
		return nil, err
	}
	api := &apiClient{base: strings.TrimRight(cfg.API, "/"), c: &http.Client{Timeout: cfg.Timeout}}
	key, domain := cfg.APIKey, cfg.Domain
	if key == "" {
		if key, domain, err = validatedAccount(ctx, api, cfg.DataDir, cfg.Domain, rnd); err != nil {
			return nil, err
		}
	}
	csrs, err := makeCSRs(cfg.CSRs, cfg.KeyType, domain, rnd)
	if err != nil {
		return nil, err
	}
	var (
		mu      sync.Mutex
		samples []issued
	)
	auth := []byte("Bearer " + key)
	run, _, err := measure(ctx, cfg.Load, func(int) (Worker, error) {
		return &issueWorker{ep: ep, c: ep.client(cfg.Timeout, 1<<20), csrs: csrs, auth: auth, every: uint64(cfg.VerifyEvery),
			sample: func(s issued) { mu.Lock(); samples = append(samples, s); mu.Unlock() }}, nil
	}, now, runOf{name: cmp.Or(cfg.Name, "issue-"+cfg.Load.Mode()), scenario: "issue", target: cfg.API, cfg: cfg})
	if run == nil {
		return nil, err
	}
	run.Figures = map[string]float64{"csr_pool": float64(len(csrs))}
	run.Notes = append(run.Notes, "each request is one DV order (CSR checks, zlint, two signatures, two store transactions); a sample of the issued certificates is fetched and checked after the run, outside the measured time")

	var issuers []*x509.Certificate
	if cfg.DataDir != "" {
		is, err := loadIssuers(cfg.DataDir)
		if err != nil {
			return run, err
		}
		for _, i := range is {
			issuers = append(issuers, i.Cert)
		}
	}
	for _, s := range samples {
		run.Verified++
		if verr := api.checkIssued(ctx, key, s, issuers, now()); verr != nil {
			run.Errors++
			k := kindOf(verr)
			run.ErrorsByKind[k]++
			if _, ok := run.FirstErrors[k]; !ok {
				run.FirstErrors[k] = verr.Error()
			}
		}
	}
	return run, err
}

// issueWorker places orders on one connection.
type issueWorker struct {
	ep      endpoint
	c       *fasthttp.HostClient
	csrs    []issueCSR
	auth    []byte
	every   uint64
	sampled bool // the worker's first order is always checked
	sample  func(issued)
	req     fasthttp.Request
	resp    fasthttp.Response
}

func (w *issueWorker) Close() { w.c.CloseIdleConnections() }

func (w *issueWorker) Do(seq uint64) error {
	csr := &w.csrs[seq%uint64(len(w.csrs))]
	w.req.Reset()
	w.req.Header.SetHost(w.ep.host)
	w.req.Header.SetMethod(fasthttp.MethodPost)
	w.req.SetRequestURI(w.ep.basePath + "/api/v1/orders")
	w.req.Header.SetContentType("application/json")
	w.req.Header.SetBytesV("Authorization", w.auth)
	w.req.SetBodyRaw(csr.body)
	if err := w.c.Do(&w.req, &w.resp); err != nil {
		return transportFailure(err)
	}
	if code := w.resp.StatusCode(); code != fasthttp.StatusCreated {
		return statusFailure(code, w.resp.Body())
	}
	var ord struct {
		Status string `json:"status"`
		Serial string `json:"serial"`
	}
	if err := json.Unmarshal(w.resp.Body(), &ord); err != nil {
		return fail("verify", fmt.Errorf("order response: %w", err))
	}
	if ord.Status != "issued" || ord.Serial == "" {
		return fail("not_issued", fmt.Errorf("order status %q (a DV order for a validated domain should be issued at once)", ord.Status))
	}
	if !w.sampled || seq%w.every == 0 {
		w.sampled = true
		w.sample(issued{serial: ord.Serial, csr: csr})
	}
	return nil
}

// makeCSRs prepares n orders for names under domain.
func makeCSRs(n int, keyType, domain string, rnd io.Reader) ([]issueCSR, error) {
	out := make([]issueCSR, n)
	for i := range out {
		var key crypto.Signer
		var err error
		if keyType == "rsa" {
			key, err = rsa.GenerateKey(rnd, 2048)
		} else {
			key, err = ecdsa.GenerateKey(elliptic.P256(), rnd)
		}
		if err != nil {
			return nil, fmt.Errorf("bench: generating a subscriber key: %w", err)
		}
		name := fmt.Sprintf("host-%d.%s", i, domain)
		der, err := x509.CreateCertificateRequest(rnd, &x509.CertificateRequest{Subject: pkix.Name{CommonName: name}, DNSNames: []string{name}}, key)
		if err != nil {
			return nil, fmt.Errorf("bench: making a CSR: %w", err)
		}
		body, _ := json.Marshal(map[string]string{"csr": string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})), "profile": "dv"})
		out[i] = issueCSR{name: name, pub: key.Public(), body: body}
	}
	return out, nil
}

// apiClient makes the few setup and check calls, with net/http.
type apiClient struct {
	base string
	c    *http.Client
}

// call sends a JSON request and decodes a JSON answer with status want.
func (a *apiClient) call(ctx context.Context, method, path, key string, in any, want int, out any) error {
	var body io.Reader
	if in != nil {
		b, _ := json.Marshal(in)
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, a.base+path, body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := a.c.Do(req)
	if err != nil {
		return fmt.Errorf("bench: %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if resp.StatusCode != want {
		return fmt.Errorf("bench: %s %s: HTTP %d: %s", method, path, resp.StatusCode, clip(string(b), 300))
	}
	if out == nil {
		return nil
	}
	if p, ok := out.(*[]byte); ok {
		*p = b
		return nil
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("bench: %s %s: decoding the answer: %w", method, path, err)
	}
	return nil
}

// validatedAccount creates a subscriber account (through the admin API
// when DIR/admin.key exists, else by self sign-up) and validates a
// domain by the code mailed to its constructed admin address, read from
// DIR/mail as the subscriber would read it.
func validatedAccount(ctx context.Context, api *apiClient, dataDir, domain string, rnd io.Reader) (key, dom string, err error) {
	tag := make([]byte, 4)
	if _, err := io.ReadFull(rnd, tag); err != nil {
		return "", "", err
	}
	if domain == "" {
		domain = "bench-" + hex.EncodeToString(tag) + ".example.com"
	}
	email := "bench+" + hex.EncodeToString(tag) + "@" + domain
	var acct struct {
		APIKey string `json:"api_key"`
	}
	if admin, rerr := os.ReadFile(filepath.Join(dataDir, "admin.key")); rerr == nil {
		err = api.call(ctx, "POST", "/api/v1/admin/accounts", strings.TrimSpace(string(admin)),
			map[string]string{"email": email, "role": "subscriber"}, http.StatusCreated, &acct)
	} else {
		err = api.call(ctx, "POST", "/api/v1/accounts", "", map[string]string{"email": email}, http.StatusCreated, &acct)
	}
	if err != nil {
		return "", "", err
	}
	contact := "admin@" + domain
	var val struct {
		ID string `json:"id"`
	}
	if err := api.call(ctx, "POST", "/api/v1/validations", acct.APIKey,
		map[string]string{"domain": domain, "method": "email", "email": contact}, http.StatusCreated, &val); err != nil {
		return "", "", err
	}
	code, err := waitMailedCode(ctx, filepath.Join(dataDir, "mail"), contact, 15*time.Second)
	if err != nil {
		return "", "", err
	}
	if err := api.call(ctx, "POST", "/api/v1/validations/"+val.ID+"/confirm", acct.APIKey,
		map[string]string{"code": code}, http.StatusOK, nil); err != nil {
		return "", "", err
	}
	return acct.APIKey, domain, nil
}

// mailCode finds the validation code line of CONTRACT.md in a message.
func mailCode(msg []byte, to string) (string, bool) {
	if !bytes.Contains(msg, []byte("\nTo: "+to+"\r\n")) && !bytes.HasPrefix(msg, []byte("To: "+to+"\r\n")) {
		return "", false
	}
	m := regexp.MustCompile(`(?m)^Validation code: ([A-Za-z0-9-]{4,128})\r?$`).FindSubmatch(msg)
	if m == nil {
		return "", false
	}
	return string(m[1]), true
}

// waitMailedCode polls dir for the newest message to `to` with a code.
func waitMailedCode(ctx context.Context, dir, to string, timeout time.Duration) (string, error) {
	deadline := time.Now().Add(timeout)
	for {
		files, _ := filepath.Glob(filepath.Join(dir, "*.eml"))
		type found struct {
			code string
			mod  time.Time
		}
		var best *found
		for _, f := range files {
			fi, err := os.Stat(f)
			if err != nil || fi.Size() > 1<<20 {
				continue
			}
			b, err := os.ReadFile(f)
			if err != nil {
				continue
			}
			if code, ok := mailCode(b, to); ok && (best == nil || fi.ModTime().After(best.mod)) {
				best = &found{code, fi.ModTime()}
			}
		}
		if best != nil {
			return best.code, nil
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("bench: no validation code mailed to %s in %s after %v (is the API running in dev mode on this DIR?)", to, dir, timeout)
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// checkIssued fetches an issued certificate and checks it: the chain
// parses, the leaf is for the CSR's name and key, and it is signed by the
// next certificate, which is one of DIR's issuers (when known).
func (a *apiClient) checkIssued(ctx context.Context, key string, s issued, issuers []*x509.Certificate, now time.Time) error {
	var b []byte
	if err := a.call(ctx, "GET", "/api/v1/certificates/"+s.serial, key, nil, http.StatusOK, &b); err != nil {
		return fail("verify", err)
	}
	var chain []*x509.Certificate
	for blk, rest := pem.Decode(b); blk != nil; blk, rest = pem.Decode(rest) {
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return fail("verify", fmt.Errorf("certificate %s: %w", s.serial, err))
		}
		chain = append(chain, c)
	}
	if len(chain) < 2 {
		return fail("verify", fmt.Errorf("certificate %s: chain of %d certificates", s.serial, len(chain)))
	}
	leaf, parent := chain[0], chain[1]
	switch {
	case !sameSerial(leaf, s.serial):
		return fail("verify", fmt.Errorf("asked for %s, got serial %x", s.serial, leaf.SerialNumber))
	case !slices.Contains(leaf.DNSNames, s.csr.name):
		return fail("verify", fmt.Errorf("certificate %s is for %v, not %s", s.serial, leaf.DNSNames, s.csr.name))
	case !publicKeyEqual(leaf.PublicKey, s.csr.pub):
		return fail("verify", fmt.Errorf("certificate %s does not carry the CSR's key", s.serial))
	case now.After(leaf.NotAfter) || now.Add(clockSkew).Before(leaf.NotBefore):
		return fail("verify", fmt.Errorf("certificate %s not valid now", s.serial))
	}
	if err := leaf.CheckSignatureFrom(parent); err != nil {
		return fail("verify", fmt.Errorf("certificate %s: %w", s.serial, err))
	}
	if len(issuers) > 0 && !slices.ContainsFunc(issuers, func(c *x509.Certificate) bool { return c.Equal(parent) }) {
		return fail("verify", fmt.Errorf("certificate %s is issued by %q, not one of DIR's issuers", s.serial, parent.Subject))
	}
	return nil
}

func sameSerial(c *x509.Certificate, want string) bool {
	got, err := serial.FromBigInt(c.SerialNumber)
	return err == nil && string(got) == want
}

func publicKeyEqual(a, b crypto.PublicKey) bool {
	k, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && k.Equal(b)
}

// RunIssue is `trustline bench issue`.
func RunIssue(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("trustline bench issue", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg IssueConfig
	fs.StringVar(&cfg.API, "api", "", "issuance API base URL, e.g. http://127.0.0.1:8080 (required)")
	fs.StringVar(&cfg.DataDir, "data", "", "dev data dir: admin.key, mail/ (to validate by the mailed code) and ca/")
	fs.StringVar(&cfg.APIKey, "api-key", "", "API key of a pre-validated account (skips account creation and validation)")
	fs.StringVar(&cfg.Domain, "domain", "", "domain to order for; with --api-key, one the account has validated (default: a fresh one)")
	fs.StringVar(&cfg.Name, "name", "", "run name in reports (default issue-closed / issue-open)")
	lf := registerLoadFlags(fs, 10*time.Second, 4)
	fs.StringVar(&cfg.KeyType, "key", "ecdsa", "subscriber key type in the CSRs: ecdsa (P-256) or rsa (2048)")
	fs.IntVar(&cfg.CSRs, "csrs", 64, "CSRs prepared before the run and reused in turn")
	fs.IntVar(&cfg.VerifyEvery, "verify-every", 20, "fetch and check one issued certificate in N after the run")
	fs.DurationVar(&cfg.Timeout, "timeout", 30*time.Second, "per-request timeout")
	of := registerOutputFlags(fs)
	if err := cli.Parse(fs, args); err != nil {
		return err
	}
	cfg.Load = lf.config()
	r, err := Issue(ctx, cfg, time.Now, rand.Reader)
	if r == nil {
		return err
	}
	return errors.Join(err, of.emit(stdout, r))
}
