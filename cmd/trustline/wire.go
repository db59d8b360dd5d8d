package main

import (
	"context"
	"runtime"
	"strconv"
	"sync"

	"github.com/redis/go-redis/v9"

	"github.com/trustline/trustline/internal/ocspcache"
	"github.com/trustline/trustline/issuer/presign"
	"github.com/trustline/trustline/responder"
	"github.com/trustline/trustline/responder/server"

	"github.com/prometheus/client_golang/prometheus"

	"crypto/rand"
	"errors"
	"fmt"
	"github.com/trustline/trustline/crlgen"
	"github.com/trustline/trustline/crlgen/crlpub"
	"github.com/trustline/trustline/internal/status"
	"github.com/trustline/trustline/origin"
	"github.com/trustline/trustline/origin/purge"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/trustline/trustline/internal/config"
	"github.com/trustline/trustline/internal/linter"
	"github.com/trustline/trustline/internal/mail"
	"github.com/trustline/trustline/internal/pkcs11key"
	"github.com/trustline/trustline/internal/store"
	"github.com/trustline/trustline/issuer"
	"github.com/trustline/trustline/issuer/api"
	"github.com/trustline/trustline/issuer/csrcheck"
	"github.com/trustline/trustline/issuer/pki"
	"github.com/trustline/trustline/issuer/portal"
)

// openKeys returns where CA keys live: the token when an HSM is
// configured, else key files under DATA/keys. The closer releases the
// token.
func openKeys(cfg config.Dev, dataDir string, log *slog.Logger) (pki.Keys, string, func(), error) {
	if cfg.HSM.Module == "" {
		return pki.FileKeys{Dir: filepath.Join(dataDir, "keys")}, "file", func() {}, nil
	}
	tok, err := pkcs11key.Open(pkcs11key.Config{
		ModulePath: cfg.HSM.Module, TokenLabel: cfg.HSM.Token, PIN: cfg.HSM.PIN, Sessions: cfg.HSM.Sessions,
	}, log)
	if err != nil {
		return nil, "", nil, fmt.Errorf("hsm: %w", err)
	}
	return tok, "pkcs11", func() { tok.Close() }, nil
}

// loadOrCreatePKI loads DATA/ca, or creates the dev hierarchy on first
// start.
func loadOrCreatePKI(ctx context.Context, dataDir, baseURL string, keys pki.Keys, keySource string, log *slog.Logger) (*pki.PKI, error) {
	dir := filepath.Join(dataDir, "ca")
	if pki.Exists(dir) {
		p, err := pki.Load(ctx, dir, keys, keySource)
		if err != nil {
			return nil, err
		}
		if n, err := p.RenewResponders(time.Now(), rand.Reader); err != nil {
			return nil, err
		} else if n > 0 {
			log.Info("renewed OCSP responder certificates", "count", n)
		}
		return p, nil
	}
	log.Info("creating dev PKI", "dir", dir, "keys", keySource)
	return pki.Create(ctx, pki.DefaultDev(dir, baseURL, keySource), keys, time.Now(), rand.Reader)
}

// serialPrefix returns this store's serial prefix octet, chosen at random
// in [0x01, 0x7f] on first start and kept in the store.
func serialPrefix(ctx context.Context, st store.Store) (byte, error) {
	b, err := st.Meta(ctx, "serial_prefix")
	if err == nil && len(b) == 1 && b[0] >= 1 && b[0] <= 0x7f {
		return b[0], nil
	}
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return 0, fmt.Errorf("store: reading serial prefix: %w", err)
	}
	var r [1]byte
	rand.Read(r[:])
	p := r[0]%0x7f + 1
	if err := st.PutMeta(ctx, "serial_prefix", []byte{p}); err != nil {
		return 0, fmt.Errorf("store: writing serial prefix: %w", err)
	}
	return p, nil
}

