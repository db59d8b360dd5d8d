package main

import (
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/redis/go-redis/v9"

	"github.com/trustline/trustline/internal/cli"
	"github.com/trustline/trustline/internal/config"
	"github.com/trustline/trustline/internal/ocspcache"
	"github.com/trustline/trustline/internal/pkcs11key"
	"github.com/trustline/trustline/internal/store"
	"github.com/trustline/trustline/internal/store/storeopen"
	"github.com/trustline/trustline/issuer/pki"
)

// A production role (`trustline api|presigner|responder|crlgen|origin
// --config FILE --listen ADDR`) is one process of the plant: any number of
// each may run, on one machine or many. They share nothing but
// PostgreSQL, Redis and the configuration file that `trustline init`
// wrote; every lease is held per process.

// defaultListen is each role's listen address when --listen is not given.
var defaultListen = map[string]string{
	"api":       "127.0.0.1:8080",
	"responder": "127.0.0.1:8081",
	"origin":    "127.0.0.1:8082",
	"presigner": "127.0.0.1:8083",
	"crlgen":    "127.0.0.1:8084",
	"watch":     "127.0.0.1:8085",
}

// plantRole is what every production role has: its configuration, logger,
// metrics registry, listener and the name it holds leases under.
type plantRole struct {
	name    string
	cfg     config.Plant
	cfgPath string
	log     *slog.Logger
	reg     *prometheus.Registry
	ln      net.Listener
	holder  string
	// bg tracks background loops; they stop (bgStop) and are waited for
	// before the store and caches close.
	bg      sync.WaitGroup
	bgCtx   context.Context
	bgStop  context.CancelFunc
	closers []func()
}

// startRole parses a role's flags, loads and checks the configuration and
// binds the listener, before anything else is opened: a busy port or a bad
// file stops start-up with one line.
func startRole(ctx context.Context, name string, args []string, stderr io.Writer) (*plantRole, error) {
	fs := flag.NewFlagSet("trustline "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "", "the plant's configuration file (written by trustline init); required")
	listen := fs.String("listen", defaultListen[name], "listen address host:port (serves /healthz and /metrics too)")
	if err := cli.Parse(fs, args); err != nil {
		return nil, err
	}
	if *cfgPath == "" {
		return nil, cli.Usagef("%s: --config FILE is required (trustline init writes DIR/trustline.yaml)", name)
	}
	cfg, err := config.LoadPlant(*cfgPath)
	if err != nil {
		return nil, err
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	// SIGHUP must not end a role: the api role uses it to reload its TLS
	// certificate, and systemd's reload sends it to every unit.
	signal.Ignore(syscall.SIGHUP)
	lns, err := listenAll(map[string]string{name: *listen})
	if err != nil {
		return nil, err
	}
	r := &plantRole{name: name, cfg: cfg, cfgPath: *cfgPath, ln: lns[name],
		log: newLogger(stderr, cfg.Log, cfg.LogLevel).With("role", name)}
	r.reg = prometheus.NewRegistry()
	r.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	r.bgCtx, r.bgStop = context.WithCancel(ctx)
	return r, nil
}

// runRole starts the role name (see startRole), runs it and closes what
// it opened.
func runRole(ctx context.Context, name string, args []string, stderr io.Writer, run func(context.Context, *plantRole) error) error {
	r, err := startRole(ctx, name, args, stderr)
	if err != nil {
		return err
	}
	defer r.close()
	return run(ctx, r)
}

// close stops the background loops, waits for them (bounded), then runs
// the closers in reverse order.
func (r *plantRole) close() {
	r.bgStop()
	done := make(chan struct{})
	go func() { r.bg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(r.cfg.ShutdownTimeout):
		r.log.Error("background work still running at the shutdown timeout")
	}
	for i := len(r.closers) - 1; i >= 0; i-- {
		r.closers[i]()
	}
	r.ln.Close()
}

// openStore opens the plant's PostgreSQL store and learns the plant's id.
func (r *plantRole) openStore(ctx context.Context) (store.Store, error) {
	// The origin only reads: it may connect as a user with SELECT only.
	readOnly := r.name == "origin"
	st, err := storeopen.Open(ctx, storeopen.Config{Postgres: r.cfg.Postgres, ReadOnly: readOnly}, r.log)
	if err != nil {
		return nil, err
	}
	r.closers = append(r.closers, func() { st.Close() })
	var instance string
	if readOnly {
		b, err := st.Meta(ctx, "instance_id")
		if err != nil {
			return nil, fmt.Errorf("store: reading the plant's instance id (run trustline init first): %w", err)
		}
		instance = string(b)
	} else if instance, err = instanceID(ctx, st); err != nil {
		return nil, err
	}
	r.holder = processHolder(instance)
	r.log = r.log.With("holder", r.holder)
	return st, nil
}

// keys opens where the CA's private keys live: the token, or KeysDir.
func (r *plantRole) keys() (pki.Keys, string, error) {
	if r.cfg.HSM.Module == "" {
		return pki.FileKeys{Dir: r.cfg.KeysDir}, "file", nil
	}
	if err := r.cfg.ReadPIN(); err != nil {
		return nil, "", err
	}
	tok, err := pkcs11key.Open(pkcs11key.Config{ModulePath: r.cfg.HSM.Module, TokenLabel: r.cfg.HSM.Token,
		PIN: r.cfg.HSM.PIN, Sessions: r.cfg.HSM.Sessions, ProbeInterval: r.cfg.HSM.ProbeInterval}, r.log)
	if err != nil {
		return nil, "", fmt.Errorf("hsm: %w", err)
	}
	r.closers = append(r.closers, func() { tok.Close() })
	if r.reg != nil {
		r.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "trustline_hsm_available",
			Help: "1 while the HSM token answers; 0 while it cannot be reached and signatures fail fast (docs/operations.md)."},
			func() float64 {
				if tok.Available() {
					return 1
				}
				return 0
			}))
	}
	return tok, "pkcs11", nil
}

