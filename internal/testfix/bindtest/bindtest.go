// Package bindtest runs a real DNS stack on loopback for tests: a BIND 9
// authoritative server holding DNSSEC-signed zones, some of them broken on
// purpose, behind a BIND 9 validating recursive resolver, the kind of
// resolver issuer/caa asks in production.
//
// It needs named, dnssec-keygen and dnssec-signzone (Debian packages bind9
// and bind9-utils). When they are missing the test is skipped with a loud
// message, or fails when CI=true (STYLE.md §12). Nothing leaves loopback:
// the resolver forwards every query to the authoritative server and
// validates with trust anchors made for the test.
//
// Only tests import it.
package bindtest

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/trustline/trustline/internal/testenv"
)

// Zone is one zone the authoritative server holds, always signed.
type Zone struct {
	// Name is the zone's apex ("example.test").
	Name string
	// Records are zone file lines, owner names relative to Name unless
	// they end in a dot ("@ CAA 0 issue \"ca.test\"", "www CNAME cdn.other.test.").
	// The SOA, NS and DNSKEY records, and delegations to the zones below,
	// are added.
	Records []string
	// Broken signs the zone with signatures that expired a day ago: the
	// resolver answers SERVFAIL for every name in it.
	Broken bool
}

// Resolver is a running stack.
type Resolver struct {
	// Addr is the validating resolver, host:port for UDP and TCP.
	Addr string
	// Authoritative is the authoritative server, host:port for UDP and
	// TCP; it answers broken zones too, as it does not validate.
	Authoritative string
}

// ttl is the TTL of every record and the negative TTL of every zone, in
// seconds.
const ttl = 60

// Start signs zones, serves them from an authoritative named and starts a
// validating named in front of it, both stopped when the test ends.
//
// A zone's parent, if among the zones, delegates to it with a DS record.
// The top-level zone of each zone ("test" for "example.test") is added
// when not given, with an "ns" A record; the resolver trusts only the
// top-level zones' keys, so every answer is validated through a chain of
// trust as on the Internet.
func Start(t testing.TB, zones ...Zone) *Resolver {
	t.Helper()
	named := command(t, "named")
	keygen := command(t, "dnssec-keygen")
	signzone := command(t, "dnssec-signzone")

	set, err := plan(zones)
	if err != nil {
		t.Fatalf("bindtest: %v", err)
	}
	dir := t.TempDir()
	// Deepest first: a parent's file holds its children's DS records.
	names := make([]string, 0, len(set))
	for n := range set {
		names = append(names, n)
	}
	slices.SortFunc(names, func(a, b string) int {
		if d := dns.CountLabel(b) - dns.CountLabel(a); d != 0 {
			return d
		}
		return strings.Compare(a, b)
	})
	var anchors strings.Builder
	for _, n := range names {
		z := set[n]
		key, err := sign(dir, keygen, signzone, z)
		if err != nil {
			t.Fatalf("bindtest: zone %s: %v", n, err)
		}
		if p := parent(set, n); p != nil {
			p.Records = append(p.Records,
				fmt.Sprintf("%s. %d NS ns.%s.", n, ttl, topLabel(n)),
				key.ToDS(dns.SHA256).String())
			continue
		}
		fmt.Fprintf(&anchors, "\t%q static-key %d %d %d %q;\n", n+".", key.Flags, key.Protocol, key.Algorithm, key.PublicKey)
	}

	r := &Resolver{Authoritative: freeAddr(t), Addr: freeAddr(t)}
	for r.Addr == r.Authoritative {
		r.Addr = freeAddr(t)
	}
	var served strings.Builder
	for _, n := range names {
		fmt.Fprintf(&served, "zone %q { type primary; file %q; };\n", n, filepath.Join(dir, n+".signed"))
	}
	// dnssec-validation no: the authoritative server would otherwise
	// fetch the root's keys from the Internet.
	authConf := config(r.Authoritative, `
	recursion no;
	notify no;
	dnssec-validation no;`) + served.String()
	// forward only: every query goes to the authoritative server, none to
	// the root servers; servfail-ttl 0 so that each query meets a broken
	// zone afresh.
	resConf := config(r.Addr, fmt.Sprintf(`
	recursion yes;
	allow-recursion { 127.0.0.1; };
	forwarders { 127.0.0.1 port %s; };
	forward only;
	dnssec-validation yes;
	servfail-ttl 0;`, port(r.Authoritative))) + "trust-anchors {\n" + anchors.String() + "};\n"

	run(t, named, mkdir(t, dir, "auth"), authConf, "authoritative", func() error {
		for _, n := range names {
			if err := probe(r.Authoritative, n, false); err != nil {
				return err
			}
		}
		return nil
	})
	run(t, named, mkdir(t, dir, "resolver"), resConf, "resolver", func() error {
		return probe(r.Addr, names[len(names)-1], true)
	})
	return r
}

