package bench

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/trustline/trustline/internal/cli"
)

// OCSPConfig configures an OCSP load run (`trustline bench ocsp`).
type OCSPConfig struct {
	Name   string `json:"name"`
	Target string `json:"target"` // the responder's base URL
	// DataDir holds the store (unless Postgres is set) and the issuer
	// certificates (DIR/ca/*.pem) the answers are verified against.
	DataDir  string     `json:"data_dir"`
	Postgres string     `json:"-"` // may carry a password
	Load     LoadConfig `json:"-"`
	Mix      Mix        `json:"mix"`
	// VerifyEvery: one answer in VerifyEvery (and each worker's first) is
	// verified in full; the others are checked for HTTP 200 and a DER
	// body. 1 verifies every answer, at a cost in generator CPU
	// (two signature checks each).
	VerifyEvery int           `json:"verify_every"`
	Timeout     time.Duration `json:"-"`
	MaxCerts    int           `json:"max_certs"`
}

// Validate reports what is wrong with cfg.
func (cfg OCSPConfig) Validate() error {
	switch {
	case cfg.Target == "":
		return errors.New("bench: --target is required")
	case cfg.DataDir == "":
		return errors.New("bench: --data is required (issuer certificates, and the store unless --postgres)")
	case cfg.VerifyEvery < 1:
		return errors.New("bench: --verify-every must be at least 1")
	case cfg.Timeout <= 0:
		return errors.New("bench: --timeout must be positive")
	case cfg.MaxCerts < 1:
		return errors.New("bench: --max-certs must be positive")
	}
	if err := cfg.Load.Validate(); err != nil {
		return err
	}
	return cfg.Mix.Validate()
}

