package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// binary is the trustline command built once for these tests.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "trustline-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Chmod(dir, 0o755) // the unprivileged-user test runs it too
	binary = filepath.Join(dir, "trustline")
	out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "building trustline: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// devProc is a running `trustline dev`.
type devProc struct {
	cmd            *exec.Cmd
	api, ocsp, crl string
	instance       string
	debug          string // the profiler's base URL, with --debug-addr
	postgres       string
	logs           *strings.Builder
	done           chan error
}

var (
	readyRE    = regexp.MustCompile(`msg="trustline dev ready" api=(\S+) ocsp=(\S+) crl=(\S+)`)
	instanceRE = regexp.MustCompile(`msg="store open".* instance=(\S+)`)
	debugRE    = regexp.MustCompile(`msg="profiler listening" debug=(\S+)`)
)

// startDev starts the binary on ephemeral ports and waits for its ready line.
func startDev(t *testing.T, args ...string) *devProc {
	t.Helper()
	args = append([]string{"dev", "--api", "127.0.0.1:0", "--ocsp", "127.0.0.1:0", "--crl", "127.0.0.1:0"}, args...)
	cmd := exec.Command(binary, args...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &devProc{cmd: cmd, logs: &strings.Builder{}, done: make(chan error, 1)}
	ready := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			p.logs.WriteString(line + "\n")
			if m := instanceRE.FindStringSubmatch(line); m != nil {
				p.instance = m[1]
			}
			if m := debugRE.FindStringSubmatch(line); m != nil {
				p.debug = m[1]
			}
			if m := readyRE.FindStringSubmatch(line); m != nil {
				p.api, p.ocsp, p.crl = m[1], m[2], m[3]
				ready <- true
			}
		}
		p.done <- cmd.Wait()
		close(ready)
	}()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
		}
	})
	select {
	case ok := <-ready:
		if !ok {
			t.Fatalf("trustline dev exited before ready:\n%s", p.logs)
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("trustline dev not ready after 60s:\n%s", p.logs)
	}
	return p
}

// stop sends SIGTERM and requires a clean exit.
func (p *devProc) stop(t *testing.T) {
	t.Helper()
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.done:
		if err != nil {
			t.Fatalf("trustline dev exited with %v after SIGTERM:\n%s", err, p.logs)
		}
		if !strings.Contains(p.logs.String(), `msg=stopped`) {
			t.Errorf("no clean-stop line in logs:\n%s", p.logs)
		}
		for _, line := range strings.Split(p.logs.String(), "\n") {
			if strings.Contains(line, "level=ERROR") || strings.Contains(line, "database is closed") {
				t.Errorf("error logged by a run that should be clean: %s", line)
			}
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("trustline dev still running 20s after SIGTERM")
	}
}

func getOK(t *testing.T, url string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || strings.TrimSpace(string(body)) != "ok" {
		t.Fatalf("GET %s = %d %q", url, resp.StatusCode, body)
	}
}

func TestDevStartsServesHealthAndRestarts(t *testing.T) {
	data := filepath.Join(t.TempDir(), "dev")
	p := startDev(t, "--data", data)
	for _, base := range []string{p.api, p.ocsp, p.crl} {
		getOK(t, base+"/healthz")
	}
	resp, err := http.Get(p.api + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), "go_goroutines") {
		t.Fatalf("GET /metrics = %d, no go_goroutines", resp.StatusCode)
	}
	resp, err = http.Get(p.api + "/")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") || !strings.Contains(string(page), "<form") {
		t.Errorf("portal at / = %d %s, no sign-in form", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	first := p.instance
	p.stop(t)
	if first == "" {
		t.Fatal("no instance id logged")
	}
	if _, err := os.Stat(filepath.Join(data, "trustline.db")); err != nil {
		t.Fatalf("store file missing after first start: %v", err)
	}

	p = startDev(t, "--data", data)
	getOK(t, p.api+"/healthz")
	if p.instance != first {
		t.Errorf("restart on the same data dir reports instance %q, first start %q: data not kept", p.instance, first)
	}
	p.stop(t)
}