// hierarchy loads the store's CA hierarchy; with pki.IssuingKeys it finds
// this instance's keys and refuses keys of another hierarchy.
func (r *plantRole) hierarchy(ctx context.Context, st store.Store, need pki.KeyNeeds) (*pki.PKI, error) {
	var (
		keys      pki.Keys
		keySource string
		err       error
	)
	if need == pki.IssuingKeys {
		if keys, keySource, err = r.keys(); err != nil {
			return nil, err
		}
	}
	p, err := pki.LoadRecorded(ctx, st, isNotFound, keys, keySource, need)
	if errors.Is(err, pki.ErrNoHierarchy) {
		return nil, errors.New("the store holds no CA hierarchy: run `trustline init` first (docs/deployment.md)")
	}
	if err != nil {
		return nil, err
	}
	r.log.Info("hierarchy loaded", "root_sha256", pki.Fingerprint(p.Root.Cert), "intermediates", len(p.Intermediates))
	return p, nil
}

// openHierarchy opens the store, then loads the CA hierarchy it records
// (see hierarchy for need).
func (r *plantRole) openHierarchy(ctx context.Context, need pki.KeyNeeds) (store.Store, *pki.PKI, error) {
	st, err := r.openStore(ctx)
	if err != nil {
		return nil, nil, err
	}
	p, err := r.hierarchy(ctx, st, need)
	return st, p, err
}

// redis connects to the plant's Redis (one node or a Cluster).
func (r *plantRole) redis(ctx context.Context) (redis.UniversalClient, error) {
	u, cluster := r.cfg.Redis, false
	if r.cfg.RedisCluster != "" {
		u, cluster = r.cfg.RedisCluster, true
	}
	client, err := ocspcache.NewRedisClient(u, cluster)
	if err != nil {
		return nil, fmt.Errorf("redis: %w", err)
	}
	r.closers = append(r.closers, func() { client.Close() })
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := client.Ping(pctx).Err(); err != nil {
		return nil, fmt.Errorf("redis: %w", err)
	}
	return client, nil
}

