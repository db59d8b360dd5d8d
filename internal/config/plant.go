package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/trustline/trustline/issuer/ratelimit"
)

// Plant is the one configuration file every production role reads
// (`trustline api|presigner|responder|crlgen|origin --config FILE`),
// written by `trustline init` as DIR/trustline.yaml. Each role uses the
// part it needs: the responder only Redis and the OCSP URL's path, the
// origin the store and the CRL URL's path, the signing roles the keys.
type Plant struct {
	// Postgres holds all CA state, the hierarchy included
	// (postgres://user@host:port/db?sslmode=disable).
	Postgres string `yaml:"postgres"`
	// Redis is a single Redis node (redis://host:port/db); RedisCluster
	// a Redis Cluster in go-redis's cluster URL form
	// (redis://h1:p1?addr=h2:p2&addr=h3:p3). Exactly one is set.
	Redis        string `yaml:"redis"`
	RedisCluster string `yaml:"redis_cluster"`
	// RedisPrefix starts every key the plant writes, so that several
	// plants (or a plant and dev runs) can share one Redis.
	RedisPrefix string `yaml:"redis_prefix"`
	// KeysDir holds the CA and responder private keys as files (mode
	// 0600) when no HSM is configured. Relative paths are relative to the
	// configuration file.
	KeysDir string `yaml:"keys_dir"`
	// HSM, when Module is set, holds every CA and responder key.
	HSM HSM `yaml:"hsm"`
	// Public are the URLs written into certificates and CRLs.
	Public PublicURLs `yaml:"public"`
	// DevURLs lifts the public URL rules (http, a DNS name): for a plant
	// tried on loopback only, never for one whose certificates are
	// trusted.
	DevURLs bool `yaml:"dev_urls"`
	// CRL configures the CRL generators.
	CRL PlantCRL `yaml:"crl"`
	// Presign configures the pre-signers. Its hash_algs must keep sha1
	// and sha256: the plant's responders hold no key to sign the others.
	Presign Presign `yaml:"presign"`
	// Validation configures the domain validation methods (api role).
	Validation Validation `yaml:"validation"`
	// ACME configures the ACME server (api role).
	ACME ACME `yaml:"acme"`
	// CT configures Certificate Transparency (api role); off without
	// ct.log_list.
	CT CT `yaml:"ct"`
	// TrustedProxies are the networks of the proxies and load balancers in
	// front of the api instances whose X-Forwarded-For is believed (api;
	// docs/security.md). Empty: the TCP peer is the client.
	TrustedProxies []string `yaml:"trusted_proxies"`
	// Certificates holds the CA's choices for every certificate (api).
	Certificates Certificates `yaml:"certificates"`
	// DualControl makes a second admin approve every reviewer and admin
	// role an admin asks for (api; docs/security.md). On by default; off
	// only for a plant one person tries alone.
	DualControl bool `yaml:"dual_control"`
	// RateLimits bound sign-ups, failed sign-ins, validations, validation
	// mails and orders, counted in the store so that every api instance
	// shares them (api; docs/security.md).
	RateLimits ratelimit.Config `yaml:"rate_limits"`
	// MailDir, when set, delivers mail as files there (as dev mode does);
	// otherwise SMTP.Addr must be set for the api role.
	MailDir string `yaml:"mail_dir"`
	SMTP    SMTP   `yaml:"smtp"`
	// Purge names the caches and webhook told of new CRLs and
	// revocations.
	Purge Purge `yaml:"purge"`
	// Watch configures the watch role: what it fetches besides the public
	// URLs, how often, and what the plant promises.
	Watch Watch `yaml:"watch"`
	// TLS, when both files are set, serves the api role over HTTPS; the
	// files are re-read on SIGHUP.
	TLS TLS `yaml:"tls"`
	// Log is "text" or "json"; LogLevel is debug, info, warn or error.
	Log      string `yaml:"log"`
	LogLevel string `yaml:"log_level"`
	// ShutdownTimeout bounds a clean stop after SIGINT/SIGTERM.
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`
}

// Watch configures `trustline watch` (docs/operations.md): it checks what
// relying parties receive at the public URLs, and the same objects at each
// responder and origin, against the store.
type Watch struct {
	// Responders are each responder's OCSP URL (as the public OCSP URL,
	// on the responder's address), Origins each origin's base URL (it
	// serves every CRL at its path under the public CRL URL).
	Responders []string `yaml:"responders"`
	Origins    []string `yaml:"origins"`
	// Interval between rounds; 0 means 1 minute.
	Interval time.Duration `yaml:"interval"`
	// Sample is how many certificates of each kind (newest issued, newest
	// revoked, a uniform draw) a round checks; 0 means 20.
	Sample int `yaml:"sample"`
	// OCSPRevocationDelay is how soon after a revocation every OCSP URL
	// must answer revoked; 0 means 1 minute (the pre-signer writes at
	// once, caches are purged).
	OCSPRevocationDelay time.Duration `yaml:"ocsp_revocation_delay"`
	// CRLRevocationDelay is how soon every shard must list it; 0 means
	// crl.revocation_delay plus 1 minute.
	CRLRevocationDelay time.Duration `yaml:"crl_revocation_delay"`
	// Retention is how long findings are kept; 0 means 90 days.
	Retention time.Duration `yaml:"retention"`
}

func (w Watch) check(bad func(key, format string, args ...any)) {
	for _, u := range append(append([]string(nil), w.Responders...), w.Origins...) {
		if p, err := url.Parse(u); err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
			bad("watch", "%q is not an http(s) URL", u)
		}
	}
	if w.Interval < 0 || w.Sample < 0 || w.OCSPRevocationDelay < 0 || w.CRLRevocationDelay < 0 || w.Retention < 0 {
		bad("watch", "interval, sample, delays and retention must not be negative")
	}
	if w.Interval != 0 && w.Interval < time.Second {
		bad("watch.interval", "%v: at least a second", w.Interval)
	}
}

// PublicURLs are how the world reaches the plant (BR §7.1.2.7.7,
// §7.1.2.11.2: http URLs with a DNS name).
type PublicURLs struct {
	// OCSP is the AIA id-ad-ocsp URL exactly ("http://ocsp.example.com/");
	// responders answer at its path.
	OCSP string `yaml:"ocsp_url"`
	// CRL is the CRL base URL, no trailing slash: shard s of issuer i is
	// <CRL>/<i>/<s>.crl, and issuer certificates are <CRL>/<i>.cer
	// (caIssuers) unless CAIssuers is set. Origins serve each object at
	// the path it has under this URL.
	CRL string `yaml:"crl_url"`
	// CAIssuers is the base URL of issuer certificates (<CAIssuers>/<i>.cer);
	// default: CRL.
	CAIssuers string `yaml:"ca_issuers_url"`
	// API is where subscribers reach the API and portal (links in mail).
	API string `yaml:"api_url"`
}

// PlantCRL configures the CRL generators.
type PlantCRL struct {
	// Shards per intermediate, [1, 4096]; changing it moves no issued
	// certificate.
	Shards int `yaml:"shards"`
	// Period is the fixed republication period, at most 7 days (BR §4.9.7).
	Period time.Duration `yaml:"period"`
	// RevocationDelay bounds how long after a revocation its shard is
	// republished, at most 24 h (BR §4.9.7).
	RevocationDelay time.Duration `yaml:"revocation_delay"`
	// Validity is nextUpdate − thisUpdate, at most 10 days (BR §4.9.7).
	Validity time.Duration `yaml:"validity"`
}

// TLS names a certificate and key file for an HTTPS listener.
type TLS struct {
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
}

// DefaultPlant returns the defaults of a plant configuration.
func DefaultPlant() Plant {
	return Plant{
		KeysDir:     "keys",
		DualControl: true,
		RateLimits:  ratelimit.Defaults(),
		// Written out by trustline init, so that operators see the
		// profiles they offer (a nil list would be written as []: none).
		ACME:            ACME{Profiles: DefaultACMEProfiles()},
		RedisPrefix:     "trustline:ocsp:",
		Log:             "json",
		LogLevel:        "info",
		ShutdownTimeout: 20 * time.Second,
		CRL:             PlantCRL{Shards: 16, Period: time.Hour, RevocationDelay: 5 * time.Minute, Validity: 7 * 24 * time.Hour},
		Presign:         DefaultPresign(),
		HSM:             HSM{Sessions: 4},
	}
}

// LoadPlant reads path over the defaults, strictly.
func LoadPlant(path string) (Plant, error) {
	cfg := DefaultPlant()
	if err := decodeFile(path, &cfg); err != nil {
		return Plant{}, err
	}
	// Relative paths are relative to the configuration file.
	base := filepath.Dir(path)
	for _, p := range []*string{&cfg.KeysDir, &cfg.MailDir, &cfg.HSM.PINFile, &cfg.TLS.CertFile, &cfg.TLS.KeyFile} {
		if *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(base, *p)
		}
	}
	cfg.Validation.Perspectives.resolve(base)
	cfg.Certificates.resolve(base)
	cfg.CT.resolve(base)
	return cfg, nil
}

// ReadPIN fills HSM.PIN from HSM.PINFile; only the roles that sign call
// it, so the responder and origin need no PIN file.
func (c *Plant) ReadPIN() error { return c.HSM.ReadPIN() }

// ReadPIN fills PIN from PINFile when no PIN is set.
func (h *HSM) ReadPIN() error {
	if h.PIN != "" || h.PINFile == "" {
		return nil
	}
	b, err := os.ReadFile(h.PINFile)
	if err != nil {
		return fmt.Errorf("config: hsm.pin_file: %w", err)
	}
	h.PIN = strings.TrimSpace(string(b))
	return nil
}

// PINEnv is the environment variable a PIN may come from instead; it is
// cleared once read, so that child processes and /proc/PID/environ do not
// keep it.
const PINEnv = "TRUSTLINE_HSM_PIN"

// PINFromEnv fills PIN from PINEnv when no PIN is set, and clears PINEnv
// whether or not it was used.
func (h *HSM) PINFromEnv() {
	if h.PIN == "" {
		h.PIN = os.Getenv(PINEnv)
	}
	os.Unsetenv(PINEnv)
}

// Validate checks every field and returns all problems at once.
func (c Plant) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("config: %s: %s", key, fmt.Sprintf(format, args...)))
	}
	if u, err := url.Parse(c.Postgres); c.Postgres == "" || err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		bad("postgres", "want a postgres:// URL: a plant keeps its state in PostgreSQL")
	}
	switch {
	case c.Redis == "" && c.RedisCluster == "":
		bad("redis", "set redis or redis_cluster: the responses live in Redis")
	case c.Redis != "" && c.RedisCluster != "":
		bad("redis_cluster", "set redis or redis_cluster, not both")
	}
	for key, v := range map[string]string{"redis": c.Redis, "redis_cluster": c.RedisCluster} {
		if v == "" {
			continue
		}
		if u, err := url.Parse(v); err != nil || (u.Scheme != "redis" && u.Scheme != "rediss") {
			bad(key, "want a redis:// or rediss:// URL")
		}
	}
	if c.RedisPrefix == "" || strings.ContainsAny(c.RedisPrefix, " {}") {
		bad("redis_prefix", "%q: must be set, without spaces or braces", c.RedisPrefix)
	}
	if c.HSM.Module != "" {
		if c.HSM.Token == "" {
			bad("hsm.token", "must be set with hsm.module")
		}
		if c.HSM.Sessions < 1 || c.HSM.Sessions > 256 {
			bad("hsm.sessions", "%d out of range [1, 256]", c.HSM.Sessions)
		}
		if c.HSM.ProbeInterval < 0 || c.HSM.ProbeInterval > time.Minute {
			bad("hsm.probe_interval", "%v out of range [0, 1m]", c.HSM.ProbeInterval)
		}
	} else if c.KeysDir == "" {
		bad("keys_dir", "must be set when no hsm.module is")
	}
	errs = append(errs, PublicURLErrors(c.Public, c.DevURLs)...)
	c.Presign.check(bad)
	if len(c.Presign.HashAlgs) < 2 || c.Presign.HashAlgs[0] != "sha1" || c.Presign.HashAlgs[1] != "sha256" {
		bad("presign.hash_algs", "%v: a plant pre-signs sha1 and sha256, in that order (its responders hold no key to sign them on demand)", c.Presign.HashAlgs)
	}
	if c.CRL.Shards < 1 || c.CRL.Shards > 4096 {
		bad("crl.shards", "%d out of range [1, 4096]", c.CRL.Shards)
	}
	if c.CRL.Period <= 0 || c.CRL.Period > 7*24*time.Hour {
		bad("crl.period", "%s out of range (0, 7 days] (BR 4.9.7)", c.CRL.Period)
	}
	if c.CRL.RevocationDelay <= 0 || c.CRL.RevocationDelay > 24*time.Hour {
		bad("crl.revocation_delay", "%s out of range (0, 24 hours] (BR 4.9.7)", c.CRL.RevocationDelay)
	}
	if c.CRL.Validity <= c.CRL.Period || c.CRL.Validity > 10*24*time.Hour {
		bad("crl.validity", "%s must exceed crl.period and be at most 10 days (BR 4.9.7)", c.CRL.Validity)
	}
	c.Validation.check(bad)
	c.ACME.check(bad)
	c.CT.check(bad)
	c.Watch.check(bad)
	checkProxies(c.TrustedProxies, bad)
	if err := c.RateLimits.Validate(); err != nil {
		bad("rate_limits", "%v", err)
	}
	c.SMTP.check(bad)
	if c.MailDir == "" && c.SMTP.Addr == "" {
		bad("mail_dir", "set mail_dir or smtp.addr: the api role mails validation codes and notices")
	}
	if (c.TLS.CertFile == "") != (c.TLS.KeyFile == "") {
		bad("tls", "cert_file and key_file go together")
	}
	for i, u := range c.Purge.Caches {
		if pu, err := url.Parse(u); err != nil || (pu.Scheme != "http" && pu.Scheme != "https") || pu.Host == "" {
			bad(fmt.Sprintf("purge.caches[%d]", i), "%q is not an http(s) URL", u)
		}
	}
	checkLog(c.Log, c.LogLevel, bad)
	if c.ShutdownTimeout <= 0 || c.ShutdownTimeout > 5*time.Minute {
		bad("shutdown_timeout", "%s out of range (0, 5 minutes]", c.ShutdownTimeout)
	}
	return errors.Join(errs...)
}

// PublicURLErrors checks the public URLs: each an absolute URL without
// query or fragment; OCSP ends in "/"; CRL and CAIssuers do not. Unless
// dev is set they must be http (BR §7.1.2.7.7 for AIA, §7.1.2.11.2 for
// CRL distribution points) with a DNS name that is not an IP address or
// an internal name (BR §7.1.2.7.7 forbids neither explicitly for these
// URLs, but a relying party on the Internet must reach them).
func PublicURLErrors(p PublicURLs, dev bool) []error {
	var errs []error
	check := func(key, v string, trailingSlash, required bool) {
		if v == "" {
			if required {
				errs = append(errs, fmt.Errorf("config: public.%s: must be set", key))
			}
			return
		}
		u, err := url.Parse(v)
		if err != nil || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
			errs = append(errs, fmt.Errorf("config: public.%s: %q is not an absolute URL without query, fragment or user", key, v))
			return
		}
		if strings.HasSuffix(u.Path, "/") != trailingSlash && !(trailingSlash && u.Path == "") {
			if trailingSlash {
				errs = append(errs, fmt.Errorf("config: public.%s: %q must end in /", key, v))
			} else {
				errs = append(errs, fmt.Errorf("config: public.%s: %q must not end in /", key, v))
			}
		}
		if dev {
			if u.Scheme != "http" && u.Scheme != "https" {
				errs = append(errs, fmt.Errorf("config: public.%s: %q: want http", key, v))
			}
			return
		}
		if u.Scheme != "http" && key != "api_url" {
			errs = append(errs, fmt.Errorf("config: public.%s: %q: relying parties fetch it over plain http (BR 7.1.2.7.7, 7.1.2.11.2)", key, v))
		}
		if key == "api_url" && u.Scheme != "https" && u.Scheme != "http" {
			errs = append(errs, fmt.Errorf("config: public.api_url: %q: want https (or http)", v))
		}
		if msg := notPublicHost(u.Hostname()); msg != "" {
			errs = append(errs, fmt.Errorf("config: public.%s: %q: %s (set dev_urls for a plant tried on loopback)", key, v, msg))
		}
	}
	check("ocsp_url", p.OCSP, true, true)
	check("crl_url", p.CRL, false, true)
	check("ca_issuers_url", p.CAIssuers, false, false)
	check("api_url", p.API, false, false)
	return errs
}

// notPublicHost says why host cannot be a public DNS name, or "".
func notPublicHost(host string) string {
	if net.ParseIP(host) != nil {
		return "an IP address, not a DNS name"
	}
	h := strings.ToLower(strings.TrimSuffix(host, "."))
	if !strings.Contains(h, ".") {
		return "an internal name (no dot)"
	}
	for _, suffix := range []string{".local", ".localhost", ".internal", ".lan", ".home.arpa", ".corp", ".invalid", ".test"} {
		if strings.HasSuffix(h, suffix) || h == strings.TrimPrefix(suffix, ".") {
			return "an internal name (" + suffix + ")"
		}
	}
	return ""
}

// CAIssuersBase returns the base URL of issuer certificates.
func (p PublicURLs) CAIssuersBase() string {
	if p.CAIssuers != "" {
		return p.CAIssuers
	}
	return p.CRL
}
