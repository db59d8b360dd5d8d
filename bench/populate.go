package bench

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"runtime"
	"sync"
	"time"

	"github.com/trustline/trustline/internal/reason"
	"github.com/trustline/trustline/internal/status"
	"github.com/trustline/trustline/internal/store"
)

// LoadSigner signs the certificates Populate stores: *issuer.CA is one. A
// load-test certificate is signed for real but skips what only subscriber
// certificates need (serial reservation, lint, audit; see
// issuer.CA.SignForLoad).
type LoadSigner interface {
	// SignForLoad signs a DV certificate for name and pub with the
	// intermediate of family ("ecdsa", "rsa") and returns it as a good
	// row, not stored.
	SignForLoad(ctx context.Context, family, name string, pub crypto.PublicKey) (store.Certificate, error)
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

// withDefaults checks r and fills in its defaults.
func (r PopulateRequest) withDefaults() (PopulateRequest, error) {
	if r.N <= 0 {
		return r, errors.New("bench: populate: N must be positive")
	}
	if r.RevokedFraction < 0 || r.RevokedFraction > 1 {
		return r, errors.New("bench: populate: revoked fraction must be in [0, 1]")
	}
	if r.Workers <= 0 {
		r.Workers = runtime.GOMAXPROCS(0)
	}
	if r.Batch <= 0 {
		r.Batch = 2000
	}
	if r.KeyFamily == "" {
		r.KeyFamily = "ecdsa"
	}
	return r, nil
}

// subscriberKeyPool is how many subscriber keys the certificates share:
// only their public halves matter here.
const subscriberKeyPool = 16

// loadReasons are the reasons revoked load-test certificates carry.
var loadReasons = []reason.Reason{reason.KeyCompromise, reason.Superseded, reason.CessationOfOperation,
	reason.AffiliationChanged, reason.Unspecified}

// Populate fills st with real, signed DV certificates for load tests
// (`trustline bench populate`), r.Workers signing at once and r.Batch rows
// per bulk insert. It skips domain validation and the zlint pass — the
// profile is the same one every issued certificate passes lint with — but
// never signing: each certificate is signed by the intermediate's key and
// carries the usual serial, shard, CRLDP and AIA. A share of them,
// r.RevokedFraction, is stored revoked as of its notBefore. It returns how
// many certificates were stored, also after an error.
func Populate(ctx context.Context, ca LoadSigner, st store.BulkLoader, r PopulateRequest) (int, error) {
	r, err := r.withDefaults()
	if err != nil {
		return 0, err
	}
	keys, err := subscriberKeys()
	if err != nil {
		return 0, err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	p := &populator{ca: ca, st: st, r: r, keys: keys, cancel: cancel}
	rows := p.signAll(ctx)
	return p.storeAll(ctx, rows)
}

func subscriberKeys() ([]crypto.PublicKey, error) {
	keys := make([]crypto.PublicKey, subscriberKeyPool)
	for i := range keys {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, err
		}
		keys[i] = k.Public()
	}
	return keys, nil
}

// populator is one Populate call: signers feed rows to the one goroutine
// that stores them; the first error cancels the rest.
type populator struct {
	ca     LoadSigner
	st     store.BulkLoader
	r      PopulateRequest
	keys   []crypto.PublicKey
	cancel context.CancelFunc

	errOnce sync.Once
	err     error // the first error; read once every signer has stopped
}

func (p *populator) fail(err error) {
	p.errOnce.Do(func() { p.err = err; p.cancel() })
}

// signAll starts the signers on certificates 0 to N-1 and returns their
// rows; the channel closes when every signer has stopped.
func (p *populator) signAll(ctx context.Context) <-chan store.Certificate {
	jobs := make(chan int, p.r.Workers*4)
	rows := make(chan store.Certificate, p.r.Batch)
	go func() {
		defer close(jobs)
		for i := 0; i < p.r.N; i++ {
			select {
			case jobs <- i:
			case <-ctx.Done():
				return
			}
		}
	}()
	var wg sync.WaitGroup
	for w := 0; w < p.r.Workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.sign(ctx, w, jobs, rows)
		}()
	}
	go func() { wg.Wait(); close(rows) }()
	return rows
}

// sign is one signer: it signs the certificates jobs names until jobs
// closes, ctx ends or signing fails.
func (p *populator) sign(ctx context.Context, w int, jobs <-chan int, rows chan<- store.Certificate) {
	rng := mrand.New(mrand.NewPCG(uint64(time.Now().UnixNano()), uint64(w)))
	for i := range jobs {
		// Names of one width: issuer.CA.SignForLoad signs a name of a
		// length it has seen by patching it into a reference certificate.
		name := fmt.Sprintf("host-%010d.populate.example.com", i)
		row, err := p.ca.SignForLoad(ctx, p.r.KeyFamily, name, p.keys[i%len(p.keys)])
		if err != nil {
			p.fail(err)
			return
		}
		row.AccountID = "populate"
		if rng.Float64() < p.r.RevokedFraction {
			row.Status, row.RevokedAt = status.Revoked, row.NotBefore
			row.Reason = loadReasons[rng.IntN(len(loadReasons))]
		}
		select {
		case rows <- row:
		case <-ctx.Done():
			return
		}
	}
}

// storeAll stores rows in batches of r.Batch until the channel closes,
// then the last partial batch unless something failed.
func (p *populator) storeAll(ctx context.Context, rows <-chan store.Certificate) (int, error) {
	done := 0
	batch := make([]store.Certificate, 0, p.r.Batch)
	for row := range rows {
		batch = append(batch, row)
		if len(batch) < p.r.Batch {
			continue
		}
		if err := p.flush(ctx, batch, &done); err != nil {
			p.fail(err)
			break
		}
		batch = batch[:0]
	}
	for range rows {
		// drain after a failure so the signers exit
	}
	if p.err != nil {
		return done, p.err
	}
	return done, p.flush(ctx, batch, &done)
}

// flush stores batch and adds it to done.
func (p *populator) flush(ctx context.Context, batch []store.Certificate, done *int) error {
	if len(batch) == 0 {
		return nil
	}
	if err := p.st.InsertCertificates(ctx, batch); err != nil {
		return fmt.Errorf("bench: populate: storing batch: %w", err)
	}
	*done += len(batch)
	if p.r.Progress != nil {
		p.r.Progress(*done)
	}
	return nil
}
