// Package presign is Trustline's OCSP pre-signing pipeline (DESIGN.md
// "OCSP"): it signs every unexpired certificate's response ahead of time
// and keeps the response cache (internal/ocspcache) full and fresh, so
// that the responder only ever looks responses up.
//
//   - On issuance and revocation it is the CA's status sink
//     (issuer.StatusSink): the good response is in the cache before the
//     API hands out the certificate, and the revoked one (with reason and
//     time, for every CertID hash algorithm) replaces it before the revoke
//     call returns, evicting the responders' in-process copies.
//   - It follows the store's status-change events, so that changes made
//     elsewhere (another API instance, a crash between the store and the
//     cache) reach the cache; the cache records how far it has followed.
//   - It refreshes responses ahead of expiry, per BR §4.9.10: validity
//     between 8 hours and 10 days; refreshed no later than 4 days after
//     thisUpdate and at least 8 hours before nextUpdate (half the validity
//     for validities under 16 hours); thisUpdate backdated for clock skew.
//   - It rebuilds the whole cache (warm start) with progress when the
//     cache has been lost: the cache's State vanishes with its data
//     (Redis restarted empty, FLUSHALL, a new in-process cache).
//   - It signs single responses on demand for the responder
//     (responder.LiveSigner): hash algorithms not pre-signed, and misses
//     while the cache is down or being rebuilt.
//
// Signing runs in a worker pool sized to the signer (CPU cores for
// software keys, sessions for an HSM), over batches whose responses share
// one buffer and go to the cache in pipelined writes. Responses are
// encoded by internal/ocspcodec with the issuer's delegated responder key
// (default) or the issuer key.
//
// Only one instance refreshes, follows events and rebuilds at a time: the
// holder of a lease in the store. Any instance can be a status sink.
//
// Who may import it: cmd/ (which wires it as the CA's sink and the
// responder's live signer) and tests. The responder must not: it sees
// this package only through its LiveSigner interface.
package presign

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"time"

	"github.com/trustline/trustline/internal/ocspcodec"
)

// BR §4.9.10 limits.
const (
	minValidity = 8 * time.Hour
	// maxValidity: "less than or equal to ten days", the interval counted
	// inclusively (nextUpdate − thisUpdate + 1 s).
	maxValidity   = 10*24*time.Hour - time.Second
	maxRefresh    = 4 * 24 * time.Hour // after thisUpdate
	minBeforeNext = 8 * time.Hour      // refresh at least this long before nextUpdate
	shortValidity = 16 * time.Hour     // below it, refresh by half the validity
)

// Config configures the pipeline. Durations are in time.Duration units.
type Config struct {
	// Validity is nextUpdate − thisUpdate of every response: at least 8 h
	// and under 10 days (BR §4.9.10). 0 means 72 h.
	Validity time.Duration
	// RefreshAfter is when, counted from thisUpdate, a response is
	// replaced; HTTP caches keep it until then. It must be at most 4 days,
	// and leave at least 8 h before nextUpdate (at most half of Validity
	// when Validity is under 16 h), with room for the refresh to happen.
	// 0 means Validity/2.
	RefreshAfter time.Duration
	// Backdate moves thisUpdate into the past so that clients with slow
	// clocks accept fresh responses; revoked responses are never dated
	// before their revocation. At most 24 h, and at least 1 h less than
	// RefreshAfter. 0 means 1 h; use a negative value for none.
	Backdate time.Duration
	// HashAlgs are the CertID hash algorithms pre-signed for every
	// certificate; the responder must be told the same (its Presigned).
	// Others are signed on first request. Empty means SHA-1 and SHA-256.
	HashAlgs []ocspcodec.HashAlg
	// Workers is the number of signing goroutines, sized to the signer:
	// CPU cores for software keys, sessions for an HSM. 0 means
	// GOMAXPROCS.
	Workers int
	// Batch is how many certificates a worker signs before handing the
	// responses to the cache in one pipelined write. 0 means 256.
	Batch int
	// Poll is how often the leader checks the cache's state, follows
	// events and looks for due refreshes. 0 means 5 s.
	Poll time.Duration
	// Instance names this process in the lease. "" means host:pid.
	Instance string
	// Lease is how long the leader's lease lasts without renewal; it is
	// renewed every third of it. 0 means 30 s.
	Lease time.Duration
}

// Validate checks cfg (with defaults applied) against BR §4.9.10.
func (cfg Config) Validate() error {
	c := cfg.withDefaults()
	var errs []error
	if c.Validity < minValidity || c.Validity > maxValidity {
		errs = append(errs, fmt.Errorf("presign: Validity %v out of range [8h, 10 days) (BR §4.9.10)", c.Validity))
	}
	if c.RefreshAfter > maxRefresh {
		errs = append(errs, fmt.Errorf("presign: RefreshAfter %v is more than 4 days after thisUpdate (BR §4.9.10)", c.RefreshAfter))
	}
	if c.Validity >= shortValidity && c.Validity-c.RefreshAfter < minBeforeNext {
		errs = append(errs, fmt.Errorf("presign: RefreshAfter %v leaves less than 8h before nextUpdate (Validity %v; BR §4.9.10)", c.RefreshAfter, c.Validity))
	}
	if c.Validity < shortValidity && c.RefreshAfter > c.Validity/2 {
		errs = append(errs, fmt.Errorf("presign: Validity %v is under 16h, so RefreshAfter %v must be at most half of it (BR §4.9.10)", c.Validity, c.RefreshAfter))
	}
	if c.Backdate > 24*time.Hour {
		errs = append(errs, fmt.Errorf("presign: Backdate %v is over 24h", c.Backdate))
	}
	if c.RefreshAfter-c.Backdate < time.Hour {
		errs = append(errs, fmt.Errorf("presign: RefreshAfter %v must exceed Backdate %v by at least 1h, or responses would be due as soon as signed", c.RefreshAfter, c.Backdate))
	}
	seen := map[ocspcodec.HashAlg]bool{}
	for _, h := range c.HashAlgs {
		if !h.Valid() || seen[h] {
			errs = append(errs, fmt.Errorf("presign: HashAlgs: %v is invalid or repeated", h))
		}
		seen[h] = true
	}
	if c.Workers < 1 || c.Batch < 1 || c.Poll <= 0 || c.Lease < 3*time.Second {
		errs = append(errs, errors.New("presign: Workers and Batch must be positive, Poll positive, Lease at least 3s"))
	}
	return errors.Join(errs...)
}

func (cfg Config) withDefaults() Config {
	if cfg.Validity == 0 {
		cfg.Validity = 72 * time.Hour
	}
	if cfg.RefreshAfter == 0 {
		cfg.RefreshAfter = cfg.Validity / 2
	}
	if cfg.Backdate == 0 {
		cfg.Backdate = time.Hour
	} else if cfg.Backdate < 0 {
		cfg.Backdate = 0 // asked for none
	}
	if len(cfg.HashAlgs) == 0 {
		cfg.HashAlgs = []ocspcodec.HashAlg{ocspcodec.SHA1, ocspcodec.SHA256}
	}
	if cfg.Workers == 0 {
		cfg.Workers = runtime.GOMAXPROCS(0)
	}
	if cfg.Batch == 0 {
		cfg.Batch = 256
	}
	if cfg.Poll == 0 {
		cfg.Poll = 5 * time.Second
	}
	if cfg.Lease == 0 {
		cfg.Lease = 30 * time.Second
	}
	if cfg.Instance == "" {
		host, _ := os.Hostname()
		cfg.Instance = fmt.Sprintf("%s:%d", host, os.Getpid())
	}
	return cfg
}
