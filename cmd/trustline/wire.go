package main

import (
	"cmp"
	"context"
	"net/http"
	"runtime"

	"github.com/trustline/trustline/issuer/presign"
	"github.com/trustline/trustline/responder"
	"github.com/trustline/trustline/responder/server"
	"github.com/valyala/fasthttp/fasthttpadaptor"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/trustline/trustline/crlgen"
	"github.com/trustline/trustline/crlgen/crlpub"
	"github.com/trustline/trustline/internal/httpmetrics"
	"github.com/trustline/trustline/internal/ocspcodec"
	"github.com/trustline/trustline/internal/status"
	"github.com/trustline/trustline/origin"
	"github.com/trustline/trustline/origin/purge"

	"github.com/trustline/trustline/bench"
	"github.com/trustline/trustline/internal/config"
	"github.com/trustline/trustline/internal/linter"
	"github.com/trustline/trustline/internal/mail"
	"github.com/trustline/trustline/internal/pkcs11key"
	"github.com/trustline/trustline/internal/store"
	"github.com/trustline/trustline/issuer"
	"github.com/trustline/trustline/issuer/acme"
	"github.com/trustline/trustline/issuer/api"
	"github.com/trustline/trustline/issuer/caa"
	"github.com/trustline/trustline/issuer/csrcheck"
	"github.com/trustline/trustline/issuer/ct"
	"github.com/trustline/trustline/issuer/pki"
	"github.com/trustline/trustline/issuer/portal"
	"github.com/trustline/trustline/issuer/profile"
	"github.com/trustline/trustline/issuer/ratelimit"
	"github.com/trustline/trustline/issuer/review"
	"github.com/trustline/trustline/issuer/validation"
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
		ProbeInterval: cfg.HSM.ProbeInterval,
	}, log)
	if err != nil {
		return nil, "", nil, fmt.Errorf("hsm: %w", err)
	}
	return tok, "pkcs11", func() { tok.Close() }, nil
}

// devHierarchy loads the store's hierarchy with this data dir's keys, or on
// first start creates the dev hierarchy and records it in the store. A
// data dir from before the store kept the hierarchy (DATA/ca/pki.json) is
// recorded as it is. DATA/ca always gets a copy of the certificates
// (docs/configuration.md: ca/root.pem, ca/<issuer-id>.pem).
func devHierarchy(ctx context.Context, st store.Store, dataDir, crlBase string, keys pki.Keys, keySource string, log *slog.Logger) (*pki.PKI, error) {
	dir := filepath.Join(dataDir, "ca")
	p, err := pki.LoadRecorded(ctx, st, isNotFound, keys, keySource, pki.IssuingKeys)
	switch {
	case err == nil:
		if err := p.Export(dir); err != nil {
			return nil, err
		}
	case errors.Is(err, pki.ErrNoHierarchy):
		if pki.Exists(dir) {
			if p, err = pki.Load(ctx, dir, keys, keySource); err != nil {
				return nil, err
			}
			log.Info("recording the data dir's hierarchy in the store", "dir", dir)
		} else {
			log.Info("creating dev PKI", "dir", dir, "keys", keySource)
			if p, err = pki.Create(ctx, pki.DefaultDev(dir, crlBase, keySource), keys, time.Now(), rand.Reader); err != nil {
				return nil, err
			}
		}
		if err := p.Record(ctx, st, isDuplicate); err != nil {
			return nil, err
		}
	default:
		return nil, err
	}
	if n, err := p.RenewResponders(ctx, time.Now(), rand.Reader); err != nil {
		return nil, err
	} else if n > 0 {
		log.Info("renewed OCSP responder certificates", "count", n)
	}
	return p, nil
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
	acme     *acme.Server
	lint     *linter.Linter
	ct       *ct.Submitter // nil: CT off
}

// waitCT waits, within ctx, for the final certificates still being
// submitted to the CT logs in the background.
func (s *services) waitCT(ctx context.Context, log *slog.Logger) {
	if s.ct == nil {
		return
	}
	if err := s.ct.Wait(ctx); err != nil {
		log.Warn("stopped with final certificates still being submitted to the CT logs", "err", err)
	}
}

