// Package dnstest runs a DNS server on loopback for tests: the CA's
// resolver in validation (dns-txt, http-token's A lookups) and, later, CAA
// and multi-perspective checks. Only tests import it.
package dnstest

import (
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/miekg/dns"
)

// Zone is an authoritative-and-recursive-looking DNS server on
// loopback, UDP and TCP on the same port, serving TXT, A, CAA and CNAME
// records the tests set. UDP answers are truncated to the client's EDNS size (512
// without EDNS), so large answers exercise the TCP fallback.
type Zone struct {
	// Addr is host:port, for UDP and TCP alike: a resolver address.
	Addr string
	mu   sync.Mutex
	txt  map[string][]string
	a    map[string]string
	cn   map[string]string
	caa  map[string][]dns.RR
	fail map[string]int // rcode to answer for a name

	udp, tcp atomic.Int64 // TXT queries seen per transport
	caaQ     atomic.Int64 // CAA queries seen
}

// Start runs a Zone until the test ends.
func Start(t testing.TB) *Zone {
	t.Helper()
	z := &Zone{txt: map[string][]string{}, a: map[string]string{}, cn: map[string]string{}, caa: map[string][]dns.RR{}, fail: map[string]int{}}
	var (
		pc  net.PacketConn
		ln  net.Listener
		err error
	)
	for try := 0; try < 20; try++ { // the UDP port may be taken for TCP
		if pc, err = net.ListenPacket("udp", "127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
		if ln, err = net.Listen("tcp", pc.LocalAddr().String()); err == nil {
			break
		}
		pc.Close()
	}
	if err != nil {
		t.Fatal(err)
	}
	z.Addr = pc.LocalAddr().String()
	udp := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(z.serve)}
	tcp := &dns.Server{Listener: ln, Handler: dns.HandlerFunc(z.serve)}
	go udp.ActivateAndServe()
	go tcp.ActivateAndServe()
	t.Cleanup(func() { udp.Shutdown(); tcp.Shutdown() })
	return z
}

// SetTXT answers TXT queries for name with values, one record each.
func (z *Zone) SetTXT(name string, values ...string) {
	z.mu.Lock()
	defer z.mu.Unlock()
	z.txt[dns.CanonicalName(name)] = values
}

// SetA answers A queries for name with ip.
func (z *Zone) SetA(name, ip string) {
	z.mu.Lock()
	defer z.mu.Unlock()
	z.a[dns.CanonicalName(name)] = ip
}

// SetCNAME makes name an alias of target.
func (z *Zone) SetCNAME(name, target string) {
	z.mu.Lock()
	defer z.mu.Unlock()
	z.cn[dns.CanonicalName(name)] = dns.CanonicalName(target)
}

// SetCAA answers CAA queries for name with records in presentation
// format ("0 issue \"ca.example\""); none removes them. A malformed
// record panics: it is the test's mistake.
func (z *Zone) SetCAA(name string, records ...string) {
	var rrs []dns.RR
	for _, r := range records {
		rr, err := dns.NewRR(dns.Fqdn(name) + " 60 IN CAA " + r)
		if err != nil {
			panic(fmt.Sprintf("dnstest: CAA %q: %v", r, err))
		}
		rrs = append(rrs, rr)
	}
	z.mu.Lock()
	defer z.mu.Unlock()
	z.caa[dns.CanonicalName(name)] = rrs
}

// CAAQueries counts the CAA queries seen.
func (z *Zone) CAAQueries() int64 { return z.caaQ.Load() }

// SetFail answers every query for name with rcode.
func (z *Zone) SetFail(name string, rcode int) {
	z.mu.Lock()
	defer z.mu.Unlock()
	z.fail[dns.CanonicalName(name)] = rcode
}

func (z *Zone) serve(w dns.ResponseWriter, q *dns.Msg) {
	m := new(dns.Msg)
	m.SetReply(q)
	m.RecursionAvailable = true
	if len(q.Question) != 1 {
		m.Rcode = dns.RcodeFormatError
		w.WriteMsg(m)
		return
	}
	qq := q.Question[0]
	_, isUDP := w.RemoteAddr().(*net.UDPAddr)
	if qq.Qtype == dns.TypeCAA {
		z.caaQ.Add(1)
	}
	if qq.Qtype == dns.TypeTXT {
		if isUDP {
			z.udp.Add(1)
		} else {
			z.tcp.Add(1)
		}
	}
	z.mu.Lock()
	name := dns.CanonicalName(qq.Name)
	if rc, ok := z.fail[name]; ok {
		z.mu.Unlock()
		m.Rcode = rc
		w.WriteMsg(m)
		return
	}
	for hops := 0; hops < 10; hops++ {
		target, ok := z.cn[name]
		if !ok {
			break
		}
		m.Answer = append(m.Answer, &dns.CNAME{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeCNAME, Class: dns.ClassINET, Ttl: 60}, Target: target})
		name = target
	}
	txt, hasTXT := z.txt[name]
	a, hasA := z.a[name]
	caa, hasCAA := z.caa[name]
	z.mu.Unlock()
	switch qq.Qtype {
	case dns.TypeTXT:
		for _, v := range txt {
			m.Answer = append(m.Answer, &dns.TXT{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeTXT, Class: dns.ClassINET, Ttl: 60}, Txt: chunks(v)})
		}
	case dns.TypeCAA:
		for _, rr := range caa {
			rr = dns.Copy(rr)
			rr.Header().Name = name
			m.Answer = append(m.Answer, rr)
		}
	case dns.TypeA:
		if hasA {
			m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60}, A: net.ParseIP(a)})
		}
	}
	if !hasTXT && !hasA && !hasCAA && len(m.Answer) == 0 {
		m.Rcode = dns.RcodeNameError
	}
	if isUDP {
		size := dns.MinMsgSize
		if opt := q.IsEdns0(); opt != nil {
			size = int(opt.UDPSize())
		}
		m.Truncate(size)
	}
	w.WriteMsg(m)
}

// chunks splits a TXT value into 255-octet character-strings.
func chunks(s string) []string {
	var out []string
	for len(s) > 255 {
		out, s = append(out, s[:255]), s[255:]
	}
	return append(out, s)
}

// UDPQueries counts the TXT queries seen over UDP.
func (z *Zone) UDPQueries() int64 { return z.udp.Load() }

// TCPQueries counts the TXT queries seen over TCP.
func (z *Zone) TCPQueries() int64 { return z.tcp.Load() }
