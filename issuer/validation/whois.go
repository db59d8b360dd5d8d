package validation

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/mail"
	"slices"
	"strings"
	"time"

	"golang.org/x/net/publicsuffix"

	"github.com/trustline/trustline/internal/store"
	"github.com/trustline/trustline/issuer/fault"
)

// WHOIS email (the seed's step 3: "send the verification code to domain
// name whois admin email"; BR §3.2.2.4.2 until the BR stopped accepting
// WHOIS-derived domain contacts in 2025, so it is off unless configured).
// The registered domain is asked of a WHOIS server over TCP (RFC 3912: the
// query, CRLF, then the reply until the server closes), referrals are
// followed at most twice, and the code is mailed to a registrant, admin or
// technical contact's address exactly as the email method mails it.

const (
	maxWhoisReply     = 64 << 10
	maxWhoisReferrals = 2
	maxWhoisContacts  = 16
)

// WhoisContact is one contact address in a WHOIS reply.
type WhoisContact struct {
	Role  string // "admin", "registrant", "tech", or "contact" (no role named)
	Email string // lowercase
}

// WhoisReply is what ParseWhois finds in a reply.
type WhoisReply struct {
	// Contacts, admin first, then registrant, tech and role-less ones; no
	// address twice.
	Contacts []WhoisContact
	// Referral is the host of the WHOIS server the reply points to
	// ("refer:", "whois:", "Registrar WHOIS Server:", "ReferralServer:"),
	// or "".
	Referral string
}

var whoisRoleOrder = []string{"admin", "registrant", "tech", "contact"}

// ParseWhois reads a WHOIS reply: "Key: value" lines, comments starting
// with '%' or '#' skipped. An address counts when its key names an email
// and either a domain contact role (registrant, admin, tech) or no role
// at all; registrar, abuse, reseller and billing addresses do not, nor do
// values that are not a single plain address (registries put "REDACTED
// FOR PRIVACY" or a sentence there).
func ParseWhois(reply []byte) WhoisReply {
	var out WhoisReply
	seen := map[string]bool{}
	for _, line := range bytes.Split(reply, []byte("\n")) {
		s := strings.TrimSpace(string(line))
		if s == "" || s[0] == '%' || s[0] == '#' {
			continue
		}
		k, val, ok := strings.Cut(s, ":")
		if !ok {
			continue
		}
		key := whoisKey(k)
		val = strings.TrimSpace(val)
		if val == "" {
			continue
		}
		if isReferralKey(key) {
			if out.Referral == "" {
				out.Referral = referralHost(val)
			}
			continue
		}
		role := contactRole(key)
		if role == "" || len(out.Contacts) >= maxWhoisContacts {
			continue
		}
		addr, ok := plainAddress(val)
		if !ok || seen[addr] {
			continue
		}
		seen[addr] = true
		out.Contacts = append(out.Contacts, WhoisContact{Role: role, Email: addr})
	}
	slices.SortStableFunc(out.Contacts, func(a, b WhoisContact) int {
		return slices.Index(whoisRoleOrder, a.Role) - slices.Index(whoisRoleOrder, b.Role)
	})
	return out
}

// whoisKey lowercases a key and drops the dot leaders some registries use
// ("Admin Email.........").
func whoisKey(k string) string {
	k = strings.ToLower(strings.TrimSpace(k))
	k = strings.TrimRight(k, ". ")
	return strings.Join(strings.Fields(k), " ")
}

func isReferralKey(key string) bool {
	switch key {
	case "refer", "whois", "whois server", "registrar whois server", "referralserver":
		return true
	}
	return false
}

// contactRole returns the domain contact role an email key names, or "".
func contactRole(key string) string {
	if !strings.Contains(key, "email") && !strings.Contains(key, "e-mail") && key != "mail" && !strings.HasSuffix(key, " mail") {
		return ""
	}
	for _, not := range []string{"registrar", "abuse", "reseller", "billing", "sponsor"} {
		if strings.Contains(key, not) {
			return ""
		}
	}
	switch {
	case strings.Contains(key, "registrant"):
		return "registrant"
	case strings.Contains(key, "admin"):
		return "admin"
	case strings.Contains(key, "tech"):
		return "tech"
	case key == "email" || key == "e-mail" || key == "mail":
		return "contact"
	}
	return ""
}

// plainAddress accepts a bare address ("a@example.com", optionally as
// "mailto:"), lowercased.
func plainAddress(v string) (string, bool) {
	v = strings.TrimPrefix(v, "mailto:")
	if len(v) > 254 || strings.ContainsAny(v, " \t\r<>\"") {
		return "", false
	}
	a, err := mail.ParseAddress(v)
	if err != nil || a.Name != "" || a.Address != v {
		return "", false
	}
	_, dom, _ := strings.Cut(v, "@")
	if !strings.Contains(dom, ".") {
		return "", false
	}
	return strings.ToLower(v), true
}

