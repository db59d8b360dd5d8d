// Package ctlog runs real Certificate Transparency logs on loopback for
// tests: TesseraCT's POSIX log (github.com/transparency-dev/tesseract,
// cmd/tesseract/posix, v0.1.1), a static-ct-api log that takes
// submissions over the RFC 6962 API (add-chain, add-pre-chain,
// get-roots), answers with SCTs signed by a fresh ECDSA P-256 key and
// writes its tiles under a directory, where Entries reads them back.
// LogListJSON describes running logs in Chrome's v3 log list format, for
// the code that picks logs from such a list.
//
// It needs the posix binary (see Binary). When it is missing the test is
// skipped with a loud message naming the go install command, or fails
// when CI=true (STYLE.md §12); .ci/run installs it. Nothing leaves
// loopback.
//
// Only tests import it.
package ctlog

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"go/build"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/cryptobyte"

	"github.com/trustline/trustline/internal/testenv"
)

// InstallCommand installs the binary Start runs, where Binary finds it.
const InstallCommand = "go install github.com/transparency-dev/tesseract/cmd/tesseract/posix@v0.1.1"

// Options configure one log.
type Options struct {
	// Roots are the DER certificates the log accepts chains to; at least
	// one. get-roots serves them.
	Roots [][]byte
	// Name names the log: its submission URL ends in /Name, its origin
	// (the name in its checkpoints) is 127.0.0.1/Name and its log list
	// description is "Trustline test log Name". Letters, digits, '.',
	// '_' and '-'; "log" when empty. Names need not be unique, ports are.
	Name string
	// NotAfterStart and NotAfterLimit, both set or both zero, make the
	// log temporal (sharded): it accepts only (pre)certificates whose
	// NotAfter is in [NotAfterStart, NotAfterLimit) and refuses the others
	// with HTTP 400, and the log list gives that temporal_interval. Both
	// are cut to the second, as TesseraCT takes them.
	NotAfterStart, NotAfterLimit time.Time
	// Args are more flags for the binary (-reject_expired, say), after
	// those Start passes; a flag given twice takes its last value.
	Args []string
}

// Log is a running log.
type Log struct {
	// URL is the submission prefix, http://127.0.0.1:PORT/Name, without
	// a trailing slash: clients post to URL+"/ct/v1/add-pre-chain".
	URL string
	// Name and Origin are as Options.Name says; Origin is what the log
	// signs its checkpoints as.
	Name, Origin string
	// PublicKeyDER is the log's key, a DER SubjectPublicKeyInfo (ECDSA
	// P-256), which verifies its SCTs.
	PublicKeyDER []byte
	// LogID is the SHA-256 of PublicKeyDER, the log ID in its SCTs.
	LogID [32]byte
	// Dir is the log's storage directory: checkpoint, tile/<level>/...,
	// tile/data/... and issuer/<sha256 hex>, as c2sp.org/static-ct-api
	// lays them out.
	Dir string
	// NotAfterStart and NotAfterLimit are the temporal interval, cut to
	// the second, or zero.
	NotAfterStart, NotAfterLimit time.Time
	// Started is when Start saw the log answer; the log list says the
	// log has been usable since then.
	Started time.Time

	proc *process
}

// process is the running binary.
type process struct {
	cmd    *exec.Cmd
	exited chan struct{} // closed once cmd.Wait returned
	once   sync.Once
}

// Entry is one entry of a log, parsed from a data tile (a static-ct-api
// TileLeaf).
type Entry struct {
	// Index is the entry's position in the log, from 0; the leaf_index
	// extension of its SCT says the same (Entries checks).
	Index uint64
	// Timestamp is the SCT's, in milliseconds since the Unix epoch.
	Timestamp uint64
	// Precert says the entry is a precert_entry (add-pre-chain), not an
	// x509_entry (add-chain).
	Precert bool
	// Certificate is the certificate (x509_entry) or the precertificate's
	// TBSCertificate with the poison extension removed (precert_entry),
	// DER: what the SCT signs.
	Certificate []byte
	// IssuerKeyHash is, for a precert_entry, the SHA-256 of the issuer's
	// SubjectPublicKeyInfo.
	IssuerKeyHash [32]byte
	// PreCertificate is, for a precert_entry, the precertificate as
	// submitted, DER.
	PreCertificate []byte
	// ChainFingerprints are the SHA-256 fingerprints of the rest of the
	// chain the log verified, issuer first, root last; the log keeps
	// those certificates under Dir/issuer/<hex>.
	ChainFingerprints [][32]byte
}

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

