package validation

import (
	"bufio"
	"context"
	"net"
	"net/mail"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/trustline/trustline/issuer/fault"
)

// Replies shaped like real ones (ICANN RDDS, IANA, a thin registry, RIPE
// style), trimmed.
const (
	icannReply = `Domain Name: EXAMPLE.COM
Registry Domain ID: 2336799_DOMAIN_COM-VRSN
Registrar WHOIS Server: whois.registrar.example
Registrar Abuse Contact Email: abuse@registrar.example
Registrant Name: Example Owner
Registrant Email: Owner@Example.com
Admin Email: hostmaster@example.com
Tech Email: REDACTED FOR PRIVACY
Billing Email: billing@example.com
>>> Last update of whois database: 2026-11-27T10:00:00Z <<<
`
	ianaReply = `% IANA WHOIS server
% for more information on IANA, visit http://www.iana.org

refer:        whois.verisign-grs.com

domain:       COM
contact:      administrative
e-mail:       info@verisign-grs.com
`
	thinReply = `   Domain Name: EXAMPLE.NET
   Registrar WHOIS Server: whois.registrar.example
   Registrant Email: Please query the RDDS service of the Registrar of Record identified in this output for information on how to contact the Registrant, Admin, or Tech contact of the queried domain name.
`
	dottedReply = "Admin Email.........: admin@example.de\r\nTechnical Contact Email: mailto:noc@example.de\r\nRegistrant E-mail: owner@example.de\r\n"
)

func TestParseWhois(t *testing.T) {
	tests := []struct {
		name  string
		reply string
		want  WhoisReply
	}{
		{"icann", icannReply, WhoisReply{
			Contacts: []WhoisContact{{"admin", "hostmaster@example.com"}, {"registrant", "owner@example.com"}},
			Referral: "whois.registrar.example",
		}},
		{"iana", ianaReply, WhoisReply{
			Contacts: []WhoisContact{{"contact", "info@verisign-grs.com"}},
			Referral: "whois.verisign-grs.com",
		}},
		{"thin registry", thinReply, WhoisReply{Referral: "whois.registrar.example"}},
		{"dot leaders and mailto", dottedReply, WhoisReply{Contacts: []WhoisContact{
			{"admin", "admin@example.de"}, {"registrant", "owner@example.de"}, {"tech", "noc@example.de"},
		}}},
		{"referral URL", "ReferralServer: whois://whois.arin.net:43/\n", WhoisReply{Referral: "whois.arin.net"}},
		{"rwhois referral ignored", "ReferralServer: rwhois://rwhois.example.net:4321\n", WhoisReply{}},
		{"bad referral host skipped", "refer: -bad-.example\nwhois: ok.example.net\n", WhoisReply{Referral: "ok.example.net"}},
		{"address with a name", "Admin Email: Bob <bob@example.com>\n", WhoisReply{}},
		{"address without a dot", "Admin Email: root@localhost\n", WhoisReply{}},
		{"duplicate address", "Admin Email: a@example.com\nTech Email: A@example.com\n", WhoisReply{Contacts: []WhoisContact{{"admin", "a@example.com"}}}},
		{"no colon, comments, empty", "# Admin Email: x@example.com\nAdmin Email\n\nAdmin Email:\n", WhoisReply{}},
		{"empty", "", WhoisReply{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if d := cmp.Diff(tt.want, ParseWhois([]byte(tt.reply))); d != "" {
				t.Errorf("ParseWhois (-want +got):\n%s", d)
			}
		})
	}
}

