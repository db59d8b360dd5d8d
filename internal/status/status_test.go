package status

import "testing"

func TestRoundTrip(t *testing.T) {
	for _, s := range []Status{Unknown, Good, Revoked} {
		t.Run(s.String(), func(t *testing.T) {
			got, err := Parse(s.String())
			if err != nil || got != s {
				t.Fatalf("Parse(%q) = %v, %v", s.String(), got, err)
			}
			var u Status
			b, _ := s.MarshalText()
			if err := u.UnmarshalText(b); err != nil || u != s {
				t.Fatalf("text round trip: %v, %v", u, err)
			}
		})
	}
}

func TestParseRejects(t *testing.T) {
	for _, in := range []string{"", "Good", "hold", "status(7)"} {
		if _, err := Parse(in); err == nil {
			t.Errorf("Parse(%q) succeeded", in)
		}
	}
	if got := Status(9).String(); got != "status(9)" {
		t.Errorf("String() of out-of-range = %q", got)
	}
}
