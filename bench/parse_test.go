package bench

import (
	"bytes"
	"errors"
	"image/png"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/trustline/trustline/internal/reason"
	"github.com/trustline/trustline/internal/status"
)

func TestParseLogLine(t *testing.T) {
	for _, tc := range []struct {
		name string
		line string
		want map[string]string
	}{
		{"dev ready", `time=2026-11-27T01:16:19.984Z level=INFO msg="trustline dev ready" api=http://127.0.0.1:38013 ocsp=http://127.0.0.1:46735 crl=http://127.0.0.1:39595`,
			map[string]string{"time": "2026-11-27T01:16:19.984Z", "level": "INFO", "msg": "trustline dev ready",
				"api": "http://127.0.0.1:38013", "ocsp": "http://127.0.0.1:46735", "crl": "http://127.0.0.1:39595"}},
		{"escaped quote", `msg="say \"hi\"" n=1`, map[string]string{"msg": `say "hi"`, "n": "1"}},
		{"empty value", `a= b=2`, map[string]string{"a": "", "b": "2"}},
		{"not logfmt", `panic: runtime error`, map[string]string{}},
		{"unterminated quote", `msg="oops`, map[string]string{"msg": "oops"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if d := cmp.Diff(tc.want, parseLogLine(tc.line)); d != "" {
				t.Errorf("(-want +got):\n%s", d)
			}
		})
	}
	match := readyLine("trustline dev ready", "api", "ocsp", "crl")
	if _, ok := match(`level=INFO msg="trustline dev ready" api=http://a ocsp=http://b`); ok {
		t.Error("a ready line without crl= matched")
	}
	if _, ok := match(`level=INFO msg="store open" note="trustline dev ready" api=x ocsp=y crl=z`); ok {
		t.Error("a line merely mentioning the message matched")
	}
}

// The ready line comes from another process's output.
func FuzzParseLogLine(f *testing.F) {
	f.Add(`time=2026-11-27T01:16:19.984Z level=INFO msg="trustline dev ready" api=http://127.0.0.1:38013`)
	f.Add(`msg="a\"b\\" x=`)
	f.Add(`="" = ==`)
	f.Fuzz(func(t *testing.T, line string) {
		kv := parseLogLine(line)
		for k := range kv {
			if strings.ContainsRune(k, ' ') {
				t.Errorf("key %q has a space", k)
			}
		}
	})
}

func TestMailCode(t *testing.T) {
	msg := []byte("From: Trustline <noreply@trustline.invalid>\r\nTo: admin@bench.example.com\r\nSubject: Confirm\r\n\r\n" +
		"Someone asked.\r\n\r\nValidation code: AbC123-xyz\r\n\r\nThe code expires.\r\n")
	for _, tc := range []struct {
		name string
		msg  []byte
		to   string
		want string
		ok   bool
	}{
		{"match", msg, "admin@bench.example.com", "AbC123-xyz", true},
		{"other recipient", msg, "admin@other.example.com", "", false},
		{"recipient as a suffix", msg, "n@bench.example.com", "", false},
		{"no code", []byte("To: admin@bench.example.com\r\n\r\nhello\r\n"), "admin@bench.example.com", "", false},
		{"code inside a line", []byte("To: a@b.c\r\n\r\nYour Validation code: 1234\r\n"), "a@b.c", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := mailCode(tc.msg, tc.to)
			if got != tc.want || ok != tc.ok {
				t.Errorf("got %q %v, want %q %v", got, ok, tc.want, tc.ok)
			}
		})
	}
}

// Mail files are written by the server under test.
func FuzzMailCode(f *testing.F) {
	f.Add([]byte("To: a@b.c\r\n\r\nValidation code: 1234\r\n"), "a@b.c")
	f.Fuzz(func(t *testing.T, msg []byte, to string) {
		code, ok := mailCode(msg, to)
		if ok && (len(code) < 4 || strings.ContainsAny(code, "\r\n ")) {
			t.Errorf("code %q", code)
		}
	})
}