// newPurger builds the purge dispatcher for the configured caches and
// webhook, or nil when there are none.
func newPurger(cfg config.Purge, delay time.Duration, reg prometheus.Registerer, log *slog.Logger) (*purge.Dispatcher, error) {
	var ps []purge.Purger
	for _, c := range cfg.Caches {
		h, err := purge.NewHTTP(c, nil)
		if err != nil {
			return nil, err
		}
		ps = append(ps, h)
	}
	if cfg.Webhook != "" {
		w, err := purge.NewWebhook(cfg.Webhook, nil, nil)
		if err != nil {
			return nil, err
		}
		ps = append(ps, w)
	}
	if len(ps) == 0 {
		return nil, nil
	}
	d, err := purge.NewDispatcher(purge.Config{Delay: delay}, log.With("part", "purge"), ps...)
	if err != nil || reg == nil {
		return d, err
	}
	for _, r := range []struct {
		result string
		n      func(purge.Stats) int64
	}{{"done", func(s purge.Stats) int64 { return s.Done }}, {"failed", func(s purge.Stats) int64 { return s.Failed }},
		{"dropped", func(s purge.Stats) int64 { return s.Dropped }}} {
		err := reg.Register(prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name:        "trustline_purges_total",
			Help:        "Purges of CRLs and revoked certificates' OCSP responses sent to the caches in front of Trustline, by result (failed: after every retry; dropped: the queue was full).",
			ConstLabels: prometheus.Labels{"result": r.result},
		}, func() float64 { return float64(r.n(d.Stats())) }))
		if err != nil {
			return nil, err
		}
	}
	return d, nil
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

// issuanceOpts is what the issuance core needs besides the store and the
// hierarchy, from `trustline dev`'s flags or a plant's configuration.
type issuanceOpts struct {
	ocspURL, crlBase, caIssuersBase, apiURL string
	shards                                  int
	dualControl                             bool
	rateLimits                              ratelimit.Config
	validation                              config.Validation
	acme                                    config.ACME
	ct                                      config.CT
	certificates                            config.Certificates
	mailer                                  mail.Sender
	sink                                    issuer.StatusSink
	reg                                     prometheus.Registerer // nil: no issuance metrics
}