// TestDevDebugProfiler: --debug-addr serves Go's profiler there, and only
// there: the API listener does not.
func TestDevDebugProfiler(t *testing.T) {
	p := startDev(t, "--data", filepath.Join(t.TempDir(), "dev"), "--debug-addr", "127.0.0.1:0")
	if p.debug == "" {
		t.Fatalf("no profiler line in the log:\n%s", p.logs)
	}
	resp, err := http.Get(p.debug + "cmdline")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), "--debug-addr") {
		t.Errorf("GET %scmdline = %d %q", p.debug, resp.StatusCode, body)
	}
	resp, err = http.Get(p.api + "/debug/pprof/cmdline")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode == 200 {
		t.Errorf("the API listener serves the profiler")
	}
	p.stop(t)
}

func TestDevOnEmptyPostgresDatabase(t *testing.T) {
	url := freshDatabase(t)
	p := startDev(t, "--data", t.TempDir(), "--postgres", url)
	getOK(t, p.api+"/healthz")
	p.stop(t)

	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var n int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM information_schema.tables WHERE table_name = 'certificates'").Scan(&n); err != nil || n != 1 {
		t.Fatalf("certificates table after start: count=%d err=%v", n, err)
	}
}

// TestDevRefusesBadStart: each start-up problem stops the process with a
// non-zero status and one line naming the problem.
func TestDevRefusesBadStart(t *testing.T) {
	dir := t.TempDir()
	brokenCfg := filepath.Join(dir, "broken.yaml")
	os.WriteFile(brokenCfg, []byte("api: [unclosed\n"), 0o600)
	unknownKey := filepath.Join(dir, "unknown.yaml")
	os.WriteFile(unknownKey, []byte("listen_api: 127.0.0.1:1\n"), 0o600)
	notADir := filepath.Join(dir, "file")
	os.WriteFile(notADir, nil, 0o600)

	tests := []struct {
		name string
		args []string
		want string
	}{
		{"broken config", []string{"--config", brokenCfg}, "broken.yaml"},
		{"unknown config key", []string{"--config", unknownKey}, "listen_api"},
		{"missing config", []string{"--config", filepath.Join(dir, "nope.yaml")}, "nope.yaml"},
		{"unreachable postgres", []string{"--postgres", "postgres://postgres@127.0.0.1:1/x?sslmode=disable&connect_timeout=2"}, "127.0.0.1"},
		{"data dir is a file", []string{"--data", filepath.Join(notADir, "sub")}, "data dir"},
		{"bad listen address", []string{"--api", "nonsense"}, "api"},
		{"unknown flag", []string{"--frobnicate"}, "frobnicate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"dev", "--data", filepath.Join(t.TempDir(), "d")}, tt.args...)
			assertOneLineFailure(t, exec.Command(binary, args...), tt.want)
		})
	}
}

// TestDevRefusesUnwritableDataDir runs as an unprivileged user, since root
// may write anywhere.
func TestDevRefusesUnwritableDataDir(t *testing.T) {
	ro, err := os.MkdirTemp("", "trustline-ro-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(ro)
	os.Chmod(ro, 0o555)
	cmd := exec.Command(binary, "dev", "--data", ro, "--api", "127.0.0.1:0", "--ocsp", "127.0.0.1:0", "--crl", "127.0.0.1:0")
	if os.Geteuid() == 0 {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	}
	assertOneLineFailure(t, cmd, "not writable")
}

func assertOneLineFailure(t *testing.T, cmd *exec.Cmd, want string) {
	t.Helper()
	var stderr strings.Builder
	cmd.Stderr = &stderr
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err == nil {
			t.Fatalf("exit status 0; stderr:\n%s", stderr.String())
		}
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("still running after 30s; stderr:\n%s", stderr.String())
	}
	var lines []string
	for _, l := range strings.Split(strings.TrimSpace(stderr.String()), "\n") {
		if strings.HasPrefix(l, "trustline:") {
			lines = append(lines, l)
		}
	}
	if len(lines) != 1 || !strings.Contains(lines[0], want) {
		t.Fatalf("want one 'trustline:' line mentioning %q; stderr:\n%s", want, stderr.String())
	}
}