func TestParseCRLList(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string
		want []listedCRL
		ok   bool
	}{
		{"ccadb", `["http://crl.example/int-a/0.crl","https://crl.example:8443/x/int-a/1.crl"]`,
			[]listedCRL{{"crl.example", "/int-a/0.crl"}, {"crl.example:8443", "/x/int-a/1.crl"}}, true},
		{"empty", `[]`, []listedCRL{}, true},
		{"object", `{"a":1}`, nil, false},
		{"relative", `["/int-a/0.crl"]`, nil, false},
		{"ftp", `["ftp://x/0.crl"]`, nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseCRLList([]byte(tc.in))
			if (err == nil) != tc.ok {
				t.Fatalf("err %v", err)
			}
			if d := cmp.Diff(tc.want, got, cmp.AllowUnexported(listedCRL{})); tc.ok && d != "" {
				t.Errorf("(-want +got):\n%s", d)
			}
		})
	}
}

// crls.json comes from the origin under test.
func FuzzParseCRLList(f *testing.F) {
	f.Add([]byte(`["http://crl.example/int-a/0.crl"]`))
	f.Add([]byte(`[1,2]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		urls, err := parseCRLList(b)
		if err != nil {
			return
		}
		for _, u := range urls {
			if !strings.HasPrefix(u.path, "/") || u.host == "" {
				t.Errorf("host %q path %q", u.host, u.path)
			}
		}
	})
}

func TestPairsRoundTrip(t *testing.T) {
	f := newFixture(t, 3)
	got, err := parsePairs(formatPairs(f.pairs))
	if err != nil {
		t.Fatal(err)
	}
	want := f.floorPairs(nil)
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("(-want +got):\n%s", d)
	}
	for _, bad := range []string{"", "abc", "!!! ???\n"} {
		if _, err := parsePairs([]byte(bad)); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// A pairs file is read by the floor server; it must not crash on any.
func FuzzParsePairs(f *testing.F) {
	f.Add([]byte("MAA= MAA=\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		parsePairs(b)
	})
}

func TestOpenSSLIndex(t *testing.T) {
	notAfter := time.Date(2027, 2, 3, 4, 5, 6, 0, time.UTC)
	certs := []Cert{
		{SN: big.NewInt(0xabc), NotAfter: notAfter, Status: status.Good},
		{SN: big.NewInt(0x1234), NotAfter: notAfter, Status: status.Revoked, RevokedAt: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Reason: reason.KeyCompromise},
		{SN: big.NewInt(0x55), NotAfter: notAfter, Status: status.Revoked, RevokedAt: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Reason: reason.Unspecified},
	}
	want := "V\t270203040506Z\t\t0ABC\tunknown\t/CN=0ABC\n" +
		"R\t270203040506Z\t260102030405Z,keyCompromise\t1234\tunknown\t/CN=1234\n" +
		"R\t270203040506Z\t260102030405Z\t55\tunknown\t/CN=55\n"
	if d := cmp.Diff(want, string(opensslIndex(certs))); d != "" {
		t.Errorf("(-want +got):\n%s", d)
	}
}

func TestDescribeMachine(t *testing.T) {
	files := map[string]string{
		"/proc/cpuinfo":              "processor\t: 0\nmodel name\t: AMD EPYC 7B13\nprocessor\t: 1\nmodel name\t: AMD EPYC 7B13\n",
		"/proc/sys/kernel/osrelease": "6.1.0-test\n",
		"/proc/loadavg":              "1.50 2.00 2.50 3/200 1234\n",
		"/proc/self/status":          "Name:\tbench\nCpus_allowed_list:\t1\n",
	}
	m := describeMachine(func(name string) ([]byte, error) {
		if s, ok := files[name]; ok {
			return []byte(s), nil
		}
		return nil, os.ErrNotExist
	})
	want := Machine{CPUModel: "AMD EPYC 7B13", Cores: 2, Affinity: "1", Kernel: "6.1.0-test", LoadAvg: "1.50 2.00 2.50"}
	got := Machine{CPUModel: m.CPUModel, Cores: m.Cores, Affinity: m.Affinity, Kernel: m.Kernel, LoadAvg: m.LoadAvg}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("(-want +got):\n%s", d)
	}
	if m.GoVersion == "" {
		t.Error("no Go version")
	}
}

func TestMarkdownReport(t *testing.T) {
	f := newFixture(t, 50)
	target := serveFloor(t, f.floorPairs(nil))
	closed := f.ocspRun(t, target, LoadConfig{Duration: 200 * time.Millisecond, Concurrency: 2}, plainMix(), 10)
	closed.Name = "ocsp-closed"
	open := f.ocspRun(t, target, LoadConfig{Duration: 200 * time.Millisecond, Concurrency: 2, Rate: 500}, plainMix(), 10)
	open.Name = "ocsp-open"
	open.ErrorsByKind["verify"] = 1
	open.FirstErrors["verify"] = "a | pipe"
	s := &Suite{Title: "test suite", Started: time.Now(), Finished: time.Now(), Machine: DescribeMachine(),
		Setup: map[string]string{"certificates": "50"}, Runs: []*Run{closed, open},
		Peers: []PeerResult{{Name: "floor", RequestsPerSec: 100, VsFloor: 1}, {Name: "trustline", RequestsPerSec: 80, VsFloor: 0.8}}}
	dir := t.TempDir()
	if err := WriteMarkdown(filepath.Join(dir, "latest.md"), s); err != nil {
		t.Fatal(err)
	}
	md, err := os.ReadFile(filepath.Join(dir, "latest.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"# test suite", "## Machine", "| ocsp-closed | closed |", "## ocsp-open",
		"latency from scheduled send", "![throughput over time](latest-ocsp-closed-throughput.png)",
		"![latency percentile spectrum](latest-ocsp-open-latency.png)", "a \\| pipe", "## Peers", "| trustline | 80 | 0.80 |", "![throughput by server](latest-by-server.png)"} {
		if !bytes.Contains(md, []byte(want)) {
			t.Errorf("report lacks %q", want)
		}
	}
	for _, img := range []string{"latest-ocsp-closed-throughput.png", "latest-ocsp-closed-latency.png",
		"latest-ocsp-open-throughput.png", "latest-ocsp-open-latency.png", "latest-by-server.png"} {
		fh, err := os.Open(filepath.Join(dir, img))
		if err != nil {
			t.Error(err)
			continue
		}
		if _, err := png.DecodeConfig(fh); err != nil {
			t.Errorf("%s: %v", img, err)
		}
		fh.Close()
	}
}

func TestSpectrum(t *testing.T) {
	h := NewHistogram()
	for i := 1; i <= 1000; i++ {
		h.Record(time.Duration(i) * time.Millisecond)
	}
	sp := h.Spectrum()
	if sp[0].Percentile != 0 || sp[len(sp)-1].Percentile != 100 || sp[len(sp)-1].Ms < 999 {
		t.Errorf("spectrum ends %v … %v", sp[0], sp[len(sp)-1])
	}
	for i := 1; i < len(sp); i++ {
		if sp[i].Percentile < sp[i-1].Percentile || sp[i].Ms < sp[i-1].Ms {
			t.Fatalf("not monotonic at %d: %v then %v", i, sp[i-1], sp[i])
		}
	}
	if p := h.At(50); p < 495*time.Millisecond || p > 505*time.Millisecond {
		t.Errorf("p50 %v", p)
	}
	h.Record(2 * time.Minute) // beyond the range: clamped, still counted
	if h.Count() != 1001 || h.Max() < 59*time.Second {
		t.Errorf("count %d max %v", h.Count(), h.Max())
	}
}

func TestUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		run  func() error
	}{
		{"ocsp unknown flag", func() error { return RunOCSP(t.Context(), []string{"--nope"}, nil, &bytes.Buffer{}) }},
		{"crl extra argument", func() error { return RunCRL(t.Context(), []string{"x"}, nil, &bytes.Buffer{}) }},
		{"floor without data", func() error { return RunFloor(t.Context(), nil, nil, &bytes.Buffer{}) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, ok := errors.AsType[UsageError](tc.run()); !ok {
				t.Error("not a UsageError")
			}
		})
	}
	if err := RunOCSP(t.Context(), []string{"--data", "x"}, nil, &bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), "--target") {
		t.Errorf("missing --target: %v", err)
	}
}
