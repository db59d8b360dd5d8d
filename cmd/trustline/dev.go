package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/trustline/trustline/crlgen"
	"github.com/trustline/trustline/crlgen/crlpub"
	"github.com/trustline/trustline/internal/cli"
	"github.com/trustline/trustline/internal/clientip"
	"github.com/trustline/trustline/internal/config"
	"github.com/trustline/trustline/internal/ocspcache"
	"github.com/trustline/trustline/internal/store"
	"github.com/trustline/trustline/internal/store/storeopen"
	"github.com/trustline/trustline/issuer/pki"
	"github.com/trustline/trustline/origin"
	"github.com/trustline/trustline/responder"
	"github.com/trustline/trustline/responder/server"
)

// devFlags parses `trustline dev` flags over the config file (if any); a
// flag given on the command line wins over the file.
func devFlags(args []string, stderr io.Writer) (config.Dev, error) {
	fs := flag.NewFlagSet("trustline dev", flag.ContinueOnError)
	fs.SetOutput(stderr)
	def := config.DefaultDev()
	var (
		cfgPath    = fs.String("config", "", "YAML configuration file (flags override it)")
		dataDir    = fs.String("data", def.DataDir, "data directory: store, dev PKI, API keys, mail")
		api        = fs.String("api", def.API, "issuance API and portal listen address")
		ocsp       = fs.String("ocsp", def.OCSP, "OCSP responder listen address")
		crl        = fs.String("crl", def.CRL, "CRL origin listen address")
		pg         = fs.String("postgres", "", "PostgreSQL URL; default: embedded SQLite in the data dir")
		rd         = fs.String("redis", "", "Redis URL for the OCSP response cache; default: in-process")
		hsmModule  = fs.String("hsm-module", "", "PKCS#11 module: keep every CA and responder key in this token")
		hsmToken   = fs.String("hsm-token", "", "PKCS#11 token label")
		hsmPIN     = fs.String("hsm-pin", "", "PKCS#11 user PIN: visible to every user in ps; prefer --hsm-pin-file or TRUSTLINE_HSM_PIN")
		hsmPINFile = fs.String("hsm-pin-file", "", "file holding the PKCS#11 user PIN")
		logFmt     = fs.String("log", def.Log, "log format: text or json")
		logLevel   = fs.String("log-level", def.LogLevel, "log level: debug, info, warn, error")
		resolver   = fs.String("resolver", "", "DNS resolver host:port for dns-txt and http-token validation (off when empty)")
		debugAddr  = fs.String("debug-addr", "", "serve Go's profiler (/debug/pprof/) on this loopback address (off when empty)")
	)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return config.Dev{}, err
		}
		return config.Dev{}, cli.Usage(err.Error())
	}
	if fs.NArg() > 0 {
		return config.Dev{}, cli.Usagef("dev: unexpected argument %q", fs.Arg(0))
	}
	cfg := def
	if *cfgPath != "" {
		var err error
		if cfg, err = config.LoadDev(*cfgPath); err != nil {
			return config.Dev{}, err
		}
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	override := func(name string, dst *string, v string) {
		if set[name] {
			*dst = v
		}
	}
	override("data", &cfg.DataDir, *dataDir)
	override("api", &cfg.API, *api)
	override("ocsp", &cfg.OCSP, *ocsp)
	override("crl", &cfg.CRL, *crl)
	override("postgres", &cfg.Postgres, *pg)
	override("redis", &cfg.Redis, *rd)
	override("hsm-module", &cfg.HSM.Module, *hsmModule)
	override("hsm-token", &cfg.HSM.Token, *hsmToken)
	override("hsm-pin", &cfg.HSM.PIN, *hsmPIN)
	override("hsm-pin-file", &cfg.HSM.PINFile, *hsmPINFile)
	if set["hsm-pin"] {
		fmt.Fprintln(stderr, "trustline dev: warning: --hsm-pin puts the PIN where every user of this machine can read it (ps, /proc); use --hsm-pin-file or "+config.PINEnv)
	}
	override("log", &cfg.Log, *logFmt)
	override("log-level", &cfg.LogLevel, *logLevel)
	override("resolver", &cfg.Validation.Resolver, *resolver)
	override("debug-addr", &cfg.DebugAddr, *debugAddr)
	if err := cfg.HSM.ReadPIN(); err != nil {
		return config.Dev{}, err
	}
	cfg.HSM.PINFromEnv()
	if err := cfg.Validate(); err != nil {
		return config.Dev{}, err
	}
	return cfg, nil
}

