package main

import (
	"cmp"
	"context"
	"crypto/x509"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/trustline/trustline/internal/cli"
	"github.com/trustline/trustline/internal/config"
	"github.com/trustline/trustline/internal/follow"
	"github.com/trustline/trustline/internal/issuerid"
	"github.com/trustline/trustline/internal/store"
	"github.com/trustline/trustline/internal/store/storeopen"
	"github.com/trustline/trustline/issuer/pki"
	"github.com/trustline/trustline/watch"
)

// Leases of the watch role: the instance that checks the CRLs (every
// instance checks OCSP for its own random sample), and the one that deletes
// old findings.
const (
	leaseWatchCRLs      = "watch-crls"
	leaseWatchRetention = "watch-retention"
)

// runWatchCommand is `trustline watch` (the role) and `trustline watch
// report`.
func runWatchCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "report" {
		return runWatchReport(ctx, args[1:], stdout, stderr)
	}
	return runRole(ctx, "watch", args, stderr, runWatch)
}

// runWatch: `trustline watch` checks, every watch.interval, what relying
// parties receive — OCSP at the public URL and at each responder, CRLs at
// the public URL and at each origin — against the store, and records
// every disagreement (docs/operations.md). Any number may run: each draws
// its own sample, so more instances check more certificates, and the one
// holding a lease checks the CRLs.
func runWatch(ctx context.Context, r *plantRole) error {
	st, p, err := r.openHierarchy(ctx, pki.CertsOnly)
	if err != nil {
		return err
	}
	issuers := map[issuerid.ID]*x509.Certificate{}
	for _, is := range p.Intermediates {
		issuers[is.ID] = is.Cert
	}
	wc := r.cfg.Watch
	w, err := watch.New(watch.Config{
		Targets: watch.Targets{PublicOCSP: r.cfg.Public.OCSP, Responders: wc.Responders, PublicCRL: r.cfg.Public.CRL, Origins: wc.Origins},
		Sample:  wc.Sample, Instance: r.holder,
		OCSPRevocationDelay: cmp.Or(wc.OCSPRevocationDelay, time.Minute),
		CRLRevocationDelay:  cmp.Or(wc.CRLRevocationDelay, r.cfg.CRL.RevocationDelay+time.Minute),
	}, st, issuers, r.log, r.reg)
	if err != nil {
		return err
	}
	if len(wc.Responders) == 0 && len(wc.Origins) == 0 {
		r.log.Warn("watch checks the public URLs only: list watch.responders and watch.origins to check each server behind them")
	}
	interval := cmp.Or(wc.Interval, time.Minute)
	// Renewed at each round's start: it must outlive a slow round, and a
	// holder that stops is replaced after it lapses.
	crlLease, err := follow.NewLease(st, leaseWatchCRLs, r.holder, max(3*interval, 2*time.Minute), nil)
	if err != nil {
		return err
	}
	r.every(interval, func(ctx context.Context) {
		start := time.Now()
		crlLease.Renew(ctx) // a store error leaves it not held: OCSP only this round
		fs, err := w.Round(ctx, crlLease.Held())
		if err != nil && ctx.Err() == nil {
			r.log.Warn("watch round failed", "err", err)
			return
		}
		r.log.Info("watch round", "findings", len(fs), "crls", crlLease.Held(), "took", time.Since(start).Round(time.Millisecond).String())
	})
	lease, err := follow.NewLease(st, leaseWatchRetention, r.holder, time.Hour, nil)
	if err != nil {
		return err
	}
	retention := cmp.Or(wc.Retention, 90*24*time.Hour)
	r.every(time.Hour, func(ctx context.Context) {
		if _, err := lease.Renew(ctx); err != nil || !lease.Held() {
			return
		}
		n, err := st.DeleteWatchFindings(ctx, time.Now().Add(-retention))
		if err != nil {
			r.log.Warn("deleting old watch findings", "err", err)
		} else if n > 0 {
			r.log.Info("old watch findings deleted", "count", n, "retention", retention)
		}
	})
	return r.serveHTTP(ctx, r.mux(storeReady(st)))
}

// runWatchReport: `trustline watch report --config FILE [--since 24h]`
// prints the findings of the period as a table a compliance officer reads:
// a count per kind, then each finding, oldest first.
func runWatchReport(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("trustline watch report", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "", "the plant's configuration file; required")
	since := fs.Duration("since", 24*time.Hour, "report the findings of this last period")
	asJSON := fs.Bool("json", false, "print the period's rounds and findings as JSON (one object), for scripts")
	if err := cli.Parse(fs, args); err != nil {
		return err
	}
	if *cfgPath == "" {
		return cli.Usage("watch report: --config FILE is required")
	}
	cfg, err := config.LoadPlant(*cfgPath)
	if err != nil {
		return err
	}
	st, err := storeopen.Open(ctx, storeopen.Config{Postgres: cfg.Postgres, ReadOnly: true}, newLogger(stderr, "text", "warn"))
	if err != nil {
		return err
	}
	defer st.Close()
	from := time.Now().Add(-*since)
	var all []store.WatchFinding
	for after := int64(0); ; {
		page, err := st.WatchFindings(ctx, from, after, 1000, false)
		if err != nil {
			return err
		}
		all = append(all, page...)
		if len(page) < 1000 {
			break
		}
		after = page[len(page)-1].ID
	}
	if *asJSON {
		return printWatchJSON(stdout, all, from, time.Now())
	}
	return printWatchReport(stdout, all, from, time.Now())
}