// OCSP loads a responder with requests for the certificates in the
// store and verifies a sample of the answers.
func OCSP(ctx context.Context, cfg OCSPConfig, now func() time.Time) (*Run, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	ep, err := parseEndpoint(cfg.Target)
	if err != nil {
		return nil, err
	}
	issuers, err := loadIssuers(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	certs, err := readCerts(ctx, cfg.DataDir, cfg.Postgres, cfg.MaxCerts, now())
	if err != nil {
		return nil, err
	}
	c, err := buildCorpus(certs, issuers, cfg.Mix, ep)
	if err != nil {
		return nil, err
	}
	return runOCSP(ctx, cfg, ep, c, len(certs), now)
}

// runOCSP is the load part of OCSP, on a built corpus.
func runOCSP(ctx context.Context, cfg OCSPConfig, ep endpoint, c *corpus, certs int, now func() time.Time) (*Run, error) {
	var verified atomic.Int64
	r, _, err := measure(ctx, cfg.Load, func(id int) (Worker, error) {
		return &ocspWorker{c: newRawConn(ep, cfg.Timeout, 1<<20), corpus: c, every: uint64(cfg.VerifyEvery),
			verified: &verified, first: true, now: now}, nil
	}, now, runOf{name: cmp.Or(cfg.Name, "ocsp-"+cfg.Load.Mode()), scenario: "ocsp", target: cfg.Target, cfg: cfg})
	if r == nil {
		return nil, err
	}
	r.Verified = verified.Load()
	r.Figures = map[string]float64{"certificates": float64(certs), "distinct_request_slots": float64(len(c.slots))}
	return r, err
}

// ocspWorker sends the corpus's requests over one connection.
type ocspWorker struct {
	c        *rawConn
	corpus   *corpus
	every    uint64
	verified *atomic.Int64
	first    bool
	now      func() time.Time
}

func (w *ocspWorker) Do(seq uint64) error {
	s := &w.corpus.slots[seq%uint64(len(w.corpus.slots))]
	now := w.now()
	code, body, err := w.c.roundTrip(s.raw, now)
	if err != nil {
		return transportFailure(err)
	}
	if code != 200 {
		return fmt.Errorf("%s %s: %w", method(s), clip(string(s.target), 60), statusFailure(code, body))
	}
	if st, ok := responseStatusOf(body); ok && st == ocsp.TryLater && s.exp.unknown {
		// Counted apart: a never-issued serial is in no cache, so it
		// tells nothing of what the caches hold.
		return fail("ocsp_try_later_unknown_serial", fmt.Errorf("never-issued serial %x: try later", s.exp.sn))
	}
	if w.first || seq%w.every == 0 {
		w.first = false
		w.verified.Add(1)
		return verifyOCSP(&s.exp, body, now)
	}
	// Unverified answers must at least look like a DER OCSPResponse, and
	// a successful one: a tryLater is an error, verified or not.
	st, ok := responseStatusOf(body)
	if !ok {
		return fail("verify", fmt.Errorf("body of %d octets is not a DER OCSPResponse", len(body)))
	}
	if st != ocsp.Success && !(st == ocsp.Unauthorized && s.exp.unknown) {
		return fail("ocsp_"+responseStatusName(st), fmt.Errorf("serial %x: %v", s.exp.sn, st))
	}
	return nil
}

// responseStatusOf reads the responseStatus of a DER OCSPResponse
// (RFC 6960 §4.2.1: SEQUENCE { ENUMERATED, ... }) without parsing the
// rest.
func responseStatusOf(b []byte) (ocsp.ResponseStatus, bool) {
	if len(b) < 2 || b[0] != 0x30 {
		return 0, false
	}
	i := 2
	if b[1]&0x80 != 0 { // long form: 1-4 length octets follow
		n := int(b[1] & 0x7f)
		if n == 0 || n > 4 {
			return 0, false
		}
		i += n
	}
	if len(b) < i+3 || b[i] != 0x0a || b[i+1] != 0x01 {
		return 0, false
	}
	return ocsp.ResponseStatus(b[i+2]), true
}

func (w *ocspWorker) Close() { w.c.Close() }

func method(s *slot) string {
	if s.post {
		return "POST"
	}
	return "GET"
}

// RunOCSP is `trustline bench ocsp`.
func RunOCSP(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("trustline bench ocsp", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg OCSPConfig
	fs.StringVar(&cfg.Target, "target", "", "responder base URL, e.g. http://127.0.0.1:8081 (required)")
	fs.StringVar(&cfg.DataDir, "data", "", "data dir: store and issuer certificates (required)")
	fs.StringVar(&cfg.Postgres, "postgres", "", "PostgreSQL URL of the store (default: DIR/trustline.db)")
	fs.StringVar(&cfg.Name, "name", "", "run name in reports (default ocsp-closed / ocsp-open)")
	lf := registerLoadFlags(fs, 10*time.Second, 32)
	registerMixFlags(fs, &cfg.Mix, Mix{Method: "get", GetEncoding: "raw", Seed: 1})
	fs.IntVar(&cfg.VerifyEvery, "verify-every", 100, "verify one answer in N in full (1: all)")
	fs.DurationVar(&cfg.Timeout, "timeout", 5*time.Second, "per-request timeout")
	fs.IntVar(&cfg.MaxCerts, "max-certs", 1_000_000, "read at most this many certificates from the store")
	of := registerOutputFlags(fs)
	if err := cli.Parse(fs, args); err != nil {
		return err
	}
	cfg.Load = lf.config()
	r, err := OCSP(ctx, cfg, time.Now)
	if r == nil {
		return err
	}
	return errors.Join(err, of.emit(stdout, r))
}

// registerMixFlags registers the request-mix flags of the OCSP scenarios
// into m, with def's values as defaults.
func registerMixFlags(fs *flag.FlagSet, m *Mix, def Mix) {
	fs.StringVar(&m.Method, "method", def.Method, "get, post or mix (half each)")
	fs.StringVar(&m.GetEncoding, "get-encoding", def.GetEncoding, "GET path encoding: raw base64 or url (percent-encoded)")
	fs.Float64Var(&m.Zipf, "zipf", def.Zipf, "popularity exponent s over certificates (0: uniform)")
	fs.Float64Var(&m.Unknown, "unknown", def.Unknown, "share of requests for never-issued serials")
	fs.Float64Var(&m.SHA256, "sha256", def.SHA256, "share of requests with SHA-256 CertIDs (else SHA-1)")
	fs.Float64Var(&m.Nonce, "nonce", def.Nonce, "share of requests carrying a nonce")
	fs.Uint64Var(&m.Seed, "seed", def.Seed, "seed of the request mix")
}