func FuzzParseWhois(f *testing.F) {
	for _, s := range []string{icannReply, ianaReply, thinReply, dottedReply, "Admin Email: a@b.c\r\n", "refer: x.y\n"} {
		f.Add([]byte(s))
	}
	roles := map[string]bool{"admin": true, "registrant": true, "tech": true, "contact": true}
	f.Fuzz(func(t *testing.T, reply []byte) {
		got := ParseWhois(reply)
		if len(got.Contacts) > maxWhoisContacts {
			t.Fatalf("%d contacts", len(got.Contacts))
		}
		seen := map[string]bool{}
		for _, c := range got.Contacts {
			if !roles[c.Role] || seen[c.Email] || c.Email != strings.ToLower(c.Email) {
				t.Fatalf("contact %+v", c)
			}
			seen[c.Email] = true
			// Every address must be safe to hand to the mailer.
			if a, err := mail.ParseAddress(c.Email); err != nil || a.Address != c.Email || strings.ContainsAny(c.Email, "\r\n") {
				t.Fatalf("contact %q is not a plain address", c.Email)
			}
		}
		if got.Referral != "" && referralHost(got.Referral) != got.Referral {
			t.Fatalf("referral %q is not a clean host name", got.Referral)
		}
	})
}

func BenchmarkParseWhois(b *testing.B) {
	reply := []byte(icannReply)
	b.ReportAllocs()
	for b.Loop() {
		ParseWhois(reply)
	}
}

// whoisServer answers RFC 3912 queries on loopback with a fixed reply and
// records what it was asked.
func whoisServer(t *testing.T, reply string) (addr string, asked chan string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	asked = make(chan string, 10)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			line, _ := bufio.NewReader(c).ReadString('\n')
			asked <- line
			c.Write([]byte(reply))
			c.Close()
		}
	}()
	return ln.Addr().String(), asked
}

func TestWhoisLookupFollowsReferrals(t *testing.T) {
	registrar, regAsked := whoisServer(t, icannReply)
	registry, _ := whoisServer(t, thinReply)
	iana, ianaAsked := whoisServer(t, ianaReply)
	// Referrals name hosts on port 43; the dialer sends each to its
	// loopback server.
	routes := map[string]string{"whois.verisign-grs.com:43": registry, "whois.registrar.example:43": registrar}
	var dialed []string
	referral := func(ctx context.Context, network, addr string) (net.Conn, error) {
		dialed = append(dialed, addr)
		var d net.Dialer
		return d.DialContext(ctx, network, routes[addr])
	}
	w := &whoisResolver{server: iana, timeout: 5 * time.Second, direct: (&net.Dialer{}).DialContext, referral: referral}
	rep, hops, err := w.lookup(context.Background(), "example.com")
	if err != nil {
		t.Fatal(err)
	}
	if q := <-ianaAsked; q != "example.com\r\n" {
		t.Errorf("query sent %q, want the domain and CRLF", q)
	}
	if q := <-regAsked; q != "example.com\r\n" {
		t.Errorf("registrar asked %q", q)
	}
	if d := cmp.Diff([]string{"whois.verisign-grs.com:43", "whois.registrar.example:43"}, dialed); d != "" {
		t.Errorf("referrals dialled (-want +got):\n%s", d)
	}
	if len(hops) != 3 || rep.Contacts[0].Email != "hostmaster@example.com" {
		t.Errorf("hops %+v, reply %+v", hops, rep)
	}

	t.Run("referral loops stop", func(t *testing.T) {
		self, _ := whoisServer(t, "refer: whois.loop.example\n")
		loop := func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, self)
		}
		w := &whoisResolver{server: self, timeout: 5 * time.Second, direct: loop, referral: loop}
		_, hops, err := w.lookup(context.Background(), "example.com")
		if err != nil || len(hops) != 2 {
			t.Errorf("hops %+v, err %v: want the first server and one referral", hops, err)
		}
	})
	t.Run("server down", func(t *testing.T) {
		ln, _ := net.Listen("tcp", "127.0.0.1:0")
		addr := ln.Addr().String()
		ln.Close()
		w := &whoisResolver{server: addr, timeout: time.Second, direct: (&net.Dialer{}).DialContext}
		_, _, err := w.lookup(context.Background(), "example.com")
		if _, ok := err.(*fault.UnavailableError); !ok {
			t.Errorf("err %v, want *fault.UnavailableError", err)
		}
	})
}
