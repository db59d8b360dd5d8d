package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"github.com/jackc/pgx/v5"
	msqlite "modernc.org/sqlite"

	"github.com/trustline/trustline/internal/cli"
	"github.com/trustline/trustline/internal/config"
	"github.com/trustline/trustline/internal/humanize"
	"github.com/trustline/trustline/internal/issuerid"
	"github.com/trustline/trustline/internal/keyfile"
	"github.com/trustline/trustline/internal/pkcs11key"
	"github.com/trustline/trustline/internal/store"
	"github.com/trustline/trustline/issuer/pki"
)

// storeFlags are the flags of commands that open a dev store.
type storeFlags struct {
	data, postgres string
}

func (s *storeFlags) register(fs *flag.FlagSet) {
	def := config.DefaultDev()
	fs.StringVar(&s.data, "data", def.DataDir, "data directory of the dev store")
	fs.StringVar(&s.postgres, "postgres", "", "PostgreSQL URL; default: the SQLite file in the data dir")
}

func (s storeFlags) open(ctx context.Context, log *slog.Logger) (store.Store, string, error) {
	dir, err := prepareDataDir(s.data)
	if err != nil {
		return nil, "", err
	}
	cfg := config.DefaultDev()
	cfg.Postgres = s.postgres
	st, _, err := openStore(ctx, cfg, dir, log)
	return st, dir, err
}

// openExisting opens the store the flags name, refusing when there is
// none: a command that only reads (audit verify) must not create an empty
// store and report on it. Both adapters create what is missing when they
// open (the SQLite file, the schema through migrations), so it first looks,
// read-only, for the audit table every Trustline schema has; only then
// does it open through the adapter, which may bring an older Trustline
// schema up to date as every command does.
func (s storeFlags) openExisting(ctx context.Context, log *slog.Logger) (store.Store, error) {
	cfg := config.DefaultDev()
	cfg.Postgres = s.postgres
	dir := ""
	if s.postgres != "" {
		if err := postgresHasStore(ctx, s.postgres); err != nil {
			return nil, err
		}
	} else {
		abs, err := filepath.Abs(s.data)
		if err != nil {
			return nil, fmt.Errorf("data dir %s: %w", s.data, err)
		}
		if err := sqliteHasStore(ctx, abs); err != nil {
			return nil, err
		}
		dir = abs
	}
	st, _, err := openStore(ctx, cfg, dir, log)
	return st, err
}

// storeCheckTimeout bounds the look for a store before it is opened.
const storeCheckTimeout = 15 * time.Second