// Binary returns the path of TesseraCT's posix binary: $TRUSTLINE_TESSERACT
// when set, else "posix" in the directory go install puts it in ($(go env
// GOBIN), or $(go env GOPATH)/bin when GOBIN is unset), else "posix" on
// PATH, looked up once per test binary. It fails the test under CI=true
// and skips it otherwise when there is none, naming InstallCommand.
func Binary(t testing.TB) string {
	t.Helper()
	binOnce.Do(func() { binPath, binErr = findBinary() })
	if binErr != nil {
		testenv.Missing(t, "TesseraCT's posix binary (CT LOG TESTS NOT RUN: "+InstallCommand+", or set TRUSTLINE_TESSERACT)", binErr)
	}
	return binPath
}

func findBinary() (string, error) {
	if p := os.Getenv("TRUSTLINE_TESSERACT"); p != "" {
		if _, err := exec.LookPath(p); err != nil {
			return "", fmt.Errorf("TRUSTLINE_TESSERACT: %w", err)
		}
		return p, nil
	}
	var tried []string
	for _, dir := range goInstallDirs() {
		p := filepath.Join(dir, "posix")
		if _, err := exec.LookPath(p); err == nil {
			return p, nil
		}
		tried = append(tried, p)
	}
	p, err := exec.LookPath("posix")
	if err == nil {
		return p, nil
	}
	return "", fmt.Errorf("no %s, and %v", strings.Join(tried, " nor "), err)
}

// goInstallDirs is where go install puts binaries: GOBIN, or the first
// GOPATH's bin. It asks go env, which knows go env -w settings, and falls
// back to the environment and Go's default.
func goInstallDirs() []string {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	gobin, gopath := os.Getenv("GOBIN"), build.Default.GOPATH
	if out, err := exec.CommandContext(ctx, "go", "env", "GOBIN", "GOPATH").Output(); err == nil {
		if lines := strings.Split(strings.TrimRight(string(out), "\n"), "\n"); len(lines) == 2 {
			gobin, gopath = lines[0], lines[1]
		}
	}
	var dirs []string
	if gobin != "" {
		dirs = append(dirs, gobin)
	}
	if first, _, _ := strings.Cut(gopath, string(filepath.ListSeparator)); first != "" {
		dirs = append(dirs, filepath.Join(first, "bin"))
	}
	return dirs
}

var nameRE = regexp.MustCompile(`^[A-Za-z0-9._-]+$`)

