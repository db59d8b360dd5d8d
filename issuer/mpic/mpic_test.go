package mpic

import (
	"strings"
	"testing"
	"time"
)

func TestAllowed(t *testing.T) {
	for n, want := range map[int]int{0: 0, 1: 0, 2: 1, 3: 1, 5: 1, 6: 2, 9: 2} {
		if got := Allowed(n); got != want {
			t.Errorf("Allowed(%d) = %d, want %d (BR 3.2.2.9 quorum table)", n, got, want)
		}
	}
}

func TestBR(t *testing.T) {
	for _, tc := range []struct {
		at               time.Time
		min, rirs        int
		enforced         bool
		nameHasStartDate string
	}{
		{date(2025, 1, 1), 0, 0, false, "0001-01-01"},
		{date(2025, 3, 15), 2, 0, false, "2025-03-15"},
		{date(2025, 9, 15), 2, 0, true, "2025-09-15"},
		{date(2026, 12, 14), 4, 2, true, "2026-06-15"},
		{date(2026, 12, 15), 5, 2, true, "2026-12-15"},
		{date(2030, 1, 1), 5, 2, true, "2026-12-15"},
	} {
		p := BR(tc.at)
		if p.MinRemote != tc.min || p.MinRIRs != tc.rirs || p.Enforced != tc.enforced || !strings.Contains(p.Name, tc.nameHasStartDate) {
			t.Errorf("BR(%s) = %+v, want min %d, RIRs %d, enforced %v, from %s", tc.at.Format(time.DateOnly), p, tc.min, tc.rirs, tc.enforced, tc.nameHasStartDate)
		}
	}
}

func TestDecide(t *testing.T) {
	yes := func(name, rir string) Answer { return Answer{Perspective: name, RIR: rir, Corroborates: true} }
	no := func(name string) Answer { return Answer{Perspective: name, Detail: "no TXT record"} }
	down := func(name string) Answer {
		return Answer{Perspective: name, Unreachable: true, Detail: "connection refused"}
	}
	br := BR(date(2027, 1, 1))
	c := Check{Kind: KindDNSTXT, Domain: "example.com", Value: "v"}
	for _, tc := range []struct {
		name        string
		p           Policy
		answers     []Answer
		met, unavl  bool
		reasonHolds string
	}{
		{"all five corroborate", br, []Answer{yes("a", "ARIN"), yes("b", "RIPE"), yes("c", "APNIC"), yes("d", "ARIN"), yes("e", "RIPE")}, true, false, "5 of 5"},
		{"one of five differs", br, []Answer{yes("a", "ARIN"), yes("b", "RIPE"), no("c"), yes("d", "ARIN"), yes("e", "RIPE")}, true, false, "4 of 5"},
		{"two of five differ", br, []Answer{yes("a", "ARIN"), yes("b", "RIPE"), no("c"), no("d"), yes("e", "RIPE")}, false, false, "c: no TXT record; d: no TXT record"},
		{"two of six differ", br, []Answer{yes("a", "ARIN"), yes("b", "RIPE"), no("c"), no("d"), yes("e", "RIPE"), yes("f", "APNIC")}, true, false, "4 of 6"},
		{"one differs, one down", br, []Answer{yes("a", "ARIN"), yes("b", "RIPE"), no("c"), down("d"), yes("e", "RIPE")}, false, true, "d: connection refused"},
		{"two down", br, []Answer{yes("a", "ARIN"), yes("b", "RIPE"), down("c"), down("d"), yes("e", "RIPE")}, false, true, "2 of 5"},
		{"too few asked", br, []Answer{yes("a", "ARIN"), yes("b", "RIPE"), yes("c", "APNIC")}, false, false, "at least 5"},
		{"one RIR", br, []Answer{yes("a", "ARIN"), yes("b", "ARIN"), yes("c", "arin"), yes("d", "ARIN"), yes("e", "ARIN")}, false, false, "RIR"},
		{"quorum only, three in one place", QuorumOnly(time.Time{}), []Answer{yes("a", ""), no("b"), yes("c", "")}, true, false, "2 of 3"},
		{"none asked", QuorumOnly(time.Time{}), nil, false, false, "no remote perspective"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := Decide(c, tc.p, tc.answers)
			if o.Met != tc.met || o.Proceed != tc.met || o.Unavailable() != tc.unavl {
				t.Errorf("Met %v Proceed %v Unavailable %v, want %v %v %v (%s)", o.Met, o.Proceed, o.Unavailable(), tc.met, tc.met, tc.unavl, o.Reason)
			}
			if !strings.Contains(o.Reason, tc.reasonHolds) {
				t.Errorf("reason %q does not say %q", o.Reason, tc.reasonHolds)
			}
		})
	}
}

// TestNotEnforced: in BR's first phase an unmet quorum is recorded and
// issuance goes on.
func TestNotEnforced(t *testing.T) {
	o := Decide(Check{Kind: KindCAA, Domain: "example.com"}, BR(date(2025, 4, 1)),
		[]Answer{{Perspective: "a", Corroborates: true}, {Perspective: "b"}, {Perspective: "c"}})
	if o.Met || !o.Proceed {
		t.Fatalf("Met %v Proceed %v, want false true", o.Met, o.Proceed)
	}
}

func TestCheckValidate(t *testing.T) {
	for _, c := range []Check{
		{Kind: "tls-alpn", Domain: "example.com"},
		{Kind: KindDNSTXT, Domain: "example.com"},
		{Kind: KindCAA, Domain: ""},
		{Kind: KindCAA, Domain: "example.com/x"},
		{Kind: KindHTTPToken, Domain: "a@b", Value: "v", Token: "ab"},
		{Kind: KindHTTPToken, Domain: "example.com", Value: "v", Token: "../etc"},
		{Kind: KindACMEHTTP01, Domain: "example.com", Value: "tok.thumb", Token: "other"},  // the token is the key authorization's
		{Kind: KindACMEDNS01, Domain: "example.com", Value: "tokthumb", Token: "tokthumb"}, // no thumbprint
		{Kind: KindACMETLSALPN01, Domain: "example.com", Value: "../x.y", Token: "../x"},   // not base64url
		{Kind: KindACMEHTTP01, Domain: "example.com", Value: "tok.", Token: "tok"},         // empty thumbprint
	} {
		if err := c.Validate(); err == nil {
			t.Errorf("Validate(%+v) = nil, want an error", c)
		}
	}
	for _, k := range []string{KindACMEHTTP01, KindACMEDNS01, KindACMETLSALPN01} {
		if err := (Check{Kind: k, Domain: "example.com", Value: "tok-_0.thumb", Token: "tok-_0"}).Validate(); err != nil {
			t.Errorf("an %s check: %v", k, err)
		}
	}
	if err := (Check{Kind: KindCAA, Domain: "*.example.com"}).Validate(); err != nil {
		t.Errorf("a wildcard CAA check: %v", err)
	}
}
