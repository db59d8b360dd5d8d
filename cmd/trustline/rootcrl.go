package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/trustline/trustline/crlgen"
	"github.com/trustline/trustline/crlgen/crlpub"
	"github.com/trustline/trustline/internal/cli"
	"github.com/trustline/trustline/internal/config"
	"github.com/trustline/trustline/internal/pkcs11key"
	"github.com/trustline/trustline/internal/shard"
	"github.com/trustline/trustline/internal/store"
	"github.com/trustline/trustline/internal/store/storeopen"
	"github.com/trustline/trustline/issuer/pki"
)

// An offline root: `trustline init --root-key-dir DIR` (or --root-hsm-*)
// creates the root key apart from the plant's keys, signs the
// intermediates and the root's first CRL with it, and never needs it again
// while the plant runs. Once a year at most (BR §4.9.7), and whenever an
// intermediate is revoked, `trustline ca root-crl` brings it out to sign
// the root's next CRL into the store, where the origins pick it up.

// rootKeyFlags name where an offline root key is: a directory of key
// files, or a PKCS#11 token.
type rootKeyFlags struct {
	dir, module, token, pinFile *string
}

func addRootKeyFlags(fs *flag.FlagSet, creating bool) rootKeyFlags {
	dir, token := "the directory holding the offline root's key", "the PKCS#11 token holding the offline root's key"
	if creating {
		dir = "keep the root key in this directory (removable media), apart from the plant's keys: an offline root"
		token = "keep the root key in this PKCS#11 token, apart from the plant's keys: an offline root"
	}
	return rootKeyFlags{
		dir:     fs.String("root-key-dir", "", dir),
		module:  fs.String("root-hsm-module", "", "PKCS#11 module of the root's token (default: the plant's hsm module)"),
		token:   fs.String("root-hsm-token", "", token),
		pinFile: fs.String("root-hsm-pin-file", "", "file holding the root token's user PIN"),
	}
}

// given reports whether an offline root was asked for.
func (f rootKeyFlags) given() bool { return *f.dir != "" || *f.token != "" }

// open opens the root's key store; defaultModule is the plant's PKCS#11
// module, used when --root-hsm-module is not given.
func (f rootKeyFlags) open(defaultModule string, log *slog.Logger) (pki.Keys, func(), error) {
	switch {
	case *f.dir != "" && *f.token != "":
		return nil, nil, cli.Usage("give --root-key-dir or --root-hsm-token, not both")
	case *f.dir != "":
		return pki.FileKeys{Dir: *f.dir}, func() {}, nil
	}
	module := *f.module
	if module == "" {
		module = defaultModule
	}
	if module == "" || *f.pinFile == "" {
		return nil, nil, cli.Usage("--root-hsm-token needs --root-hsm-pin-file and a module (--root-hsm-module, or the plant's --hsm-module)")
	}
	b, err := os.ReadFile(*f.pinFile)
	if err != nil {
		return nil, nil, fmt.Errorf("--root-hsm-pin-file: %w", err)
	}
	tok, err := pkcs11key.Open(pkcs11key.Config{ModulePath: module, TokenLabel: *f.token,
		PIN: strings.TrimSpace(string(b)), Sessions: 1}, log)
	if err != nil {
		return nil, nil, fmt.Errorf("root token: %w", err)
	}
	return tok, func() { tok.Close() }, nil
}

// where says where the root key is, for people.
func (f rootKeyFlags) where() string {
	if *f.dir != "" {
		return *f.dir
	}
	return "PKCS#11 token " + *f.token
}

// rootCRLDays is the longest and default life of an offline root's CRL:
// 365 days is within twelve months whatever the calendar (BR §4.9.7).
const rootCRLDays = 365

