// Package caa decides whether DNS Certification Authority Authorization
// records let Trustline issue for a name (RFC 8659, with the accounturi and
// validationmethods parameters of RFC 8657), as BR §3.2.2.8 requires for
// every name of every certificate, checked within 8 hours before issuance.
//
// The relevant record set is found by climbing the tree from the name (its
// "*." removed) towards the root: the first name whose CAA query returns
// records, following CNAMEs as the resolver does, holds it. An empty set
// anywhere up to the top-level domain permits issuance. A set with a
// critical property Trustline does not understand forbids it. Otherwise a
// wildcard name looks at the issuewild properties if there are any, and at
// issue properties if not; a non-wildcard name at issue. One of those must
// name one of the CA's identities and, when it carries accounturi or
// validationmethods, the requesting account and the validation method.
// iodef and other non-critical properties are ignored.
//
// A lookup that fails (SERVFAIL, which a validating resolver answers for a
// zone whose DNSSEC chain is broken; a refusal; a resolver that does not
// answer) refuses issuance: the BR allow treating some failures as
// permission, and Trustline does not (docs/caa.md).
package caa

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/trustline/trustline/internal/dnsanswer"
	"github.com/trustline/trustline/issuer/mpic"
)

// MaxAge is how long a CAA check stays good for issuance (BR §3.2.2.8: "within 8
// hours prior to issuance").
const MaxAge = 8 * time.Hour