// config is a named.conf listening on addr only, keeping its files in its
// working directory and taking no rndc commands.
func config(addr, options string) string {
	return fmt.Sprintf(`options {
	directory ".";
	pid-file none;
	session-keyfile none;
	listen-on port %s { 127.0.0.1; };
	listen-on-v6 { none; };%s
};
controls { };
`, port(addr), options)
}

// command finds a BIND program; named lives in /usr/sbin, which a
// developer's PATH may lack.
func command(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	if p, serr := exec.LookPath(filepath.Join("/usr/sbin", name)); serr == nil {
		return p
	}
	testenv.Missing(t, "BIND 9's "+name+" (BIND TESTS NOT RUN: apt-get install bind9 bind9-utils)", err)
	return ""
}

// plan checks the zones and adds the missing top-level ones.
func plan(zones []Zone) (map[string]*Zone, error) {
	set := map[string]*Zone{}
	for _, z := range zones {
		n := strings.ToLower(strings.TrimSuffix(z.Name, "."))
		if _, ok := dns.IsDomainName(n); !ok || n == "" {
			return nil, fmt.Errorf("zone name %q is not a domain name", z.Name)
		}
		if set[n] != nil {
			return nil, fmt.Errorf("zone %s given twice", n)
		}
		z.Name, z.Records = n, slices.Clone(z.Records)
		set[n] = &z
	}
	if len(set) == 0 {
		return nil, errors.New("no zones")
	}
	for n := range set {
		if tld := topLabel(n); set[tld] == nil {
			set[tld] = &Zone{Name: tld}
		}
	}
	for n, z := range set {
		if dns.CountLabel(n) == 1 {
			z.Records = append(z.Records, fmt.Sprintf("ns %d A 127.0.0.1", ttl))
		}
	}
	return set, nil
}

// parent returns the closest zone above n, or nil.
func parent(set map[string]*Zone, n string) *Zone {
	for {
		_, rest, ok := strings.Cut(n, ".")
		if !ok {
			return nil
		}
		if z := set[rest]; z != nil {
			return z
		}
		n = rest
	}
}

func topLabel(n string) string {
	return n[strings.LastIndex(n, ".")+1:]
}

// sign makes z's key, writes its zone file and signs it into
// dir/<name>.signed. It returns the key, for the parent's DS record or the
// resolver's trust anchor.
func sign(dir, keygen, signzone string, z *Zone) (*dns.DNSKEY, error) {
	out, err := exec.Command(keygen, "-q", "-K", dir, "-a", "ECDSAP256SHA256", "-f", "KSK", z.Name+".").CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("dnssec-keygen: %v\n%s", err, out)
	}
	base := filepath.Join(dir, strings.TrimSpace(string(out)))
	key, err := readKey(base + ".key")
	if err != nil {
		return nil, err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "$ORIGIN %s.\n$TTL %d\n", z.Name, ttl)
	fmt.Fprintf(&b, "@ SOA ns.%[1]s. hostmaster.%[1]s. 1 3600 600 86400 %[2]d\n", topLabel(z.Name), ttl)
	fmt.Fprintf(&b, "@ NS ns.%s.\n%s\n", topLabel(z.Name), key)
	for _, r := range z.Records {
		b.WriteString(r + "\n")
	}
	src := filepath.Join(dir, z.Name+".db")
	if err := os.WriteFile(src, []byte(b.String()), 0o644); err != nil {
		return nil, err
	}
	// -z: the one key signs every RRset.
	args := []string{"-q", "-z", "-d", dir, "-o", z.Name + ".", "-f", filepath.Join(dir, z.Name+".signed")}
	if z.Broken {
		// -P: the check after signing would reject the expired signatures.
		const layout = "20060102150405"
		now := time.Now().UTC()
		args = append(args, "-P", "-s", now.Add(-48*time.Hour).Format(layout), "-e", now.Add(-24*time.Hour).Format(layout))
	}
	if out, err := exec.Command(signzone, append(args, src, base)...).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("dnssec-signzone: %v\n%s\nzone file:\n%s", err, out, b.String())
	}
	return key, nil
}

