// Package config reads Trustline's configuration: one YAML file, decoded
// strictly (an unknown or misspelt key is an error), then overridden by
// command-line flags, then checked by Validate with messages that name the
// key and the rule it broke.
//
// Dev is the configuration of `trustline dev`, the all-in-one process
// (CONTRACT.md). Each production role gets its own struct here as it is
// built. Only cmd/ imports this package; the parts it configures take their
// own Config structs, filled in by cmd/.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/trustline/trustline/internal/clientip"
	"github.com/trustline/trustline/internal/ocspcodec"
	"github.com/trustline/trustline/issuer/ratelimit"
)

// MaxFileSize bounds a configuration file; anything larger is a mistake.
const MaxFileSize = 1 << 20

// Dev configures `trustline dev`.
type Dev struct {
	// DataDir holds the SQLite store, the dev PKI, the API keys and mail.
	DataDir string `yaml:"data_dir"`
	// DualControl makes a second admin approve every reviewer and admin
	// role an admin asks for (docs/security.md). Off by default in dev, where
	// one person plays every part; on in a plant.
	DualControl bool `yaml:"dual_control"`
	// RateLimits bound sign-ups, failed sign-ins, validations, validation
	// mails and orders per source, account, domain or address; a zero
	// field is its default, max -1 turns a rule off (docs/security.md).
	RateLimits ratelimit.Config `yaml:"rate_limits"`
	// TrustedProxies are the networks (CIDRs) of reverse proxies and load
	// balancers in front of the api listener whose X-Forwarded-For is
	// believed, so that rate limits count clients, not the proxy
	// (docs/security.md). Empty: the TCP peer is the client.
	TrustedProxies []string `yaml:"trusted_proxies"`
	// Listen addresses (host:port). Each listener answers GET /healthz.
	API  string `yaml:"api"`
	OCSP string `yaml:"ocsp"`
	CRL  string `yaml:"crl"`
	// DebugAddr, when set, serves Go's profiler (net/http/pprof) there:
	// a loopback address only, for profiling a run.
	DebugAddr string `yaml:"debug_addr"`
	// Postgres, when set, replaces the embedded SQLite store
	// (postgres://user@host:port/db?sslmode=disable).
	Postgres string `yaml:"postgres"`
	// Redis, when set, replaces the in-process OCSP response cache
	// (redis://host:port/db).
	Redis string `yaml:"redis"`
	// MemoryCacheMB bounds the in-process OCSP response cache, in MiB
	// (ignored with Redis). Past it the cache drops responses and the
	// responder signs what it misses live.
	MemoryCacheMB int `yaml:"memory_cache_mb"`
	// Presign configures the OCSP pre-signer.
	Presign Presign `yaml:"presign"`
	// HSM, when Module is set, holds every CA and responder private key.
	HSM HSM `yaml:"hsm"`
	// Log is "text" or "json"; LogLevel is debug, info, warn or error.
	Log      string `yaml:"log"`
	LogLevel string `yaml:"log_level"`
	// ShutdownTimeout bounds a clean stop after SIGINT/SIGTERM.
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`
	// CRLPeriod is how often CRLs are republished; dev mode keeps it
	// ≤ 60 s so revocations show quickly (CONTRACT.md).
	CRLPeriod time.Duration `yaml:"crl_period"`
	// CRLShards is the number of CRL shards per intermediate. Changing it
	// moves no existing certificate (the shard is fixed at issuance).
	CRLShards int `yaml:"crl_shards"`
	// Validation configures the domain validation methods.
	Validation Validation `yaml:"validation"`
	// ACME configures the ACME server on the api listener.
	ACME ACME `yaml:"acme"`
	// CT configures Certificate Transparency; off without ct.log_list.
	CT CT `yaml:"ct"`
	// Certificates holds the CA's choices for every certificate it issues.
	Certificates Certificates `yaml:"certificates"`
	// SMTP, when Addr is set, sends mail through a relay instead of
	// writing it to DATA/mail/.
	SMTP SMTP `yaml:"smtp"`
	// Purge names the caches (Varnish and the like) in front of the CRL
	// origin and the OCSP responder, and a webhook, to tell of new CRLs and
	// revocations.
	Purge Purge `yaml:"purge"`
}

// Purge configures cache purging.
type Purge struct {
	// Caches receive PURGE <crl path> after each publication and BAN with
	// Surrogate-Key ocsp-<serial> after each revocation
	// ("http://127.0.0.1:6081").
	Caches []string `yaml:"caches"`
	// Webhook receives a JSON POST for each of the same events.
	Webhook string `yaml:"webhook"`
}

// Validation configures dns-txt, http-token and whois-email.
type Validation struct {
	// Resolver is the DNS resolver (host:port) dns-txt and http-token use;
	// empty turns both methods off.
	Resolver string `yaml:"resolver"`
	// WhoisEmail turns on the seed's WHOIS-contact email method, which the
	// BR no longer accept (2025); off by default.
	WhoisEmail  bool   `yaml:"whois_email"`
	WhoisServer string `yaml:"whois_server"`
	// AllowPrivateAddresses lets http-token reach loopback and private
	// addresses: for local testing only.
	AllowPrivateAddresses bool `yaml:"allow_private_addresses"`
	// TestHTTPPort and TestHTTPSPort replace ports 80 and 443 where
	// http-token and the ACME http-01 and tls-alpn-01 challenges connect,
	// so that a client on loopback can answer without binding a
	// privileged port. For tests only: they need allow_private_addresses,
	// and a CA whose certificates are trusted connects to the BR's
	// Authorized Ports alone (BR 1.6.1).
	TestHTTPPort  int `yaml:"test_http_port"`
	TestHTTPSPort int `yaml:"test_https_port"`
	// CAAIdentities are the issuer domain names that mean this CA in CAA
	// records (RFC 8659), e.g. [trustline.example]. Set, every name of
	// every order is checked against its CAA records through Resolver
	// (BR 3.2.2.8: required for publicly trusted certificates); empty
	// turns CAA checking off, and the api role says so at start.
	CAAIdentities []string `yaml:"caa_identities"`
	// Perspectives are the remote network perspectives that corroborate
	// every dns-txt and http-token validation and CAA check (BR 3.2.2.9);
	// none configured: this process is the only perspective, and the api
	// role says so at start.
	Perspectives Perspectives `yaml:"perspectives"`
}

// ACME configures the ACME server (RFC 8555) the api listener serves under
// /acme/ (docs/acme.md). Its challenges need validation.resolver.
type ACME struct {
	// ExternalAccountRequired makes every new ACME account present an
	// external account binding key made for a Trustline account
	// (RFC 8555 §7.3.4). Off, an ACME account without one gets a
	// subscriber account of its own.
	ExternalAccountRequired bool `yaml:"external_account_required"`
	// TermsOfService, if set, is the URL of the terms new ACME accounts
	// must agree to; Website is shown in the directory.
	TermsOfService string `yaml:"terms_of_service"`
	Website        string `yaml:"website"`
	// BaseURL is the URL ACME clients reach the api at, when it is not the
	// api's own public URL: the https URL of a TLS-terminating proxy in
	// front of it (RFC 8555 §6.1 requires HTTPS, and many clients refuse
	// http). Default: the api's public URL.
	BaseURL string `yaml:"base_url"`
	// Profiles are the certificate profiles ACME orders may name
	// (draft-ietf-acme-profiles), the first the default. Unset: "classic"
	// (the CA's default validity) and "shortlived" (6 days, a short-lived
	// certificate in BR 7.1.2.11.2's sense); [] offers none.
	Profiles []ACMEProfile `yaml:"profiles"`
}

// ACMEProfile is one ACME certificate profile.
type ACMEProfile struct {
	Name        string `yaml:"name"`
	Description string `yaml:"description"`
	// Validity of its certificates; 0 is the CA's default. At least a day;
	// BR §6.3.2's maximum caps it.
	Validity time.Duration `yaml:"validity"`
}

// DefaultACMEProfiles are offered when acme.profiles is unset.
func DefaultACMEProfiles() []ACMEProfile {
	return []ACMEProfile{
		{Name: "classic", Description: "DV, the CA's usual validity"},
		{Name: "shortlived", Description: "DV, valid 6 days (a short-lived certificate, BR 7.1.2.11.2)", Validity: 6 * 24 * time.Hour},
	}
}

// CT configures Certificate Transparency (RFC 6962; docs/ct.md): with a
// log list, every certificate is logged as a precertificate first and
// signed with the SCTs embedded.
type CT struct {
	// LogList is a CT log list file in the v3 JSON format Chrome
	// publishes (its usable and qualified logs are used); "" turns CT off.
	LogList string `yaml:"log_list"`
	// MinSCTs from at least MinOperators distinct log operators make the
	// policy; 0 means 2 and 2 (Chrome's for certificates of 180 days or
	// less).
	MinSCTs      int `yaml:"min_scts"`
	MinOperators int `yaml:"min_operators"`
	// MinSCTsLong replaces MinSCTs for certificates valid longer than 180
	// days; 0 means MinSCTs + 1 (Chrome asks 3).
	MinSCTsLong int `yaml:"min_scts_long"`
	// Timeout bounds one submission to one log, retries included; 0
	// means 10 s.
	Timeout time.Duration `yaml:"timeout"`
	// BreakerFailures consecutive failures stop submissions to a log for
	// BreakerCooldown; 0 means 5 and 30 s.
	BreakerFailures int           `yaml:"breaker_failures"`
	BreakerCooldown time.Duration `yaml:"breaker_cooldown"`
}

func (c *CT) resolve(base string) {
	if c.LogList != "" && !filepath.IsAbs(c.LogList) {
		c.LogList = filepath.Join(base, c.LogList)
	}
}

// check reports what is wrong with c under the key ct.
func (c CT) check(bad func(key, format string, args ...any)) {
	if c.MinSCTs < 0 || c.MinOperators < 0 || (c.MinSCTs > 0 && c.MinOperators > c.MinSCTs) {
		bad("ct", "min_scts %d and min_operators %d: want 1 ≤ min_operators ≤ min_scts (0: 2)", c.MinSCTs, c.MinOperators)
	}
	if c.MinSCTsLong < 0 || (c.MinSCTsLong > 0 && c.MinSCTsLong < max(c.MinSCTs, 2)) {
		bad("ct.min_scts_long", "%d: want at least min_scts (0: min_scts + 1)", c.MinSCTsLong)
	}
	if c.Timeout < 0 || c.BreakerCooldown < 0 || c.BreakerFailures < 0 {
		bad("ct", "timeout, breaker_failures and breaker_cooldown must not be negative")
	}
	if c.LogList == "" && (c.MinSCTs != 0 || c.MinOperators != 0 || c.MinSCTsLong != 0) {
		bad("ct.log_list", "must be set for the policy to apply")
	}
}

// checkProxies reports trusted_proxies entries that are not networks.
func checkProxies(cidrs []string, bad func(key, format string, args ...any)) {
	if _, err := clientip.Parse(cidrs); err != nil {
		bad("trusted_proxies", "%v", err)
	}
}

// check reports what is wrong with a under the key acme.
func (a ACME) check(bad func(key, format string, args ...any)) {
	for key, v := range map[string]string{"acme.base_url": a.BaseURL, "acme.terms_of_service": a.TermsOfService, "acme.website": a.Website} {
		if v == "" {
			continue
		}
		if u, err := url.Parse(v); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (key == "acme.base_url" && strings.HasSuffix(v, "/")) {
			bad(key, "%q is not an http(s) URL (without a trailing slash)", v)
		}
	}
	seen := map[string]bool{}
	for i, p := range a.Profiles {
		key := fmt.Sprintf("acme.profiles[%d]", i)
		if p.Name == "" || seen[p.Name] || strings.ContainsAny(p.Name, " /\"\t") {
			bad(key+".name", "%q is empty, repeated or not a token", p.Name)
		}
		seen[p.Name] = true
		if p.Validity != 0 && (p.Validity < 24*time.Hour || p.Validity%time.Second != 0) {
			bad(key+".validity", "%v: at least a day, in whole seconds", p.Validity)
		}
	}
}

// Certificates are a CA's choices within what the BR allow; the zero
// value is what they recommend.
type Certificates struct {
	// CommonName puts the first name in the subject commonName too (BR
	// 7.1.2.7.2-4: NOT RECOMMENDED); for software that still reads it.
	CommonName bool `yaml:"common_name"`
	// RSAKeyEncipherment adds keyEncipherment to RSA certificates, for
	// TLS 1.2 RSA key exchange.
	RSAKeyEncipherment bool `yaml:"rsa_key_encipherment"`
	// WeakKeyFiles are lists of weak RSA keys in Debian's openssl-blacklist
	// format (CVE-2008-0166, BR 6.1.1.3), refused in every CSR; not
	// shipped with Trustline (docs/compliance.md).
	WeakKeyFiles []string `yaml:"weak_key_files"`
}

// resolve makes the weak key files relative to base.
func (c *Certificates) resolve(base string) {
	for i, f := range c.WeakKeyFiles {
		if f != "" && !filepath.IsAbs(f) {
			c.WeakKeyFiles[i] = filepath.Join(base, f)
		}
	}
}

// check reports what is wrong with v under the key validation.
func (v Validation) check(bad func(key, format string, args ...any)) {
	if v.Resolver != "" {
		if _, _, err := net.SplitHostPort(v.Resolver); err != nil {
			bad("validation.resolver", "%q is not host:port", v.Resolver)
		}
	}
	if v.WhoisEmail && v.WhoisServer == "" {
		bad("validation.whois_server", "required with validation.whois_email")
	}
	for key, port := range map[string]int{"validation.test_http_port": v.TestHTTPPort, "validation.test_https_port": v.TestHTTPSPort} {
		switch {
		case port < 0 || port > 65535:
			bad(key, "%d is not a port", port)
		case port != 0 && !v.AllowPrivateAddresses:
			bad(key, "test ports are for loopback tests only: set validation.allow_private_addresses too")
		}
	}
	if len(v.CAAIdentities) > 0 && v.Resolver == "" {
		bad("validation.caa_identities", "CAA records are read through validation.resolver: set it too")
	}
	for i, id := range v.CAAIdentities {
		if strings.TrimSpace(id) == "" || strings.ContainsAny(id, " \t;\"") {
			bad(fmt.Sprintf("validation.caa_identities[%d]", i), "%q is not a domain name", id)
		}
	}
	if v.Perspectives.On() && v.Resolver == "" {
		bad("validation.perspectives", "perspectives corroborate dns-txt, http-token and CAA checks, which need validation.resolver")
	}
	v.Perspectives.check(bad)
}

// SMTP names a mail relay.
type SMTP struct {
	Addr       string        `yaml:"addr"` // host:port
	From       string        `yaml:"from"`
	Username   string        `yaml:"username"`
	Password   string        `yaml:"password"` // never logged
	RequireTLS bool          `yaml:"require_tls"`
	Timeout    time.Duration `yaml:"timeout"`
}

// HSM names a PKCS#11 token.
type HSM struct {
	Module string `yaml:"module"` // path to the PKCS#11 library
	Token  string `yaml:"token"`  // token label
	PIN    string `yaml:"pin"`    // user PIN; never logged
	// PINFile names a file holding the PIN (read at start), so that the
	// PIN appears neither in the configuration nor on a command line.
	PINFile string `yaml:"pin_file"`
	// Sessions is the size of the session pool.
	Sessions int `yaml:"sessions"`
	// ProbeInterval is how often, while the token is unavailable, one
	// call tries it again (the others fail at once); 0 means 1 s
	// (docs/operations.md, "The HSM unreachable").
	ProbeInterval time.Duration `yaml:"probe_interval"`
}

// Presign configures the OCSP pre-signer (docs/ocsp.md).
type Presign struct {
	// HashAlgs are the CertID hash algorithms whose responses are signed
	// ahead of time for every certificate, from ocspcodec.HashAlgNames; the first is the one every certificate has. The others are
	// signed on a responder's first request and then cached: [sha1]
	// alone halves the cache's memory, and most clients ask with SHA-1
	// (RFC 5019).
	HashAlgs []string `yaml:"hash_algs"`
	// Workers is the number of signing goroutines; 0 means one per CPU
	// core (software keys) or per HSM session.
	Workers int `yaml:"workers"`
	// Lease is how long the pre-signer's leadership lasts unrenewed: a
	// leader that dies is replaced after at most this long.
	Lease time.Duration `yaml:"lease"`
}

// check reports p's problems under the key prefix "presign.".
func (p Presign) check(bad func(key, format string, args ...any)) {
	seen := map[string]bool{}
	for _, h := range p.HashAlgs {
		if _, ok := ocspcodec.ParseHashAlg(h); !ok {
			bad("presign.hash_algs", "%q is not one of %s", h, strings.Join(ocspcodec.HashAlgNames[:], ", "))
		} else if seen[h] {
			bad("presign.hash_algs", "%q listed twice", h)
		}
		seen[h] = true
	}
	if p.HashAlgs != nil && len(p.HashAlgs) == 0 {
		bad("presign.hash_algs", "must name at least one algorithm")
	}
	if p.Workers < 0 || p.Workers > 1024 {
		bad("presign.workers", "%d out of range [0, 1024]", p.Workers)
	}
	if p.Lease < 3*time.Second || p.Lease > time.Hour {
		bad("presign.lease", "%v out of range [3s, 1h]", p.Lease)
	}
}

// DefaultPresign returns the pre-signer's defaults.
func DefaultPresign() Presign {
	return Presign{HashAlgs: []string{"sha1", "sha256"}, Lease: 30 * time.Second}
}

// DefaultDev returns the defaults CONTRACT.md gives for `trustline dev`.
func DefaultDev() Dev {
	return Dev{
		DataDir:         "./var/dev",
		API:             "127.0.0.1:8080",
		OCSP:            "127.0.0.1:8081",
		CRL:             "127.0.0.1:8082",
		Log:             "text",
		LogLevel:        "info",
		ShutdownTimeout: 10 * time.Second,
		CRLPeriod:       30 * time.Second,
		CRLShards:       4,
		MemoryCacheMB:   512,
		Presign:         DefaultPresign(),
		HSM:             HSM{Sessions: 4},
	}
}

// LoadDev reads path over the defaults. Unknown keys, a second YAML
// document, and files over MaxFileSize are errors.
func LoadDev(path string) (Dev, error) {
	cfg := DefaultDev()
	if err := decodeFile(path, &cfg); err != nil {
		return Dev{}, err
	}
	cfg.Validation.Perspectives.resolve(filepath.Dir(path))
	cfg.Certificates.resolve(filepath.Dir(path))
	cfg.CT.resolve(filepath.Dir(path))
	if f := cfg.HSM.PINFile; f != "" && !filepath.IsAbs(f) {
		cfg.HSM.PINFile = filepath.Join(filepath.Dir(path), f)
	}
	return cfg, nil
}

func decodeFile(path string, into any) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return fmt.Errorf("config: reading %s: %w", path, err)
	}
	if len(b) > MaxFileSize {
		return fmt.Errorf("config: %s is larger than %d bytes", path, MaxFileSize)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(into); err != nil {
		if errors.Is(err, io.EOF) {
			return nil // an empty file keeps the defaults
		}
		return fmt.Errorf("config: %s: %s", path, oneLine(err.Error()))
	}
	var extra any
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return fmt.Errorf("config: %s: holds more than one YAML document", path)
	}
	return nil
}

// oneLine folds yaml's multi-line messages so a start-up error stays one line.
func oneLine(s string) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(s, "\n", "; ")), " ")
}

// Validate checks every field and returns all problems at once, one per
// line of the error, each naming its key.
func (c Dev) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("config: %s: %s", key, fmt.Sprintf(format, args...)))
	}
	if err := c.RateLimits.Validate(); err != nil {
		bad("rate_limits", "%v", err)
	}
	if c.DataDir == "" {
		bad("data_dir", "must be set")
	}
	seen := map[string]string{}
	for _, l := range []struct{ key, addr string }{{"api", c.API}, {"ocsp", c.OCSP}, {"crl", c.CRL}} {
		if err := checkListen(l.addr); err != nil {
			bad(l.key, "%v", err)
			continue
		}
		if other, dup := seen[l.addr]; dup && !strings.HasSuffix(l.addr, ":0") {
			bad(l.key, "%s is also the %s address", l.addr, other)
		}
		seen[l.addr] = l.key
	}
	if c.Postgres != "" {
		if u, err := url.Parse(c.Postgres); err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
			bad("postgres", "want a postgres:// URL")
		}
	}
	if c.Redis != "" {
		if u, err := url.Parse(c.Redis); err != nil || (u.Scheme != "redis" && u.Scheme != "rediss") {
			bad("redis", "want a redis:// or rediss:// URL")
		}
	}
	if c.DebugAddr != "" {
		if err := checkListen(c.DebugAddr); err != nil {
			bad("debug_addr", "%v", err)
		} else if host, _, _ := net.SplitHostPort(c.DebugAddr); host != "localhost" && !net.ParseIP(host).IsLoopback() {
			bad("debug_addr", "%q: the profiler listens on a loopback address only", c.DebugAddr)
		}
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
	} else if c.HSM.Token != "" || c.HSM.PIN != "" {
		bad("hsm.module", "must be set with hsm.token and hsm.pin")
	}
	checkLog(c.Log, c.LogLevel, bad)
	if c.ShutdownTimeout <= 0 || c.ShutdownTimeout > 5*time.Minute {
		bad("shutdown_timeout", "%v out of range (0, 5m]", c.ShutdownTimeout)
	}
	if c.CRLPeriod < time.Second || c.CRLPeriod > time.Minute {
		bad("crl_period", "%v out of range [1s, 60s]: dev mode publishes CRLs within a minute", c.CRLPeriod)
	}
	if c.MemoryCacheMB < 4 || c.MemoryCacheMB > 1<<20 {
		bad("memory_cache_mb", "%d out of range [4, 1048576]", c.MemoryCacheMB)
	}
	c.Presign.check(bad)
	if c.CRLShards < 1 || c.CRLShards > 4096 {
		bad("crl_shards", "%d out of range [1, 4096]", c.CRLShards)
	}
	c.Validation.check(bad)
	c.ACME.check(bad)
	c.CT.check(bad)
	checkProxies(c.TrustedProxies, bad)
	for i, u := range c.Purge.Caches {
		if pu, err := url.Parse(u); err != nil || (pu.Scheme != "http" && pu.Scheme != "https") || pu.Host == "" {
			bad(fmt.Sprintf("purge.caches[%d]", i), "%q is not an http(s) URL", u)
		}
	}
	if c.Purge.Webhook != "" {
		if pu, err := url.Parse(c.Purge.Webhook); err != nil || (pu.Scheme != "http" && pu.Scheme != "https") || pu.Host == "" {
			bad("purge.webhook", "%q is not an http(s) URL", c.Purge.Webhook)
		}
	}
	c.SMTP.check(bad)
	return errors.Join(errs...)
}

// badFunc records that key broke a rule: Validate's bad.
type badFunc func(key, format string, args ...any)

// checkLog checks log and log_level, which every process has.
func checkLog(format, level string, bad badFunc) {
	switch format {
	case "text", "json":
	default:
		bad("log", "%q: want text or json", format)
	}
	switch level {
	case "debug", "info", "warn", "error":
	default:
		bad("log_level", "%q: want debug, info, warn or error", level)
	}
}

// check checks smtp.*: an address, when set, is host:port and needs a
// sender.
func (s SMTP) check(bad badFunc) {
	if s.Addr == "" {
		return
	}
	if _, _, err := net.SplitHostPort(s.Addr); err != nil {
		bad("smtp.addr", "%q is not host:port", s.Addr)
	}
	if s.From == "" {
		bad("smtp.from", "required with smtp.addr")
	}
}

func checkListen(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q is not host:port", addr)
	}
	if host != "" && host != "localhost" && net.ParseIP(host) == nil {
		return fmt.Errorf("%q: listen host must be an IP address or localhost", addr)
	}
	if _, err := net.LookupPort("tcp", port); err != nil {
		return fmt.Errorf("%q: bad port", addr)
	}
	return nil
}

// CAInit configures `trustline ca init`, the production key ceremony:
// every key is generated in the HSM; certificates, pki.json and a JSON
// summary are written to Out.
type CAInit struct {
	Out          string `yaml:"out"`
	HSM          HSM    `yaml:"hsm"`
	Organization string `yaml:"organization"`
	Country      string `yaml:"country"`
	CommonPrefix string `yaml:"common_prefix"`
	RootKeyAlg   string `yaml:"root_key_alg"`
	Issuers      []struct {
		ID     string `yaml:"id"`
		KeyAlg string `yaml:"key_alg"`
	} `yaml:"issuers"`
	// BaseURL is the CRL origin the intermediates' CRL distribution point
	// and caIssuers name.
	BaseURL string `yaml:"base_url"`
	// ResponderValidity is the delegated OCSP responder certificates'
	// lifetime, [24h, 2160h].
	ResponderValidity time.Duration `yaml:"responder_validity"`
}

// LoadCAInit reads a ceremony file strictly.
func LoadCAInit(path string) (CAInit, error) {
	c := CAInit{HSM: HSM{Sessions: 2}, RootKeyAlg: "ecdsa-p384", ResponderValidity: 30 * 24 * time.Hour, Country: "US"}
	if err := decodeFile(path, &c); err != nil {
		return CAInit{}, err
	}
	return c, nil
}

// Validate checks the ceremony file; key algorithms and issuer ids are
// checked again by the PKI code.
func (c CAInit) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("config: %s: %s", key, fmt.Sprintf(format, args...)))
	}
	if c.Out == "" {
		bad("out", "must be set")
	}
	if c.HSM.Module == "" || c.HSM.Token == "" {
		bad("hsm", "module and token are required: a ceremony keeps every key in the HSM")
	}
	if c.Organization == "" || c.CommonPrefix == "" {
		bad("organization", "organization and common_prefix are required")
	}
	if len(c.Issuers) == 0 {
		bad("issuers", "at least one intermediate is required")
	}
	if u, err := url.Parse(c.BaseURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		bad("base_url", "want an http(s) URL of the CRL origin")
	}
	return errors.Join(errs...)
}