// Config says who the CA is and whom to ask.
type Config struct {
	// Identities are the issuer domain names that mean this CA in CAA
	// records ("trustline.example"); at least one.
	Identities []string
	// Resolver is the recursive (and, in production, DNSSEC-validating)
	// resolver, host:port.
	Resolver string
	// Transport is "udp" (default, with a TCP retry of truncated answers)
	// or "tcp".
	Transport string
	// Timeout bounds one query; 0 means 5 s.
	Timeout time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Request is one name to check.
type Request struct {
	Name string // a DNS name, possibly "*.example.com"
	// AccountURI is the requesting account's URI for RFC 8657 accounturi
	// (Trustline's API URL of the account).
	AccountURI string
	// Method is the validation method that proved control of the name,
	// in RFC 8657's vocabulary (dns-01, http-01, …, or an ACME-less
	// label the CA documents: see MethodLabel).
	Method string
}

// Record is one CAA record seen.
type Record struct {
	Owner string `json:"owner"` // the name it was found at (after CNAMEs)
	Flags uint8  `json:"flags"`
	Tag   string `json:"tag"`
	Value string `json:"value"`
}

func (r Record) String() string {
	return fmt.Sprintf("%s CAA %d %s %q", r.Owner, r.Flags, r.Tag, r.Value)
}

// Result is the evidence of one check, kept with the order.
type Result struct {
	Name       string    `json:"name"`
	Permitted  bool      `json:"permitted"`
	Reason     string    `json:"reason"`
	RelevantAt string    `json:"relevant_at,omitempty"` // where the relevant set was found; "" if none
	Records    []Record  `json:"records,omitempty"`     // the relevant set
	Queried    []string  `json:"queried"`               // names asked, in order
	Resolver   string    `json:"resolver"`
	At         time.Time `json:"at"`
	// Corroboration is what the remote perspectives said, when they were
	// asked (BR §3.2.2.9).
	Corroboration *mpic.Outcome `json:"corroboration,omitempty"`
}

// Errors Check returns, wrapped with the detail.
var (
	// ErrForbidden: the records do not let this CA issue for the name.
	ErrForbidden = errors.New("caa: issuance forbidden")
	// ErrLookup: the resolver answered, but not with the records: SERVFAIL
	// (a broken DNSSEC chain), REFUSED. The domain's DNS must be fixed.
	ErrLookup = errors.New("caa: lookup failed")
	// ErrResolver: the CA's resolver did not answer (or answered another
	// question). The CA's side; the check may be retried.
	ErrResolver = errors.New("caa: resolver unavailable")
)

// Checker checks names against CAA records.
type Checker struct {
	cfg Config
	ids map[string]bool
}

// New returns a Checker.
func New(cfg Config) (*Checker, error) {
	if len(cfg.Identities) == 0 {
		return nil, errors.New("caa: at least one CA identity (issuer domain name) is required")
	}
	if cfg.Resolver == "" {
		return nil, errors.New("caa: a resolver is required")
	}
	if cfg.Transport == "" {
		cfg.Transport = "udp"
	}
	if cfg.Transport != "udp" && cfg.Transport != "tcp" {
		return nil, fmt.Errorf("caa: transport %q: want udp or tcp", cfg.Transport)
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 5 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	c := &Checker{cfg: cfg, ids: map[string]bool{}}
	for _, id := range cfg.Identities {
		id = strings.ToLower(strings.TrimSuffix(strings.TrimSpace(id), "."))
		if !isIssuerName(id) {
			return nil, fmt.Errorf("caa: identity %q is not a domain name", id)
		}
		c.ids[id] = true
	}
	return c, nil
}

// Check finds the relevant CAA set for r.Name and decides. The Result is
// the evidence either way; the error wraps ErrForbidden (with the record
// that decided in its text), ErrLookup or ErrResolver.
func (c *Checker) Check(ctx context.Context, r Request) (Result, error) {
	name, wildcard := strings.CutPrefix(strings.ToLower(strings.TrimSuffix(r.Name, ".")), "*.")
	res := Result{Name: r.Name, Resolver: c.cfg.Resolver, At: c.cfg.Now().UTC()}
	set, at, err := c.relevant(ctx, name, &res)
	if err != nil {
		res.Reason = err.Error()
		return res, err
	}
	res.RelevantAt, res.Records = at, set
	if err := c.decide(set, wildcard, r); err != nil {
		res.Reason = err.Error()
		return res, fmt.Errorf("%w for %s: %s", ErrForbidden, r.Name, err.Error())
	}
	res.Permitted = true
	if len(set) == 0 {
		res.Reason = "no CAA records up to the top-level domain"
	} else {
		res.Reason = "permitted by a record at " + at
	}
	return res, nil
}

// relevant climbs from name to the top-level domain and returns the first
// non-empty CAA set and where it was found.
func (c *Checker) relevant(ctx context.Context, name string, res *Result) ([]Record, string, error) {
	labels := dns.SplitDomainName(name)
	for i := range labels {
		at := strings.Join(labels[i:], ".")
		res.Queried = append(res.Queried, at)
		set, err := c.lookup(ctx, at)
		if err != nil {
			return nil, "", err
		}
		if len(set) > 0 {
			return set, at, nil
		}
	}
	return nil, "", nil
}

// lookup returns the CAA records at name, following a CNAME chain in the
// answer. NXDOMAIN and an empty answer are an empty set.
func (c *Checker) lookup(ctx context.Context, name string) ([]Record, error) {
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), dns.TypeCAA)
	m.RecursionDesired = true
	m.SetEdns0(1232, true) // DO: ask the validating resolver to validate
	cl := &dns.Client{Net: c.cfg.Transport, Timeout: c.cfg.Timeout, UDPSize: 1232}
	resp, _, err := cl.ExchangeContext(ctx, m, c.cfg.Resolver)
	if err == nil && resp.Truncated && cl.Net == "udp" {
		cl.Net = "tcp"
		resp, _, err = cl.ExchangeContext(ctx, m, c.cfg.Resolver)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: CAA %s: the CA's resolver did not answer: %v", ErrResolver, name, err)
	}
	if len(resp.Question) != 1 || !strings.EqualFold(resp.Question[0].Name, m.Question[0].Name) || resp.Question[0].Qtype != dns.TypeCAA {
		return nil, fmt.Errorf("%w: CAA %s: the resolver answered another question", ErrResolver, name)
	}
	switch resp.Rcode {
	case dns.RcodeSuccess, dns.RcodeNameError:
	default:
		return nil, fmt.Errorf("%w: CAA %s: the resolver answered %s (a zone whose DNSSEC chain is broken gets SERVFAIL)",
			ErrLookup, name, dns.RcodeToString[resp.Rcode])
	}
	return recordsAt(resp.Answer, name), nil
}

