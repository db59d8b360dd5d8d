// Package pgserver runs a private PostgreSQL server in a scratch
// directory, for tests and benchmarks that stop, pause or restart their
// database: the shared server on 5432 belongs to everyone on the machine
// and is never stopped. The server binaries come from Debian's postgresql
// package (/usr/lib/postgresql/*/bin).
//
// The cluster is made for speed, not durability: trust authentication on
// loopback, no fsync. A killed server keeps every commit; a crashed
// machine would not.
package pgserver

import (
	"errors"
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
	"time"
)

// ErrNoBinaries: the PostgreSQL server binaries are not installed.
var ErrNoBinaries = errors.New("pgserver: no PostgreSQL server binaries in /usr/lib/postgresql/*/bin (Debian package postgresql)")

// Server is one private PostgreSQL server. Its methods are not safe for
// concurrent use.
type Server struct {
	bin  string // the server's bin directory
	dir  string // scratch directory: data/, the socket, server.log
	port int
	cred *syscall.Credential // nil when not root
	cmd  *exec.Cmd
	done chan struct{}
}

// Init makes a cluster in dir (created if missing; the caller removes it)
// for a server on a free loopback port. As root, as PostgreSQL requires,
// the server runs as the postgres user. Start starts it.
func Init(dir string) (*Server, error) {
	bins, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	if len(bins) == 0 {
		return nil, ErrNoBinaries
	}
	sort.Strings(bins)
	s := &Server{bin: filepath.Dir(bins[len(bins)-1]), dir: dir}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("pgserver: %w", err)
	}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			return nil, fmt.Errorf("pgserver: running as root, PostgreSQL needs the postgres user: %w", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		s.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		if err := os.Chown(dir, uid, gid); err != nil {
			return nil, fmt.Errorf("pgserver: %w", err)
		}
	}
	initdb := s.command("initdb", "-D", s.data(), "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8")
	if out, err := initdb.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("pgserver: initdb: %w\n%s", err, out)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("pgserver: finding a free port: %w", err)
	}
	s.port = l.Addr().(*net.TCPAddr).Port
	l.Close()
	return s, nil
}

func (s *Server) data() string { return filepath.Join(s.dir, "data") }

// Log is the server's log file.
func (s *Server) Log() string { return filepath.Join(s.dir, "server.log") }

// command runs one of the server's programs as the server's user.
func (s *Server) command(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(filepath.Join(s.bin, name), args...)
	cmd.Dir = s.dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred, Setpgid: true}
	return cmd
}

// URL is database db on the server, as the postgres user.
func (s *Server) URL(db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", s.port, db)
}

// Running reports whether the server process is running (paused or not).
func (s *Server) Running() bool { return s.cmd != nil }

// Start starts the server (again) and waits until it accepts connections.
func (s *Server) Start() error {
	if s.cmd != nil {
		return errors.New("pgserver: already running")
	}
	log, err := os.OpenFile(s.Log(), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("pgserver: %w", err)
	}
	defer log.Close()
	cmd := s.command("postgres", "-D", s.data(), "-p", strconv.Itoa(s.port), "-k", s.dir,
		"-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "full_page_writes=off")
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("pgserver: starting postgres: %w", err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	s.cmd, s.done = cmd, done
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		select {
		case <-done:
			s.cmd = nil
			b, _ := os.ReadFile(s.Log())
			return fmt.Errorf("pgserver: postgres exited at start:\n%s", b)
		default:
		}
		if s.command("pg_isready", "-h", "127.0.0.1", "-p", strconv.Itoa(s.port), "-q").Run() == nil {
			return nil
		}
	}
	s.Stop()
	return errors.New("pgserver: postgres did not accept connections within 30 s")
}

// Stop shuts the server down at once (SIGQUIT: immediate shutdown, every
// client disconnected) and waits for it to exit; it is a no-op when the
// server is not running.
func (s *Server) Stop() {
	if s.cmd == nil {
		return
	}
	s.Resume() // a paused server cannot shut down
	s.cmd.Process.Signal(syscall.SIGQUIT)
	select {
	case <-s.done:
	case <-time.After(30 * time.Second):
		s.cmd.Process.Kill()
		<-s.done
	}
	s.cmd = nil
}

// Kill ends the server with SIGKILL, as a crashed host would, and its
// backends with it, and waits for the postmaster to exit.
func (s *Server) Kill() {
	if s.cmd == nil {
		return
	}
	children := childrenOf(s.cmd.Process.Pid)
	s.cmd.Process.Kill()
	<-s.done
	for _, c := range children {
		syscall.Kill(c, syscall.SIGKILL)
		syscall.Kill(c, syscall.SIGCONT)
	}
	s.cmd = nil
}

// Pause stops every process of the server (SIGSTOP to the postmaster and
// to each of its children, which PostgreSQL puts in sessions of their
// own): connections stay open and nothing answers, as with a hung host or
// a network partition. Resume undoes it.
func (s *Server) Pause() { s.signalAll(syscall.SIGSTOP) }

// Resume continues a paused server.
func (s *Server) Resume() { s.signalAll(syscall.SIGCONT) }

func (s *Server) signalAll(sig syscall.Signal) {
	if s.cmd == nil {
		return
	}
	pid := s.cmd.Process.Pid
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

// Version is the server's `postgres --version` line.
func (s *Server) Version() string {
	out, err := s.command("postgres", "--version").Output()
	if err != nil {
		return "unknown version"
	}
	return strings.TrimSpace(string(out))
}