func buildIssuance(ctx context.Context, st store.Store, p *pki.PKI, o issuanceOpts, log *slog.Logger) (*services, error) {
	lt, err := linter.New(linter.Config{})
	if err != nil {
		return nil, err
	}
	prefix, err := serialPrefix(ctx, st)
	if err != nil {
		return nil, err
	}
	var m *issuer.Metrics
	if o.reg != nil {
		if m, err = issuer.NewMetrics(o.reg); err != nil {
			return nil, err
		}
	}
	ctSub, err := newCTLogs(o.ct, o.reg, log)
	if err != nil {
		return nil, err
	}
	var ctLogs issuer.CTLogs // nil, not a nil *ct.Submitter, when CT is off
	if ctSub != nil {
		ctLogs = ctSub
	}
	ca, err := issuer.New(issuer.Config{OCSPURL: o.ocspURL, BaseURL: o.crlBase, CAIssuersURL: o.caIssuersBase, Shards: o.shards, SerialPrefix: prefix,
		Profile: profile.Options{CommonName: o.certificates.CommonName, RSAKeyEncipherment: o.certificates.RSAKeyEncipherment}},
		issuer.Deps{Store: st, PKI: p, Linter: lt, Sink: o.sink, CT: ctLogs, Metrics: m, Log: log.With("part", "ca")})
	if err != nil {
		return nil, err
	}
	accounts := issuer.NewAccounts(st, nil)
	staff := issuer.NewStaff(st, nil, o.dualControl)
	if !o.dualControl {
		log.Warn("dual control is off: one admin may make reviewers and admins alone (dual_control: true turns it on; docs/security.md)")
	}
	limits, err := ratelimit.New(st, o.rateLimits, nil)
	if err != nil {
		return nil, err
	}
	corroborator, err := newCorroborator(o.validation.Perspectives, log)
	if err != nil {
		return nil, err
	}
	if corroborator == nil && o.validation.Resolver != "" {
		log.Warn("dns-txt, http-token and CAA checks are made from this one network perspective: set validation.perspectives (BR 3.2.2.9 requires remote corroboration for publicly trusted certificates)")
	}
	vals, err := validation.New(validation.Config{
		Resolver: o.validation.Resolver, WhoisEmail: o.validation.WhoisEmail, WhoisServer: o.validation.WhoisServer,
		AllowPrivateAddresses: o.validation.AllowPrivateAddresses, HTTPPort: o.validation.TestHTTPPort, HTTPSPort: o.validation.TestHTTPSPort,
	}, validation.Deps{Store: st, Mail: o.mailer, Metrics: m, Log: log.With("part", "validation"), Corroborator: corroborator, Limits: limits})
	if err != nil {
		return nil, err
	}
	var checker issuer.CAAChecker
	if ids := o.validation.CAAIdentities; len(ids) > 0 {
		c, err := caa.New(caa.Config{Identities: ids, Resolver: o.validation.Resolver})
		if err != nil {
			return nil, err
		}
		checker = c
		if corroborator != nil {
			checker = caa.Corroborated(c.Check, corroborator)
		}
		log.Info("CAA checked for every name", "identities", ids, "resolver", o.validation.Resolver, "corroborated", corroborator != nil)
	} else {
		log.Warn("CAA records are NOT checked: set validation.caa_identities and validation.resolver (BR 3.2.2.8 requires the check for publicly trusted certificates)")
	}
	keyPolicy := csrcheck.Policy{}
	if files := o.certificates.WeakKeyFiles; len(files) > 0 {
		if keyPolicy.WeakKeys, err = csrcheck.LoadWeakKeys(files...); err != nil {
			return nil, err
		}
		log.Info("weak key lists loaded", "files", len(files), "keys", keyPolicy.WeakKeys.Len())
	} else {
		log.Warn("no Debian weak key list (CVE-2008-0166) loaded: set certificates.weak_key_files (BR 6.1.1.3; docs/compliance.md)")
	}
	orders, err := issuer.NewOrders(o.apiURL, keyPolicy, issuer.OrdersDeps{
		Store: st, CA: ca, Validations: vals, Mail: o.mailer, Metrics: m, Log: log.With("part", "orders"), CAA: checker, Limits: limits,
	})
	if err != nil {
		return nil, err
	}
	reviews, err := review.New(review.Deps{Store: st, Orders: orders, Validations: vals, Metrics: m, Log: log.With("part", "review")})
	if err != nil {
		return nil, err
	}
	confirmKey, err := sharedSecret(ctx, st, "accounts.confirm_key")
	if err != nil {
		return nil, err
	}
	confirm, err := issuer.NewConfirmations(issuer.ConfirmConfig{Key: confirmKey, BaseURL: o.apiURL},
		issuer.ConfirmDeps{Store: st, Mail: o.mailer, Limits: limits, Log: log.With("part", "accounts")})
	if err != nil {
		return nil, err
	}
	eabSecret, err := sharedSecret(ctx, st, "acme.eab_key")
	if err != nil {
		return nil, err
	}
	eabKeys, err := acme.NewEABKeys(st, eabSecret, nil)
	if err != nil {
		return nil, err
	}
	h := api.New(api.Deps{Store: st, Accounts: accounts, EABKeys: eabKeys, Plans: acme.NewRevocationPlans(st, nil), Keys: issuer.NewKeys(st, nil), Staff: staff, Limits: limits, Confirmations: confirm, Validations: vals, Orders: orders, Reviews: reviews, CA: ca, PKI: p, Log: log.With("part", "api")})
	formKey, err := sharedSecret(ctx, st, "portal.form_key")
	if err != nil {
		return nil, err
	}
	ph, err := portal.New(portal.Config{BaseURL: o.apiURL, FormKey: formKey, ACMEDirectory: cmp.Or(o.acme.BaseURL, o.apiURL) + "/acme/directory"}, portal.Deps{
		Store: st, Accounts: accounts, Validations: vals, Orders: orders, Reviews: reviews,
		CA: ca, Issuers: p, Mail: o.mailer, Limits: limits, Confirmations: confirm, EABKeys: eabKeys, Log: log.With("part", "portal")})
	if err != nil {
		return nil, err
	}
	acmeSrv, err := newACME(ctx, st, o, eabSecret, acme.Deps{Store: st, Validations: vals, Orders: orders, CA: ca, PKI: p, Limits: limits,
		NewAccount: accounts.CreateForACME, Log: log.With("part", "acme")})
	if err != nil {
		return nil, err
	}
	return &services{pki: p, ca: ca, accounts: accounts, orders: orders, api: h, portal: ph, acme: acmeSrv, lint: lt, ct: ctSub}, nil
}

