package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/trustline/trustline/bench"
	"github.com/trustline/trustline/internal/cli"
	"github.com/trustline/trustline/internal/config"
	"github.com/trustline/trustline/internal/mail"
	"github.com/trustline/trustline/internal/store"
	"github.com/trustline/trustline/issuer/pki"
	"github.com/trustline/trustline/issuer/ratelimit"
)

// runBench dispatches `trustline bench <scenario>`.
func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return cli.Usage("usage: trustline bench <populate|ocsp|crl|issue|presign|floor|suite|scale|chaos|peers> [flags] (see docs/bench.md)")
	}
	switch args[0] {
	case "populate":
		return runPopulate(ctx, args[1:], stdout, stderr)
	case "ocsp":
		return bench.RunOCSP(ctx, args[1:], stdout, stderr)
	case "crl":
		return bench.RunCRL(ctx, args[1:], stdout, stderr)
	case "issue":
		return bench.RunIssue(ctx, args[1:], stdout, stderr)
	case "presign":
		return bench.RunPresign(ctx, args[1:], stdout, stderr, bench.PresignDeps{})
	case "floor":
		return bench.RunFloor(ctx, args[1:], stdout, stderr)
	case "suite":
		return bench.RunSuite(ctx, args[1:], stdout, stderr)
	case "scale":
		return bench.RunScale(ctx, args[1:], stdout, stderr)
	case "chaos":
		return bench.RunChaos(ctx, args[1:], stdout, stderr)
	case "peers":
		return bench.RunPeers(ctx, args[1:], stdout, stderr)
	}
	return cli.Usagef("bench: unknown scenario %q (have: populate, ocsp, crl, issue, presign, floor, suite, scale, chaos, peers)", args[0])
}

// runPopulate fills a dev store with N real signed certificates; on a
// fresh DIR it first creates the dev PKI as `trustline dev` would, for the
// default listen addresses (or those given), so that a dev process started
// on DIR afterwards answers for all of them.
func runPopulate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("trustline bench populate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var sf storeFlags
	sf.register(fs)
	def := config.DefaultDev()
	n := fs.Int("certs", 10000, "number of certificates")
	revoked := fs.Float64("revoked-fraction", 0, "share stored revoked, in [0, 1]")
	family := fs.String("key-family", "ecdsa", "intermediate to sign with: ecdsa or rsa")
	api := fs.String("api", def.API, "API address written into mail links (as trustline dev would)")
	ocsp := fs.String("ocsp", def.OCSP, "OCSP address written into AIA")
	crl := fs.String("crl", def.CRL, "CRL origin address written into CRLDP and caIssuers")
	shards := fs.Int("crl-shards", def.CRLShards, "CRL shards per intermediate")
	plantCfg := fs.String("config", "", "a plant's configuration (trustline init): sign with its hierarchy into its store instead of a dev store; --data then only receives the hierarchy's certificates (DIR/ca) for the other benches")
	if err := cli.Parse(fs, args); err != nil {
		return err
	}
	if *n <= 0 || *revoked < 0 || *revoked > 1 {
		return cli.Usage("populate: --certs must be positive and --revoked-fraction in [0, 1]")
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	last := time.Now()
	progress := func(d int) {
		if time.Since(last) > 2*time.Second {
			last = time.Now()
			fmt.Fprintf(stderr, "populate: %d/%d\n", d, *n)
		}
	}
	if *plantCfg != "" {
		return populatePlant(ctx, *plantCfg, sf.data, populateRequest(*n, *revoked, *family, progress), stdout, log)
	}
	st, dataDir, err := sf.open(ctx, log)
	if err != nil {
		return err
	}
	defer st.Close()
	bulk, ok := st.(store.BulkLoader)
	if !ok {
		return fmt.Errorf("populate: the %T store has no bulk insert", st)
	}
	cfg := def
	cfg.Postgres = sf.postgres
	keys, keySource, closeKeys, err := openKeys(cfg, dataDir, log)
	if err != nil {
		return err
	}
	defer closeKeys()
	urls := devURLs{api: "http://" + *api, ocsp: "http://" + *ocsp, crl: "http://" + *crl}
	p, err := devHierarchy(ctx, st, dataDir, urls.crl, keys, keySource, log)
	if err != nil {
		return err
	}
	svc, err := buildIssuance(ctx, st, p, issuanceOpts{rateLimits: ratelimit.Off(), ocspURL: urls.ocsp + "/", crlBase: urls.crl, apiURL: urls.api,
		shards: *shards, mailer: mail.Dir{Path: filepath.Join(dataDir, "mail")}}, log)
	if err != nil {
		return err
	}
	start := time.Now()
	done, err := bench.Populate(ctx, svc.ca, bulk, populateRequest(*n, *revoked, *family, progress))
	el := time.Since(start)
	fmt.Fprintf(stdout, "populated %d certificates in %.2fs (%.0f/s) into %s\n", done, el.Seconds(), float64(done)/el.Seconds(), dataDir)
	return err
}

// populatePlant is `bench populate --config FILE`: the certificates are
// signed by the plant's intermediates (its keys, file or HSM, as the api
// role opens them) into the plant's store, and the hierarchy's
// certificates are exported into dataDir/ca, where the OCSP and chaos
// benches read the issuers from.
func populatePlant(ctx context.Context, cfgPath, dataDir string, req bench.PopulateRequest, stdout io.Writer, log *slog.Logger) error {
	cfg, err := config.LoadPlant(cfgPath)
	if err != nil {
		return err
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	r := &plantRole{name: "populate", cfg: cfg, cfgPath: cfgPath, log: log}
	defer func() {
		for i := len(r.closers) - 1; i >= 0; i-- {
			r.closers[i]()
		}
	}()
	st, p, err := r.openHierarchy(ctx, pki.IssuingKeys)
	if err != nil {
		return err
	}
	bulk, ok := st.(store.BulkLoader)
	if !ok {
		return fmt.Errorf("populate: the %T store has no bulk insert", st)
	}
	if err := p.Export(filepath.Join(dataDir, "ca")); err != nil {
		return err
	}
	pub := cfg.Public
	svc, err := buildIssuance(ctx, st, p, issuanceOpts{rateLimits: ratelimit.Off(), ocspURL: pub.OCSP, crlBase: pub.CRL, caIssuersBase: pub.CAIssuersBase(),
		apiURL: pub.API, shards: cfg.CRL.Shards, validation: cfg.Validation, certificates: cfg.Certificates, mailer: mail.Dir{Path: filepath.Join(dataDir, "mail")}}, log)
	if err != nil {
		return err
	}
	start := time.Now()
	done, err := bench.Populate(ctx, svc.ca, bulk, req)
	el := time.Since(start)
	fmt.Fprintf(stdout, "populated %d certificates in %.2fs (%.0f/s) into the plant's store (%s)\n", done, el.Seconds(), float64(done)/el.Seconds(), cfgPath)
	return err
}
