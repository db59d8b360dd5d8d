package testenv

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Postgres is a private PostgreSQL server a test may stop and start: the
// shared one on 5432 belongs to everyone on the machine and is never
// stopped by a test.
type Postgres struct {
	t    testing.TB
	bin  string // the server's bin directory
	dir  string // data directory (and socket directory)
	port int
	cred *syscall.Credential // nil when not root
	cmd  *exec.Cmd
	done chan struct{}
}

// StartPostgres initialises a cluster in a scratch directory (trust
// authentication, no fsync: a killed server keeps every commit, a crashed machine would not) and starts it on a free loopback port until
// the test ends. As root, as PostgreSQL requires, the server runs as the
// postgres user. Without the server binaries (Debian package
// postgresql) the test skips loudly, or fails under CI=true.
func StartPostgres(t testing.TB) *Postgres {
	t.Helper()
	bins, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	if len(bins) == 0 {
		Missing(t, "PostgreSQL server binaries (/usr/lib/postgresql/*/bin, Debian package postgresql)", os.ErrNotExist)
	}
	sort.Strings(bins)
	p := &Postgres{t: t, bin: filepath.Dir(bins[len(bins)-1])}
	dir, err := os.MkdirTemp("", "trustline-pg-")
	if err != nil {
		t.Fatal(err)
	}
	p.dir = dir
	t.Cleanup(func() {
		p.Stop()
		os.RemoveAll(dir)
	})
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			t.Fatalf("running as root, PostgreSQL needs the postgres user: %v", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		p.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		if err := os.Chown(dir, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	initdb := p.command("initdb", "-D", p.data(), "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8")
	if out, err := initdb.CombinedOutput(); err != nil {
		t.Fatalf("initdb: %v\n%s", err, out)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p.port = l.Addr().(*net.TCPAddr).Port
	l.Close()
	p.Start()
	return p
}

func (p *Postgres) data() string { return filepath.Join(p.dir, "data") }

// command runs one of the server's programs as the server's user.
func (p *Postgres) command(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(filepath.Join(p.bin, name), args...)
	cmd.Dir = p.dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: p.cred, Setpgid: true}
	return cmd
}

// URL is the server's database postgres, as the postgres user.
func (p *Postgres) URL() string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", p.port)
}

// Start starts the server (again) and waits until it accepts connections.
func (p *Postgres) Start() {
	p.t.Helper()
	if p.cmd != nil {
		p.t.Fatal("testenv: postgres already running")
	}
	log, err := os.OpenFile(filepath.Join(p.dir, "server.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		p.t.Fatal(err)
	}
	defer log.Close()
	p.cmd = p.command("postgres", "-D", p.data(), "-p", strconv.Itoa(p.port), "-k", p.dir,
		"-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "full_page_writes=off")
	p.cmd.Stdout, p.cmd.Stderr = log, log
	if err := p.cmd.Start(); err != nil {
		p.t.Fatalf("starting postgres: %v", err)
	}
	done := make(chan struct{})
	go func(cmd *exec.Cmd) { cmd.Wait(); close(done) }(p.cmd)
	p.done = done
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		select {
		case <-done:
			b, _ := os.ReadFile(filepath.Join(p.dir, "server.log"))
			p.t.Fatalf("postgres exited at start:\n%s", b)
		default:
		}
		if out, err := p.command("pg_isready", "-h", "127.0.0.1", "-p", strconv.Itoa(p.port), "-q").CombinedOutput(); err == nil {
			return
		} else if len(out) > 0 {
			p.t.Logf("pg_isready: %s", out)
		}
	}
	p.t.Fatal("postgres did not accept connections within 30 s")
}

// Stop shuts the server down at once (SIGQUIT: immediate shutdown, every
// client disconnected) and waits for it to exit; it is a no-op when the
// server is not running.
func (p *Postgres) Stop() {
	if p.cmd == nil {
		return
	}
	p.Resume() // a paused server cannot shut down
	p.cmd.Process.Signal(syscall.SIGQUIT)
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		p.cmd.Process.Kill()
		<-p.done
	}
	p.cmd = nil
}

// Pause stops every process of the server (SIGSTOP to the postmaster and
// to each of its children, which PostgreSQL puts in sessions of their
// own): connections stay open and nothing answers, as with a hung host or
// a network partition. Resume undoes it.
func (p *Postgres) Pause() { p.signalAll(syscall.SIGSTOP) }

// Resume continues a paused server.
func (p *Postgres) Resume() { p.signalAll(syscall.SIGCONT) }

func (p *Postgres) signalAll(sig syscall.Signal) {
	if p.cmd == nil {
		return
	}
	pid := p.cmd.Process.Pid
	// The postmaster first when stopping, so it forks no new backend.
	if sig == syscall.SIGSTOP {
		syscall.Kill(pid, sig)
	}
	for _, c := range childrenOf(pid) {
		syscall.Kill(c, sig)
	}
	if sig != syscall.SIGSTOP {
		syscall.Kill(pid, sig)
	}
}

// childrenOf lists the processes whose parent is pid, from /proc.
func childrenOf(pid int) []int {
	var out []int
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, f := range stats {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		// pid (comm) state ppid …; comm may hold spaces and parentheses.
		rest := string(b[strings.LastIndexByte(string(b), ')')+1:])
		fields := strings.Fields(rest)
		if len(fields) < 2 {
			continue
		}
		if ppid, _ := strconv.Atoi(fields[1]); ppid == pid {
			if c, err := strconv.Atoi(filepath.Base(filepath.Dir(f))); err == nil {
				out = append(out, c)
			}
		}
	}
	return out
}