// newACME builds the ACME server at the api's public URL, with the nonce
// and external account binding secrets every api instance shares.
// newCTLogs builds the Certificate Transparency submitter from the
// configuration; nil (and a warning) when no log list is set.
func newCTLogs(c config.CT, reg prometheus.Registerer, log *slog.Logger) (*ct.Submitter, error) {
	if c.LogList == "" {
		log.Warn("certificates are NOT logged to Certificate Transparency: set ct.log_list (browsers require SCTs for publicly trusted TLS certificates; docs/ct.md)")
		return nil, nil
	}
	data, err := os.ReadFile(c.LogList)
	if err != nil {
		return nil, fmt.Errorf("ct.log_list: %w", err)
	}
	logs, err := ct.ParseLogList(data)
	if err != nil {
		return nil, fmt.Errorf("ct.log_list %s: %w", c.LogList, err)
	}
	s, err := ct.New(ct.Config{Logs: logs, Policy: ct.Policy{MinSCTs: c.MinSCTs, MinOperators: c.MinOperators, MinSCTsLong: c.MinSCTsLong}, Timeout: c.Timeout,
		BreakerFailures: uint32(c.BreakerFailures), BreakerCooldown: c.BreakerCooldown}, ct.Deps{Log: log.With("part", "ct"), Registry: reg})
	if err != nil {
		return nil, err
	}
	log.Info("certificates are logged to Certificate Transparency", "logs", len(logs), "min_scts", s.Policy().MinSCTs, "min_operators", s.Policy().MinOperators)
	return s, nil
}

func newACME(ctx context.Context, st store.Store, o issuanceOpts, eabSecret []byte, d acme.Deps) (*acme.Server, error) {
	nonceKey, err := sharedSecret(ctx, st, "acme.nonce_key")
	if err != nil {
		return nil, err
	}
	if d.Nonces, err = acme.NewNonces(acme.NonceConfig{Key: nonceKey}, st, nil, nil); err != nil {
		return nil, err
	}
	d.EABKey = func(id string) []byte { return acme.EABKey(eabSecret, id) }
	if o.validation.Resolver == "" {
		d.Log.Warn("ACME challenges cannot be answered: set validation.resolver (docs/acme.md)")
	}
	base := cmp.Or(o.acme.BaseURL, o.apiURL)
	if strings.HasPrefix(base, "http://") {
		d.Log.Warn("ACME is served over http: most clients require HTTPS (RFC 8555 §6.1); serve the api over TLS or set acme.base_url to a TLS-terminating proxy's URL (docs/acme.md)", "acme_directory", base+"/acme/directory")
	}
	profiles := o.acme.Profiles
	if profiles == nil {
		profiles = config.DefaultACMEProfiles()
	}
	var ps []acme.Profile
	for _, p := range profiles {
		ps = append(ps, acme.Profile{Name: p.Name, Description: p.Description, Validity: p.Validity})
	}
	return acme.New(acme.Config{BaseURL: base, Profiles: ps, ExternalAccountRequired: o.acme.ExternalAccountRequired,
		TermsOfService: o.acme.TermsOfService, Website: o.acme.Website, CAAIdentities: o.validation.CAAIdentities}, d)
}

// newMailer delivers through the SMTP relay when one is configured, else
// as files in dir.
func newMailer(smtp config.SMTP, dir string) (mail.Sender, error) {
	if smtp.Addr == "" {
		return mail.Dir{Path: dir}, nil
	}
	return mail.NewSMTP(mail.SMTPConfig{Addr: smtp.Addr, From: smtp.From, Username: smtp.Username,
		Password: smtp.Password, RequireTLS: smtp.RequireTLS, Timeout: smtp.Timeout}, mail.SMTPDeps{})
}