// signRootCRL signs the root's next CRL with p.Root.Signer, valid for
// days, and stores it (the origins serve it from there). It runs a CRL
// generator of the root alone, so the CRL is built, checked and linted as
// every other, and its number follows the stored one.
func signRootCRL(ctx context.Context, st store.Store, p *pki.PKI, cfg config.Plant, days int, holder string,
	pubs []crlpub.Publisher, log *slog.Logger) (store.CRL, error) {
	if days < 1 || days > rootCRLDays {
		return store.CRL{}, cli.Usagef("--days %d out of range [1, %d] (BR 4.9.7: at most twelve months)", days, rootCRLDays)
	}
	lt, err := newLinter()
	if err != nil {
		return store.CRL{}, err
	}
	root, _ := crlIssuers(p)
	validity := time.Duration(days) * 24 * time.Hour
	gcfg := crlgen.Config{BaseURL: cfg.Public.CRL, Shards: cfg.CRL.Shards, Period: min(time.Hour, validity/2),
		FullValidity: validity, Holder: holder}
	gen, err := crlgen.New(gcfg, crlgen.Deps{Store: st, Root: root, Linter: lt, CALinter: lt.ForCACRLs(),
		Publishers: pubs, Log: log.With("part", "crlgen")})
	if err != nil {
		return store.CRL{}, err
	}
	if err := gen.PublishNow(ctx, root.ID); err != nil {
		return store.CRL{}, err
	}
	return st.CRL(ctx, root.ID, shard.Full)
}

// runRootCRL: `trustline ca root-crl` signs the offline root's next CRL.
func runRootCRL(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("trustline ca root-crl", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "", "the plant's configuration file (required)")
	days := fs.Int("days", rootCRLDays, "days until the CRL's nextUpdate (at most 365)")
	rk := addRootKeyFlags(fs, false)
	if err := cli.Parse(fs, args); err != nil {
		return err
	}
	if *cfgPath == "" || !rk.given() {
		return cli.Usage("usage: trustline ca root-crl --config FILE (--root-key-dir DIR | --root-hsm-token LABEL --root-hsm-pin-file FILE) [--days N]")
	}
	if *days < 1 || *days > rootCRLDays {
		return cli.Usagef("--days %d out of range [1, %d] (BR 4.9.7: at most twelve months)", *days, rootCRLDays)
	}
	cfg, err := config.LoadPlant(*cfgPath)
	if err != nil {
		return err
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	st, err := storeopen.Open(ctx, storeopen.Config{Postgres: cfg.Postgres}, log)
	if err != nil {
		return err
	}
	defer st.Close()
	p, err := pki.LoadRecorded(ctx, st, isNotFound, nil, "", pki.CertsOnly)
	if errors.Is(err, pki.ErrNoHierarchy) {
		return errors.New("the store holds no CA hierarchy: run `trustline init` first")
	}
	if err != nil {
		return err
	}
	if !p.RootOffline() {
		return errors.New("this plant's root is online (trustline init had no --root-key-dir or --root-hsm-token): the crlgen role signs the root's CRL")
	}
	keys, closeKeys, err := rk.open(cfg.HSM.Module, log)
	if err != nil {
		return err
	}
	defer closeKeys()
	if err := p.AttachRoot(ctx, keys); err != nil {
		return err
	}
	instance, err := instanceID(ctx, st)
	if err != nil {
		return err
	}
	// The caches in front of the origins are told, as the crlgen role
	// tells them of every CRL, once the origins have it.
	purger, err := newPurger(cfg.Purge, 3*time.Second, nil, log)
	if err != nil {
		return err
	}
	var pubs []crlpub.Publisher
	pctx, stopPurge := context.WithTimeout(ctx, time.Minute)
	defer stopPurge()
	if purger != nil {
		pubs = append(pubs, purger)
		go purger.Run(pctx)
	}
	c, err := signRootCRL(ctx, st, p, cfg, *days, processHolder(instance), pubs, log)
	if err != nil {
		return err
	}
	if purger != nil {
		want := int64(len(cfg.Purge.Caches))
		if cfg.Purge.Webhook != "" {
			want++
		}
		for s := purger.Stats(); s.Done+s.Failed+s.Dropped < want && pctx.Err() == nil; s = purger.Stats() {
			time.Sleep(100 * time.Millisecond)
		}
		if s := purger.Stats(); s.Done < want {
			fmt.Fprintf(stderr, "warning: %d of %d caches were not purged; they serve the previous root CRL until it expires from them\n", want-s.Done, want)
		}
	}
	fmt.Fprintf(stdout, "Root CRL %d signed and stored: thisUpdate %s, nextUpdate %s.\nThe origins serve it within seconds at %s.\nSign the next one before %s; put the root key away.\n",
		c.Number, c.ThisUpdate.UTC().Format(time.RFC3339), c.NextUpdate.UTC().Format(time.RFC3339),
		crlpub.URL(cfg.Public.CRL, p.Root.ID, shard.Full), c.NextUpdate.UTC().Add(-30*24*time.Hour).Format("2006-01-02"))
	return nil
}
