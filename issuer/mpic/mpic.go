// Package mpic decides Multi-Perspective Issuance Corroboration (BR
// §3.2.2.9): after the primary network perspective has passed a domain
// validation (dns-txt, http-token) or found that CAA permits issuance,
// remote perspectives repeat the check from their own network position and
// resolver, and the CA issues only when enough of them corroborate.
//
// It holds the vocabulary shared by the primary (issuer/validation, the CAA
// checks) and the perspectives (issuer/perspective): the Check a
// perspective repeats, each perspective's Answer, the quorum table and the
// dated BR schedule, and the Outcome recorded as evidence. It imports no
// Trustline package.
package mpic

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"
)

// Kinds of check a perspective repeats.
const (
	KindDNSTXT    = "dns-txt"    // BR §3.2.2.4.7: the random value in a TXT record
	KindHTTPToken = "http-token" // BR §3.2.2.4.18: the random value at /.well-known/pki-validation/
	KindCAA       = "caa"        // BR §3.2.2.8: CAA permits this CA to issue
	// The ACME challenges (RFC 8555 §8, RFC 8737): Value is the key
	// authorization, Token its token.
	KindACMEHTTP01    = "acme-http-01"     // BR §3.2.2.4.19
	KindACMEDNS01     = "acme-dns-01"      // BR §3.2.2.4.7
	KindACMETLSALPN01 = "acme-tls-alpn-01" // BR §3.2.2.4.20
)

// Check is one determination the primary made, for perspectives to repeat.
type Check struct {
	Kind   string `json:"kind"`
	Domain string `json:"domain"` // the domain validated, or the name CAA is checked for ("*.example.com")
	// Value is the random value of a dns-txt or http-token validation, or
	// an ACME challenge's key authorization.
	Value string `json:"value,omitempty"`
	// Token names an http-token validation's file under
	// /.well-known/pki-validation/ (hex), or is an ACME challenge's token.
	Token string `json:"token,omitempty"`
	// AccountURI and Method are a CAA check's RFC 8657 parameters.
	AccountURI string `json:"account_uri,omitempty"`
	Method     string `json:"method,omitempty"`
}

// Validate reports a check no perspective could perform.
func (c Check) Validate() error {
	switch c.Kind {
	case KindDNSTXT, KindHTTPToken:
		if c.Value == "" {
			return fmt.Errorf("mpic: a %s check needs the random value", c.Kind)
		}
		if c.Kind == KindHTTPToken && (c.Token == "" || len(c.Token) > 128 || strings.Trim(c.Token, "0123456789abcdef") != "") {
			return fmt.Errorf("mpic: an http-token check needs the file's token in hex, not %q", c.Token)
		}
	case KindACMEHTTP01, KindACMEDNS01, KindACMETLSALPN01:
		token, thumbprint, ok := strings.Cut(c.Value, ".")
		if !ok || token == "" || thumbprint == "" || token != c.Token || len(c.Value) > 256 ||
			strings.Trim(c.Value, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.") != "" {
			return fmt.Errorf("mpic: a %s check needs a key authorization and its token", c.Kind)
		}
	case KindCAA:
	default:
		return fmt.Errorf("mpic: unknown check kind %q", c.Kind)
	}
	if c.Domain == "" || len(c.Domain) > 253 || strings.ContainsAny(c.Domain, " /\\@:") {
		return fmt.Errorf("mpic: %q is not a domain name", c.Domain)
	}
	return nil
}

// Answer is what one remote perspective said.
type Answer struct {
	Perspective string `json:"perspective"`
	RIR         string `json:"rir,omitempty"` // Regional Internet Registry whose service region it is in
	// Corroborates: the perspective reached the primary's determination.
	Corroborates bool `json:"corroborates"`
	// Unreachable: no verified answer came back (down, timed out, a bad
	// signature). It counts as a non-corroboration, but the fault is the
	// CA's, not the subscriber's.
	Unreachable bool   `json:"unreachable,omitempty"`
	Detail      string `json:"detail,omitempty"`
	// Statement and Signature are the perspective's signed answer, kept so
	// that an auditor can verify it against the perspective's key.
	Statement json.RawMessage `json:"statement,omitempty"`
	Signature []byte          `json:"signature,omitempty"`
	Latency   time.Duration   `json:"latency_ns"`
}

// Policy is the rule an outcome is judged by.
type Policy struct {
	Name string `json:"name"`
	// MinRemote is the least number of remote perspectives to ask.
	MinRemote int `json:"min_remote"`
	// MinRIRs is the least number of distinct RIRs among the perspectives
	// that corroborate (0: not required).
	MinRIRs int `json:"min_rirs"`
	// Enforced: when false, an unmet quorum is recorded but does not stop
	// issuance (BR's first phase, before 2025-09-15).
	Enforced bool `json:"enforced"`
}