func readKey(path string) (*dns.DNSKEY, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	for line := range strings.Lines(string(b)) {
		if strings.HasPrefix(line, ";") {
			continue
		}
		rr, err := dns.NewRR(line)
		if err != nil {
			return nil, fmt.Errorf("%s: %v", path, err)
		}
		if k, ok := rr.(*dns.DNSKEY); ok {
			return k, nil
		}
	}
	return nil, fmt.Errorf("%s: no DNSKEY", path)
}

// run starts named with conf in dir and waits until ready succeeds. It
// stops named when the test ends and then, if the test failed, logs what
// named wrote.
func run(t testing.TB, named, dir, conf, role string, ready func() error) {
	t.Helper()
	confPath := filepath.Join(dir, "named.conf")
	logPath := filepath.Join(dir, "named.log")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	// -g: in the foreground, as the current user, logging to stderr.
	cmd := exec.Command(named, "-g", "-4", "-n", "1", "-c", confPath)
	cmd.Dir, cmd.Stdout, cmd.Stderr = dir, logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatalf("bindtest: starting the %s named: %v", role, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			t.Logf("bindtest: the %s named (pid %d) logged:\n%s\nits named.conf:\n%s", role, cmd.Process.Pid, b, conf)
		}
	})

	deadline := time.Now().Add(10 * time.Second)
	for {
		err := ready()
		if err == nil {
			return
		}
		select {
		case werr := <-exited:
			exited <- werr // for the cleanup
			t.Fatalf("bindtest: the %s named exited: %v", role, werr)
		default:
		}
		if b, _ := os.ReadFile(logPath); bytes.Contains(b, []byte("not loaded due to errors")) {
			t.Fatalf("bindtest: the %s named could not load a zone: %v", role, err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("bindtest: the %s named is not ready after 10 s: %v", role, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// probe asks addr for zone's SOA. The authoritative server must answer
// it with authority (the zone loaded); the resolver just answer.
func probe(addr, zone string, recursive bool) error {
	m := new(dns.Msg)
	m.SetQuestion(zone+".", dns.TypeSOA)
	m.RecursionDesired = recursive
	resp, _, err := (&dns.Client{Timeout: 200 * time.Millisecond}).Exchange(m, addr)
	if err != nil {
		return err
	}
	if !recursive && (resp.Rcode != dns.RcodeSuccess || !resp.Authoritative) {
		return fmt.Errorf("zone %s not loaded: SOA query answered %s", zone, dns.RcodeToString[resp.Rcode])
	}
	return nil
}

// freeAddr returns a loopback host:port free a moment ago for both UDP
// and TCP, for named to listen on.
func freeAddr(t testing.TB) string {
	t.Helper()
	for range 20 {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ln, err := net.Listen("tcp", pc.LocalAddr().String())
		pc.Close()
		if err == nil {
			ln.Close()
			return pc.LocalAddr().String()
		}
	}
	t.Fatal("bindtest: no loopback port free for both UDP and TCP")
	return ""
}

func port(addr string) string {
	_, p, _ := net.SplitHostPort(addr)
	return p
}

func mkdir(t testing.TB, dir, name string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.Mkdir(p, 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}
