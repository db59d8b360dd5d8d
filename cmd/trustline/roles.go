package main

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/trustline/trustline/crlgen"
	"github.com/trustline/trustline/crlgen/crlpub"
	"github.com/trustline/trustline/internal/clientip"
	"github.com/trustline/trustline/internal/issuerid"
	"github.com/trustline/trustline/internal/ocspcache"
	"github.com/trustline/trustline/internal/shard"
	"github.com/trustline/trustline/internal/store"
	"github.com/trustline/trustline/internal/tlsreload"
	"github.com/trustline/trustline/issuer/pki"
	"github.com/trustline/trustline/issuer/presign"
	"github.com/trustline/trustline/origin"
	"github.com/trustline/trustline/responder"
	"github.com/trustline/trustline/responder/server"
)

// Leases the roles take besides the pre-signer's and the CRL generator's.
const (
	leaseResponderRenewal = "pki-responder-renewal"
	leaseResumeOrders     = "orders-resume"
)

// runAPI: `trustline api` serves the issuance API, the portal and the
// review console. It signs certificates (intermediate keys) and, before it
// answers, their first OCSP response (responder keys) into Redis.
func runAPI(ctx context.Context, r *plantRole) error {
	sg, err := r.openSigner(ctx)
	if err != nil {
		return err
	}
	st, p, client, pipe := sg.st, sg.p, sg.client, sg.pipe
	purger, err := newPurger(r.cfg.Purge, 0, r.reg, r.log)
	if err != nil {
		return err
	}
	if purger != nil {
		r.goBG(func(ctx context.Context) { purger.Run(ctx) })
	}
	mailer, err := newMailer(r.cfg.SMTP, r.cfg.MailDir)
	if err != nil {
		return err
	}
	pub := r.cfg.Public
	apiURL := pub.API
	if apiURL == "" {
		apiURL = "http://" + r.ln.Addr().String()
	}
	svc, err := buildIssuance(ctx, st, p, issuanceOpts{rateLimits: r.cfg.RateLimits, dualControl: r.cfg.DualControl, ocspURL: pub.OCSP, crlBase: pub.CRL, caIssuersBase: pub.CAIssuersBase(),
		apiURL: apiURL, shards: r.cfg.CRL.Shards, validation: r.cfg.Validation, acme: r.cfg.ACME, ct: r.cfg.CT, certificates: r.cfg.Certificates, mailer: mailer,
		sink: statusSinks{presign: pipe, purger: purger, log: r.log}, reg: r.reg}, r.log)
	if err != nil {
		return err
	}
	r.closers = append(r.closers, func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		svc.waitCT(ctx, r.log)
	})
	// Another instance may renew the responder certificates; follow it.
	r.every(time.Minute, func(ctx context.Context) { renewResponders(ctx, p, pipe, false, r.log) })
	// Orders a crashed instance left processing are resumed by one
	// instance, and only once they are old enough not to be in flight.
	r.every(time.Minute, func(ctx context.Context) { resumeStaleOrders(ctx, st, svc, r.holder, r.log) })

	m := r.mux(pingAll(storeReady(st), redisReady(client)))
	m.Handle("/api/", svc.api)
	m.Handle("/acme/", svc.acme)
	m.Handle("/", svc.portal)
	h, err := withAPIMetrics(m, r.reg)
	if err != nil {
		return err
	}
	proxies, err := clientip.Parse(r.cfg.TrustedProxies)
	if err != nil {
		return err
	}
	srv := newHTTPServer(proxies.Handler(h), r.log)
	if r.cfg.TLS.CertFile == "" {
		return r.serve(ctx, func() error { return serveHTTP(srv, r.ln) }, srv.Shutdown)
	}
	tr, err := tlsreload.New(r.cfg.TLS.CertFile, r.cfg.TLS.KeyFile, r.log)
	if err != nil {
		return fmt.Errorf("tls: %w", err)
	}
	srv.TLSConfig = tr.TLSConfig()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	r.goBG(func(ctx context.Context) {
		defer signal.Stop(hup)
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				if err := tr.Reload(); err != nil {
					r.log.Error("TLS certificate not reloaded; the old one stays", "err", err)
				} else {
					r.log.Info("TLS certificate reloaded")
				}
			}
		}
	})
	return r.serve(ctx, func() error {
		if err := srv.ServeTLS(r.ln, "", ""); !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	}, srv.Shutdown)
}

// signer is what the api and presigner roles start from: the store, the
// hierarchy with this instance's keys, Redis and the pre-signing pipeline.
type signer struct {
	st     store.Store
	p      *pki.PKI
	client redis.UniversalClient
	pipe   *presign.Pipeline
}

func (r *plantRole) openSigner(ctx context.Context) (signer, error) {
	var (
		sg  signer
		err error
	)
	if sg.st, sg.p, err = r.openHierarchy(ctx, pki.IssuingKeys); err != nil {
		return sg, err
	}
	if sg.client, err = r.redis(ctx); err != nil {
		return sg, err
	}
	cache, err := r.cache(sg.client)
	if err != nil {
		return sg, err
	}
	sg.pipe, err = newPipeline(r.cfg.Presign, sg.st, cache, sg.p, r.holder, r.reg, r.log)
	return sg, err
}

