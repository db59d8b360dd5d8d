package issuer

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"runtime"
	"sync"
	"time"

	"github.com/trustline/trustline/internal/reason"
	"github.com/trustline/trustline/internal/shard"
	"github.com/trustline/trustline/internal/status"
	"github.com/trustline/trustline/internal/store"
	"github.com/trustline/trustline/issuer/pki"
	"github.com/trustline/trustline/issuer/profile"
)

// BulkStore is the bulk path of the store.
type BulkStore interface {
	InsertCertificates(ctx context.Context, cs []store.Certificate) error
}

// PopulateRequest asks for N load-test certificates.
type PopulateRequest struct {
	N               int
	RevokedFraction float64 // in [0, 1]: this share is stored already revoked
	KeyFamily       string  // "ecdsa" (default) or "rsa": which intermediate signs
	Workers         int     // signing goroutines; 0: GOMAXPROCS
	Batch           int     // rows per bulk insert; 0: 2000
	Progress        func(done int)
}

// Populate fills the store with real, signed DV certificates for load
// tests (`trustline bench populate`). It skips domain validation and the
// zlint pass — the profile is the same one every issued certificate
// passes lint with — but never signing: each certificate is signed by the
// intermediate's key and carries the usual serial, shard, CRLDP and AIA.
// Subscriber keys come from a small pool, since only their public halves
// matter here.
func (ca *CA) Populate(ctx context.Context, bulk BulkStore, r PopulateRequest) (int, error) {
	if r.N <= 0 {
		return 0, errors.New("issuer: populate: N must be positive")
	}
	if r.RevokedFraction < 0 || r.RevokedFraction > 1 {
		return 0, errors.New("issuer: populate: revoked fraction must be in [0, 1]")
	}
	if r.Workers <= 0 {
		r.Workers = runtime.GOMAXPROCS(0)
	}
	if r.Batch <= 0 {
		r.Batch = 2000
	}
	fam := r.KeyFamily
	if fam == "" {
		fam = "ecdsa"
	}
	id, ok := ca.cfg.Route[fam]
	if !ok {
		return 0, fmt.Errorf("%w: %s", ErrNoIssuer, fam)
	}
	is, _ := ca.pki.Issuer(id)
	keys := make([]crypto.PublicKey, 16)
	for i := range keys {
		k, err := ecdsa.GenerateKey(elliptic.P256(), ca.rand)
		if err != nil {
			return 0, err
		}
		keys[i] = k.Public()
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	jobs := make(chan int, r.Workers*4)
	rows := make(chan store.Certificate, r.Batch)
	var (
		wg       sync.WaitGroup
		errOnce  sync.Once
		firstErr error
	)
	fail := func(err error) {
		errOnce.Do(func() { firstErr = err; cancel() })
	}
	go func() {
		defer close(jobs)
		for i := 0; i < r.N; i++ {
			select {
			case jobs <- i:
			case <-ctx.Done():
				return
			}
		}
	}()
	for w := 0; w < r.Workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), uint64(w)))
			for i := range jobs {
				row, err := ca.signForLoad(ctx, is, keys[i%len(keys)], i, rng, r.RevokedFraction)
				if err != nil {
					fail(err)
					return
				}
				select {
				case rows <- row:
				case <-ctx.Done():
					return
				}
			}
		}(w)
	}
	go func() { wg.Wait(); close(rows) }()

	done := 0
	batch := make([]store.Certificate, 0, r.Batch)
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		if err := bulk.InsertCertificates(ctx, batch); err != nil {
			return fmt.Errorf("issuer: populate: storing batch: %w", err)
		}
		done += len(batch)
		batch = batch[:0]
		if r.Progress != nil {
			r.Progress(done)
		}
		return nil
	}
	for row := range rows {
		batch = append(batch, row)
		if len(batch) == r.Batch {
			if err := flush(); err != nil {
				fail(err)
				break
			}
		}
	}
	for range rows {
		// drain after a failure so workers exit
	}
	if firstErr == nil {
		if err := flush(); err != nil {
			firstErr = err
		}
	}
	return done, firstErr
}

var loadReasons = []reason.Reason{reason.KeyCompromise, reason.Superseded, reason.CessationOfOperation,
	reason.AffiliationChanged, reason.Unspecified}

func (ca *CA) signForLoad(ctx context.Context, is *pki.Issuer, pub crypto.PublicKey, i int, rng *rand.Rand, revoked float64) (store.Certificate, error) {
	b := make([]byte, 17)
	b[0] = ca.cfg.SerialPrefix
	if _, err := io.ReadFull(ca.serial, b[1:]); err != nil {
		return store.Certificate{}, err
	}
	sn, err := serialFromBytes(b)
	if err != nil {
		return store.Certificate{}, err
	}
	sh := shard.For(sn, ca.cfg.Shards)
	now := ca.now()
	name := fmt.Sprintf("host-%d.populate.example.com", i)
	tmpl, err := profile.Template(profile.Request{
		Profile: profile.DV, Serial: sn, Names: []string{name}, PublicKey: pub, NotBefore: now,
		Validity: ca.cfg.Validity, OCSPURL: ca.cfg.OCSPURL,
		CAIssuersURL: pki.CAIssuersURL(ca.cfg.caIssuersBase(), is.ID), CRLURL: pki.ShardCRLURL(ca.cfg.BaseURL, is.ID, int(sh)),
	})
	if err != nil {
		return store.Certificate{}, err
	}
	der, err := x509.CreateCertificate(ca.rand, tmpl, is.Cert, pub, is.Signer)
	if err != nil {
		return store.Certificate{}, fmt.Errorf("issuer: populate: signing: %w", err)
	}
	row := store.Certificate{
		Serial: sn, IssuerID: is.ID, Shard: sh, AccountID: "populate", DER: der,
		NotBefore: tmpl.NotBefore, NotAfter: tmpl.NotAfter, Status: status.Good,
	}
	if rng.Float64() < revoked {
		row.Status = status.Revoked
		row.RevokedAt = now
		row.Reason = loadReasons[rng.IntN(len(loadReasons))]
	}
	return row, ctx.Err()
}