// Start runs a log on a free loopback port and waits until it answers
// get-roots. The log stops when the test ends (Stop); its directory goes
// with the test's temporary directory. What the log wrote on stderr is
// in the test's output if the test failed.
//
// Start makes the log quick rather than production-like: batches of at
// most 10 ms and a checkpoint every 100 ms (TesseraCT's minimum), so that
// an add-chain, which TesseraCT answers only once a published checkpoint
// includes the entry, takes about 0.2 s rather than 2.
func Start(t testing.TB, opts Options) *Log {
	t.Helper()
	bin := Binary(t)
	name := opts.Name
	if name == "" {
		name = "log"
	}
	if !nameRE.MatchString(name) {
		t.Fatalf("ctlog: log name %q: want letters, digits, '.', '_' and '-'", name)
	}
	if len(opts.Roots) == 0 {
		t.Fatal("ctlog: no roots")
	}
	if opts.NotAfterStart.IsZero() != opts.NotAfterLimit.IsZero() {
		t.Fatal("ctlog: NotAfterStart and NotAfterLimit go together")
	}
	l := &Log{
		Name:          name,
		Origin:        "127.0.0.1/" + name,
		NotAfterStart: opts.NotAfterStart.UTC().Truncate(time.Second),
		NotAfterLimit: opts.NotAfterLimit.UTC().Truncate(time.Second),
	}
	if !l.NotAfterStart.IsZero() && !l.NotAfterStart.Before(l.NotAfterLimit) {
		t.Fatalf("ctlog: NotAfterStart %v is not before NotAfterLimit %v", l.NotAfterStart, l.NotAfterLimit)
	}

	base := t.TempDir()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if l.PublicKeyDER, err = x509.MarshalPKIXPublicKey(key.Public()); err != nil {
		t.Fatal(err)
	}
	l.LogID = sha256.Sum256(l.PublicKeyDER)
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	keyPath := filepath.Join(base, "key.pem")
	writeFile(t, keyPath, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}))
	var roots bytes.Buffer
	for i, der := range opts.Roots {
		if _, err := x509.ParseCertificate(der); err != nil {
			t.Fatalf("ctlog: root %d: %v", i, err)
		}
		_ = pem.Encode(&roots, &pem.Block{Type: "CERTIFICATE", Bytes: der})
	}
	rootsPath := filepath.Join(base, "roots.pem")
	writeFile(t, rootsPath, roots.Bytes())

	// A port free a moment ago may be taken by the time the log listens:
	// try another then.
	for attempt := 1; ; attempt++ {
		addr := testenv.FreeAddr(t)
		l.URL = "http://" + addr + "/" + name
		l.Dir = filepath.Join(base, fmt.Sprintf("storage%d", attempt))
		logPath := filepath.Join(base, fmt.Sprintf("stderr%d.log", attempt))
		args := []string{
			"-http_endpoint=" + addr,
			"-storage_dir=" + l.Dir,
			"-private_key=" + keyPath,
			"-roots_pem_file=" + rootsPath,
			// TesseraCT v0.1.1 refuses an origin with a port (it parses
			// it as a URL without scheme), so the origin is the
			// submission prefix without its port.
			"-origin=" + l.Origin,
			"-path_prefix=/" + name,
			"-checkpoint_interval=100ms",
			"-batch_max_age=10ms",
			"-enable_publication_awaiter=true",
		}
		if !l.NotAfterStart.IsZero() {
			args = append(args,
				"-not_after_start="+l.NotAfterStart.Format(time.RFC3339),
				"-not_after_limit="+l.NotAfterLimit.Format(time.RFC3339))
		}
		args = append(args, opts.Args...)
		// TesseraCT v0.1.1 creates Dir/issuer on the first submissions,
		// and all but one of several concurrent ones fail (HTTP 500,
		// "mkdir .../issuer: file exists"): make it beforehand.
		if err := os.MkdirAll(filepath.Join(l.Dir, "issuer"), 0o755); err != nil {
			t.Fatal(err)
		}
		err := l.run(t, bin, args, logPath)
		if err == nil {
			return l
		}
		out, _ := os.ReadFile(logPath)
		if attempt < 3 && bytes.Contains(out, []byte("address already in use")) {
			continue
		}
		t.Fatalf("ctlog: log %s: %v\n%s %s\nstderr:\n%s", name, err, bin, strings.Join(args, " "), tail(out))
	}
}

