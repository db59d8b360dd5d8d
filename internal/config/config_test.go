package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func write(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "trustline.yaml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestDefaultsValidate(t *testing.T) {
	if err := DefaultDev().Validate(); err != nil {
		t.Fatalf("defaults do not validate: %v", err)
	}
}

func TestLoadOverridesDefaults(t *testing.T) {
	got, err := LoadDev(write(t, "data_dir: /srv/tl\napi: 127.0.0.1:9000\ncrl_period: 45s\nhsm:\n  sessions: 8\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := DefaultDev()
	want.DataDir, want.API, want.CRLPeriod, want.HSM.Sessions = "/srv/tl", "127.0.0.1:9000", 45*time.Second, 8
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("LoadDev (-want +got):\n%s", d)
	}
}

func TestLoadEmptyFileKeepsDefaults(t *testing.T) {
	got, err := LoadDev(write(t, ""))
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(DefaultDev(), got); d != "" {
		t.Errorf("(-want +got):\n%s", d)
	}
}

func TestLoadRejects(t *testing.T) {
	tests := []struct {
		name, body, want string
	}{
		{"unknown key", "data_dri: x\n", "data_dri"},
		{"wrong type", "crl_shards: many\n", "line 1"},
		{"broken yaml", "api: [\n", "trustline.yaml"},
		{"two documents", "api: 127.0.0.1:1\n---\napi: 127.0.0.1:2\n", "more than one YAML document"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := LoadDev(write(t, tt.body))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("LoadDev error = %v, want mention of %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error spans lines: %q", err)
			}
		})
	}
	if _, err := LoadDev(filepath.Join(t.TempDir(), "missing.yaml")); err == nil {
		t.Error("missing file accepted")
	}
}