// brSchedule is BR §3.2.2.9's phased implementation timeline: each step
// applies from its date on.
var brSchedule = []struct {
	from time.Time
	p    Policy
}{
	{time.Time{}, Policy{MinRemote: 0}},
	{date(2025, 3, 15), Policy{MinRemote: 2}},
	{date(2025, 9, 15), Policy{MinRemote: 2, Enforced: true}},
	{date(2026, 3, 15), Policy{MinRemote: 3, MinRIRs: 2, Enforced: true}},
	{date(2026, 6, 15), Policy{MinRemote: 4, MinRIRs: 2, Enforced: true}},
	{date(2026, 12, 15), Policy{MinRemote: 5, MinRIRs: 2, Enforced: true}},
}

func date(y int, m time.Month, d int) time.Time { return time.Date(y, m, d, 0, 0, 0, 0, time.UTC) }

// BR returns the policy BR §3.2.2.9 sets for a certificate issued at t.
func BR(t time.Time) Policy {
	i := 0
	for i+1 < len(brSchedule) && !t.Before(brSchedule[i+1].from) {
		i++
	}
	p := brSchedule[i].p
	p.Name = "BR 3.2.2.9 from " + brSchedule[i].from.Format(time.DateOnly)
	return p
}

// QuorumOnly is the quorum table alone, without the minimum number of
// perspectives and RIRs: for development and test plants whose
// perspectives share one machine. A CA whose certificates are trusted
// uses BR.
func QuorumOnly(time.Time) Policy {
	return Policy{Name: "quorum table only (not BR 3.2.2.9: no minimum count or RIR spread)", Enforced: true}
}

// Allowed is the number of non-corroborations BR §3.2.2.9's quorum table
// allows when n remote perspectives are used: 1 for 2–5, 2 for 6 or more.
// With fewer than 2 every one must corroborate.
func Allowed(n int) int {
	switch {
	case n < 2:
		return 0
	case n < 6:
		return 1
	default:
		return 2
	}
}

// Outcome is the decision on one check, recorded with the validation or
// the order.
type Outcome struct {
	Check        Check    `json:"check"`
	Policy       Policy   `json:"policy"`
	Asked        int      `json:"asked"`
	Corroborated int      `json:"corroborated"`
	Allowed      int      `json:"allowed_non_corroborations"`
	RIRs         []string `json:"corroborating_rirs,omitempty"`
	// Met: the policy is satisfied. When the policy is not enforced an
	// unmet quorum leaves Met false and Proceed true.
	Met     bool     `json:"met"`
	Proceed bool     `json:"proceed"`
	Reason  string   `json:"reason"`
	Answers []Answer `json:"answers"`
}

// Decide judges the answers of the remote perspectives asked about c.
func Decide(c Check, p Policy, answers []Answer) Outcome {
	o := Outcome{Check: c, Policy: p, Asked: len(answers), Allowed: Allowed(len(answers)), Answers: answers}
	rirs := map[string]bool{}
	for _, a := range answers {
		if a.Corroborates {
			o.Corroborated++
			if a.RIR != "" {
				rirs[strings.ToUpper(a.RIR)] = true
			}
		}
	}
	for r := range rirs {
		o.RIRs = append(o.RIRs, r)
	}
	sort.Strings(o.RIRs)
	non := o.Asked - o.Corroborated
	switch {
	case o.Asked == 0:
		o.Reason = "no remote perspective is configured"
	case o.Asked < p.MinRemote:
		o.Reason = fmt.Sprintf("%d remote perspective(s) asked; %s asks for at least %d", o.Asked, p.Name, p.MinRemote)
	case non > o.Allowed:
		o.Reason = fmt.Sprintf("%d of %d remote perspectives did not corroborate (%s); at most %d may not",
			non, o.Asked, disagreements(answers), o.Allowed)
	case len(o.RIRs) < p.MinRIRs:
		o.Reason = fmt.Sprintf("the corroborating perspectives are in %d RIR service region(s) %v; %s asks for %d",
			len(o.RIRs), o.RIRs, p.Name, p.MinRIRs)
	default:
		o.Met = true
		o.Reason = fmt.Sprintf("%d of %d remote perspectives corroborated", o.Corroborated, o.Asked)
	}
	o.Proceed = o.Met || !p.Enforced
	return o
}

// Unavailable reports an outcome that failed only because perspectives
// did not answer: counting those as corroborating would have met the
// quorum. The CA's side is at fault; the subscriber may simply retry.
func (o Outcome) Unavailable() bool {
	if o.Proceed || o.Asked < o.Policy.MinRemote || o.Asked == 0 {
		return false
	}
	negative := 0
	for _, a := range o.Answers {
		if !a.Corroborates && !a.Unreachable {
			negative++
		}
	}
	return negative <= o.Allowed && negative < o.Asked-o.Corroborated
}

// disagreements names each perspective that did not corroborate and why.
func disagreements(answers []Answer) string {
	var parts []string
	for _, a := range answers {
		if !a.Corroborates {
			parts = append(parts, a.Perspective+": "+a.Detail)
		}
	}
	return strings.Join(parts, "; ")
}

// Corroborator asks the remote perspectives to repeat a check the primary
// passed, and decides. perspective.Client is one.
type Corroborator interface {
	Corroborate(ctx context.Context, c Check) Outcome
}
