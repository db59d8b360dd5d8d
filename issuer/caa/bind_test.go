package caa_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/trustline/trustline/internal/testfix/bindtest"
	"github.com/trustline/trustline/issuer/caa"
)

// TestBindValidatingResolver checks names through BIND 9: a validating
// resolver in front of DNSSEC-signed zones, one whose signatures have
// expired. Every zone is signed and validated from the trust anchor of
// "test", so a permission below is read from records the resolver
// validated, and the broken zone's SERVFAIL is the resolver's own.
func TestBindValidatingResolver(t *testing.T) {
	r := bindtest.Start(t,
		bindtest.Zone{Name: "signed.test", Records: []string{`@ CAA 0 issue "trustline.test"`}},
		bindtest.Zone{Name: "broken.test", Records: []string{`@ CAA 0 issue "trustline.test"`, "www A 127.0.0.1"}, Broken: true},
		bindtest.Zone{Name: "other.test", Records: []string{`@ CAA 0 issue "other-ca.example"`}},
		bindtest.Zone{Name: "alias.test", Records: []string{`@ CAA 0 issue ";"`, "www CNAME cdn.target.test."}},
		bindtest.Zone{Name: "target.test", Records: []string{`cdn CAA 0 issue "trustline.test"`}},
		bindtest.Zone{Name: "wild.test", Records: []string{`@ CAA 0 issue ";"`, `@ CAA 0 issuewild "trustline.test"`}},
		bindtest.Zone{Name: "nowild.test", Records: []string{`@ CAA 0 issue "trustline.test"`, `@ CAA 0 issuewild ";"`}},
		bindtest.Zone{Name: "parent.test", Records: []string{`@ CAA 0 issue "trustline.test"`}},
		bindtest.Zone{Name: "child.parent.test", Records: []string{"www A 127.0.0.1"}},
		bindtest.Zone{Name: "nocaa.test", Records: []string{"www A 127.0.0.1"}},
	)
	rec := func(owner, tag, value string) caa.Record {
		return caa.Record{Owner: owner, Tag: tag, Value: value}
	}
	tests := []struct {
		name    string
		want    error // nil, ErrForbidden or ErrLookup
		at      string
		records []caa.Record
		queried []string
	}{
		{name: "signed.test", at: "signed.test",
			records: []caa.Record{rec("signed.test", "issue", "trustline.test")}, queried: []string{"signed.test"}},
		{name: "www.broken.test", want: caa.ErrLookup, queried: []string{"www.broken.test"}},
		{name: "other.test", want: caa.ErrForbidden, at: "other.test",
			records: []caa.Record{rec("other.test", "issue", "other-ca.example")}, queried: []string{"other.test"}},
		// The set at the CNAME's target is the alias's, before its parent's.
		{name: "www.alias.test", at: "www.alias.test",
			records: []caa.Record{rec("cdn.target.test", "issue", "trustline.test")}, queried: []string{"www.alias.test"}},
		{name: "*.wild.test", at: "wild.test",
			records: []caa.Record{rec("wild.test", "issue", ";"), rec("wild.test", "issuewild", "trustline.test")}, queried: []string{"wild.test"}},
		{name: "wild.test", want: caa.ErrForbidden, at: "wild.test",
			records: []caa.Record{rec("wild.test", "issue", ";"), rec("wild.test", "issuewild", "trustline.test")}, queried: []string{"wild.test"}},
		{name: "*.nowild.test", want: caa.ErrForbidden, at: "nowild.test",
			records: []caa.Record{rec("nowild.test", "issue", "trustline.test"), rec("nowild.test", "issuewild", ";")}, queried: []string{"nowild.test"}},
		{name: "nowild.test", at: "nowild.test",
			records: []caa.Record{rec("nowild.test", "issue", "trustline.test"), rec("nowild.test", "issuewild", ";")}, queried: []string{"nowild.test"}},
		// Climbing crosses the zone cut at child.parent.test.
		{name: "www.child.parent.test", at: "parent.test",
			records: []caa.Record{rec("parent.test", "issue", "trustline.test")},
			queried: []string{"www.child.parent.test", "child.parent.test", "parent.test"}},
		{name: "www.nocaa.test", queried: []string{"www.nocaa.test", "nocaa.test", "test"}},
	}
	for _, transport := range []string{"udp", "tcp"} {
		c, err := caa.New(caa.Config{Identities: []string{self}, Resolver: r.Addr, Transport: transport, Timeout: 2 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		for _, tt := range tests {
			t.Run(transport+"/"+tt.name, func(t *testing.T) {
				res, err := c.Check(context.Background(), caa.Request{Name: tt.name})
				if !errors.Is(err, tt.want) {
					t.Fatalf("Check: %v; want %v", err, tt.want)
				}
				if res.Permitted != (tt.want == nil) || res.Name != tt.name || res.Resolver != r.Addr || res.Reason == "" {
					t.Errorf("result %+v: want permitted %v, for %s from %s, with a reason", res, tt.want == nil, tt.name, r.Addr)
				}
				if err != nil && !strings.Contains(err.Error(), strings.TrimPrefix(tt.name, "*.")) {
					t.Errorf("error %q does not name %s", err, tt.name)
				}
				if res.RelevantAt != tt.at {
					t.Errorf("relevant set at %q, want %q", res.RelevantAt, tt.at)
				}
				// BIND rotates the records of a set between answers.
				if d := cmp.Diff(tt.records, res.Records, cmpopts.SortSlices(func(a, b caa.Record) bool { return a.String() < b.String() })); d != "" {
					t.Errorf("records (-want +got):\n%s", d)
				}
				if d := cmp.Diff(tt.queried, res.Queried); d != "" {
					t.Errorf("names queried (-want +got):\n%s", d)
				}
			})
		}
	}
}