// referralHost extracts a host name from "whois.example.net",
// "whois://whois.example.net:43/" or similar, or returns "".
func referralHost(v string) string {
	v = strings.ToLower(strings.TrimSpace(v))
	if i := strings.Index(v, "://"); i >= 0 {
		if v[:i] != "whois" {
			return "" // rwhois, http: not RFC 3912
		}
		v = v[i+3:]
	}
	if i := strings.IndexAny(v, "/: "); i >= 0 {
		v = v[:i]
	}
	v = strings.TrimSuffix(v, ".")
	labels := strings.Split(v, ".")
	if len(v) == 0 || len(v) > 253 || len(labels) < 2 {
		return ""
	}
	for _, l := range labels {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return ""
		}
		for _, c := range l {
			if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
				return ""
			}
		}
	}
	return v
}

// whoisResolver asks WHOIS servers for a domain's contacts.
type whoisResolver struct {
	server   string // host:port, asked first
	timeout  time.Duration
	direct   DialFunc // for the configured server
	referral DialFunc // for servers named in replies
}

// whoisHop is one server asked, for the evidence.
type whoisHop struct {
	Server      string `json:"server"`
	ReplySHA256 string `json:"reply_sha256"`
	Contacts    int    `json:"contacts"`
}

// lookup asks for domain, following referrals while a reply names no
// domain contact of its own (a registry's TLD record lists role-less
// addresses that are the registry's, not the domain's).
func (w *whoisResolver) lookup(ctx context.Context, domain string) (WhoisReply, []whoisHop, error) {
	server, dial := w.server, w.direct
	var hops []whoisHop
	for {
		raw, err := w.query(ctx, dial, server, domain)
		if err != nil {
			if ctx.Err() != nil {
				return WhoisReply{}, hops, ctx.Err()
			}
			return WhoisReply{}, hops, &fault.UnavailableError{Detail: fmt.Sprintf("the WHOIS server %s did not answer; try again later or use another method", server)}
		}
		rep := ParseWhois(raw)
		sum := sha256.Sum256(raw)
		hops = append(hops, whoisHop{Server: server, ReplySHA256: hex.EncodeToString(sum[:]), Contacts: len(rep.Contacts)})
		next := net.JoinHostPort(rep.Referral, "43")
		followed := slices.ContainsFunc(hops, func(h whoisHop) bool { return h.Server == next })
		if rep.Referral == "" || hasDomainContact(rep) || len(hops) > maxWhoisReferrals || followed {
			return rep, hops, nil
		}
		server, dial = next, w.referral
	}
}

func hasDomainContact(r WhoisReply) bool {
	return slices.ContainsFunc(r.Contacts, func(c WhoisContact) bool { return c.Role != "contact" })
}

// query runs one RFC 3912 exchange; the reply is cut at maxWhoisReply.
func (w *whoisResolver) query(ctx context.Context, dial DialFunc, server, domain string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, w.timeout)
	defer cancel()
	conn, err := dial(ctx, "tcp", server)
	if err != nil {
		return nil, fmt.Errorf("validation: whois %s: %w", server, err)
	}
	defer conn.Close()
	deadline, _ := ctx.Deadline()
	conn.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if _, err := io.WriteString(conn, domain+"\r\n"); err != nil {
		return nil, fmt.Errorf("validation: whois %s: sending the query: %w", server, err)
	}
	raw, err := io.ReadAll(io.LimitReader(conn, maxWhoisReply))
	if err != nil {
		return nil, fmt.Errorf("validation: whois %s: reading the reply: %w", server, err)
	}
	return raw, nil
}

// startWhois begins a whois-email validation: the registered domain's
// WHOIS contacts are looked up and the code is mailed to the one asked for
// (it must be listed) or, by default, to the first (admin first).
func (v *Service) startWhois(ctx context.Context, acct store.Account, domain, email string) (store.Validation, error) {
	domain, err := NormalizeDomain(domain)
	if err != nil {
		return store.Validation{}, err
	}
	registered, err := publicsuffix.EffectiveTLDPlusOne(domain)
	if err != nil {
		return store.Validation{}, &fault.InputError{Detail: fmt.Sprintf("%s has no registered domain to look up in WHOIS", domain)}
	}
	now := v.now()
	rep, hops, err := v.whois.lookup(ctx, registered)
	if err != nil {
		return store.Validation{}, err
	}
	if len(rep.Contacts) == 0 {
		return store.Validation{}, &fault.InputError{Detail: fmt.Sprintf(
			"WHOIS lists no contact email for %s (registries often redact them); use dns-txt or http-token", registered)}
	}
	chosen := rep.Contacts[0]
	if want := strings.ToLower(strings.TrimSpace(email)); want != "" {
		i := slices.IndexFunc(rep.Contacts, func(c WhoisContact) bool { return c.Email == want })
		if i < 0 {
			return store.Validation{}, &fault.InputError{Detail: fmt.Sprintf("%s is not a WHOIS contact of %s", truncate(want, 64), registered)}
		}
		chosen = rep.Contacts[i]
	}
	ev, _ := json.Marshal(map[string]any{
		"whois_query": registered, "whois_hops": hops, "whois_role": chosen.Role, "looked_up_at": now.UTC(),
	})
	return v.mailCode(ctx, acct, domain, MethodWhoisEmail, chosen.Email, ev)
}
