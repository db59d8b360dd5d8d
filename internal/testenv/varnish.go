package testenv

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// StartVarnish runs varnishd in the foreground on addr (host:port) with
// the given VCL until the test ends, and returns once it listens. Without
// varnishd the test skips loudly (fails under CI=true).
func StartVarnish(t testing.TB, addr, vcl string) {
	t.Helper()
	bin, err := exec.LookPath("varnishd")
	if err != nil {
		// Debian installs it in /usr/sbin, which a user's PATH may lack.
		if _, statErr := os.Stat("/usr/sbin/varnishd"); statErr != nil {
			Missing(t, "varnishd (Debian package varnish)", err)
		}
		bin = "/usr/sbin/varnishd"
	}
	dir := t.TempDir()
	vclPath := filepath.Join(dir, "test.vcl")
	if err := os.WriteFile(vclPath, []byte(vcl), 0o644); err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(dir, "varnishd.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close() // varnishd writes to its own copy
	output := func() string {
		b, _ := os.ReadFile(logPath)
		return string(b)
	}
	cmd := exec.Command(bin, "-F", "-n", filepath.Join(dir, "work"), "-a", addr, "-f", vclPath,
		"-s", "malloc,32m", "-j", "none", "-T", "none")
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// Its own process group, so the cache child goes with the manager.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		Missing(t, "varnishd", err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-exited
		}
		if t.Failed() {
			t.Logf("varnishd output:\n%s", output())
		}
	})
	for deadline := time.Now().Add(30 * time.Second); ; {
		select {
		case <-exited:
			t.Fatalf("varnishd exited at start:\n%s", output())
		default:
		}
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("varnishd did not listen within 30 s:\n%s", output())
		}
		time.Sleep(100 * time.Millisecond)
	}
}