func newLogger(w io.Writer, format, level string) *slog.Logger {
	var lv slog.Level
	_ = lv.UnmarshalText([]byte(level)) // Validate has checked it
	opts := &slog.HandlerOptions{Level: lv}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// prepareDataDir creates dir (0700, or tightens it to 0700) and proves it writable, so that a bad
// data dir stops start-up with one clear line instead of a later failure.
func prepareDataDir(dir string) (string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("data dir %s: %w", dir, err)
	}
	if err := os.MkdirAll(abs, 0o700); err != nil {
		return "", fmt.Errorf("data dir %s: cannot create: %w", abs, errors.Unwrap(err))
	}
	probe, err := os.CreateTemp(abs, ".write-probe-*")
	if err != nil {
		return "", fmt.Errorf("data dir %s: not writable: %w", abs, errors.Unwrap(err))
	}
	name := probe.Name()
	probe.Close()
	os.Remove(name)
	// It holds keys, API keys and the store: owner-only, even if it was
	// made before with a looser mode.
	if fi, err := os.Stat(abs); err == nil && fi.Mode().Perm()&0o077 != 0 {
		if err := os.Chmod(abs, 0o700); err != nil {
			return "", fmt.Errorf("data dir %s: cannot tighten to 0700: %w", abs, errors.Unwrap(err))
		}
	}
	return abs, nil
}

// openStore opens PostgreSQL when a URL is given, else the embedded SQLite
// file in the data dir.
func openStore(ctx context.Context, cfg config.Dev, dataDir string, log *slog.Logger) (store.Store, string, error) {
	sc := storeopen.Config{Postgres: cfg.Postgres, SQLite: filepath.Join(dataDir, "trustline.db")}
	s, err := storeopen.Open(ctx, sc, log)
	return s, sc.Kind(), err
}