// newOrigin builds an origin serving p's issuer certificates.
func newOrigin(cfg origin.Config, p *pki.PKI, log *slog.Logger) (*origin.Server, error) {
	org, err := origin.New(cfg, log.With("part", "origin"), nil)
	if err != nil {
		return nil, err
	}
	if err := org.SetIssuerCert(p.Root.ID, p.Root.Cert.Raw); err != nil {
		return nil, err
	}
	for _, is := range p.Intermediates {
		if err := org.SetIssuerCert(is.ID, is.Cert.Raw); err != nil {
			return nil, err
		}
	}
	return org, nil
}

// crlIssuers returns the hierarchy's root and intermediates as the CRL
// generator wants them.
func crlIssuers(p *pki.PKI) (root crlgen.Issuer, intermediates []crlgen.Issuer) {
	root = crlgen.Issuer{ID: p.Root.ID, Cert: p.Root.Cert, Signer: p.Root.Signer}
	for _, is := range p.Intermediates {
		intermediates = append(intermediates, crlgen.Issuer{ID: is.ID, Cert: is.Cert, Signer: is.Signer})
	}
	return root, intermediates
}

// presignIssuers returns the intermediates as the pre-signer wants them,
// signing with each one's delegated responder (or, with useIssuerKey, the
// intermediate's own key).
func presignIssuers(p *pki.PKI, useIssuerKey bool) []presign.Issuer {
	var out []presign.Issuer
	for _, is := range p.Intermediates {
		if rc := p.ResponderCert(is); useIssuerKey || rc == nil {
			out = append(out, presign.Issuer{ID: is.ID, Cert: is.Cert, Key: is.Signer})
		} else {
			out = append(out, presign.Issuer{ID: is.ID, Cert: is.Cert, Responder: rc, Key: is.ResponderSigner})
		}
	}
	return out
}

// newGenerator builds a CRL generator over the store.
func newGenerator(cfg crlgen.Config, st store.Store, p *pki.PKI, lt *linter.Linter, pubs []crlpub.Publisher,
	reg prometheus.Registerer, log *slog.Logger) (*crlgen.Generator, error) {
	if p.Root.Signer == nil && !p.RootOffline() {
		return nil, errors.New("the root key is not among this instance's keys, and the hierarchy keeps its root online: the CRL generator signs the root's CRL with it")
	}
	root, ints := crlIssuers(p)
	return crlgen.New(cfg, crlgen.Deps{Store: st, Root: root, Intermediates: ints, Linter: lt, CALinter: lt.ForCACRLs(),
		Publishers: pubs, Registerer: reg, Log: log.With("part", "crlgen")})
}

// ensureKeyFile makes sure DATA/<name>.key holds a working API key for an
// account with role, creating the account on first start (docs/configuration.md:
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

func populateRequest(n int, revoked float64, family string, progress func(int)) bench.PopulateRequest {
	return bench.PopulateRequest{N: n, RevokedFraction: revoked, KeyFamily: family, Progress: progress}
}

// newPipeline builds the pre-signer over cache, leasing as holder.
func newPipeline(pc config.Presign, st store.Store, cache presign.Cache, p *pki.PKI, holder string, reg prometheus.Registerer, log *slog.Logger) (*presign.Pipeline, error) {
	cfg := presign.Config{Instance: holder, Workers: pc.Workers, Lease: pc.Lease, HashAlgs: hashAlgs(pc.HashAlgs)}
	return presign.New(cfg, presign.Deps{Store: st, Cache: cache,
		Issuers: presignIssuers(p, false), Registerer: reg, Log: log.With("part", "presign")})
}

// hashAlgs maps configured names to algorithms; config validation has
// rejected any other name.
func hashAlgs(names []string) []ocspcodec.HashAlg {
	var out []ocspcodec.HashAlg
	for _, n := range names {
		if h, ok := ocspcodec.ParseHashAlg(n); ok {
			out = append(out, h)
		}
	}
	return out
}

// responderCache is what the responder reads and watches.
type responderCache interface {
	responder.Cache
	responder.Evictions
}

