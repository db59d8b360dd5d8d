package bench

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/trustline/trustline/internal/pgserver"
	"github.com/trustline/trustline/internal/serial"
	"github.com/trustline/trustline/internal/status"
	"github.com/trustline/trustline/internal/store"
)

// The store side of `trustline bench chaos`: when the schedule names
// postgres, dev keeps its store in a private PostgreSQL server that the
// schedule kills, stops (SIGSTOP: a hung host) and restarts, while
// subscribers order certificates and an admin revokes some. What is
// measured is what the issue promises: every API request answered within
// 2 s (success or 503), no acknowledged order or revocation lost, no
// serial issued twice, CRL numbers strictly increasing per shard.

// usesPostgres reports whether the schedule acts on postgres.
func usesPostgres(sched []ChaosAction) bool {
	for _, a := range sched {
		if a.Target == "postgres" {
			return true
		}
	}
	return false
}

// startPostgres initialises and starts a private PostgreSQL server in a
// directory of its own (the harness's is private to this user, and the
// server runs as postgres when this is root); the store goes in its
// database postgres. stop stops it and removes the directory.
func (sc *scale) startPostgres() (pg *pgserver.Server, stop func(), err error) {
	dir, err := os.MkdirTemp("", "trustline-chaos-pg-")
	if err != nil {
		return nil, nil, fmt.Errorf("bench: %w", err)
	}
	stop = func() {
		if pg != nil {
			pg.Stop()
		}
		os.RemoveAll(dir)
	}
	if pg, err = pgserver.Init(dir); err == nil {
		err = pg.Start()
	}
	if err != nil {
		stop()
		return nil, nil, fmt.Errorf("bench: the postgres target needs a private server: %w", err)
	}
	sc.cfg.Postgres = pg.URL("postgres")
	sc.h.say("private PostgreSQL on %s (%s)", strings.TrimPrefix(sc.cfg.Postgres, "postgres://"), dir)
	return pg, stop, nil
}

// writeLoad is the issuance and revocation load that runs alongside the
// OCSP mix when the store is a chaos target.
type writeLoad struct {
	sc     *scale
	cfg    ChaosConfig
	api    *apiClient
	sub    string // the subscriber's API key
	domain string // the domain it validated
	admin  string // the admin's API key

	mu      sync.Mutex
	revoked []serial.Serial // acknowledged revocations
	revRun  revocationTally
}

// revocationTally counts the admin's revocations by outcome.
type revocationTally struct {
	requests, ok, unavailable, other int
	maxMs                            float64
	firstOther                       string
}

// prepareWrites creates a subscriber account with a validated domain and
// reads the admin key, before the measured part.
func prepareWrites(ctx context.Context, cfg ChaosConfig, sc *scale) (*writeLoad, error) {
	w := &writeLoad{sc: sc, cfg: cfg, api: &apiClient{base: sc.urls.api, c: &http.Client{Timeout: 30 * time.Second}}}
	admin, err := os.ReadFile(filepath.Join(sc.data, "admin.key"))
	if err != nil {
		return nil, fmt.Errorf("bench: the admin key of dev's data dir: %w", err)
	}
	w.admin = strings.TrimSpace(string(admin))
	if w.sub, w.domain, err = validatedAccount(ctx, w.api, sc.data, "", rand.Reader); err != nil {
		return nil, err
	}
	return w, nil
}

// issue runs the open-loop order load for the measured part. Every
// acknowledged order's certificate is fetched and checked afterwards
// (VerifyEvery 1): an order answered 201 whose certificate cannot be
// fetched is a lost order.
func (w *writeLoad) issue(ctx context.Context) (*Run, error) {
	return Issue(ctx, IssueConfig{Name: "chaos-issue", API: w.sc.urls.api, DataDir: w.sc.data, APIKey: w.sub, Domain: w.domain,
		KeyType: "ecdsa", CSRs: 64, VerifyEvery: 1, Timeout: 10 * time.Second,
		Load: LoadConfig{Duration: w.cfg.Duration, Rate: w.cfg.IssueRate, Concurrency: 16, Grace: 30 * time.Second},
	}, time.Now, rand.Reader)
}

// splitRevokable takes up to n good certificates from the end of certs
// for the admin to revoke, and returns the rest apart.
func splitRevokable(certs []Cert, n int) (rest, revokable []Cert) {
	for i := len(certs) - 1; i >= 0 && len(revokable) < n; i-- {
		if certs[i].Status == status.Good {
			revokable = append(revokable, certs[i])
		}
	}
	taken := make(map[serial.Serial]bool, len(revokable))
	for _, c := range revokable {
		taken[c.Serial] = true
	}
	rest = make([]Cert, 0, len(certs))
	for _, c := range certs {
		if !taken[c.Serial] {
			rest = append(rest, c)
		}
	}
	return rest, revokable
}

// revoke revokes good populated certificates, one every 1/rate seconds,
// for d, recording each answer; a revocation in flight at the end is
// waited for (its client timeout bounds it).
func (w *writeLoad) revoke(ctx context.Context, d time.Duration, certs []Cert, rate float64) {
	if rate <= 0 {
		return
	}
	t := time.NewTicker(time.Duration(float64(time.Second) / rate))
	defer t.Stop()
	end := time.After(d)
	for _, c := range certs {
		if c.Status != status.Good {
			continue
		}
		select {
		case <-ctx.Done():
			return
		case <-end:
			return
		case <-t.C:
		}
		w.revokeOne(ctx, c.Serial)
	}
}

