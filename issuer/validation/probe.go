package validation

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/trustline/trustline/internal/store"
	"github.com/trustline/trustline/issuer/fault"
	"github.com/trustline/trustline/issuer/mpic"
)

// Probe performs the network checks of dns-txt, http-token and the ACME
// challenges from this process's network position and resolver, without a
// store: the check a remote perspective repeats (BR §3.2.2.9,
// issuer/perspective).
type Probe struct {
	dns  *txtLookup
	web  *tokenFetcher
	alpn *alpnProber
}

// NewProbe checks cfg, which must name a Resolver, and builds a Probe.
// dial, if set, replaces the guarded dialer of http-token (tests).
func NewProbe(cfg Config, dial DialFunc) (*Probe, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Resolver == "" {
		return nil, errors.New("validation: a probe needs a Resolver")
	}
	cfg = cfg.withDefaults()
	if dial == nil {
		dial = guardedDialer(cfg.Resolver, cfg.AllowPrivateAddresses)
	}
	return &Probe{
		dns:  &txtLookup{server: cfg.Resolver, transport: cfg.DNSTransport, timeout: cfg.DNSTimeout},
		web:  newTokenFetcher(cfg, dial),
		alpn: &alpnProber{dial: dial, port: cfg.HTTPSPort, timeout: cfg.HTTPTimeout},
	}, nil
}

// Check looks for the random value of a dns-txt or http-token check, or
// the key authorization of an ACME challenge.
// found=false with a detail is the subscriber's failure; an error is this
// side's (the resolver did not answer) or a check it does not perform.
func (p *Probe) Check(ctx context.Context, c mpic.Check) (found bool, detail string, evidence map[string]any, err error) {
	if err := c.Validate(); err != nil {
		return false, "", nil, err
	}
	switch c.Kind {
	case MethodDNSTXT:
		evidence, err = p.dns.check(ctx, DNSRecordLabel+"."+c.Domain, c.Value)
	case MethodHTTPToken:
		evidence, err = p.web.check(ctx, "http://"+c.Domain+WellKnownPath+c.Token, c.Value)
	case MethodACMEDNS01:
		evidence, err = p.dns.check(ctx, ACMEChallengeLabel+"."+c.Domain, dns01Value(c.Value))
	case MethodACMEHTTP01:
		evidence, err = p.web.checkKeyAuthorization(ctx, "http://"+c.Domain+ACMEChallengePath+c.Token, c.Value)
	case MethodACMETLSALPN01:
		evidence, err = p.alpn.check(ctx, c.Domain, c.Value)
	default:
		return false, "", nil, fmt.Errorf("validation: a probe does not perform %q checks", c.Kind)
	}
	var miss *checkFailure
	if errors.As(err, &miss) {
		return false, miss.Detail, nil, nil
	}
	if err != nil {
		return false, "", nil, err
	}
	return true, "", evidence, nil
}

// corroborate asks the remote perspectives to repeat a check the primary
// passed. It returns the outcome as evidence, or the error to answer
// with: a *checkFailure when they saw something else (an attempt is
// spent), a *fault.UnavailableError when too many did not answer.
func (v *Service) corroborate(ctx context.Context, val store.Validation) (mpic.Outcome, error) {
	c := mpic.Check{Kind: val.Method, Domain: val.Domain, Value: string(val.Secret)}
	switch val.Method {
	case MethodHTTPToken:
		c.Token = strings.TrimPrefix(val.Contact, "http://"+val.Domain+WellKnownPath)
	case MethodACMEHTTP01, MethodACMEDNS01, MethodACMETLSALPN01:
		c.Token, _, _ = strings.Cut(c.Value, ".")
	}
	domain, method := val.Domain, val.Method
	o := v.mpic.Corroborate(ctx, c)
	switch {
	case ctx.Err() != nil:
		return o, ctx.Err()
	case o.Proceed:
		if !o.Met {
			v.log.Warn("validation not corroborated; issuing anyway (policy not enforced)", "domain", domain, "method", method, "reason", o.Reason)
		}
		return o, nil
	case o.Unavailable():
		v.log.Warn("remote perspectives unavailable", "domain", domain, "method", method, "reason", o.Reason)
		return o, &fault.UnavailableError{Detail: "too few of the CA's remote network perspectives answered (BR 3.2.2.9); try again later"}
	}
	return o, &checkFailure{Detail: "the random value was found from the CA's primary network perspective but not corroborated from enough remote ones (BR 3.2.2.9): " + o.Reason}
}

// withOutcome returns val with the outcome of a failed corroboration kept
// in its evidence, so that the attempt it cost can be explained.
func withOutcome(val []byte, o mpic.Outcome) []byte {
	return withEvidence(val, "mpic_last_failure", o)
}
