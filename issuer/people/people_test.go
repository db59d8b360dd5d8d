package people

import (
	"testing"

	"github.com/trustline/trustline/internal/store"
)

func TestLinked(t *testing.T) {
	r := store.Account{ID: "r", Email: "ann@ca.example", Person: "emp-1", CreatedBy: "adm"}
	for _, tc := range []struct {
		name   string
		other  store.Account
		linked bool
		why    string
	}{
		{"same account", store.Account{ID: "r"}, true, "the same account"},
		{"plus tag and case", store.Account{ID: "s", Email: "Ann+shop@CA.example"}, true, "the same mailbox"},
		{"same person", store.Account{ID: "s", Email: "x@mail.example", Person: "emp-1"}, true, "the same person"},
		{"created by r", store.Account{ID: "s", Email: "x@mail.example", CreatedBy: "r"}, true, "it was created by you"},
		{"r's creator", store.Account{ID: "adm", Email: "boss@ca.example"}, true, "it created your account"},
		{"unrelated", store.Account{ID: "s", Email: "bob@ca.example", Person: "emp-2", CreatedBy: "adm"}, false, ""},
		{"empty persons are not a person", store.Account{ID: "s", Email: "bob@ca.example"}, false, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := r
			if tc.name == "empty persons are not a person" {
				a.Person = ""
			}
			linked, why := Linked(a, tc.other)
			if linked != tc.linked || why != tc.why {
				t.Errorf("Linked = %v %q, want %v %q", linked, why, tc.linked, tc.why)
			}
		})
	}
}

func TestMailbox(t *testing.T) {
	for in, want := range map[string]string{"Ann+x@Example.COM": "ann@example.com", " a@b ": "a@b", "no-at": "no-at", "+@x": "@x"} {
		if got := Mailbox(in); got != want {
			t.Errorf("Mailbox(%q) = %q, want %q", in, got, want)
		}
	}
}