// resumeStaleOrders processes orders left "processing" for over two
// minutes (their instance died mid-issuance), under a lease so that one
// instance does it.
func resumeStaleOrders(ctx context.Context, st store.Store, svc *services, holder string, log *slog.Logger) {
	now := time.Now()
	ok, err := st.AcquireLease(ctx, leaseResumeOrders, holder, now, now.Add(2*time.Minute))
	if err != nil || !ok {
		return
	}
	ords, err := st.ListOrders(ctx, store.OrderFilter{Status: store.OrderProcessing, Limit: 100, OldestFirst: true})
	if err != nil {
		if ctx.Err() == nil { // else: cut short by shutdown
			log.Error("listing processing orders", "err", err)
		}
		return
	}
	for _, o := range ords {
		if now.Sub(o.UpdatedAt) < 2*time.Minute {
			continue
		}
		if _, err := svc.orders.Process(ctx, o, "system"); err != nil {
			if ctx.Err() != nil {
				return // shutdown: the next instance resumes it
			}
			log.Error("resuming order failed", "order", o.ID, "err", err)
			continue
		}
		log.Info("resumed an order left processing", "order", o.ID)
	}
}

// runPresigner: `trustline presigner` keeps Redis full of fresh signed
// OCSP responses: one leader (a lease in the store) follows the store's
// events, refreshes ahead of expiry and rebuilds a lost cache. It also
// renews the delegated responder certificates (another lease) and
// publishes the issuer certificates to Redis for the responders.
func runPresigner(ctx context.Context, r *plantRole) error {
	sg, err := r.openSigner(ctx)
	if err != nil {
		return err
	}
	st, p, client, pipe := sg.st, sg.p, sg.client, sg.pipe
	r.goBG(func(ctx context.Context) {
		if err := pipe.Run(ctx); err != nil && ctx.Err() == nil {
			r.log.Error("OCSP pre-signer stopped", "err", err)
		}
	})
	r.every(time.Minute, func(ctx context.Context) {
		now := time.Now()
		leader, err := st.AcquireLease(ctx, leaseResponderRenewal, r.holder, now, now.Add(3*time.Minute))
		if err != nil {
			r.log.Warn("responder renewal lease", "err", err)
		}
		renewResponders(ctx, p, pipe, leader, r.log)
	})
	r.every(15*time.Second, func(ctx context.Context) {
		if err := ocspcache.PublishIssuers(ctx, client, r.cfg.RedisPrefix, issuerCerts(p)); err != nil {
			r.log.Warn("publishing the issuer certificates to Redis", "err", err)
		}
	})
	return r.serveHTTP(ctx, r.mux(pingAll(storeReady(st), redisReady(client))))
}

// issuerCerts are the intermediates as the responders learn them.
func issuerCerts(p *pki.PKI) []ocspcache.IssuerCert {
	var out []ocspcache.IssuerCert
	for _, is := range p.Intermediates {
		out = append(out, ocspcache.IssuerCert{ID: is.ID, DER: is.Cert.Raw})
	}
	return out
}

// runResponder: `trustline responder` answers OCSP from Redis. It needs no
// key and no database: the issuers it answers for are those the
// pre-signers publish in Redis.
func runResponder(ctx context.Context, r *plantRole) error {
	u, err := url.Parse(r.cfg.Public.OCSP)
	if err != nil {
		return err
	}
	prefix := u.Path
	if prefix == "" {
		prefix = "/"
	}
	client, err := r.redis(ctx)
	if err != nil {
		return err
	}
	issuers, err := waitForIssuers(ctx, client, r)
	if err != nil {
		return err
	}
	cache, err := r.cache(client)
	if err != nil {
		return err
	}
	srv, closeResp, err := newOCSPServer(issuers, cache, nil, hashAlgs(r.cfg.Presign.HashAlgs), server.Config{PathPrefix: prefix}, r.reg, redisReady(client), true, r.log)
	if err != nil {
		return err
	}
	r.closers = append(r.closers, closeResp)
	return r.serve(ctx, func() error { return srv.Serve(r.ln) }, srv.Shutdown)
}

