package crlgen

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/trustline/trustline/internal/shard"
)

// Config is the CRL generator role's configuration. Zero durations take the
// documented defaults (production values); DevConfig gives dev mode's.
type Config struct {
	// BaseURL is the CRL origin's base URL, exactly as the issuer writes it
	// into certificates ("http://127.0.0.1:8082", no trailing slash): shard
	// s of issuer i is BaseURL/i/s.crl, and the IDP must match it byte for
	// byte.
	BaseURL string
	// Shards is the configured shard count per intermediate, in [1, 4096].
	// It must match the issuer's. Lowering it moves no certificate (shards
	// are stored per certificate): every shard that has certificates keeps
	// being published and crls.json lists max(Shards, highest shard in
	// use + 1).
	Shards int
	// Period is the fixed republication period of every CRL: a CRL whose
	// thisUpdate is Period old is rebuilt. Default 1 h; at most 7 days
	// (BR §4.9.7); dev mode uses at most 60 s.
	Period time.Duration
	// RevocationDelay bounds how long after a revocation its shard is
	// republished (revocations within it are batched into one CRL).
	// Default 5 min; at most 24 h (BR §4.9.7); dev mode at most 60 s.
	RevocationDelay time.Duration
	// Validity is nextUpdate − thisUpdate. Default 7 days; at most 10 days
	// (BR §4.9.7, §7.2.2) and more than Period, so a missed round never
	// leaves a CRL expired.
	Validity time.Duration
	// FullValidity is nextUpdate − thisUpdate of the root's full CRL,
	// which lists CA certificates only. Default Validity; at most 12
	// months (BR §4.9.7), so that a root kept offline signs it in a
	// ceremony once a year. Above 10 days it needs Deps.CALinter.
	FullValidity time.Duration
	// PollInterval is how often the event log is read and due CRLs looked
	// for. Default RevocationDelay/4, clamped to [1 s, 30 s]; at most
	// RevocationDelay/2 so a revocation is published within RevocationDelay.
	// At least 1 s, which keeps every shard's thisUpdate (and so the
	// origin's Last-Modified) increasing by at least a second.
	PollInterval time.Duration
	// LeaseTTL is how long a generator holds an issuer's lease without
	// renewing it; another generator takes over an issuer after that. It is
	// renewed at half-life. Default 4 × PollInterval, at least 1 min.
	LeaseTTL time.Duration
	// Holder names this generator instance in leases and logs (host name
	// and process id, a pod name): unique per running instance.
	Holder string
}

// Limits from the Baseline Requirements.
const (
	maxValidity        = 10 * 24 * time.Hour  // BR §4.9.7: nextUpdate ≤ thisUpdate + 10 days
	maxFullValidity    = 365 * 24 * time.Hour // BR §4.9.7: a CRL of CA certificates, ≤ 12 months
	maxPeriod          = 7 * 24 * time.Hour   // BR §4.9.7: reissued at least every 7 days
	maxRevocationDelay = 24 * time.Hour       // BR §4.9.7: within 24 h of a revocation
	minPollInterval    = time.Second
)

// DevConfig is `trustline dev`'s: CRLs republished every period (≤ 60 s),
// revocations published within 5 s, validity 7 days.
func DevConfig(baseURL string, shards int, period time.Duration, holder string) Config {
	return Config{
		BaseURL:         baseURL,
		Shards:          shards,
		Period:          period,
		RevocationDelay: 5 * time.Second,
		Validity:        7 * 24 * time.Hour,
		PollInterval:    time.Second,
		LeaseTTL:        time.Minute,
		Holder:          holder,
	}
}

// withDefaults fills the zero durations.
func (c Config) withDefaults() Config {
	if c.Period == 0 {
		c.Period = time.Hour
	}
	if c.RevocationDelay == 0 {
		c.RevocationDelay = 5 * time.Minute
	}
	if c.Validity == 0 {
		c.Validity = 7 * 24 * time.Hour
	}
	if c.FullValidity == 0 {
		c.FullValidity = c.Validity
	}
	if c.PollInterval == 0 {
		c.PollInterval = min(max(c.RevocationDelay/4, minPollInterval), 30*time.Second)
	}
	if c.LeaseTTL == 0 {
		c.LeaseTTL = max(4*c.PollInterval, time.Minute)
	}
	return c
}

// Validate reports every problem with c (after defaults), one per line.
func (c Config) Validate() error {
	c = c.withDefaults()
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf("crlgen: config: "+format, args...)) }
	if u, err := url.Parse(c.BaseURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
		strings.HasSuffix(c.BaseURL, "/") || u.RawQuery != "" || u.Fragment != "" {
		// BR §7.1.2.11.2: CRL distribution points are http URLs.
		bad("BaseURL %q must be an http(s) URL with a host, no trailing slash, query or fragment", c.BaseURL)
	}
	if err := shard.ValidCount(c.Shards); err != nil {
		bad("Shards: %v", err)
	}
	if c.Period < 0 || c.Period > maxPeriod {
		bad("Period %v out of range (0, %v] (BR §4.9.7)", c.Period, maxPeriod)
	}
	if c.RevocationDelay < 0 || c.RevocationDelay > maxRevocationDelay {
		bad("RevocationDelay %v out of range (0, %v] (BR §4.9.7)", c.RevocationDelay, maxRevocationDelay)
	}
	if c.Validity < 0 || c.Validity > maxValidity {
		bad("Validity %v out of range (0, %v] (BR §4.9.7)", c.Validity, maxValidity)
	}
	if c.Validity <= c.Period {
		bad("Validity %v must exceed Period %v, or a CRL expires before it is replaced", c.Validity, c.Period)
	}
	if c.FullValidity < 0 || c.FullValidity > maxFullValidity {
		bad("FullValidity %v out of range (0, %v] (BR §4.9.7)", c.FullValidity, maxFullValidity)
	}
	if c.FullValidity <= c.Period {
		bad("FullValidity %v must exceed Period %v, or the root's CRL expires before it is replaced", c.FullValidity, c.Period)
	}
	if c.PollInterval < minPollInterval {
		bad("PollInterval %v is below %v", c.PollInterval, minPollInterval)
	}
	if c.RevocationDelay > 0 && c.PollInterval > c.RevocationDelay/2 && c.PollInterval > minPollInterval {
		bad("PollInterval %v exceeds RevocationDelay/2 (%v): revocations would be published late", c.PollInterval, c.RevocationDelay/2)
	}
	if c.LeaseTTL < 2*c.PollInterval {
		bad("LeaseTTL %v is below 2 × PollInterval (%v): the lease would lapse between rounds", c.LeaseTTL, 2*c.PollInterval)
	}
	if c.Holder == "" {
		bad("Holder is empty: name this instance (host and pid, pod name)")
	}
	return errors.Join(errs...)
}
