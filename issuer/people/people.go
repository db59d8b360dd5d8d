// Package people says when two accounts may be one person's, or one under
// the other's control, for dual control: a reviewer does not decide on
// orders of accounts linked to them, two approvals of an EV order come
// from two different people, and an admin does not approve a role grant
// for someone linked to them (docs/security.md). It imports only the
// store's types.
package people

import (
	"strings"

	"github.com/trustline/trustline/internal/store"
)

// Linked reports whether two distinct accounts may be one person's, or one
// under the other's control, and why: the same mailbox (letter case and a
// "+tag" ignored), the same recorded Person, or one created by the other.
// Trustline cannot see that two unrelated addresses are one person's;
// admins record staff members' other accounts (Staff.SetPerson).
func Linked(a, b store.Account) (bool, string) {
	switch {
	case a.ID == b.ID:
		return true, "the same account"
	case Mailbox(a.Email) == Mailbox(b.Email):
		return true, "the same mailbox"
	case a.Person != "" && a.Person == b.Person:
		return true, "the same person"
	case b.CreatedBy == a.ID:
		return true, "it was created by you"
	case a.CreatedBy == b.ID:
		return true, "it created your account"
	}
	return false, ""
}

// Mailbox is an address with letter case and the local part's "+tag"
// removed: the mailbox mail to it reaches.
func Mailbox(addr string) string {
	addr = strings.ToLower(strings.TrimSpace(addr))
	local, domain, ok := strings.Cut(addr, "@")
	if !ok {
		return addr
	}
	local, _, _ = strings.Cut(local, "+")
	return local + "@" + domain
}
