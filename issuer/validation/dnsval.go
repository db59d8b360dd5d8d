package validation

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/trustline/trustline/internal/dnsanswer"
	"github.com/trustline/trustline/issuer/fault"
)

// DNS Change (BR §3.2.2.4.7): the subscriber publishes the random value in
// a TXT record at "_pki-validation.<domain>" and the CA asks its recursive
// resolver for it. The answer is read from the resolver's answer section,
// following CNAMEs as BR §3.2.2.4 allows for this method.
//
// Remote perspectives repeat the check when Deps.Corroborator is set
// (BR §3.2.2.9, probe.go); DNSSEC validation is the resolver's.

// ednsSize is the UDP payload size advertised (the DNS Flag Day 2020
// value): larger answers come back truncated and are asked again over TCP.
const ednsSize = 1232

// txtLookup asks one recursive resolver for TXT records.
type txtLookup struct {
	server    string // host:port
	transport string // "udp" or "tcp"
	timeout   time.Duration
}

// check looks for want at name. A missing or different value is a
// *checkFailure; a resolver that does not answer is a *fault.UnavailableError.
func (l *txtLookup) check(ctx context.Context, name, want string) (map[string]any, error) {
	r, transport, err := l.query(ctx, name)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, &fault.UnavailableError{Detail: "the CA's DNS resolver did not answer; try again later"}
	}
	switch r.Rcode {
	case dns.RcodeSuccess:
	case dns.RcodeNameError:
		return nil, &checkFailure{Detail: fmt.Sprintf("no TXT record at %s (the name does not exist)", name)}
	default:
		return nil, &checkFailure{Detail: fmt.Sprintf("looking up TXT %s failed: the resolver answered %s", name, dns.RcodeToString[r.Rcode])}
	}
	values := TXTValues(r.Answer, name)
	switch {
	case len(values) == 0:
		return nil, &checkFailure{Detail: fmt.Sprintf("no TXT record at %s", name)}
	case !MatchTXT(values, want):
		return nil, &checkFailure{Detail: fmt.Sprintf("none of the %d TXT record(s) at %s holds the random value", len(values), name)}
	}
	return map[string]any{
		"br_section": "3.2.2.4.7", "record_name": name, "record_type": "TXT",
		"resolver": l.server, "transport": transport, "txt_records_seen": len(values),
	}, nil
}

// query asks for TXT name, over TCP again when the UDP answer is
// truncated. It returns the transport that gave the answer.
func (l *txtLookup) query(ctx context.Context, name string) (*dns.Msg, string, error) {
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), dns.TypeTXT)
	m.RecursionDesired = true
	m.SetEdns0(ednsSize, false)
	c := &dns.Client{Net: l.transport, Timeout: l.timeout, UDPSize: ednsSize}
	r, _, err := c.ExchangeContext(ctx, m, l.server)
	if err == nil && r.Truncated && c.Net == "udp" {
		c.Net = "tcp"
		r, _, err = c.ExchangeContext(ctx, m, l.server)
	}
	if err != nil {
		return nil, c.Net, fmt.Errorf("validation: asking %s for TXT %s over %s: %w", l.server, name, c.Net, err)
	}
	if len(r.Question) != 1 || !strings.EqualFold(r.Question[0].Name, m.Question[0].Name) || r.Question[0].Qtype != dns.TypeTXT {
		return nil, c.Net, fmt.Errorf("validation: %s answered another question than TXT %s", l.server, name)
	}
	return r, c.Net, nil
}

// TXTValues returns the TXT records at qname found in a resolver's answer
// section, following a CNAME chain from qname (at most dnsanswer.MaxCNAMEHops). Each
// record's character-strings are joined, as a record longer than 255
// octets must be split into several. Records of other names, classes and
// types are ignored: the answer comes from the network.
func TXTValues(answer []dns.RR, qname string) []string {
	return dnsanswer.At(answer, qname, func(_ string, rr dns.RR) (string, bool) {
		r, ok := rr.(*dns.TXT)
		if !ok {
			return "", false
		}
		return strings.Join(r.Txt, ""), true
	})
}

// MatchTXT reports whether one of the records is the random value, give
// or take surrounding white space. The whole record must match: a value
// buried in a longer record is not what the subscriber was asked to
// publish.
func MatchTXT(values []string, want string) bool {
	if want == "" {
		return false
	}
	for _, v := range values {
		if strings.TrimSpace(v) == want {
			return true
		}
	}
	return false
}