func runDev(ctx context.Context, args []string, stderr io.Writer) error {
	cfg, err := devFlags(args, stderr)
	if err != nil {
		return err
	}
	log := newLogger(stderr, cfg.Log, cfg.LogLevel)
	// Listeners first: a busy port stops start-up before anything is
	// created.
	addrs := map[string]string{"api": cfg.API, "ocsp": cfg.OCSP, "crl": cfg.CRL}
	if cfg.DebugAddr != "" {
		addrs["debug"] = cfg.DebugAddr
	}
	lns, err := listenAll(addrs)
	if err != nil {
		return err
	}
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	urls := devURLs{api: "http://" + lns["api"].Addr().String(), ocsp: "http://" + lns["ocsp"].Addr().String(),
		crl: "http://" + lns["crl"].Addr().String()}
	dataDir, err := prepareDataDir(cfg.DataDir)
	if err != nil {
		return err
	}
	st, kind, err := openStore(ctx, cfg, dataDir, log)
	if err != nil {
		return err
	}
	defer st.Close()
	instance, err := instanceID(ctx, st)
	if err != nil {
		return err
	}
	holder := processHolder(instance)
	log.Info("store open", "kind", kind, "data_dir", dataDir, "instance", instance)

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	keys, keySource, closeKeys, err := openKeys(cfg, dataDir, log)
	if err != nil {
		return err
	}
	defer closeKeys()
	p, err := devHierarchy(ctx, st, dataDir, urls.crl, keys, keySource, log)
	if err != nil {
		return err
	}
	cache, closeCache, err := devCache(ctx, cfg, instance, log)
	if err != nil {
		return err
	}
	defer closeCache()
	pipe, err := newPipeline(cfg.Presign, st, cache, p, holder, reg, log)
	if err != nil {
		return err
	}
	purger, err := newPurger(cfg.Purge, 0, reg, log)
	if err != nil {
		return err
	}
	mailer, err := newMailer(cfg.SMTP, filepath.Join(dataDir, "mail"))
	if err != nil {
		return err
	}
	svc, err := buildIssuance(ctx, st, p, issuanceOpts{rateLimits: cfg.RateLimits, dualControl: cfg.DualControl, ocspURL: urls.ocsp + "/", crlBase: urls.crl, apiURL: urls.api,
		shards: cfg.CRLShards, validation: cfg.Validation, acme: cfg.ACME, ct: cfg.CT, certificates: cfg.Certificates, mailer: mailer,
		sink: statusSinks{presign: pipe, purger: purger, log: log}, reg: reg}, log)
	if err != nil {
		return err
	}
	// Background loops stop, and are waited for, before the store and the
	// cache close: a generator releasing its leases needs the store.
	bgCtx, stopBG := context.WithCancel(ctx)
	defer stopBG()
	var bg sync.WaitGroup
	if purger != nil {
		bg.Go(func() { purger.Run(bgCtx) })
	}
	org, err := newOrigin(origin.Config{Period: cfg.CRLPeriod}, p, log)
	if err != nil {
		return err
	}
	pubs := []crlpub.Publisher{org}
	if purger != nil {
		pubs = append(pubs, purger)
	}
	gen, err := newGenerator(crlgen.DevConfig(urls.crl, cfg.CRLShards, cfg.CRLPeriod, holder), st, p, svc.lint, pubs, reg, log)
	if err != nil {
		return err
	}
	for name, role := range map[string]store.Role{"admin": store.RoleAdmin, "reviewer": store.RoleReviewer} {
		if err := ensureKeyFile(ctx, svc.accounts, dataDir, name, role); err != nil {
			return err
		}
	}
	bg.Go(func() {
		n, err := svc.orders.ResumeProcessing(bgCtx)
		switch {
		case err != nil && bgCtx.Err() != nil:
			log.Debug("resuming orders cut short by shutdown", "err", err)
		case err != nil:
			log.Error("resuming orders", "err", err)
		case n > 0:
			log.Info("resumed orders left processing", "count", n)
		}
	})

	apiMux := http.NewServeMux()
	apiMux.Handle("GET /healthz", healthHandler(storeReady(st)))
	apiMux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	apiMux.Handle("/api/", svc.api)
	apiMux.Handle("/acme/", svc.acme)
	apiMux.Handle("/", svc.portal)
	apiHandler, err := withAPIMetrics(apiMux, reg)
	if err != nil {
		return err
	}
	proxies, err := clientip.Parse(cfg.TrustedProxies)
	if err != nil {
		return err
	}
	apiHandler = proxies.Handler(apiHandler)
	apiSrv := newHTTPServer(apiHandler, log.With("listener", "api"))

	crlMux := http.NewServeMux()
	crlMux.Handle("GET /healthz", healthHandler(nil))
	crlMux.Handle("/", org)
	crlSrv := newHTTPServer(crlMux, log.With("listener", "crl"))
	bg.Go(func() {
		if err := gen.Run(bgCtx); err != nil && bgCtx.Err() == nil {
			log.Error("crl generator stopped", "err", err)
		}
	})
	bg.Go(func() {
		if err := pipe.Run(bgCtx); err != nil && bgCtx.Err() == nil {
			log.Error("OCSP pre-signer stopped", "err", err)
		}
	})
	var issuers []responder.Issuer
	for _, is := range p.Intermediates {
		issuers = append(issuers, responder.Issuer{ID: is.ID, Cert: is.Cert})
	}
	ocspSrv, closeOCSP, err := newOCSPServer(issuers, cache, pipe, pipe.HashAlgs(), server.Config{}, reg, nil, false, log)
	if err != nil {
		return err
	}
	defer closeOCSP()
	bg.Go(func() {
		t := time.NewTicker(time.Hour)
		defer t.Stop()
		for {
			select {
			case <-bgCtx.Done():
				return
			case <-t.C:
				renewResponders(bgCtx, p, pipe, true, log)
			}
		}
	})

	errc := make(chan error, 4)
	go func() { errc <- serveHTTP(apiSrv, lns["api"]) }()
	go func() { errc <- serveHTTP(crlSrv, lns["crl"]) }()
	go func() { errc <- ocspSrv.Serve(lns["ocsp"]) }()
	debugSrv := newDebugServer()
	if ln := lns["debug"]; ln != nil {
		go func() { errc <- serveHTTP(debugSrv, ln) }()
		log.Info("profiler listening", "debug", "http://"+ln.Addr().String()+"/debug/pprof/")
	}
	log.Info("trustline dev ready", "api", urls.api, "ocsp", urls.ocsp, "crl", urls.crl)
	printDevBanner(stderr, dataDir, p, urls)

	var serveErr error
	select {
	case <-ctx.Done():
		log.Info("shutting down")
	case serveErr = <-errc:
		log.Error("listener failed", "err", serveErr)
	}
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	shutdownErr := errors.Join(apiSrv.Shutdown(sctx), crlSrv.Shutdown(sctx), ocspSrv.Shutdown(sctx), debugSrv.Shutdown(sctx))
	stopBG()
	stopped := make(chan struct{})
	go func() { bg.Wait(); close(stopped) }()
	select {
	case <-stopped:
	case <-sctx.Done():
		shutdownErr = errors.Join(shutdownErr, errors.New("background work still running at the shutdown timeout"))
	}
	svc.waitCT(sctx, log)
	if serveErr != nil {
		return serveErr
	}
	if shutdownErr != nil {
		return fmt.Errorf("shutdown: %w", shutdownErr)
	}
	log.Info("stopped")
	return nil
}

