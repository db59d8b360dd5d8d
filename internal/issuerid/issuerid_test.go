package issuerid

import "testing"

func TestParse(t *testing.T) {
	good := []string{"root", "int-ecdsa-p256", "a", "r2025", "x-1-y"}
	for _, s := range good {
		if id, err := Parse(s); err != nil || id.String() != s || !id.Valid() {
			t.Errorf("Parse(%q) = %q, %v", s, id, err)
		}
	}
	bad := []string{"", "-a", "a-", "Root", "a/b", "../x", "a b", "é", string(make([]byte, 65))}
	for _, s := range bad {
		if _, err := Parse(s); err == nil {
			t.Errorf("Parse(%q) succeeded", s)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add("root")
	f.Add("../etc")
	f.Fuzz(func(t *testing.T, s string) {
		id, err := Parse(s)
		if err != nil {
			return
		}
		for _, c := range []byte(id) {
			if c == '/' || c == '.' || c == '%' {
				t.Fatalf("accepted unsafe id %q", id)
			}
		}
	})
}
