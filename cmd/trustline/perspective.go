package main

import (
	"context"
	"crypto"
	"crypto/tls"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/trustline/trustline/internal/cli"
	"github.com/trustline/trustline/internal/config"
	"github.com/trustline/trustline/internal/keyfile"
	"github.com/trustline/trustline/issuer/caa"
	"github.com/trustline/trustline/issuer/mpic"
	"github.com/trustline/trustline/issuer/perspective"
	"github.com/trustline/trustline/issuer/validation"
)

// runPerspective: `trustline perspective --config FILE` serves checks as a
// remote network perspective (BR 3.2.2.9); `trustline perspective keygen
// --out FILE` makes a perspective's or a primary's key and prints its
// public key for the other side's configuration.
func runPerspective(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "keygen" {
		return runPerspectiveKeygen(args[1:], stdout, stderr)
	}
	fs := flag.NewFlagSet("trustline perspective", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "", "the perspective's configuration file (docs/perspectives.md); required")
	listen := fs.String("listen", ":8450", "HTTPS listen address host:port for checks (mutual TLS, pinned keys)")
	if err := cli.Parse(fs, args); err != nil {
		return err
	}
	if *cfgPath == "" {
		return cli.Usagef("perspective: --config FILE is required")
	}
	cfg, err := config.LoadPerspective(*cfgPath)
	if err != nil {
		return err
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	key, err := keyfile.Load(cfg.KeyFile)
	if err != nil {
		return err
	}
	var clients []crypto.PublicKey
	for i, s := range cfg.Clients {
		k, err := perspective.DecodeKey(s)
		if err != nil {
			return fmt.Errorf("config: clients[%d]: %w", i, err)
		}
		clients = append(clients, k)
	}
	log := newLogger(stderr, cfg.Log, cfg.LogLevel).With("role", "perspective", "perspective", cfg.Name)
	probe, err := validation.NewProbe(validation.Config{Resolver: cfg.Resolver, AllowPrivateAddresses: cfg.AllowPrivateAddresses}, nil)
	if err != nil {
		return err
	}
	var checker perspective.CAAChecker
	if len(cfg.CAAIdentities) > 0 {
		c, err := caa.New(caa.Config{Identities: cfg.CAAIdentities, Resolver: cfg.Resolver})
		if err != nil {
			return err
		}
		checker = c
	}
	srv, err := perspective.NewServer(perspective.ServerConfig{Name: cfg.Name, RIR: cfg.RIR, Key: key, Clients: clients}, probe, checker, log)
	if err != nil {
		return err
	}
	tc, err := srv.TLSConfig()
	if err != nil {
		return err
	}
	addrs := map[string]string{"checks": *listen}
	if cfg.OpsListen != "" {
		addrs["ops"] = cfg.OpsListen
	}
	lns, err := listenAll(addrs)
	if err != nil {
		return err
	}
	hs := newHTTPServer(srv.Handler(), log)
	hs.TLSConfig = tc
	servers := []*http.Server{hs}
	errc := make(chan error, 2)
	go func() { errc <- serveHTTP(hs, tls.NewListener(lns["checks"], tc)) }()
	if ln := lns["ops"]; ln != nil {
		reg := prometheus.NewRegistry()
		reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
		m := http.NewServeMux()
		m.Handle("GET /healthz", healthHandler(nil))
		m.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
		ops := newHTTPServer(m, log)
		servers = append(servers, ops)
		go func() { errc <- serveHTTP(ops, ln) }()
	}
	log.Info("trustline perspective ready", "listen", "https://"+lns["checks"].Addr().String(), "rir", cfg.RIR,
		"resolver", cfg.Resolver, "caa", len(cfg.CAAIdentities) > 0, "clients", len(clients))
	var serveErr error
	select {
	case <-ctx.Done():
		log.Info("shutting down")
	case serveErr = <-errc:
		log.Error("listener failed", "err", serveErr)
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, s := range servers {
		s.Shutdown(sctx)
	}
	return serveErr
}

// runPerspectiveKeygen writes a new key and prints its public key.
func runPerspectiveKeygen(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("trustline perspective keygen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("out", "", "where to write the key (PKCS#8 PEM, mode 0600); required, never overwritten")
	if err := cli.Parse(fs, args); err != nil {
		return err
	}
	if *out == "" {
		return cli.Usagef("perspective keygen: --out FILE is required")
	}
	key, err := keyfile.Generate(keyfile.ECDSAP256, nil)
	if err != nil {
		return err
	}
	if err := keyfile.Write(*out, key); err != nil {
		return err
	}
	pub, err := perspective.EncodeKey(key.Public())
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "key written to %s\npublic key (for the other side's configuration):\n%s\n", *out, pub)
	return nil
}

// newCorroborator builds the primary's client of the configured remote
// perspectives; nil when none is configured.
func newCorroborator(p config.Perspectives, log *slog.Logger) (mpic.Corroborator, error) {
	if !p.On() {
		return nil, nil
	}
	key, err := keyfile.Load(p.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("validation.perspectives.key_file: %w", err)
	}
	var remotes []perspective.Remote
	for i, r := range p.Remotes {
		k, err := perspective.DecodeKey(r.PublicKey)
		if err != nil {
			return nil, fmt.Errorf("validation.perspectives.remotes[%d].public_key: %w", i, err)
		}
		remotes = append(remotes, perspective.Remote{Name: r.Name, URL: r.URL, RIR: r.RIR, Key: k})
	}
	policy := mpic.BR
	if p.Policy == "quorum-only" {
		policy = mpic.QuorumOnly
		log.Warn("perspectives judged by the quorum table only, not by BR 3.2.2.9's minimum count and RIR spread: not for a CA whose certificates are trusted")
	}
	if now := policy(time.Now()); len(remotes) < now.MinRemote {
		log.Warn("fewer remote perspectives than BR 3.2.2.9 asks for today: every validation and CAA check will fail corroboration",
			"configured", len(remotes), "required", now.MinRemote, "policy", now.Name)
	}
	c, err := perspective.NewClient(perspective.ClientConfig{Key: key, Remotes: remotes, Timeout: p.Timeout, Policy: policy}, log.With("part", "perspectives"))
	if err != nil {
		return nil, err
	}
	names := make([]string, len(remotes))
	for i, r := range remotes {
		names[i] = r.Name
	}
	log.Info("remote perspectives corroborate validations and CAA checks (BR 3.2.2.9)", "perspectives", names)
	return c, nil
}
