package bench

import (
	"cmp"
	"context"
	"crypto"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/trustline/trustline/internal/cli"
	"github.com/trustline/trustline/internal/issuerid"
	"github.com/trustline/trustline/internal/ocspcodec"
)

// PresignConfig configures `trustline bench presign`: how fast OCSP
// responses for the store's certificates are signed.
//
// It measures ocspcodec.Signer directly — the encoder and the signature
// the pre-signing pipeline (issuer/presign) spends nearly all its time in
// — with DIR's file keys, on Workers goroutines. It does not include the
// pipeline's store reads and cache writes; when cmd/ wires a
// PresignDeps.Rebuild, that is measured as well, end to end.
type PresignConfig struct {
	Name     string `json:"name"`
	DataDir  string `json:"data_dir"`
	Postgres string `json:"-"`
	// Responses is how many responses to sign (SHA-1 and SHA-256 for each
	// certificate in turn, as the pipeline pre-signs both).
	Responses int `json:"responses"`
	Workers   int `json:"workers"`
	// IssuerKey signs with the issuer's key instead of the delegated
	// responder's (the pipeline's default).
	IssuerKey   bool `json:"issuer_key"`
	VerifyEvery int  `json:"verify_every"`
	MaxCerts    int  `json:"max_certs"`
}

// PresignDeps are what cmd/ may wire in.
type PresignDeps struct {
	// Rebuild, when set, re-signs the whole cache through the real
	// pipeline (presign.Pipeline.Rebuild on DIR's store and a fresh
	// in-process cache) and returns how many responses it wrote.
	Rebuild func(ctx context.Context) (int64, error)
}

// Validate reports what is wrong with cfg.
func (cfg PresignConfig) Validate() error {
	switch {
	case cfg.DataDir == "":
		return errors.New("bench: --data is required")
	case cfg.Responses < 1:
		return errors.New("bench: --n must be positive")
	case cfg.Workers < 1 || cfg.Workers > 1024:
		return errors.New("bench: --workers must be in 1–1024")
	case cfg.VerifyEvery < 1:
		return errors.New("bench: --verify-every must be at least 1")
	case cfg.MaxCerts < 1:
		return errors.New("bench: --max-certs must be positive")
	}
	return nil
}

// Presign signs cfg.Responses responses and reports the rate.
func Presign(ctx context.Context, cfg PresignConfig, d PresignDeps, now func() time.Time, rnd io.Reader) (*Run, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s, err := loadSignable(ctx, cfg.DataDir, cfg.Postgres, cfg.MaxCerts, cfg.IssuerKey, now())
	if err != nil {
		return nil, err
	}
	certs, issuers, sig := s.certs, s.issuers, s.sig
	var verified atomic.Int64
	load := LoadConfig{Duration: 10 * time.Minute, Concurrency: cfg.Workers, Requests: uint64(cfg.Responses)}
	run, _, err := measure(ctx, load, func(int) (Worker, error) {
		return &signWorker{certs: certs, issuers: issuers, sig: sig, every: uint64(cfg.VerifyEvery), now: now, rand: rnd,
			verified: &verified}, nil
	}, now, runOf{name: cmp.Or(cfg.Name, "presign"), scenario: "presign",
		target: "ocspcodec.Signer (" + signerKind(cfg.IssuerKey) + ", file keys)", cfg: cfg})
	if run == nil {
		return nil, err
	}
	run.Verified = verified.Load()
	run.Figures = map[string]float64{"certificates": float64(len(certs)), "workers": float64(cfg.Workers)}
	run.Notes = append(run.Notes, "requests are signatures: each is one complete DER OCSPResponse signed by ocspcodec.Signer, the pipeline's encoder; latency is per signature")
	if d.Rebuild != nil {
		t0 := now()
		n, rerr := d.Rebuild(ctx)
		el := now().Sub(t0)
		run.Figures["pipeline_rebuild_responses"] = float64(n)
		run.Figures["pipeline_rebuild_sec"] = round(el.Seconds(), 3)
		if el > 0 {
			run.Figures["pipeline_rebuild_responses_per_sec"] = round(float64(n)/el.Seconds(), 1)
		}
		if rerr != nil {
			err = errors.Join(err, fmt.Errorf("bench: pipeline rebuild: %w", rerr))
		}
	}
	return run, err
}

func signerKind(issuerKey bool) string {
	if issuerKey {
		return "issuer key"
	}
	return "delegated responder key"
}

// signWorker signs responses for certificates in turn.
type signWorker struct {
	certs    []Cert
	issuers  map[issuerid.ID]*Issuer
	sig      map[issuerid.ID]*ocspcodec.Signer
	every    uint64
	now      func() time.Time
	rand     io.Reader
	verified *atomic.Int64
}

func (w *signWorker) Close() {}

func (w *signWorker) Do(seq uint64) error {
	c := &w.certs[(seq/2)%uint64(len(w.certs))]
	h := crypto.SHA1
	if seq%2 == 1 {
		h = crypto.SHA256
	}
	now := w.now()
	der, err := sign(w.sig[c.IssuerID], c, h, now, w.rand)
	if err != nil {
		return fail("sign", err)
	}
	if seq%w.every != 0 {
		return nil
	}
	w.verified.Add(1)
	return verifyOCSP(&expect{issuer: w.issuers[c.IssuerID], sn: c.SN, status: c.Status, hash: h}, der, now)
}

// RunPresign is `trustline bench presign`. d may be zero.
func RunPresign(ctx context.Context, args []string, stdout, stderr io.Writer, d PresignDeps) error {
	fs := flag.NewFlagSet("trustline bench presign", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg PresignConfig
	fs.StringVar(&cfg.DataDir, "data", "", "data dir: store, issuer certificates and file keys (required)")
	fs.StringVar(&cfg.Postgres, "postgres", "", "PostgreSQL URL of the store (default: DIR/trustline.db)")
	fs.StringVar(&cfg.Name, "name", "", "run name in reports (default presign)")
	fs.IntVar(&cfg.Responses, "n", 20000, "responses to sign")
	fs.IntVar(&cfg.Workers, "workers", runtime.GOMAXPROCS(0), "signing goroutines")
	fs.BoolVar(&cfg.IssuerKey, "issuer-key", false, "sign with the issuer key instead of the delegated responder's")
	fs.IntVar(&cfg.VerifyEvery, "verify-every", 100, "verify one response in N")
	fs.IntVar(&cfg.MaxCerts, "max-certs", 100_000, "read at most this many certificates")
	of := registerOutputFlags(fs)
	if err := cli.Parse(fs, args); err != nil {
		return err
	}
	r, err := Presign(ctx, cfg, d, time.Now, rand.Reader)
	if r == nil {
		return err
	}
	return errors.Join(err, of.emit(stdout, r))
}