func TestLoadRejectsHugeFile(t *testing.T) {
	_, err := LoadDev(write(t, "# "+strings.Repeat("x", MaxFileSize)+"\n"))
	if err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Fatalf("err = %v", err)
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*Dev)
		want   string
	}{
		{"no data dir", func(c *Dev) { c.DataDir = "" }, "data_dir"},
		{"bad api addr", func(c *Dev) { c.API = "8080" }, "api:"},
		{"hostname listen", func(c *Dev) { c.OCSP = "example.com:80" }, "ocsp:"},
		{"same addr twice", func(c *Dev) { c.CRL = c.API }, "also the api address"},
		{"postgres scheme", func(c *Dev) { c.Postgres = "mysql://x" }, "postgres:"},
		{"redis scheme", func(c *Dev) { c.Redis = "http://x" }, "redis:"},
		{"hsm without token", func(c *Dev) { c.HSM.Module = "/lib/x.so" }, "hsm.token"},
		{"pin without module", func(c *Dev) { c.HSM.PIN = "1234" }, "hsm.module"},
		{"crl period too long", func(c *Dev) { c.CRLPeriod = 2 * time.Minute }, "crl_period"},
		{"shards", func(c *Dev) { c.CRLShards = 0 }, "crl_shards"},
		{"memory cache too small", func(c *Dev) { c.MemoryCacheMB = 3 }, "memory_cache_mb"},
		{"debug addr not loopback", func(c *Dev) { c.DebugAddr = "0.0.0.0:6060" }, "loopback address only"},
		{"debug addr malformed", func(c *Dev) { c.DebugAddr = "6060" }, "debug_addr:"},
		{"unknown hash", func(c *Dev) { c.Presign.HashAlgs = []string{"md5"} }, `presign.hash_algs: "md5"`},
		{"hash twice", func(c *Dev) { c.Presign.HashAlgs = []string{"sha1", "sha1"} }, "listed twice"},
		{"no hash", func(c *Dev) { c.Presign.HashAlgs = []string{} }, "at least one"},
		{"negative workers", func(c *Dev) { c.Presign.Workers = -1 }, "presign.workers"},
		{"short lease", func(c *Dev) { c.Presign.Lease = time.Second }, "presign.lease"},
		{"log format", func(c *Dev) { c.Log = "xml" }, "log:"},
		{"caa without resolver", func(c *Dev) { c.Validation.CAAIdentities = []string{"trustline.test"} }, "validation.caa_identities"},
		{"caa identity malformed", func(c *Dev) {
			c.Validation.Resolver, c.Validation.CAAIdentities = "127.0.0.1:53", []string{"trustline.test; x=y"}
		}, "validation.caa_identities[0]"},
		{"resolver malformed", func(c *Dev) { c.Validation.Resolver = "127.0.0.1" }, "validation.resolver"},
		{"trusted proxy not a network", func(c *Dev) { c.TrustedProxies = []string{"lb.example"} }, "trusted_proxies"},
		{"acme profile named twice", func(c *Dev) { c.ACME.Profiles = []ACMEProfile{{Name: "a"}, {Name: "a"}} }, "acme.profiles[1].name"},
		{"acme profile of an hour", func(c *Dev) { c.ACME.Profiles = []ACMEProfile{{Name: "a", Validity: time.Hour}} }, "acme.profiles[0].validity"},
		{"acme base url", func(c *Dev) { c.ACME.BaseURL = "https://acme.example/" }, "acme.base_url"},
		{"acme terms", func(c *Dev) { c.ACME.TermsOfService = "tos.txt" }, "acme.terms_of_service"},
		{"test port without private addresses", func(c *Dev) { c.Validation.TestHTTPPort = 5002 }, "validation.test_http_port"},
		{"test port out of range", func(c *Dev) {
			c.Validation.AllowPrivateAddresses, c.Validation.TestHTTPSPort = true, 70000
		}, "validation.test_https_port"},
		{"perspectives without resolver", func(c *Dev) { c.Validation.Perspectives = onePerspective() }, "need validation.resolver"},
		{"perspectives without key", func(c *Dev) {
			c.Validation.Resolver, c.Validation.Perspectives = "127.0.0.1:53", onePerspective()
			c.Validation.Perspectives.KeyFile = ""
		}, "validation.perspectives.key_file"},
		{"perspective over http", func(c *Dev) {
			c.Validation.Resolver, c.Validation.Perspectives = "127.0.0.1:53", onePerspective()
			c.Validation.Perspectives.Remotes[0].URL = "http://p1.example:8450"
		}, "validation.perspectives.remotes[0].url"},
		{"perspective policy", func(c *Dev) {
			c.Validation.Resolver, c.Validation.Perspectives = "127.0.0.1:53", onePerspective()
			c.Validation.Perspectives.Policy = "lenient"
		}, "validation.perspectives.policy"},
		{"perspectives named twice", func(c *Dev) {
			c.Validation.Resolver, c.Validation.Perspectives = "127.0.0.1:53", onePerspective()
			c.Validation.Perspectives.Remotes = append(c.Validation.Perspectives.Remotes, c.Validation.Perspectives.Remotes[0])
		}, "validation.perspectives.remotes[1].name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := DefaultDev()
			tt.mutate(&c)
			err := c.Validate()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Validate() = %v, want mention of %q", err, tt.want)
			}
		})
	}
}

func onePerspective() Perspectives {
	return Perspectives{KeyFile: "primary.key", Remotes: []RemotePerspective{{Name: "p1", URL: "https://p1.example:8450", RIR: "RIPE", PublicKey: "MFkw"}}}
}

func TestPerspectiveRole(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "p.yaml")
	if err := os.WriteFile(path, []byte("name: p1\nrir: RIPE\nkey_file: p1.key\nclients: [MFkw]\nresolver: 127.0.0.1:53\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := LoadPerspective(path)
	if err != nil || c.Validate() != nil || c.KeyFile != filepath.Join(dir, "p1.key") || c.Log != "json" {
		t.Fatalf("LoadPerspective = %+v, %v; Validate = %v", c, err, c.Validate())
	}
	err = Perspective{Log: "json", LogLevel: "info", Resolver: "nowhere", OpsListen: "9450", CAAIdentities: []string{"a b"}}.Validate()
	for _, want := range []string{"name:", "key_file:", "clients:", "resolver:", "ops_listen:", "caa_identities[0]:"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate() = %v, want mention of %q", err, want)
		}
	}
	if err := os.WriteFile(path, []byte("name: p1\nunknown: 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadPerspective(path); err == nil {
		t.Error("an unknown key was accepted")
	}
}
