package api_test

import (
	"bufio"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/miekg/dns"
)

// testZone is an authoritative-and-recursive-looking DNS server on
// loopback, UDP and TCP on the same port, serving TXT, A and CNAME records
// the tests set. UDP answers are truncated to the client's EDNS size (512
// without EDNS), so large answers exercise the TCP fallback.
type testZone struct {
	addr string
	mu   sync.Mutex
	txt  map[string][]string
	a    map[string]string
	cn   map[string]string
	fail map[string]int // rcode to answer for a name

	udp, tcp atomic.Int64 // TXT queries seen per transport
}

func startDNS(t testing.TB) *testZone {
	t.Helper()
	z := &testZone{txt: map[string][]string{}, a: map[string]string{}, cn: map[string]string{}, fail: map[string]int{}}
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
	z.addr = pc.LocalAddr().String()
	udp := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(z.serve)}
	tcp := &dns.Server{Listener: ln, Handler: dns.HandlerFunc(z.serve)}
	go udp.ActivateAndServe()
	go tcp.ActivateAndServe()
	t.Cleanup(func() { udp.Shutdown(); tcp.Shutdown() })
	return z
}

func (z *testZone) setTXT(name string, values ...string) {
	z.mu.Lock()
	defer z.mu.Unlock()
	z.txt[dns.CanonicalName(name)] = values
}

func (z *testZone) setA(name, ip string) {
	z.mu.Lock()
	defer z.mu.Unlock()
	z.a[dns.CanonicalName(name)] = ip
}

func (z *testZone) setCNAME(name, target string) {
	z.mu.Lock()
	defer z.mu.Unlock()
	z.cn[dns.CanonicalName(name)] = dns.CanonicalName(target)
}

func (z *testZone) setFail(name string, rcode int) {
	z.mu.Lock()
	defer z.mu.Unlock()
	z.fail[dns.CanonicalName(name)] = rcode
}

func (z *testZone) serve(w dns.ResponseWriter, q *dns.Msg) {
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
	z.mu.Unlock()
	switch qq.Qtype {
	case dns.TypeTXT:
		for _, v := range txt {
			m.Answer = append(m.Answer, &dns.TXT{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeTXT, Class: dns.ClassINET, Ttl: 60}, Txt: chunks(v)})
		}
	case dns.TypeA:
		if hasA {
			m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60}, A: net.ParseIP(a)})
		}
	}
	if !hasTXT && !hasA && len(m.Answer) == 0 {
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

// testWeb serves http-token files on loopback, for any Host.
type testWeb struct {
	srv   *httptest.Server
	mu    sync.Mutex
	files map[string]webAnswer // by path
	hosts []string             // Host headers seen
}

type webAnswer struct {
	status   int
	body     string
	location string
}

func startWeb(t testing.TB) *testWeb {
	t.Helper()
	web := &testWeb{files: map[string]webAnswer{}}
	web.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		web.mu.Lock()
		ans, ok := web.files[r.URL.Path]
		web.hosts = append(web.hosts, r.Host)
		web.mu.Unlock()
		if !ok {
			http.NotFound(w, r)
			return
		}
		if ans.location != "" {
			w.Header().Set("Location", ans.location)
		}
		if ans.status == 0 {
			ans.status = http.StatusOK
		}
		w.WriteHeader(ans.status)
		w.Write([]byte(ans.body))
	}))
	t.Cleanup(web.srv.Close)
	return web
}

func (w *testWeb) port() string {
	_, p, _ := net.SplitHostPort(w.srv.Listener.Addr().String())
	return p
}

func (w *testWeb) seenHosts() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.hosts...)
}

func (w *testWeb) serve(path string, a webAnswer) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.files[path] = a
}

// testWhois is an RFC 3912 server on loopback: it reads one line and
// answers with the reply set for it.
type testWhois struct {
	ln      net.Listener
	mu      sync.Mutex
	replies map[string]string
	queries []string
}

func startWhois(t testing.TB) *testWhois {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	w := &testWhois{ln: ln, replies: map[string]string{}}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				line, err := bufio.NewReader(c).ReadString('\n')
				if err != nil {
					return
				}
				q := strings.TrimRight(line, "\r\n")
				w.mu.Lock()
				w.queries = append(w.queries, q)
				reply, ok := w.replies[q]
				w.mu.Unlock()
				if !ok {
					reply = "No match for \"" + strings.ToUpper(q) + "\".\r\n"
				}
				c.Write([]byte(reply))
			}()
		}
	}()
	t.Cleanup(func() { ln.Close() })
	return w
}

func (w *testWhois) asked() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.queries...)
}

func (w *testWhois) set(domain, reply string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.replies[domain] = reply
}