// sqliteHasStore reports, as an error naming dir, that dir holds no
// Trustline SQLite store. It opens the file read-only (mode=ro creates
// nothing) and only when it exists.
func sqliteHasStore(ctx context.Context, dir string) error {
	path := filepath.Join(dir, "trustline.db")
	if fi, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("no Trustline store at %s: the directory does not exist", dir)
	} else if err != nil {
		return fmt.Errorf("data dir %s: %w", dir, errors.Unwrap(err))
	} else if !fi.IsDir() {
		return fmt.Errorf("no Trustline store at %s: it is not a directory", dir)
	}
	if fi, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("no Trustline store at %s: it holds no trustline.db", dir)
	} else if err != nil {
		return fmt.Errorf("store %s: %w", path, errors.Unwrap(err))
	} else if !fi.Mode().IsRegular() {
		return fmt.Errorf("no Trustline store at %s: %s is not a regular file", dir, path)
	}
	conn, err := msqlite.NewConnector((&url.URL{Scheme: "file", Path: path, RawQuery: "mode=ro"}).String())
	if err != nil {
		return fmt.Errorf("store %s: %w", path, err)
	}
	db := sql.OpenDB(conn)
	defer db.Close()
	ctx, cancel := context.WithTimeout(ctx, storeCheckTimeout)
	defer cancel()
	var n int
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'audit'`).Scan(&n); err != nil {
		return fmt.Errorf("store %s: %w", path, err)
	}
	if n == 0 {
		return fmt.Errorf("no Trustline store at %s: trustline.db has no Trustline schema (no audit table)", dir)
	}
	return nil
}

// postgresHasStore reports, as an error naming the database, that the
// database at rawURL has no Trustline schema. It only reads.
func postgresHasStore(ctx context.Context, rawURL string) error {
	pc, err := pgx.ParseConfig(rawURL)
	if err != nil {
		return fmt.Errorf("postgres: URL: %w", err) // pgx's message redacts the password
	}
	target := fmt.Sprintf("%s:%d/%s", pc.Host, pc.Port, pc.Database)
	ctx, cancel := context.WithTimeout(ctx, storeCheckTimeout)
	defer cancel()
	conn, err := pgx.ConnectConfig(ctx, pc)
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("postgres: %s did not answer within %s", target, humanize.Duration(storeCheckTimeout))
	} else if err != nil {
		return fmt.Errorf("postgres: connecting to %s: %w", target, err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var found bool
	if err := conn.QueryRow(ctx, `SELECT to_regclass('audit') IS NOT NULL`).Scan(&found); err != nil {
		return fmt.Errorf("postgres: %s: looking for the audit table: %w", target, err)
	}
	if !found {
		return fmt.Errorf("no Trustline store in PostgreSQL database %s: it has no Trustline schema (no audit table)", target)
	}
	return nil
}

// runAudit: `trustline audit verify` checks the hash chain of the audit log.
func runAudit(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "verify" {
		return cli.Usage("usage: trustline audit verify [--data DIR] [--postgres URL]")
	}
	fs := flag.NewFlagSet("trustline audit verify", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var sf storeFlags
	sf.register(fs)
	if err := cli.Parse(fs, args[1:]); err != nil {
		return err
	}
	st, err := sf.openExisting(ctx, slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	if err != nil {
		return err
	}
	defer st.Close()
	n, head, err := store.VerifyAudit(ctx, st)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "audit chain OK: %d entries, head %s\n", n, hex.EncodeToString(head))
	return nil
}

// runCA: `trustline ca init --config FILE`, the production ceremony.
func runCA(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "root-crl" {
		return runRootCRL(ctx, args[1:], stdout, stderr)
	}
	if len(args) == 0 || args[0] != "init" {
		return cli.Usage("usage: trustline ca init --config FILE | trustline ca root-crl --config FILE --root-key-dir DIR")
	}
	fs := flag.NewFlagSet("trustline ca init", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "", "ceremony file (YAML); see docs/ca-ceremony.md")
	if err := cli.Parse(fs, args[1:]); err != nil {
		return err
	}
	if *cfgPath == "" {
		return cli.Usage("ca init: --config is required")
	}
	cfg, err := config.LoadCAInit(*cfgPath)
	if err != nil {
		return err
	}
	if err := cfg.HSM.ReadPIN(); err != nil {
		return err
	}
	cfg.HSM.PINFromEnv()
	if err := cfg.Validate(); err != nil {
		return err
	}
	pc := pki.Config{
		Dir: cfg.Out, Organization: cfg.Organization, Country: cfg.Country, CommonPrefix: cfg.CommonPrefix,
		BaseURL: cfg.BaseURL, KeySource: "pkcs11", ResponderValidity: cfg.ResponderValidity,
	}
	if pc.RootKeyAlg, err = keyfile.Parse(cfg.RootKeyAlg); err != nil {
		return fmt.Errorf("config: root_key_alg: %w", err)
	}
	for _, is := range cfg.Issuers {
		id, err := issuerid.Parse(is.ID)
		if err != nil {
			return fmt.Errorf("config: issuers: %w", err)
		}
		alg, err := keyfile.Parse(is.KeyAlg)
		if err != nil {
			return fmt.Errorf("config: issuers: %s: %w", is.ID, err)
		}
		pc.Issuers = append(pc.Issuers, pki.IssuerSpec{ID: id, KeyAlg: alg})
	}
	if err := pc.Validate(); err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	tok, err := pkcs11key.Open(pkcs11key.Config{ModulePath: cfg.HSM.Module, TokenLabel: cfg.HSM.Token, PIN: cfg.HSM.PIN, Sessions: cfg.HSM.Sessions}, log)
	if err != nil {
		return fmt.Errorf("hsm: %w", err)
	}
	defer tok.Close()
	p, err := pki.Create(ctx, pc, tok, time.Now(), rand.Reader)
	if err != nil {
		return err
	}
	summary := ceremonySummary(p, cfg.HSM.Token)
	b, _ := json.MarshalIndent(summary, "", "  ")
	if err := os.WriteFile(filepath.Join(cfg.Out, "summary.json"), append(b, '\n'), 0o644); err != nil {
		return err
	}
	stdout.Write(append(b, '\n'))
	return nil
}

type certSummary struct {
	ID          string    `json:"id"`
	Role        string    `json:"role"`
	Subject     string    `json:"subject"`
	Issuer      string    `json:"issuer"`
	Serial      string    `json:"serial"`
	NotBefore   time.Time `json:"not_before"`
	NotAfter    time.Time `json:"not_after"`
	SHA256      string    `json:"sha256_fingerprint"`
	SKI         string    `json:"subject_key_id"`
	KeyAlg      string    `json:"key_alg"`
	KeyLocation string    `json:"key_location"`
	File        string    `json:"file"`
}

func ceremonySummary(p *pki.PKI, token string) map[string]any {
	one := func(id issuerid.ID, role string, c *x509.Certificate, alg keyfile.Algorithm, file string) certSummary {
		sum := sha256.Sum256(c.Raw)
		return certSummary{ID: string(id), Role: role, Subject: c.Subject.String(), Issuer: c.Issuer.String(),
			Serial: c.SerialNumber.Text(16), NotBefore: c.NotBefore, NotAfter: c.NotAfter,
			SHA256: hex.EncodeToString(sum[:]), SKI: hex.EncodeToString(c.SubjectKeyId), KeyAlg: alg.String(),
			KeyLocation: "pkcs11 token " + token, File: filepath.Base(file)}
	}
	dir := filepath.Dir(pki.CertPath(p.Dir(), issuerid.Root))
	certs := []certSummary{one(issuerid.Root, "root", p.Root.Cert, p.Root.KeyAlg, pki.CertPath(dir, issuerid.Root))}
	for _, is := range p.Intermediates {
		certs = append(certs, one(is.ID, "intermediate", is.Cert, is.KeyAlg, pki.CertPath(dir, is.ID)))
		certs = append(certs, one(is.ID, "ocsp-responder", is.Responder, is.KeyAlg, pki.ResponderCertPath(dir, is.ID)))
	}
	return map[string]any{"created_at": time.Now().UTC(), "certificates": certs}
}
