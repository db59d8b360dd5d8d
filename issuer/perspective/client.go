package perspective

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/trustline/trustline/issuer/mpic"
)

// Remote is one perspective the primary asks.
type Remote struct {
	Name string
	// URL is the perspective's base URL (https://host:port).
	URL string
	// RIR is the registry whose service region it is in.
	RIR string
	// Key is its public key: the TLS peer must hold it, and its
	// statements must verify with it.
	Key crypto.PublicKey
}

// ClientConfig configures the primary's side.
type ClientConfig struct {
	// Key is the primary's key, presented as its TLS client certificate.
	Key crypto.Signer
	// Remotes are the perspectives asked, all of them, in parallel.
	Remotes []Remote
	// Timeout bounds one perspective's answer; 0 means 20 s (an
	// http-token fetch alone may take 10 s).
	Timeout time.Duration
	// Policy gives the rule for a check made at t; nil means mpic.BR.
	Policy func(t time.Time) mpic.Policy
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Client asks remote perspectives (an mpic.Corroborator).
type Client struct {
	cfg     ClientConfig
	clients []*http.Client
	log     *slog.Logger
}

// NewClient checks cfg and builds a Client.
func NewClient(cfg ClientConfig, log *slog.Logger) (*Client, error) {
	if cfg.Key == nil {
		return nil, errors.New("perspective: the primary's key is required")
	}
	if len(cfg.Remotes) == 0 {
		return nil, errors.New("perspective: at least one remote perspective is required")
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 20 * time.Second
	}
	if cfg.Policy == nil {
		cfg.Policy = mpic.BR
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cert, err := selfSigned(cfg.Key, "trustline primary perspective")
	if err != nil {
		return nil, err
	}
	c := &Client{cfg: cfg, log: log}
	seen := map[string]bool{}
	for i, r := range cfg.Remotes {
		u, err := url.Parse(r.URL)
		if err != nil || u.Scheme != "https" || u.Host == "" {
			return nil, fmt.Errorf("perspective: remote %d (%s): URL %q must be https://host:port", i, r.Name, r.URL)
		}
		if r.Name == "" || seen[r.Name] {
			return nil, fmt.Errorf("perspective: remote %d: a unique name is required", i)
		}
		seen[r.Name] = true
		if r.Key == nil {
			return nil, fmt.Errorf("perspective: remote %s: its public key is required", r.Name)
		}
		verify, err := pinned([]crypto.PublicKey{r.Key})
		if err != nil {
			return nil, err
		}
		c.clients = append(c.clients, &http.Client{
			Timeout: cfg.Timeout,
			Transport: &http.Transport{
				TLSClientConfig: &tls.Config{
					MinVersion:   tls.VersionTLS13,
					Certificates: []tls.Certificate{cert},
					// The peer is authenticated by its pinned key, not
					// by a chain: VerifyPeerCertificate does it.
					InsecureSkipVerify:    true,
					VerifyPeerCertificate: verify,
				},
				ForceAttemptHTTP2:   true,
				MaxIdleConnsPerHost: 4,
				IdleConnTimeout:     time.Minute,
			},
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		})
	}
	return c, nil
}

// Corroborate asks every remote perspective to repeat c, in parallel,
// and decides by the policy in force now.
func (c *Client) Corroborate(ctx context.Context, check mpic.Check) mpic.Outcome {
	answers := make([]mpic.Answer, len(c.cfg.Remotes))
	var wg sync.WaitGroup
	for i := range c.cfg.Remotes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			answers[i] = c.ask(ctx, i, check)
		}()
	}
	wg.Wait()
	o := mpic.Decide(check, c.cfg.Policy(c.cfg.Now()), answers)
	c.log.Info("perspectives asked", "kind", check.Kind, "domain", check.Domain,
		"asked", o.Asked, "corroborated", o.Corroborated, "met", o.Met, "reason", o.Reason)
	return o
}

// ask gets one perspective's answer; every failure is an Unreachable
// answer saying why.
func (c *Client) ask(ctx context.Context, i int, check mpic.Check) mpic.Answer {
	r := c.cfg.Remotes[i]
	a := mpic.Answer{Perspective: r.Name, RIR: r.RIR}
	start := time.Now()
	down := func(format string, args ...any) mpic.Answer {
		a.Unreachable, a.Detail = true, fmt.Sprintf(format, args...)
		a.Latency = time.Since(start)
		return a
	}
	nonce := make([]byte, 24)
	if _, err := rand.Read(nonce); err != nil {
		return down("no randomness for a nonce: %v", err)
	}
	req := Request{Check: check, Nonce: base64.RawURLEncoding.EncodeToString(nonce)}
	body, err := json.Marshal(req)
	if err != nil {
		return down("encoding the request: %v", err)
	}
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(r.URL, "/")+CheckPath, bytes.NewReader(body))
	if err != nil {
		return down("building the request: %v", err)
	}
	hr.Header.Set("Content-Type", "application/json")
	resp, err := c.clients[i].Do(hr)
	if err != nil {
		// The raw error names the perspective's address and network;
		// evidence the subscriber may see says only what happened.
		c.log.Warn("perspective did not answer", "perspective", r.Name, "err", err)
		if ctx.Err() != nil || errors.Is(err, context.DeadlineExceeded) {
			return down("no answer in time")
		}
		return down("no answer (the connection failed)")
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	switch {
	case err != nil:
		return down("reading the answer: %v", err)
	case len(out) > maxBody:
		return down("the answer is larger than %d bytes", maxBody)
	case resp.StatusCode != http.StatusOK:
		c.log.Warn("perspective refused the check", "perspective", r.Name, "status", resp.StatusCode, "answer", firstLine(out))
		return down("answered %d", resp.StatusCode)
	}
	sig, err := base64.StdEncoding.DecodeString(resp.Header.Get(SignatureHeader))
	if err != nil || len(sig) == 0 {
		return down("the answer carries no signature")
	}
	if err := Verify(r.Key, out, sig); err != nil {
		return down("%v", err)
	}
	st, err := decodeStatement(out)
	if err != nil {
		return down("%v", err)
	}
	if st.Nonce != req.Nonce || st.Check != check || st.Perspective != r.Name {
		return down("the signed statement answers another request (perspective %q)", st.Perspective)
	}
	a.Statement, a.Signature = out, sig
	a.Corroborates, a.Detail = st.Passed, st.Detail
	a.Latency = time.Since(start)
	return a
}

// firstLine returns the start of an error body, for the evidence.
func firstLine(b []byte) string {
	s, _, _ := strings.Cut(string(b), "\n")
	if len(s) > 200 {
		s = s[:200]
	}
	return s
}