// recordsAt returns the CAA records at qname in an answer section,
// following a CNAME chain from qname.
func recordsAt(answer []dns.RR, qname string) []Record {
	return dnsanswer.At(answer, qname, func(owner string, rr dns.RR) (Record, bool) {
		r, ok := rr.(*dns.CAA)
		if !ok {
			return Record{}, false
		}
		return Record{Owner: strings.TrimSuffix(owner, "."), Flags: r.Flag, Tag: r.Tag, Value: r.Value}, true
	})
}

// critical is the issuer critical flag (RFC 8659 §4.1).
const critical = 128

// known are the property tags Trustline acts on or may ignore.
var known = map[string]bool{"issue": true, "issuewild": true, "iodef": true, "issuemail": true, "issuevmc": true, "contactemail": true, "contactphone": true}

// decide applies a non-empty set; nil permits.
func (c *Checker) decide(set []Record, wildcard bool, r Request) error {
	if len(set) == 0 {
		return nil
	}
	for _, rec := range set {
		if rec.Flags&critical != 0 && !known[strings.ToLower(rec.Tag)] {
			return fmt.Errorf("the record %s is critical and of a property this CA does not understand", rec)
		}
	}
	tag := "issue"
	if wildcard && hasTag(set, "issuewild") {
		tag = "issuewild"
	}
	var (
		seen    []Record
		refusal string
	)
	for _, rec := range set {
		if !strings.EqualFold(rec.Tag, tag) {
			continue
		}
		seen = append(seen, rec)
		ok, why := c.permits(rec.Value, r)
		if ok {
			return nil
		}
		if refusal == "" {
			refusal = fmt.Sprintf("%s: %s", rec, why)
		}
	}
	if len(seen) == 0 {
		return nil // only iodef or other properties: no restriction
	}
	if len(seen) == 1 {
		return errors.New(refusal)
	}
	return fmt.Errorf("none of the %d %s records at %s names this CA (%s); the first: %s",
		len(seen), tag, seen[0].Owner, strings.Join(sortedIDs(c.ids), ", "), refusal)
}

func hasTag(set []Record, tag string) bool {
	for _, r := range set {
		if strings.EqualFold(r.Tag, tag) {
			return true
		}
	}
	return false
}

// permits reports whether one issue or issuewild value lets this CA
// issue for r, and if not, why.
func (c *Checker) permits(value string, r Request) (bool, string) {
	v, err := ParseValue(value)
	if err != nil {
		return false, err.Error()
	}
	if v.Issuer == "" {
		return false, "it forbids every CA"
	}
	if !c.ids[strings.ToLower(v.Issuer)] {
		return false, fmt.Sprintf("it names %s, not this CA (%s)", v.Issuer, strings.Join(sortedIDs(c.ids), ", "))
	}
	if uri, ok := v.Params["accounturi"]; ok && uri != r.AccountURI {
		return false, fmt.Sprintf("it allows the account %s only (RFC 8657 accounturi)", uri)
	}
	if ms, ok := v.Params["validationmethods"]; ok {
		allowed := strings.Split(ms, ",")
		found := false
		for _, m := range allowed {
			if strings.TrimSpace(m) == r.Method {
				found = true
			}
		}
		if !found {
			return false, fmt.Sprintf("it allows the validation methods %s only, and %s was used (RFC 8657 validationmethods)", ms, r.Method)
		}
	}
	return true, ""
}