// newOCSPServer builds the responder over cache (live signing when signer
// is not nil, for the hash algorithms not in presigned among others) and
// its fasthttp server.
func newOCSPServer(issuers []responder.Issuer, cache responderCache, signer responder.LiveSigner, presigned []ocspcodec.HashAlg, scfg server.Config,
	reg prometheus.Registerer, ready func(context.Context) error, metrics bool, log *slog.Logger) (*server.Server, func(), error) {
	live := 0
	if signer != nil {
		live = 2 * runtime.GOMAXPROCS(0)
	}
	rcfg := responder.Config{Issuers: issuers, Presigned: presigned, L1Entries: 100_000, LiveSigning: live, CacheTagHeader: "Surrogate-Key"}
	resp, err := responder.New(rcfg,
		responder.Deps{Cache: cache, Evictions: cache, Signer: signer, Registerer: reg, Log: log.With("part", "responder")})
	if err != nil {
		return nil, nil, err
	}
	deps := server.Deps{Responder: resp, Registerer: reg, Ready: ready, Log: log.With("listener", "ocsp")}
	if metrics {
		if g, ok := reg.(prometheus.Gatherer); ok {
			deps.Metrics = fasthttpadaptor.NewFastHTTPHandler(promhttp.HandlerFor(g, promhttp.HandlerOpts{}))
		}
	}
	srv, err := server.New(scfg, deps)
	if err != nil {
		resp.Close()
		return nil, nil, err
	}
	return srv, func() { resp.Close() }, nil
}

// renewResponders, on the leader only, re-issues delegated OCSP responder
// certificates before they expire; every instance then reloads them from
// the store and hands them to its pre-signer.
func renewResponders(ctx context.Context, p *pki.PKI, pipe *presign.Pipeline, leader bool, log *slog.Logger) {
	if leader {
		n, err := p.RenewResponders(ctx, time.Now(), rand.Reader)
		if err != nil {
			log.Error("renewing OCSP responder certificates", "err", err)
			return
		}
		if n > 0 {
			log.Info("renewed OCSP responder certificates", "count", n)
		}
	}
	if _, err := p.ReloadResponders(ctx); err != nil {
		log.Error("reloading OCSP responder certificates", "err", err)
		return
	}
	if err := pipe.SetIssuers(presignIssuers(p, false)); err != nil {
		log.Error("installing OCSP responder certificates", "err", err)
	}
}

// newLinter is the pre-signing linter every signing role uses.
func newLinter() (*linter.Linter, error) { return linter.New(linter.Config{}) }

// apiRoutes are the route groups of the API listener's request metrics.
var apiRoutes = []string{"api", "review", "admin", "portal", "healthz", "metrics"}

// withAPIMetrics counts the API listener's requests by route group.
func withAPIMetrics(h http.Handler, reg prometheus.Registerer) (http.Handler, error) {
	m, err := httpmetrics.New(httpmetrics.Config{Server: "api", Routes: apiRoutes}, func(r *http.Request) string {
		p := r.URL.Path
		switch {
		case strings.HasPrefix(p, "/api/v1/review/"):
			return "review"
		case strings.HasPrefix(p, "/api/v1/admin/"):
			return "admin"
		case strings.HasPrefix(p, "/api/"):
			return "api"
		case p == "/healthz":
			return "healthz"
		case p == "/metrics":
			return "metrics"
		}
		return "portal"
	}, reg)
	if err != nil {
		return nil, err
	}
	return m.Wrap(h), nil
}

// sharedSecret returns a 32-byte random secret kept in the store under
// key, creating it on first use; every instance of a plant gets the same.
func sharedSecret(ctx context.Context, st store.Store, key string) ([]byte, error) {
	for range 2 {
		b, err := st.Meta(ctx, key)
		if err == nil && len(b) == 32 {
			return b, nil
		}
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return nil, fmt.Errorf("store: reading %s: %w", key, err)
		}
		b = make([]byte, 32)
		rand.Read(b)
		if err := st.InsertMeta(ctx, key, b); err == nil {
			return b, nil
		} else if !errors.Is(err, store.ErrDuplicate) {
			return nil, fmt.Errorf("store: writing %s: %w", key, err)
		}
	}
	return nil, fmt.Errorf("store: %s is not a 32-byte secret", key)
}