func (w *writeLoad) revokeOne(ctx context.Context, sn serial.Serial) {
	start := time.Now()
	err := w.api.call(ctx, "POST", "/api/v1/certificates/"+string(sn)+"/revoke", w.admin,
		map[string]string{"reason": "superseded"}, http.StatusOK, nil)
	ms := float64(time.Since(start).Microseconds()) / 1000
	w.mu.Lock()
	defer w.mu.Unlock()
	r := &w.revRun
	r.requests++
	r.maxMs = max(r.maxMs, ms)
	switch {
	case err == nil:
		r.ok++
		w.revoked = append(w.revoked, sn)
	case strings.Contains(err.Error(), "HTTP 503"):
		r.unavailable++
	default:
		r.other++
		if r.firstOther == "" {
			r.firstOther = err.Error()
		}
	}
}

// storeChecks reads the store once the database is back and counts what
// the goals forbid: acknowledged revocations not in the store, serials
// issued twice, and CRL numbers that did not increase within a shard.
type storeChecks struct {
	LostRevocations   int `json:"lost_revocations"`
	DuplicateSerials  int `json:"duplicate_serials"`
	CRLPublications   int `json:"crl_publications"`
	CRLNumberNotRaise int `json:"crl_number_not_increasing"`
	Issued            int `json:"certificates_issued_audited"`
}

func (w *writeLoad) check(ctx context.Context) (storeChecks, error) {
	var out storeChecks
	st, err := openStore(ctx, w.sc.data, w.sc.cfg.Postgres)
	if err != nil {
		return out, err
	}
	defer st.Close()
	for _, sn := range w.revoked {
		c, err := st.Certificate(ctx, sn)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return out, fmt.Errorf("bench: reading %s back: %w", sn, err)
		}
		if err != nil || c.Status != status.Revoked {
			out.LostRevocations++
		}
	}
	seen := map[string]bool{}
	last := map[string]int64{}
	err = st.ScanAudit(ctx, 0, func(e store.AuditEntry) error {
		switch e.Kind {
		case "certificate.issued":
			out.Issued++
			if seen[e.Subject] {
				out.DuplicateSerials++
			}
			seen[e.Subject] = true
		case "crl.published":
			var p struct {
				Number int64 `json:"number"`
			}
			if err := json.Unmarshal(e.Payload, &p); err != nil {
				return fmt.Errorf("bench: audit entry %d: %w", e.Seq, err)
			}
			out.CRLPublications++
			if prev, ok := last[e.Subject]; ok && p.Number <= prev {
				out.CRLNumberNotRaise++
			}
			last[e.Subject] = p.Number
		}
		return nil
	})
	return out, err
}

// writeFigures puts the issuance, revocation and store figures on run
// (the OCSP run of the chaos), where the goals are read.
func (w *writeLoad) writeFigures(run, issue *Run, sc storeChecks) {
	f := run.Figures
	n := float64(max(issue.Requests, 1))
	f["issue_requests"] = float64(issue.Requests)
	f["issue_answered_503"] = float64(issue.ErrorsByKind["http_503"])
	f["issue_other_errors"] = float64(issue.Errors - issue.ErrorsByKind["http_503"] - issue.ErrorsByKind["verify"])
	f["issue_ok_share_pct"] = round(100*float64(issue.Requests-issue.Errors)/n, 2)
	f["issue_latency_max_ms"] = issue.LatencyMaxMs
	f["issue_latency_p99_ms"] = issue.LatencyP99Ms
	f["lost_orders"] = float64(issue.ErrorsByKind["verify"])
	f["orders_checked_after"] = float64(issue.Verified)
	r := w.revRun
	f["revoke_requests"] = float64(r.requests)
	f["revoke_ok"] = float64(r.ok)
	f["revoke_answered_503"] = float64(r.unavailable)
	f["revoke_other_errors"] = float64(r.other)
	f["revoke_latency_max_ms"] = round(r.maxMs, 1)
	f["lost_revocations"] = float64(sc.LostRevocations)
	f["duplicate_serials"] = float64(sc.DuplicateSerials)
	f["crl_publications"] = float64(sc.CRLPublications)
	f["crl_number_not_increasing"] = float64(sc.CRLNumberNotRaise)
	if r.firstOther != "" {
		run.Notes = append(run.Notes, "first revocation error other than 503: "+clip(r.firstOther, 300))
	}
	for k, v := range issue.FirstErrors {
		run.Notes = append(run.Notes, fmt.Sprintf("issuance %s: %s", k, clip(v, 300)))
	}
}

// finish checks the store and puts every write figure on run.
func (w *writeLoad) finish(ctx context.Context, run, issue *Run) error {
	sc, err := w.check(ctx)
	if issue == nil {
		issue = &Run{ErrorsByKind: map[string]int64{}}
	}
	w.writeFigures(run, issue, sc)
	return err
}