// services is the issuance core as cmd/ wires it.
type services struct {
	pki      *pki.PKI
	ca       *issuer.CA
	accounts *issuer.Accounts
	orders   *issuer.Orders
	api      *api.Handler
	portal   *portal.Handler
	lint     *linter.Linter
	origin   *origin.Server
	crlgen   *crlgen.Generator
	presign  *presign.Pipeline
	purger   *purge.Dispatcher // nil when no cache or webhook is configured
	// bg tracks background loops, stopped and waited for before the store
	// closes.
	bg *sync.WaitGroup
}

// newPurger builds the purge dispatcher for the configured caches and
// webhook, or nil when there are none.
func newPurger(cfg config.Dev, log *slog.Logger) (*purge.Dispatcher, error) {
	var ps []purge.Purger
	for _, c := range cfg.Purge.Caches {
		h, err := purge.NewHTTP(c, nil)
		if err != nil {
			return nil, err
		}
		ps = append(ps, h)
	}
	if cfg.Purge.Webhook != "" {
		w, err := purge.NewWebhook(cfg.Purge.Webhook, nil, nil)
		if err != nil {
			return nil, err
		}
		ps = append(ps, w)
	}
	if len(ps) == 0 {
		return nil, nil
	}
	return purge.NewDispatcher(purge.Config{}, log.With("part", "purge"), ps...)
}

// statusSinks tells the pre-signer of every issuance and revocation (it
// must finish before the API answers) and then queues a purge of a revoked
// certificate's OCSP responses at the edge.
type statusSinks struct {
	presign issuer.StatusSink
	purger  *purge.Dispatcher
	log     *slog.Logger
}

func (s statusSinks) CertificateChanged(ctx context.Context, c store.Certificate) error {
	err := s.presign.CertificateChanged(ctx, c)
	if c.Status == status.Revoked && s.purger != nil {
		if perr := s.purger.PurgeTag("ocsp-" + string(c.Serial)); perr != nil {
			s.log.Warn("OCSP purge not queued", "serial", c.Serial, "err", perr)
		}
	}
	return err
}

func buildIssuance(ctx context.Context, cfg config.Dev, dataDir string, st store.Store, keys pki.Keys, keySource string,
	urls devURLs, shards int, log *slog.Logger) (*services, error) {
	p, err := loadOrCreatePKI(ctx, dataDir, urls.crl, keys, keySource, log)
	if err != nil {
		return nil, err
	}
	lt, err := linter.New(linter.Config{})
	if err != nil {
		return nil, err
	}
	prefix, err := serialPrefix(ctx, st)
	if err != nil {
		return nil, err
	}
	ca, err := issuer.New(issuer.Config{OCSPURL: urls.ocsp + "/", BaseURL: urls.crl, Shards: shards, SerialPrefix: prefix},
		issuer.Deps{Store: st, PKI: p, Linter: lt, Log: log.With("part", "ca")})
	if err != nil {
		return nil, err
	}
	mailer, err := newMailer(cfg, dataDir)
	if err != nil {
		return nil, err
	}
	accounts := issuer.NewAccounts(st, nil)
	vals, err := issuer.NewValidationService(issuer.ValidationConfig{
		Resolver: cfg.Validation.Resolver, WhoisEmail: cfg.Validation.WhoisEmail, WhoisServer: cfg.Validation.WhoisServer,
		AllowPrivateAddresses: cfg.Validation.AllowPrivateAddresses,
	}, issuer.ValidationDeps{Store: st, Mail: mailer, Log: log.With("part", "validation")})
	if err != nil {
		return nil, err
	}
	orders, err := issuer.NewOrders(urls.api, csrcheck.Policy{}, issuer.OrdersDeps{
		Store: st, CA: ca, Validations: vals, Mail: mailer, Log: log.With("part", "orders"),
	})
	if err != nil {
		return nil, err
	}
	reviews, err := issuer.NewReviews(issuer.ReviewDeps{Store: st, Orders: orders, Validations: vals, Log: log.With("part", "review")})
	if err != nil {
		return nil, err
	}
	h := api.New(api.Deps{Store: st, Accounts: accounts, Validations: vals, Orders: orders, Reviews: reviews, CA: ca, PKI: p, Log: log.With("part", "api")})
	ph, err := portal.New(portal.Config{BaseURL: urls.api}, portal.Deps{
		Store: st, Accounts: accounts, Validations: vals, Orders: orders, Reviews: reviews,
		CA: ca, Issuers: p, Mail: mailer, Log: log.With("part", "portal")})
	if err != nil {
		return nil, err
	}
	return &services{pki: p, ca: ca, accounts: accounts, orders: orders, api: h, portal: ph, lint: lt}, nil
}

