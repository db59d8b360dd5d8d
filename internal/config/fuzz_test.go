package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// Configuration files are read at start-up from wherever the operator
// points; a mistyped or damaged one must give a one-line error naming the
// file, never a panic, and whatever loads must survive Validate, whose
// every line names its key. Inputs are capped at maxFuzzConfig: beyond
// that the fuzzer only measures YAML's speed (MaxFileSize itself has
// TestLoadRejectsHugeFile).
const maxFuzzConfig = 64 << 10

// fuzzLoad writes in to a file in dir, loads it with load and validates
// what loads.
func fuzzLoad[C interface{ Validate() error }](t *testing.T, dir string, in []byte, load func(string) (C, error)) {
	if len(in) > maxFuzzConfig {
		return
	}
	path := filepath.Join(dir, "trustline.yaml")
	if err := os.WriteFile(path, in, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := load(path)
	if err != nil {
		if msg := err.Error(); !strings.HasPrefix(msg, "config: ") || strings.Contains(msg, "\n") {
			t.Fatalf("load error %q: want one line starting config:", msg)
		}
		return
	}
	if err := cfg.Validate(); err != nil {
		for _, line := range strings.Split(err.Error(), "\n") {
			if !strings.HasPrefix(line, "config: ") {
				t.Fatalf("Validate line %q does not start config: <key>", line)
			}
		}
	}
}

// seedYAML adds the YAML encoding of each value, and inputs that stress
// the decoder whatever the struct: aliases, tags, nesting, odd scalars.
func seedYAML(f *testing.F, values ...any) {
	for _, v := range values {
		b, err := yaml.Marshal(v)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, s := range []string{
		"", "---\n", "~\n", "[]\n", "- a\n", "x\n", "{}\n", "a: &a [1, 2]\nb: *a\n", "log: !!binary aGVsbG8=\n",
		"shutdown_timeout: -1h\n", "shutdown_timeout: 9999999999999999999h\n", "crl_shards: 1e400\n", "crl_shards: 0x7fffffffffffffff\n",
		"log_level: [a, {b: c}]\n", "hsm: {sessions: -1, pin: \"\\0\"}\n", "? [a]\n: b\n", "<<: {log: json}\n",
		"a: " + strings.Repeat("[", 5000) + strings.Repeat("]", 5000) + "\n",
		"a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: [*c, *c, *c, *c, *c, *c, *c, *c, *c]\n",
		"log: json\n---\nlog: text\n", "\xef\xbb\xbflog: json\n", "log: \"\xff\"\n", "\tlog: json\n",
	} {
		f.Add([]byte(s))
	}
}

func FuzzLoadDev(f *testing.F) {
	dev := DefaultDev()
	dev.Validation.Resolver = "127.0.0.1:53"
	seedYAML(f, DefaultDev(), dev)
	f.Add([]byte("data_dir: /srv/tl\napi: 127.0.0.1:9000\ncrl_period: 45s\nhsm:\n  sessions: 8\n"))
	f.Add([]byte("api: \"[::1]:http\"\ndebug_addr: 0.0.0.0:6060\nsmtp: {addr: nowhere}\ncertificates: {weak_key_files: [a, /b]}\n"))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, in []byte) { fuzzLoad(t, dir, in, LoadDev) })
}

func FuzzLoadPlant(f *testing.F) {
	seedYAML(f, DefaultPlant(), validPlant())
	if b, err := os.ReadFile(filepath.Join("..", "..", "deploy", "trustline.yaml.example")); err == nil {
		f.Add(b)
	}
	f.Add([]byte("keys_dir: keys\nmail_dir: mail\nhsm:\n  pin_file: pin\n"))
	f.Add([]byte("postgres: \"postgres://%zz\"\npublic: {ocsp: \"http://[::1\", crl: \"http://crl.example.com/?a\"}\ndev_urls: true\n"))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, in []byte) { fuzzLoad(t, dir, in, LoadPlant) })
}

func FuzzLoadPerspective(f *testing.F) {
	seedYAML(f, Perspective{Name: "p1", RIR: "RIPE", KeyFile: "p1.key", Clients: []string{"MFkw"}, Resolver: "127.0.0.1:53"})
	f.Add([]byte("name: p1\nrir: RIPE\nkey_file: p1.key\nclients: [MFkw]\nresolver: 127.0.0.1:53\n"))
	f.Add([]byte("name: p1\nunknown: 1\n"))
	f.Add([]byte("ops_listen: \"9450\"\ncaa_identities: [\"a b\", \"\"]\nresolver: nowhere\n"))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, in []byte) { fuzzLoad(t, dir, in, LoadPerspective) })
}