// cache is the plant's response cache over client.
func (r *plantRole) cache(client redis.UniversalClient) (*ocspcache.Redis, error) {
	rc, err := ocspcache.NewRedis(ocspcache.RedisConfig{Prefix: r.cfg.RedisPrefix}, client, r.log.With("part", "ocsp-cache"))
	if err != nil {
		return nil, err
	}
	r.closers = append(r.closers, func() { rc.Close() })
	return rc, nil
}

// goBG runs fn in the background until the role stops.
func (r *plantRole) goBG(fn func(ctx context.Context)) {
	r.bg.Go(func() { fn(r.bgCtx) })
}

// every runs fn now and then every period until the role stops.
func (r *plantRole) every(period time.Duration, fn func(ctx context.Context)) {
	r.goBG(func(ctx context.Context) {
		t := time.NewTicker(period)
		defer t.Stop()
		for {
			fn(ctx)
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	})
}

// mux is the role's HTTP handler base: /healthz (ready checks every
// dependency) and /metrics.
func (r *plantRole) mux(ready func(context.Context) error) *http.ServeMux {
	m := http.NewServeMux()
	m.Handle("GET /healthz", healthHandler(ready))
	m.Handle("GET /metrics", promhttp.HandlerFor(r.reg, promhttp.HandlerOpts{Registry: r.reg}))
	return m
}

// serveHTTP serves h on the role's listener until ctx ends, then shuts
// down within the configured timeout.
func (r *plantRole) serveHTTP(ctx context.Context, h http.Handler) error {
	srv := newHTTPServer(h, r.log)
	return r.serve(ctx, func() error { return serveHTTP(srv, r.ln) }, srv.Shutdown)
}

// serve runs a server until ctx ends or it fails, then stops it.
func (r *plantRole) serve(ctx context.Context, run func() error, shutdown func(context.Context) error) error {
	errc := make(chan error, 1)
	go func() { errc <- run() }()
	r.log.Info("trustline "+r.name+" ready", "listen", "http://"+r.ln.Addr().String())
	var serveErr error
	select {
	case <-ctx.Done():
		r.log.Info("shutting down")
	case serveErr = <-errc:
		r.log.Error("listener failed", "err", serveErr)
	}
	sctx, cancel := context.WithTimeout(context.Background(), r.cfg.ShutdownTimeout)
	defer cancel()
	err := shutdown(sctx)
	r.close()
	if serveErr != nil {
		return serveErr
	}
	if err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	r.log.Info("stopped")
	return nil
}

// pingAll is a readiness check over several dependencies.
func pingAll(checks ...func(context.Context) error) func(context.Context) error {
	return func(ctx context.Context) error {
		for _, c := range checks {
			if err := c(ctx); err != nil {
				return err
			}
		}
		return nil
	}
}

func storeReady(st store.Store) func(context.Context) error {
	return func(ctx context.Context) error {
		_, err := st.LastEventSeq(ctx)
		return err
	}
}

func redisReady(c redis.UniversalClient) func(context.Context) error {
	return func(ctx context.Context) error { return c.Ping(ctx).Err() }
}

// processHolder names this process in leases: the plant's id, the host,
// the pid and a random suffix, so that two processes never hold a lease
// as one (a restarted process with a reused pid is another holder too).
func processHolder(instance string) string {
	host, _ := os.Hostname()
	b := make([]byte, 3)
	rand.Read(b)
	return fmt.Sprintf("%s/%s/%d/%x", instance, host, os.Getpid(), b)
}

func isNotFound(err error) bool  { return errors.Is(err, store.ErrNotFound) }
func isDuplicate(err error) bool { return errors.Is(err, store.ErrDuplicate) }