// newMailer delivers to DATA/mail/ unless an SMTP relay is configured.
func newMailer(cfg config.Dev, dataDir string) (mail.Sender, error) {
	if cfg.SMTP.Addr == "" {
		return mail.Dir{Path: filepath.Join(dataDir, "mail")}, nil
	}
	return mail.NewSMTP(mail.SMTPConfig{Addr: cfg.SMTP.Addr, From: cfg.SMTP.From, Username: cfg.SMTP.Username,
		Password: cfg.SMTP.Password, RequireTLS: cfg.SMTP.RequireTLS, Timeout: cfg.SMTP.Timeout}, mail.SMTPDeps{})
}

// addRevocation wires the CRL generator and the origin it publishes to.
func (s *services) addRevocation(cfg config.Dev, st store.Store, urls devURLs, reg prometheus.Registerer, instance string, log *slog.Logger) error {
	org, err := origin.New(origin.Config{Period: cfg.CRLPeriod}, log.With("part", "origin"), nil)
	if err != nil {
		return err
	}
	if err := org.SetIssuerCert(s.pki.Root.ID, s.pki.Root.Cert.Raw); err != nil {
		return err
	}
	for _, is := range s.pki.Intermediates {
		if err := org.SetIssuerCert(is.ID, is.Cert.Raw); err != nil {
			return err
		}
	}
	publishers := []crlpub.Publisher{org}
	if s.purger != nil {
		publishers = append(publishers, s.purger)
	}
	root, ints := crlgen.FromPKI(s.pki)
	gen, err := crlgen.New(crlgen.DevConfig(urls.crl, cfg.CRLShards, cfg.CRLPeriod, instance+"-"+strconv.Itoa(os.Getpid())),
		crlgen.Deps{Store: st, Root: root, Intermediates: ints, Linter: s.lint, Publishers: publishers,
			Registerer: reg, Log: log.With("part", "crlgen")})
	if err != nil {
		return err
	}
	s.origin, s.crlgen = org, gen
	return nil
}

