package main

import (
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/trustline/trustline/internal/cli"
	"github.com/trustline/trustline/internal/config"
	"github.com/trustline/trustline/internal/issuerid"
	"github.com/trustline/trustline/internal/keyfile"
	"github.com/trustline/trustline/internal/store"
	"github.com/trustline/trustline/internal/store/storeopen"
	"github.com/trustline/trustline/issuer"
	"github.com/trustline/trustline/issuer/pki"
)

// runInit: `trustline init` creates a plant: the CA hierarchy (keys under
// DIR/keys or in a PKCS#11 token) recorded in the store, DIR/trustline.yaml,
// the first admin and reviewer API keys; then says what to do next. On a
// store that already holds a hierarchy it changes nothing and fails.
func runInit(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("trustline init", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		dir          = fs.String("dir", "", "directory for trustline.yaml, keys/, ca/ and the API keys (required)")
		pg           = fs.String("postgres", "", "PostgreSQL URL of the plant's store (required)")
		rd           = fs.String("redis", "", "Redis URL (one node)")
		rdc          = fs.String("redis-cluster", "", "Redis Cluster URL: redis://h1:p1?addr=h2:p2&addr=h3:p3")
		ocspURL      = fs.String("ocsp-url", "", "public OCSP URL written into certificates, e.g. http://ocsp.example.com/ (required)")
		crlURL       = fs.String("crl-url", "", "public CRL base URL, e.g. http://crl.example.com (required)")
		apiURL       = fs.String("api-url", "", "public URL of the API and portal (links in mail)")
		hsmModule    = fs.String("hsm-module", "", "PKCS#11 module: create every CA and responder key in this token")
		hsmToken     = fs.String("hsm-token", "", "PKCS#11 token label")
		hsmPINFile   = fs.String("hsm-pin-file", "", "file holding the token's user PIN")
		smtpURL      = fs.String("smtp", "", "SMTP relay: smtp://user:password@host:port?from=ca@example.com[&require_tls=true]")
		mailDir      = fs.String("mail-dir", "", "deliver mail as files in this directory (as dev mode does)")
		resolver     = fs.String("resolver", "", "DNS resolver host:port for validation")
		devURLs      = fs.Bool("dev-urls", false, "allow IP addresses and internal names in the public URLs (a plant tried on loopback)")
		shards       = fs.Int("crl-shards", config.DefaultPlant().CRL.Shards, "CRL shards per intermediate")
		crlPeriod    = fs.Duration("crl-period", config.DefaultPlant().CRL.Period, "CRL republication period (at most 7 days)")
		crlDelay     = fs.Duration("crl-revocation-delay", config.DefaultPlant().CRL.RevocationDelay, "longest wait between a revocation and its CRL (at most 24 hours)")
		purgeCaches  multiFlag
		organization = fs.String("organization", "Trustline", "organization named in the CA certificates")
		country      = fs.String("country", "US", "ISO 3166-1 country code of the CA certificates")
		caName       = fs.String("ca-name", "Trustline", "common name prefix of the CA certificates")
	)
	rk := addRootKeyFlags(fs, true)
	fs.Var(&purgeCaches, "purge-cache", "a cache (Varnish) in front of responders and origins, told of new CRLs and revocations; repeatable")
	var caaIDs multiFlag
	fs.Var(&caaIDs, "caa-identity", "an issuer domain name meaning this CA in CAA records; every order's names are then checked (needs --resolver; docs/caa.md); repeatable")
	if err := cli.Parse(fs, args); err != nil {
		return err
	}
	if *dir == "" || *pg == "" || *ocspURL == "" || *crlURL == "" {
		return cli.Usage("init: --dir, --postgres, --ocsp-url and --crl-url are required (and --redis or --redis-cluster)")
	}
	absDir, err := filepath.Abs(*dir)
	if err != nil {
		return err
	}
	cfg := config.DefaultPlant()
	cfg.Postgres, cfg.Redis, cfg.RedisCluster = *pg, *rd, *rdc
	cfg.Public = config.PublicURLs{OCSP: *ocspURL, CRL: *crlURL, API: *apiURL}
	cfg.DevURLs = *devURLs
	cfg.CRL.Shards, cfg.CRL.Period, cfg.CRL.RevocationDelay = *shards, *crlPeriod, *crlDelay
	cfg.Purge.Caches = purgeCaches
	cfg.Validation.Resolver = *resolver
	cfg.Validation.CAAIdentities = caaIDs
	cfg.KeysDir = "keys"
	if *hsmModule != "" {
		cfg.KeysDir = ""
		cfg.HSM = config.HSM{Module: *hsmModule, Token: *hsmToken, PINFile: *hsmPINFile, Sessions: 4}
	}
	switch {
	case *smtpURL != "" && *mailDir != "":
		return cli.Usage("init: give --smtp or --mail-dir, not both")
	case *smtpURL != "":
		if cfg.SMTP, err = parseSMTPURL(*smtpURL); err != nil {
			return err
		}
	case *mailDir != "":
		cfg.MailDir = *mailDir
	default:
		cfg.MailDir = "mail"
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	cfgPath := filepath.Join(absDir, "trustline.yaml")
	if _, err := os.Stat(cfgPath); err == nil {
		return fmt.Errorf("init: %s exists: this directory belongs to a plant already", cfgPath)
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	st, err := storeopen.Open(ctx, storeopen.Config{Postgres: cfg.Postgres}, log)
	if err != nil {
		return err
	}
	defer st.Close()
	// Refuse before any key is made.
	if ok, err := pki.Recorded(ctx, st, isNotFound); err != nil {
		return err
	} else if ok {
		p, _ := pki.LoadRecorded(ctx, st, isNotFound, nil, "", pki.CertsOnly)
		fp := ""
		if p != nil {
			fp = " (root SHA-256 " + pki.Fingerprint(p.Root.Cert) + ")"
		}
		return fmt.Errorf("init: the store already holds a CA hierarchy%s; nothing was changed. To add an instance to that plant, copy its trustline.yaml and keys (docs/deployment.md, \"Joining a plant\")", fp)
	}
	if err := os.MkdirAll(absDir, 0o700); err != nil {
		return fmt.Errorf("init: %w", err)
	}
	written := cfg // the PIN stays in its file, never in the configuration
	if cfg.HSM.PINFile != "" {
		b, err := os.ReadFile(cfg.HSM.PINFile)
		if err != nil {
			return fmt.Errorf("init: --hsm-pin-file: %w", err)
		}
		cfg.HSM.PIN = strings.TrimSpace(string(b))
	}
	keysDir := filepath.Join(absDir, "keys")
	keys, keySource, closeKeys, err := openKeys(config.Dev{HSM: cfg.HSM}, absDir, log)
	if err != nil {
		return err
	}
	defer closeKeys()
	if keySource == "file" {
		keys = pki.FileKeys{Dir: keysDir}
	}
	var rootKeys pki.Keys // nil: the root key goes with the others
	if rk.given() {
		if *rk.dir != "" {
			if *rk.dir, err = filepath.Abs(*rk.dir); err != nil {
				return err
			}
		}
		var closeRoot func()
		if rootKeys, closeRoot, err = rk.open(cfg.HSM.Module, log); err != nil {
			return err
		}
		defer closeRoot()
	}
	caDir := filepath.Join(absDir, "ca")
	pcfg := pki.Config{
		Dir: caDir, Organization: *organization, Country: *country, CommonPrefix: *caName,
		RootKeyAlg: keyfile.ECDSAP384,
		Issuers: []pki.IssuerSpec{
			{ID: issuerid.ID("int-p256"), KeyAlg: keyfile.ECDSAP256},
			{ID: issuerid.ID("int-rsa2048"), KeyAlg: keyfile.RSA2048},
		},
		BaseURL: cfg.Public.CAIssuersBase(), KeySource: keySource, ResponderValidity: 30 * 24 * time.Hour,
		RootKeys: rootKeys,
	}
	p, err := pki.Create(ctx, pcfg, keys, time.Now(), rand.Reader)
	if err != nil {
		return err
	}
	if err := p.Record(ctx, st, isDuplicate); err != nil {
		if errors.Is(err, pki.ErrHierarchyExists) {
			return fmt.Errorf("init: another init recorded a hierarchy in this store first; the keys just made under %s are not used and may be deleted", keysDir)
		}
		return err
	}
	if _, err := serialPrefix(ctx, st); err != nil {
		return err
	}
	instance, err := instanceID(ctx, st)
	if err != nil {
		return err
	}
	rootNote := ""
	if p.RootOffline() {
		// The intermediates name the root's CRL: it must exist before
		// the root goes away.
		c, err := signRootCRL(ctx, st, p, cfg, rootCRLDays, processHolder(instance), nil, log)
		if err != nil {
			return fmt.Errorf("init: signing the root's first CRL: %w", err)
		}
		rootNote = fmt.Sprintf(`
The root key is in %s and no role needs it: keep it offline.
Its CRL is signed until %s; sign the next one before then, and after
revoking an intermediate, with:
  trustline ca root-crl --config %s %s
`, rk.where(), c.NextUpdate.UTC().Format("2006-01-02"), cfgPath, rootFlagsFor(rk))
	}
	accounts := issuer.NewAccounts(st, nil)
	// Two admins: under dual control (on in a plant) one asks for a
	// reviewer or admin role and the other approves.
	for name, role := range map[string]store.Role{"admin": store.RoleAdmin, "admin2": store.RoleAdmin, "reviewer": store.RoleReviewer} {
		if err := ensureKeyFile(ctx, accounts, absDir, name, role); err != nil {
			return err
		}
	}
	if err := writePlantConfig(cfgPath, written); err != nil {
		return err
	}
	fmt.Fprintf(stdout, `Trustline plant created.

  root certificate   %s
  root SHA-256       %s
  intermediates      %s
  configuration      %s
  keys               %s
  admin API key      %s
  second admin key   %s (give it to another person: dual control needs two admins)
  reviewer API key   %s

Start each role, as many instances as you need (docs/deployment.md):
  trustline api       --config %[4]s --listen 127.0.0.1:8080
  trustline presigner --config %[4]s --listen 127.0.0.1:8083
  trustline responder --config %[4]s --listen 127.0.0.1:8081
  trustline crlgen    --config %[4]s --listen 127.0.0.1:8084
  trustline origin    --config %[4]s --listen 127.0.0.1:8082
Certificates will carry OCSP %[9]s and CRLs under %[10]s.
%[11]s`, filepath.Join(caDir, "root.pem"), pki.Fingerprint(p.Root.Cert), intermediateList(p), cfgPath, keysWhere(cfg, keysDir),
		filepath.Join(absDir, "admin.key"), filepath.Join(absDir, "admin2.key"), filepath.Join(absDir, "reviewer.key"), cfg.Public.OCSP, cfg.Public.CRL, rootNote)
	return nil
}

// rootFlagsFor repeats the flags that named the offline root's key store.
func rootFlagsFor(rk rootKeyFlags) string {
	if *rk.dir != "" {
		return "--root-key-dir " + *rk.dir
	}
	s := "--root-hsm-token " + *rk.token + " --root-hsm-pin-file " + *rk.pinFile
	if *rk.module != "" {
		s += " --root-hsm-module " + *rk.module
	}
	return s
}

func intermediateList(p *pki.PKI) string {
	var ids []string
	for _, is := range p.Intermediates {
		ids = append(ids, string(is.ID))
	}
	return strings.Join(ids, ", ")
}

func keysWhere(cfg config.Plant, dir string) string {
	if cfg.HSM.Module != "" {
		return "PKCS#11 token " + cfg.HSM.Token
	}
	return dir + " (mode 0600; copy to every api, presigner and crlgen machine)"
}

// writePlantConfig writes the configuration (0600: it may hold the
// database and SMTP passwords), refusing to replace one.
func writePlantConfig(path string, cfg config.Plant) error {
	b, err := yaml.Marshal(cfg)
	if err != nil {
		return err
	}
	head := "# Trustline plant configuration, written by `trustline init`.\n# Every role reads it: trustline <role> --config " + path + "\n# Keys are documented in docs/configuration.md.\n"
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("init: %w", err)
	}
	if _, err := f.Write(append([]byte(head), b...)); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// parseSMTPURL reads smtp://user:password@host:port?from=…&require_tls=true.
func parseSMTPURL(s string) (config.SMTP, error) {
	u, err := url.Parse(s)
	if err != nil || u.Scheme != "smtp" || u.Host == "" {
		return config.SMTP{}, cli.Usage("init: --smtp wants smtp://[user:password@]host:port?from=address")
	}
	c := config.SMTP{Addr: u.Host, From: u.Query().Get("from"), RequireTLS: u.Query().Get("require_tls") == "true", Timeout: 30 * time.Second}
	if u.User != nil {
		c.Username = u.User.Username()
		c.Password, _ = u.User.Password()
	}
	if c.From == "" {
		return config.SMTP{}, cli.Usage("init: --smtp needs ?from=address")
	}
	return c, nil
}

// multiFlag collects a repeatable string flag.
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }
