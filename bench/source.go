package bench

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/trustline/trustline/internal/issuerid"
	"github.com/trustline/trustline/internal/reason"
	"github.com/trustline/trustline/internal/serial"
	"github.com/trustline/trustline/internal/shard"
	"github.com/trustline/trustline/internal/status"
	"github.com/trustline/trustline/internal/store"
	"github.com/trustline/trustline/internal/store/storeopen"
)

// lister is the store read the OCSP, CRL and presign scenarios need.
type lister interface {
	ListCertificates(ctx context.Context, p store.Page) ([]store.CertSummary, error)
}

// openStore opens DIR's store as `trustline dev` does: PostgreSQL when a
// URL is given, else DIR/trustline.db. SQLite in WAL mode lets the bench
// read (and, for the CRL storm, write) while a dev process runs on it.
func openStore(ctx context.Context, dataDir, postgresURL string) (store.Store, error) {
	s, err := storeopen.Open(ctx, storeopen.Config{Postgres: postgresURL, SQLite: filepath.Join(dataDir, "trustline.db"), MustExist: true},
		slog.New(slog.DiscardHandler))
	if errors.Is(err, storeopen.ErrNoStore) {
		return nil, fmt.Errorf("bench: no store in %s (run `trustline bench populate --data %s` first): %w", dataDir, dataDir, err)
	}
	if err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	return s, nil
}

// Issuer is a CA certificate of DIR's PKI.
type Issuer struct {
	ID   issuerid.ID
	Cert *x509.Certificate
	// Responder is the delegated OCSP responder certificate, if DIR has
	// one (DIR/ca/<id>-ocsp.pem).
	Responder *x509.Certificate
}

// loadIssuers reads DIR/ca/<id>.pem (and <id>-ocsp.pem) for every issuer.
func loadIssuers(dataDir string) (map[issuerid.ID]*Issuer, error) {
	dir := filepath.Join(dataDir, "ca")
	files, err := filepath.Glob(filepath.Join(dir, "*.pem"))
	if err != nil || len(files) == 0 {
		return nil, fmt.Errorf("bench: no issuer certificates in %s (is %s a trustline data dir?)", dir, dataDir)
	}
	out := map[issuerid.ID]*Issuer{}
	sort.Strings(files)
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".pem")
		if strings.HasSuffix(name, "-ocsp") {
			continue
		}
		c, err := readCertFile(f)
		if err != nil {
			return nil, err
		}
		is := &Issuer{ID: issuerid.ID(name), Cert: c}
		if r, err := readCertFile(filepath.Join(dir, name+"-ocsp.pem")); err == nil {
			is.Responder = r
		}
		out[is.ID] = is
	}
	return out, nil
}

func readCertFile(path string) (*x509.Certificate, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("bench: reading %s: %w", path, err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("bench: %s holds no PEM certificate", path)
	}
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("bench: parsing %s: %w", path, err)
	}
	return c, nil
}

// Cert is a certificate the bench asks about.
type Cert struct {
	Serial   serial.Serial
	SN       *big.Int
	IssuerID issuerid.ID
	Shard    shard.Index
	NotAfter time.Time
	Status   status.Status
	// RevokedAt and Reason are set when Status is Revoked.
	RevokedAt time.Time
	Reason    reason.Reason
}

// readCerts opens DIR's store (see openStore) and reads up to limit
// unexpired certificates from it (see loadCerts).
func readCerts(ctx context.Context, dataDir, postgresURL string, limit int, now time.Time) ([]Cert, error) {
	st, err := openStore(ctx, dataDir, postgresURL)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	return loadCerts(ctx, st, limit, now)
}

// loadCerts reads up to max unexpired certificates, in serial order.
func loadCerts(ctx context.Context, st lister, limit int, now time.Time) ([]Cert, error) {
	var out []Cert
	after := serial.Serial("")
	for len(out) < limit {
		page, err := st.ListCertificates(ctx, store.Page{AfterSerial: after, NotAfterAfter: now, Limit: 1000})
		if err != nil {
			return nil, fmt.Errorf("bench: listing certificates: %w", err)
		}
		for _, c := range page {
			if len(out) == limit {
				break
			}
			out = append(out, Cert{Serial: c.Serial, SN: c.Serial.BigInt(), IssuerID: c.IssuerID, Shard: c.Shard,
				NotAfter: c.NotAfter, Status: c.Status, RevokedAt: c.RevokedAt, Reason: c.Reason})
		}
		if len(page) < 1000 {
			break
		}
		after = page[len(page)-1].Serial
	}
	if len(out) == 0 {
		return nil, errors.New("bench: the store holds no unexpired certificates (run `trustline bench populate` first)")
	}
	return out, nil
}