// printWatchJSON writes the period as {"from", "to", "checked": totals,
// "rounds", "findings": [...]} (findings without their evidence).
func printWatchJSON(w io.Writer, rows []store.WatchFinding, from, to time.Time) error {
	type finding struct {
		At         time.Time `json:"at"`
		Watcher    string    `json:"watcher"`
		Object     string    `json:"object"`
		Kind       string    `json:"kind"`
		URL        string    `json:"url"`
		Serial     string    `json:"serial,omitempty"`
		Issuer     string    `json:"issuer,omitempty"`
		HTTPStatus int       `json:"http_status,omitempty"`
		Detail     string    `json:"detail"`
	}
	out := struct {
		From     time.Time          `json:"from"`
		To       time.Time          `json:"to"`
		Rounds   int                `json:"rounds"`
		Checked  watch.RoundSummary `json:"checked"`
		Findings []finding          `json:"findings"`
	}{From: from.UTC(), To: to.UTC(), Findings: []finding{}}
	findings, total, rounds, _ := splitRounds(rows)
	out.Rounds, out.Checked = rounds, total
	for _, r := range findings {
		out.Findings = append(out.Findings, finding{At: r.At.UTC(), Watcher: r.Watcher, Object: r.Object, Kind: r.Kind, URL: r.URL,
			Serial: r.Serial, Issuer: r.Issuer, HTTPStatus: r.HTTPStatus, Detail: r.Detail})
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

// printWatchReport writes the report of the rows (findings and round
// summaries) recorded between from and to.
func printWatchReport(w io.Writer, rows []store.WatchFinding, from, to time.Time) error {
	fmt.Fprintf(w, "Trustline watch report, %s to %s\n\n", from.UTC().Format(time.RFC3339), to.UTC().Format(time.RFC3339))
	fs, total, rounds, watchers := splitRounds(rows)
	fmt.Fprintf(w, "Checked: %d rounds by %d %s; %d certificates sampled, %d OCSP responses and %d CRLs fetched and checked.\n\n",
		rounds, watchers, plural(watchers, "watcher", "watchers"), total.Certificates, total.OCSP, total.CRL)
	if rounds == 0 {
		fmt.Fprintln(w, "No round was recorded in this period: no watcher ran, or none could reach the store.")
	}
	if len(fs) == 0 {
		if rounds > 0 {
			fmt.Fprintln(w, "No disagreements: every OCSP response and CRL checked agreed with the CA's records and the Baseline Requirements.")
		}
		return nil
	}
	counts := map[string]int{}
	first, last := map[string]time.Time{}, map[string]time.Time{}
	for _, f := range fs {
		k := f.Object + " " + f.Kind
		counts[k]++
		if first[k].IsZero() || f.At.Before(first[k]) {
			first[k] = f.At
		}
		if f.At.After(last[k]) {
			last[k] = f.At
		}
	}
	keys := make([]string, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "OBJECT\tKIND\tCOUNT\tFIRST\tLAST")
	for _, k := range keys {
		o, kind, _ := strings.Cut(k, " ")
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\n", o, kind, counts[k], first[k].UTC().Format(time.RFC3339), last[k].UTC().Format(time.RFC3339))
	}
	tw.Flush()
	fmt.Fprintf(w, "\n%d disagreements:\n\n", len(fs))
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "FETCHED\tOBJECT\tKIND\tURL\tSERIAL\tHTTP\tDETAIL")
	for _, f := range fs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%s\n", f.At.UTC().Format(time.RFC3339), f.Object, f.Kind, f.URL, cmp.Or(f.Serial, "-"), f.HTTPStatus, f.Detail)
	}
	return tw.Flush()
}

// splitRounds separates the findings from the round summaries and adds
// the summaries up.
func splitRounds(rows []store.WatchFinding) (findings []store.WatchFinding, total watch.RoundSummary, rounds, watchers int) {
	seen := map[string]bool{}
	for _, r := range rows {
		if r.Object != watch.ObjectRound {
			findings = append(findings, r)
			continue
		}
		var s watch.RoundSummary
		if json.Unmarshal([]byte(r.Detail), &s) != nil {
			continue
		}
		rounds++
		seen[r.Watcher] = true
		total.Certificates += s.Certificates
		total.OCSP += s.OCSP
		total.CRL += s.CRL
		total.Findings += s.Findings
	}
	return findings, total, rounds, len(seen)
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