// waitForIssuers reads the issuer certificates from Redis, waiting for a
// pre-signer to publish them on a fresh plant.
func waitForIssuers(ctx context.Context, client ocspcache.IssuerReader, r *plantRole) ([]responder.Issuer, error) {
	logged := false
	for {
		certs, err := ocspcache.LoadIssuers(ctx, client, r.cfg.RedisPrefix)
		if err == nil {
			var out []responder.Issuer
			for _, c := range certs {
				xc, err := x509.ParseCertificate(c.DER)
				if err != nil {
					return nil, fmt.Errorf("issuer %s certificate in Redis: %w", c.ID, err)
				}
				out = append(out, responder.Issuer{ID: c.ID, Cert: xc})
			}
			return out, nil
		}
		if !logged {
			r.log.Info("waiting for a pre-signer to publish the issuer certificates", "err", err)
			logged = true
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

// runCRLGen: `trustline crlgen` builds, signs and publishes CRL shards;
// generators share the issuers through leases in the store. Origins read
// what it publishes from the store; configured caches are purged.
func runCRLGen(ctx context.Context, r *plantRole) error {
	st, p, err := r.openHierarchy(ctx, pki.IssuingKeys)
	if err != nil {
		return err
	}
	lt, err := newLinter()
	if err != nil {
		return err
	}
	// Origins poll the store every second: purge once they have the CRL.
	purger, err := newPurger(r.cfg.Purge, 3*time.Second, r.reg, r.log)
	if err != nil {
		return err
	}
	var pubs []crlpub.Publisher
	if purger != nil {
		pubs = append(pubs, purger)
		r.goBG(func(ctx context.Context) { purger.Run(ctx) })
	}
	c := r.cfg.CRL
	gcfg := crlgen.Config{BaseURL: r.cfg.Public.CRL, Shards: c.Shards, Period: c.Period, RevocationDelay: c.RevocationDelay,
		Validity: c.Validity, Holder: r.holder}
	gen, err := newGenerator(gcfg, st, p, lt, pubs, r.reg, r.log)
	if err != nil {
		return err
	}
	r.goBG(func(ctx context.Context) {
		if err := gen.Run(ctx); err != nil && ctx.Err() == nil {
			r.log.Error("crl generator stopped", "err", err)
		}
	})
	return r.serveHTTP(ctx, r.mux(storeReady(st)))
}

// runOrigin: `trustline origin` serves what CDNs pull: CRLs, crls.json and
// issuer certificates, at the paths they have under the public CRL URL.
// It reads the published CRLs from the store and holds no key.
func runOrigin(ctx context.Context, r *plantRole) error {
	st, p, err := r.openHierarchy(ctx, pki.CertsOnly)
	if err != nil {
		return err
	}
	org, err := newOrigin(origin.Config{Period: r.cfg.CRL.Period}, p, r.log)
	if err != nil {
		return err
	}
	src := &storeCRLs{st: st, org: org, base: r.cfg.Public.CRL, shards: r.cfg.CRL.Shards, period: r.cfg.CRL.Period,
		root: p.Root.ID, known: map[string]int64{}}
	for _, is := range p.Intermediates {
		src.ints = append(src.ints, is.ID)
	}
	if err := src.sync(ctx); err != nil {
		return err
	}
	var lastErr error
	r.every(time.Second, func(ctx context.Context) {
		err := src.sync(ctx)
		if err != nil && (lastErr == nil || err.Error() != lastErr.Error()) {
			r.log.Warn("reading CRLs from the store", "err", err)
		}
		lastErr = err
	})
	m := r.mux(storeReady(st))
	u, _ := url.Parse(r.cfg.Public.CRL)
	prefix := strings.TrimSuffix(u.Path, "/")
	if prefix == "" {
		m.Handle("/", org)
	} else {
		m.Handle(prefix+"/", http.StripPrefix(prefix, org))
	}
	return r.serveHTTP(ctx, m)
}

// storeCRLs feeds the origin the CRLs the generators stored.
type storeCRLs struct {
	st     store.Store
	org    *origin.Server
	base   string
	shards int
	period time.Duration
	root   issuerid.ID
	ints   []issuerid.ID
	known  map[string]int64 // path → number served
}

// sync hands the origin every CRL whose number moved.
func (s *storeCRLs) sync(ctx context.Context) error {
	var errs []error
	for _, id := range append([]issuerid.ID{s.root}, s.ints...) {
		crls, err := s.st.ListCRLs(ctx, id)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", id, err))
			continue
		}
		urls := s.shardURLs(id, crls)
		for _, c := range crls {
			path := crlpub.Path(c.IssuerID, c.Shard)
			if s.known[path] >= c.Number {
				continue
			}
			err := s.org.Published(ctx, crlpub.CRL{Issuer: c.IssuerID, Shard: c.Shard, URL: s.base + path, Number: c.Number,
				ThisUpdate: c.ThisUpdate, NextUpdate: c.NextUpdate, NextPublication: c.ThisUpdate.Add(s.period),
				DER: c.DER, Entries: -1, ShardURLs: urls})
			if err != nil {
				errs = append(errs, err)
				continue
			}
			s.known[path] = c.Number
		}
	}
	return errors.Join(errs...)
}

// shardURLs is an issuer's crls.json: the root's full CRL, or every shard
// of an intermediate up to max(configured shards, highest stored + 1).
func (s *storeCRLs) shardURLs(id issuerid.ID, crls []store.CRL) []string {
	if id == s.root {
		return []string{s.base + crlpub.Path(id, shard.Full)}
	}
	n := s.shards
	for _, c := range crls {
		if c.Shard+1 > n {
			n = c.Shard + 1
		}
	}
	out := make([]string, n)
	for i := range out {
		out[i] = s.base + crlpub.Path(id, i)
	}
	return out
}