// ensureKeyFile makes sure DATA/<name>.key holds a working API key for an
// account with role, creating the account on first start (CONTRACT.md:
// admin.key, reviewer.key; mode 0600, the key alone on the line).
func ensureKeyFile(ctx context.Context, accounts *issuer.Accounts, dataDir, name string, role store.Role) error {
	path := filepath.Join(dataDir, name+".key")
	if b, err := os.ReadFile(path); err == nil {
		if acct, err := accounts.Authenticate(ctx, strings.TrimSpace(string(b))); err == nil && acct.Role == role {
			return nil
		}
	}
	suffix := make([]byte, 4)
	rand.Read(suffix)
	_, token, err := accounts.Create(ctx, fmt.Sprintf("%s+%x@trustline.invalid", name, suffix), role)
	if err != nil {
		return fmt.Errorf("creating %s account: %w", name, err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(token+"\n"), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// devURLs are the base URLs the listeners are reachable at.
type devURLs struct{ api, ocsp, crl string }

func populateRequest(n int, revoked float64, family string, progress func(int)) issuer.PopulateRequest {
	return issuer.PopulateRequest{N: n, RevokedFraction: revoked, KeyFamily: family, Progress: progress}
}

// addOCSP wires the response cache (in-process, or Redis with --redis), the
// pre-signing pipeline as the CA's status sink, and the responder and its
// fasthttp server. The closer releases the cache.
func (s *services) addOCSP(ctx context.Context, cfg config.Dev, st store.Store, reg prometheus.Registerer, instance string,
	log *slog.Logger) (*server.Server, func(), error) {
	var (
		cache   ocspcache.Cache
		closers []func()
	)
	closeAll := func() {
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i]()
		}
	}
	if cfg.Redis == "" {
		mem, err := ocspcache.NewMemory(ocspcache.MemoryConfig{})
		if err != nil {
			return nil, nil, err
		}
		cache = mem
	} else {
		opt, err := redis.ParseURL(cfg.Redis)
		if err != nil {
			return nil, nil, fmt.Errorf("redis: %w", err)
		}
		opt.DialTimeout, opt.ReadTimeout, opt.WriteTimeout, opt.MaxRetries = 500*time.Millisecond, 500*time.Millisecond, 500*time.Millisecond, 1
		client := redis.NewClient(opt)
		closers = append(closers, func() { client.Close() })
		pctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		err = client.Ping(pctx).Err()
		cancel()
		if err != nil {
			closeAll()
			return nil, nil, fmt.Errorf("redis: %s: %w", opt.Addr, err)
		}
		rc, err := ocspcache.NewRedis(ocspcache.RedisConfig{Prefix: "trustline:ocsp:" + instance + ":"}, client, log.With("part", "ocsp-cache"))
		if err != nil {
			closeAll()
			return nil, nil, err
		}
		closers = append(closers, func() { rc.Close() })
		cache = rc
	}
	pipe, err := presign.New(presign.Config{Instance: instance}, presign.Deps{Store: st, Cache: cache,
		Issuers: presign.FromPKI(s.pki, false), Registerer: reg, Log: log.With("part", "presign")})
	if err != nil {
		closeAll()
		return nil, nil, err
	}
	s.presign = pipe
	s.ca.SetSink(statusSinks{presign: pipe, purger: s.purger, log: log})
	s.bg.Go(func() {
		if err := pipe.Run(ctx); err != nil && ctx.Err() == nil {
			log.Error("OCSP pre-signer stopped", "err", err)
		}
	})
	var issuers []responder.Issuer
	for _, is := range s.pki.Intermediates {
		issuers = append(issuers, responder.Issuer{ID: is.ID, Cert: is.Cert})
	}
	resp, err := responder.New(responder.Config{Issuers: issuers, Presigned: pipe.HashAlgs(),
		L1Entries: 100_000, LiveSigning: 2 * runtime.GOMAXPROCS(0), CacheTagHeader: "Surrogate-Key"},
		responder.Deps{Cache: cache, Evictions: cache, Signer: pipe, Registerer: reg, Log: log.With("part", "responder")})
	if err != nil {
		closeAll()
		return nil, nil, err
	}
	closers = append(closers, func() { resp.Close() })
	srv, err := server.New(server.Config{}, server.Deps{Responder: resp, Registerer: reg, Log: log.With("listener", "ocsp")})
	if err != nil {
		closeAll()
		return nil, nil, err
	}
	return srv, closeAll, nil
}

// renewResponders re-issues delegated OCSP responder certificates before
// they expire, for a process that runs longer than their life, and hands
// the new ones to the pre-signer.
func (s *services) renewResponders(ctx context.Context, every time.Duration, log *slog.Logger) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		n, err := s.pki.RenewResponders(time.Now(), rand.Reader)
		if err != nil {
			log.Error("renewing OCSP responder certificates", "err", err)
			continue
		}
		if n > 0 {
			if err := s.presign.SetIssuers(presign.FromPKI(s.pki, false)); err != nil {
				log.Error("installing renewed responder certificates", "err", err)
				continue
			}
			log.Info("renewed OCSP responder certificates", "count", n)
		}
	}
}
