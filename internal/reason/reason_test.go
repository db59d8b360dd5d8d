package reason

import "testing"

func TestRoundTrip(t *testing.T) {
	for _, r := range All {
		t.Run(r.String(), func(t *testing.T) {
			got, err := Parse(r.String())
			if err != nil || got != r {
				t.Fatalf("Parse(%q) = %v, %v", r, got, err)
			}
			c, err := FromCode(int(r))
			if err != nil || c != r {
				t.Fatalf("FromCode(%d) = %v, %v", r, c, err)
			}
			var u Reason
			b, err := r.MarshalText()
			if err != nil {
				t.Fatal(err)
			}
			if err := u.UnmarshalText(b); err != nil || u != r {
				t.Fatalf("text round trip: %v, %v", u, err)
			}
		})
	}
}

func TestBRSubsets(t *testing.T) {
	tests := []struct {
		r              Reason
		subscriber, ca bool
	}{
		{Unspecified, true, true},
		{KeyCompromise, true, true},
		{CACompromise, false, true},
		{AffiliationChanged, true, true},
		{Superseded, true, true},
		{CessationOfOperation, true, true},
		{CertificateHold, false, false},
		{RemoveFromCRL, false, false},
		{PrivilegeWithdrawn, true, false},
		{AACompromise, false, false},
	}
	if len(tests) != len(All) {
		t.Fatalf("table covers %d reasons, All has %d", len(tests), len(All))
	}
	for _, tt := range tests {
		if got := tt.r.AllowedForSubscriber(); got != tt.subscriber {
			t.Errorf("%v.AllowedForSubscriber() = %v", tt.r, got)
		}
		if got := tt.r.AllowedForCA(); got != tt.ca {
			t.Errorf("%v.AllowedForCA() = %v", tt.r, got)
		}
	}
	if !Unspecified.OmitOnCRL() || KeyCompromise.OmitOnCRL() {
		t.Error("OmitOnCRL wrong")
	}
}

func TestRejects(t *testing.T) {
	for _, s := range []string{"", "KeyCompromise", "hold", "7"} {
		if _, err := Parse(s); err == nil {
			t.Errorf("Parse(%q) succeeded", s)
		}
	}
	for _, c := range []int{-1, 7, 11, 300} {
		if _, err := FromCode(c); err == nil {
			t.Errorf("FromCode(%d) succeeded", c)
		}
	}
	if _, err := Reason(7).MarshalText(); err == nil {
		t.Error("MarshalText(7) succeeded")
	}
}