// run starts the binary and waits until the log answers get-roots. On
// error the process is gone.
func (l *Log) run(t testing.TB, bin string, args []string, logPath string) error {
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = sysProcAttr()
	// Its OpenTelemetry metrics go nowhere (nothing listens on the
	// discard port) instead of to a collector that might run on this
	// machine, and its final export on exit gives up quickly.
	cmd.Env = append(os.Environ(),
		"OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:9",
		"OTEL_EXPORTER_OTLP_TIMEOUT=200",
		"OTEL_METRIC_EXPORT_INTERVAL=3600000",
	)
	if err := cmd.Start(); err != nil {
		return err
	}
	p := &process{cmd: cmd, exited: make(chan struct{})}
	l.proc = p
	go func() {
		_ = cmd.Wait()
		close(p.exited)
	}()

	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := client.Get(l.URL + "/ct/v1/get-roots")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
			err = fmt.Errorf("get-roots: %s", resp.Status)
		}
		select {
		case <-p.exited:
			return fmt.Errorf("exited (%v) before answering", cmd.ProcessState)
		default:
		}
		if time.Now().After(deadline) {
			l.Stop()
			return fmt.Errorf("not answering after 15 s: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	l.Started = time.Now().UTC().Truncate(time.Second)
	t.Cleanup(func() {
		l.Stop()
		if t.Failed() {
			out, _ := os.ReadFile(logPath)
			t.Logf("ctlog: log %s (%s, pid %d, %s) wrote on stderr:\n%s", l.Name, l.URL, cmd.Process.Pid, l.Dir, tail(out))
		}
	})
	return nil
}

// Stop stops the log now, by its process id: SIGTERM, then SIGKILL if it
// is still there after 3 seconds. A stopped log refuses connections; its
// directory stays until the test ends. Stop may be called more than once.
func (l *Log) Stop() {
	p := l.proc
	p.once.Do(func() {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.exited:
		case <-time.After(3 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.exited
		}
	})
}

// tail is the end of a log file, enough to say why a process failed.
func tail(b []byte) []byte {
	const max = 32 << 10
	if len(b) > max {
		return append([]byte("...\n"), b[len(b)-max:]...)
	}
	return b
}

func writeFile(t testing.TB, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// Size is the tree size of the log's published checkpoint: the number
// of entries a monitor sees.
func (l *Log) Size(t testing.TB) uint64 {
	t.Helper()
	n, err := l.size()
	if err != nil {
		t.Fatalf("ctlog: log %s: %v", l.Name, err)
	}
	return n
}

func (l *Log) size() (uint64, error) {
	cp, err := os.ReadFile(filepath.Join(l.Dir, "checkpoint"))
	if err != nil {
		return 0, err
	}
	// A checkpoint note: origin, tree size, root hash, a blank line and
	// signatures (c2sp.org/tlog-checkpoint).
	lines := strings.SplitN(string(cp), "\n", 3)
	if len(lines) < 3 || lines[0] != l.Origin {
		return 0, fmt.Errorf("checkpoint %q: not one of origin %s", cp, l.Origin)
	}
	n, err := strconv.ParseUint(lines[1], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("checkpoint %q: tree size: %v", cp, err)
	}
	return n, nil
}

// Entries returns the entries of the log's published checkpoint, read
// from the data tiles in Dir. An add-chain or add-pre-chain that
// returned an SCT has its entry there: TesseraCT answers only once a
// published checkpoint includes it (-enable_publication_awaiter, which
// Start sets). Entries fails the test on a tile that does not parse or
// an entry whose leaf_index is not its position.
func (l *Log) Entries(t testing.TB) []Entry {
	t.Helper()
	// The log garbage-collects a partial tile once the full one is
	// published; a size read just before that may name a partial tile
	// gone by the time it is read. Read again then.
	var err error
	for range 10 {
		var size uint64
		if size, err = l.size(); err != nil {
			break
		}
		var entries []Entry
		if entries, err = l.readEntries(size); err == nil {
			return entries
		}
		if !errors.Is(err, fs.ErrNotExist) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("ctlog: log %s: %v", l.Name, err)
	return nil
}

// WaitForEntries waits up to 10 seconds for the log's published
// checkpoint to hold at least n entries, then returns them all as
// Entries does; it fails the test if they do not come. It is for
// submissions whose answer the test did not wait for.
func (l *Log) WaitForEntries(t testing.TB, n int) []Entry {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		size, err := l.size()
		if err == nil && size >= uint64(n) {
			return l.Entries(t)
		}
		if time.Now().After(deadline) {
			t.Fatalf("ctlog: log %s: %d entries after 10 s, want %d (%v)", l.Name, size, n, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// tileWidth is the number of entries in a full data tile.
const tileWidth = 256

// readEntries reads the first size entries from the data tiles: the full
// tile where there is one, else the partial tile of the right width.
func (l *Log) readEntries(size uint64) ([]Entry, error) {
	entries := make([]Entry, 0, size)
	for tile := uint64(0); tile*tileWidth < size; tile++ {
		want := min(size-tile*tileWidth, tileWidth)
		path := filepath.Join(l.Dir, "tile", "data", tilePath(tile))
		data, err := os.ReadFile(path)
		if errors.Is(err, fs.ErrNotExist) && want < tileWidth {
			path = filepath.Join(path+".p", strconv.FormatUint(want, 10))
			data, err = os.ReadFile(path)
		}
		if err != nil {
			return nil, err
		}
		got, err := parseTile(data, tile*tileWidth)
		if err != nil {
			return nil, fmt.Errorf("%s: %v", path, err)
		}
		if uint64(len(got)) < want {
			return nil, fmt.Errorf("%s: %d entries, want at least %d", path, len(got), want)
		}
		entries = append(entries, got[:want]...)
	}
	return entries, nil
}

// tilePath is the N part of a tile's path (c2sp.org/tlog-tiles): groups
// of three digits, all but the last prefixed with x: 1234067 is
// x001/x234/067.
func tilePath(n uint64) string {
	p := fmt.Sprintf("%03d", n%1000)
	for n /= 1000; n > 0; n /= 1000 {
		p = fmt.Sprintf("x%03d/%s", n%1000, p)
	}
	return p
}

// parseTile parses a data tile, a sequence of TileLeaf structures
// (c2sp.org/static-ct-api), the first of them entry first:
//
//	struct {
//	    TimestampedEntry timestamped_entry;
//	    select (entry_type) {
//	        case x509_entry: Empty;
//	        case precert_entry: ASN.1Cert pre_certificate;
//	    };
//	    Fingerprint certificate_chain<0..2^16-1>;
//	} TileLeaf;
//
// where TimestampedEntry is RFC 6962's (timestamp, entry_type, then the
// certificate<1..2^24-1>, or issuer_key_hash[32] and
// tbs_certificate<1..2^24-1>, then extensions<0..2^16-1>) and its
// extensions hold the leaf_index extension (type 0, a 40-bit index).
func parseTile(data []byte, first uint64) ([]Entry, error) {
	var entries []Entry
	s := cryptobyte.String(data)
	for i := first; !s.Empty(); i++ {
		e := Entry{Index: i}
		var entryType uint16
		var cert, exts, pre, chain cryptobyte.String
		if !s.ReadUint64(&e.Timestamp) || !s.ReadUint16(&entryType) {
			return nil, fmt.Errorf("entry %d: truncated", i)
		}
		switch entryType {
		case 0: // x509_entry
			if !s.ReadUint24LengthPrefixed(&cert) || !s.ReadUint16LengthPrefixed(&exts) ||
				!s.ReadUint16LengthPrefixed(&chain) {
				return nil, fmt.Errorf("entry %d: truncated x509_entry", i)
			}
		case 1: // precert_entry
			e.Precert = true
			if !s.CopyBytes(e.IssuerKeyHash[:]) || !s.ReadUint24LengthPrefixed(&cert) ||
				!s.ReadUint16LengthPrefixed(&exts) || !s.ReadUint24LengthPrefixed(&pre) ||
				!s.ReadUint16LengthPrefixed(&chain) {
				return nil, fmt.Errorf("entry %d: truncated precert_entry", i)
			}
			e.PreCertificate = slices.Clone([]byte(pre))
		default:
			return nil, fmt.Errorf("entry %d: entry type %d", i, entryType)
		}
		e.Certificate = slices.Clone([]byte(cert))
		idx, err := leafIndex(exts)
		if err != nil {
			return nil, fmt.Errorf("entry %d: %v", i, err)
		}
		if idx != i {
			return nil, fmt.Errorf("entry %d: leaf_index extension says %d", i, idx)
		}
		for !chain.Empty() {
			var fp [32]byte
			if !chain.CopyBytes(fp[:]) {
				return nil, fmt.Errorf("entry %d: chain fingerprints of %d bytes", i, len(chain))
			}
			e.ChainFingerprints = append(e.ChainFingerprints, fp)
		}
		entries = append(entries, e)
	}
	return entries, nil
}

// leafIndex finds the leaf_index extension (static-ct-api: extension
// type 0, extension_data a big-endian uint40) among CTExtensions.
func leafIndex(exts cryptobyte.String) (uint64, error) {
	for !exts.Empty() {
		var typ uint8
		var data cryptobyte.String
		if !exts.ReadUint8(&typ) || !exts.ReadUint16LengthPrefixed(&data) {
			return 0, errors.New("malformed extensions")
		}
		if typ != 0 {
			continue
		}
		var b []byte
		if !data.ReadBytes(&b, 5) || !data.Empty() {
			return 0, errors.New("malformed leaf_index extension")
		}
		var idx uint64
		for _, c := range b {
			idx = idx<<8 | uint64(c)
		}
		return idx, nil
	}
	return 0, errors.New("no leaf_index extension")
}

// LogListJSON returns a CT log list in the v3 format Chrome publishes
// (https://www.gstatic.com/ct/log_list/v3/log_list_schema.json, which
// github.com/google/certificate-transparency-go/loglist3 parses) listing
// the logs as tiled_logs under their operators, operators by name and
// each operator's logs in the order given. Every log is usable since it
// started, with a maximum merge delay of a day, and gives its temporal
// interval if it has one.
//
// submission_url and monitoring_url are the log's URL with a trailing
// slash, as in Chrome's list: the client must not double it. The posix
// binary serves no monitoring API; a monitor reads Dir.
func LogListJSON(ops map[string][]*Log) []byte {
	type state struct {
		Timestamp time.Time `json:"timestamp"`
	}
	type interval struct {
		StartInclusive time.Time `json:"start_inclusive"`
		EndExclusive   time.Time `json:"end_exclusive"`
	}
	type tiledLog struct {
		Description      string           `json:"description"`
		LogID            []byte           `json:"log_id"`
		Key              []byte           `json:"key"`
		SubmissionURL    string           `json:"submission_url"`
		MonitoringURL    string           `json:"monitoring_url"`
		MMD              int              `json:"mmd"`
		State            map[string]state `json:"state"`
		TemporalInterval *interval        `json:"temporal_interval,omitempty"`
	}
	type operator struct {
		Name      string     `json:"name"`
		Email     []string   `json:"email"`
		Logs      []struct{} `json:"logs"`
		TiledLogs []tiledLog `json:"tiled_logs"`
	}
	list := struct {
		Version          string     `json:"version"`
		LogListTimestamp time.Time  `json:"log_list_timestamp"`
		Operators        []operator `json:"operators"`
	}{Version: "1.0", Operators: []operator{}}

	names := make([]string, 0, len(ops))
	for n := range ops {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		op := operator{
			Name:      n,
			Email:     []string{"ct-" + emailPart(n) + "@example.test"},
			Logs:      []struct{}{},
			TiledLogs: []tiledLog{},
		}
		for _, l := range ops[n] {
			tl := tiledLog{
				Description:   "Trustline test log " + l.Name,
				LogID:         l.LogID[:],
				Key:           l.PublicKeyDER,
				SubmissionURL: l.URL + "/",
				MonitoringURL: l.URL + "/",
				MMD:           86400,
				State:         map[string]state{"usable": {l.Started}},
			}
			if !l.NotAfterStart.IsZero() {
				tl.TemporalInterval = &interval{l.NotAfterStart, l.NotAfterLimit}
			}
			if l.Started.After(list.LogListTimestamp) {
				list.LogListTimestamp = l.Started
			}
			op.TiledLogs = append(op.TiledLogs, tl)
		}
		list.Operators = append(list.Operators, op)
	}
	b, err := json.MarshalIndent(list, "", "  ")
	if err != nil {
		panic(err) // nothing in list fails to marshal
	}
	return b
}

// emailPart is an operator name made fit for an email address's local
// part: lower-case letters and digits, the rest dashes.
func emailPart(name string) string {
	b := []byte(strings.ToLower(name))
	for i, c := range b {
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') {
			b[i] = '-'
		}
	}
	if len(b) == 0 {
		return "operator"
	}
	return string(b)
}
