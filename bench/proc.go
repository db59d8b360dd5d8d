package bench

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// proc is a server process the suite started. It is stopped by its PID
// only, never by name: other engineers' processes share the machine.
type proc struct {
	name  string
	cmd   *exec.Cmd
	log   *os.File
	lines chan string // stderr and stdout lines until the reader stops
	done  chan struct{}
	mu    sync.Mutex
	err   error // from Wait
}

// startProc starts argv with its output copied to logPath. With cpus
// set (a taskset CPU list such as "0"), the process is pinned to them.
func startProc(name, logPath, cpus string, argv ...string) (*proc, error) {
	if cpus != "" {
		argv = append([]string{"taskset", "-c", cpus}, argv...)
	}
	lf, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("bench: %s log: %w", name, err)
	}
	fmt.Fprintf(lf, "# %s\n", strings.Join(argv, " "))
	cmd := exec.Command(argv[0], argv[1:]...)
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	// Its own process group, so a terminal's ^C reaches the suite, which
	// then stops this process by PID.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		lf.Close()
		return nil, fmt.Errorf("bench: starting %s (%s): %w", name, argv[0], err)
	}
	p := &proc{name: name, cmd: cmd, log: lf, lines: make(chan string, 256), done: make(chan struct{})}
	go func() {
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			fmt.Fprintln(lf, line)
			select {
			case p.lines <- line:
			default: // nobody is waiting for lines any more
			}
		}
		io.Copy(lf, pr)
	}()
	go func() {
		err := cmd.Wait()
		pw.Close()
		p.mu.Lock()
		p.err = err
		p.mu.Unlock()
		close(p.done)
	}()
	return p, nil
}

// waitLine returns the fields of the first output line that match reports
// as ready, or an error when the process exits or timeout passes first.
func (p *proc) waitLine(timeout time.Duration, match func(line string) (map[string]string, bool)) (map[string]string, error) {
	t := time.NewTimer(timeout)
	defer t.Stop()
	for {
		select {
		case line := <-p.lines:
			if kv, ok := match(line); ok {
				return kv, nil
			}
		case <-p.done:
			return nil, fmt.Errorf("bench: %s exited before it was ready (%v); see %s", p.name, p.exitErr(), p.log.Name())
		case <-t.C:
			return nil, fmt.Errorf("bench: %s not ready after %v; see %s", p.name, timeout, p.log.Name())
		}
	}
}

func (p *proc) exitErr() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

// stop sends SIGTERM to the process's PID, and SIGKILL if it has not
// exited after grace.
func (p *proc) stop(grace time.Duration) error {
	defer p.log.Close()
	select {
	case <-p.done:
		return nil
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return nil
	case <-time.After(grace):
	}
	_ = p.cmd.Process.Kill()
	<-p.done
	return fmt.Errorf("bench: %s (pid %d) ignored SIGTERM for %v and was killed", p.name, p.cmd.Process.Pid, grace)
}

// parseLogLine reads a slog text line (key=value, values optionally
// quoted with Go escapes) into its fields. It accepts any line; fields it
// cannot read are skipped.
func parseLogLine(line string) map[string]string {
	kv := map[string]string{}
	for i := 0; i < len(line); {
		for i < len(line) && line[i] == ' ' {
			i++
		}
		eq := strings.IndexByte(line[i:], '=')
		if eq < 0 {
			break
		}
		key := line[i : i+eq]
		i += eq + 1
		if strings.ContainsRune(key, ' ') {
			// Not a key: skip to the next space.
			key = key[strings.LastIndexByte(key, ' ')+1:]
		}
		var val string
		if i < len(line) && line[i] == '"' {
			j := i + 1
			for j < len(line) && line[j] != '"' {
				if line[j] == '\\' {
					j++
				}
				j++
			}
			j = min(j, len(line)-1)
			raw := line[i : j+1]
			if v, err := strconv.Unquote(raw); err == nil {
				val = v
			} else {
				val = strings.Trim(raw, `"`)
			}
			i = j + 1
		} else {
			j := strings.IndexByte(line[i:], ' ')
			if j < 0 {
				j = len(line) - i
			}
			val = line[i : i+j]
			i += j
		}
		if key != "" {
			kv[key] = val
		}
	}
	return kv
}

// readyLine matches the log line a server prints when it listens:
// msg="<msg>" with the fields in want all present.
func readyLine(msg string, want ...string) func(string) (map[string]string, bool) {
	return func(line string) (map[string]string, bool) {
		if !strings.Contains(line, msg) {
			return nil, false
		}
		kv := parseLogLine(line)
		if kv["msg"] != msg {
			return nil, false
		}
		for _, k := range want {
			if kv[k] == "" {
				return nil, false
			}
		}
		return kv, true
	}
}

// freePort asks the kernel for a free loopback port, for servers that
// cannot listen on port 0 and report it (cfssl, openssl). Another
// process could take it before the server binds; the server's failure to
// start then says so.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("bench: finding a free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// waitTCP waits until addr accepts connections or p exits.
func waitTCP(ctx context.Context, p *proc, addr string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return nil
		}
		select {
		case <-p.done:
			return fmt.Errorf("bench: %s exited before listening on %s (%v); see %s", p.name, addr, p.exitErr(), p.log.Name())
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return fmt.Errorf("bench: %s not listening on %s after %v; see %s", p.name, addr, timeout, p.log.Name())
}

// waitHTTP waits until url answers 200.
func waitHTTP(ctx context.Context, url string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	c := &http.Client{Timeout: time.Second}
	for time.Now().Before(deadline) {
		resp, err := c.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return fmt.Errorf("bench: %s did not answer 200 within %v", url, timeout)
}