// newDebugServer serves Go's profiler: the pprof handlers only, on their
// own listener (never the API's), so a profile can be taken of a run.
func newDebugServer() *http.Server {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
}

// printDevBanner tells a person what the first start made and where to go.
func printDevBanner(w io.Writer, dataDir string, p *pki.PKI, urls devURLs) {
	fmt.Fprintf(w, `
Trustline dev is running.
  portal and API   %s/
  ACME directory   %s/acme/directory
  OCSP responder   %s/
  CRLs             %s/<issuer-id>/crls.json
  root             %s (SHA-256 %s)
  admin key        %s
  reviewer key     %s
  mail             %s/
Stop it with Ctrl-C.

`, urls.api, urls.api, urls.ocsp, urls.crl, filepath.Join(dataDir, "ca", "root.pem"), pki.Fingerprint(p.Root.Cert),
		filepath.Join(dataDir, "admin.key"), filepath.Join(dataDir, "reviewer.key"), filepath.Join(dataDir, "mail"))
}

// devCache is dev mode's response cache: in-process, or Redis with
// --redis (keys under the store's instance id, so dev stores sharing a
// Redis never mix).
func devCache(ctx context.Context, cfg config.Dev, instance string, log *slog.Logger) (ocspcache.Cache, func(), error) {
	if cfg.Redis == "" {
		mem, err := ocspcache.NewMemory(ocspcache.MemoryConfig{MaxBytes: int64(cfg.MemoryCacheMB) << 20})
		if err != nil {
			return nil, nil, err
		}
		return mem, func() {}, nil
	}
	client, err := ocspcache.NewRedisClient(cfg.Redis, false)
	if err != nil {
		return nil, nil, fmt.Errorf("redis: %w", err)
	}
	pctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	err = client.Ping(pctx).Err()
	cancel()
	if err != nil {
		client.Close()
		return nil, nil, fmt.Errorf("redis: %w", err)
	}
	rc, err := ocspcache.NewRedis(ocspcache.RedisConfig{Prefix: "trustline:ocsp:" + instance + ":"}, client, log.With("part", "ocsp-cache"))
	if err != nil {
		client.Close()
		return nil, nil, err
	}
	return rc, func() { rc.Close(); client.Close() }, nil
}

// instanceID returns the id this data store was given on its first start;
// a restart on the same store reports the same id.
func instanceID(ctx context.Context, st store.Store) (string, error) {
	id, err := st.Meta(ctx, "instance_id")
	if err == nil {
		return string(id), nil
	}
	if !errors.Is(err, store.ErrNotFound) {
		return "", fmt.Errorf("store: reading instance id: %w", err)
	}
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	if err := st.PutMeta(ctx, "instance_id", []byte(hex.EncodeToString(b))); err != nil {
		return "", fmt.Errorf("store: writing instance id: %w", err)
	}
	return hex.EncodeToString(b), nil
}

// listenAll binds every address before anything serves, so a taken port
// stops start-up with a line naming the listener.
func listenAll(addrs map[string]string) (map[string]net.Listener, error) {
	lns := map[string]net.Listener{}
	for name, addr := range addrs {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			for _, l := range lns {
				l.Close()
			}
			return nil, fmt.Errorf("%s listener on %s: %w", name, addr, errors.Unwrap(errors.Unwrap(err)))
		}
		lns[name] = ln
	}
	return lns, nil
}

func newHTTPServer(h http.Handler, log *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    32 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
}

func serveHTTP(s *http.Server, ln net.Listener) error {
	if err := s.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// healthHandler answers 200 "ok", or 503 when check fails.
func healthHandler(check func(context.Context) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		if check != nil {
			ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
			defer cancel()
			if err := check(ctx); err != nil {
				w.WriteHeader(http.StatusServiceUnavailable)
				io.WriteString(w, "unavailable\n")
				return
			}
		}
		io.WriteString(w, "ok\n")
	})
}

// devURLs are the base URLs the dev listeners are reachable at.
type devURLs struct{ api, ocsp, crl string }
