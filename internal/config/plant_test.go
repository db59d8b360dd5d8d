package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

func validPlant() Plant {
	c := DefaultPlant()
	c.Postgres = "postgres://postgres@db.example.com/trustline"
	c.Redis = "redis://redis.example.com:6379"
	c.MailDir = "/var/mail/trustline"
	c.Public = PublicURLs{OCSP: "http://ocsp.example.com/", CRL: "http://crl.example.com"}
	return c
}

func TestPlantValidate(t *testing.T) {
	if err := validPlant().Validate(); err != nil {
		t.Fatalf("a valid plant: %v", err)
	}
	tests := []struct {
		name string
		edit func(*Plant)
		want string
	}{
		{"no postgres", func(c *Plant) { c.Postgres = "" }, "postgres"},
		{"no redis", func(c *Plant) { c.Redis = "" }, "set redis or redis_cluster"},
		{"sha1 only", func(c *Plant) { c.Presign.HashAlgs = []string{"sha1"} }, "presign.hash_algs: [sha1]: a plant pre-signs sha1 and sha256"},
		{"bad lease", func(c *Plant) { c.Presign.Lease = 0 }, "presign.lease"},
		{"both redis", func(c *Plant) { c.RedisCluster = "redis://a:1?addr=b:2" }, "not both"},
		{"https OCSP", func(c *Plant) { c.Public.OCSP = "https://ocsp.example.com/" }, "plain http"},
		{"IP in CRL URL", func(c *Plant) { c.Public.CRL = "http://192.0.2.1" }, "IP address"},
		{"internal name", func(c *Plant) { c.Public.OCSP = "http://ocsp/" }, "internal name"},
		{".internal name", func(c *Plant) { c.Public.CRL = "http://crl.corp.internal" }, "internal name"},
		{"OCSP without slash", func(c *Plant) { c.Public.OCSP = "http://ocsp.example.com/x" }, "must end in /"},
		{"CRL with slash", func(c *Plant) { c.Public.CRL = "http://crl.example.com/" }, "must not end in /"},
		{"CRL with query", func(c *Plant) { c.Public.CRL = "http://crl.example.com/?a=b" }, "without query"},
		{"no mail", func(c *Plant) { c.MailDir = "" }, "mail_dir"},
		{"crl period", func(c *Plant) { c.CRL.Period = 8 * 24 * 3600e9 }, "crl.period"},
		{"crl validity", func(c *Plant) { c.CRL.Validity = 11 * 24 * 3600e9 }, "crl.validity"},
		{"half tls", func(c *Plant) { c.TLS.CertFile = "a.pem" }, "tls"},
		{"prefix braces", func(c *Plant) { c.RedisPrefix = "{x}" }, "redis_prefix"},
		{"probe interval", func(c *Plant) {
			c.HSM = HSM{Module: "/lib/p11.so", Token: "t", Sessions: 4, ProbeInterval: 2 * time.Minute}
		}, "hsm.probe_interval"},
		{"watch URL", func(c *Plant) { c.Watch.Responders = []string{"ftp://r/"} }, "is not an http(s) URL"},
		{"watch interval", func(c *Plant) { c.Watch.Interval = time.Millisecond }, "watch.interval"},
		{"ct policy", func(c *Plant) { c.CT = CT{LogList: "l.json", MinSCTs: 1, MinOperators: 2} }, "min_operators"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := validPlant()
			tt.edit(&c)
			err := c.Validate()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Validate = %v, want an error containing %q", err, tt.want)
			}
		})
	}
	// dev_urls lifts the DNS-name rule, not the shape rules.
	c := validPlant()
	c.DevURLs = true
	c.Public = PublicURLs{OCSP: "http://127.0.0.1:8081/", CRL: "http://127.0.0.1:8082/crl"}
	if err := c.Validate(); err != nil {
		t.Errorf("dev_urls with loopback URLs: %v", err)
	}
}

func TestLoadPlantResolvesPathsAndReadsNoPIN(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "trustline.yaml")
	os.WriteFile(p, []byte("keys_dir: keys\nmail_dir: mail\nhsm:\n  pin_file: pin\n"), 0o600)
	c, err := LoadPlant(p)
	if err != nil {
		t.Fatal(err)
	}
	if c.KeysDir != filepath.Join(dir, "keys") || c.MailDir != filepath.Join(dir, "mail") || c.HSM.PINFile != filepath.Join(dir, "pin") {
		t.Errorf("paths not resolved against the file: %+v", c)
	}
	if c.HSM.PIN != "" {
		t.Error("LoadPlant read a PIN")
	}
	if err := c.ReadPIN(); err == nil {
		t.Error("ReadPIN of a missing file succeeded")
	}
	os.WriteFile(filepath.Join(dir, "pin"), []byte("1234\n"), 0o600)
	if err := c.ReadPIN(); err != nil || c.HSM.PIN != "1234" {
		t.Errorf("ReadPIN = %q, %v", c.HSM.PIN, err)
	}
}

// TestPlantACMEProfiles: a plant configuration without acme.profiles
// offers the default profiles, one written by trustline init (a marshalled
// default) lists them, and [] offers none.
func TestPlantACMEProfiles(t *testing.T) {
	dir := t.TempDir()
	load := func(body string) []ACMEProfile {
		t.Helper()
		p := filepath.Join(dir, "trustline.yaml")
		os.WriteFile(p, []byte(body), 0o600)
		c, err := LoadPlant(p)
		if err != nil {
			t.Fatal(err)
		}
		return c.ACME.Profiles
	}
	if got := load("mail_dir: mail\n"); len(got) != 2 || got[0].Name != "classic" || got[1].Name != "shortlived" {
		t.Errorf("unset: %+v, want the defaults", got)
	}
	written, err := yaml.Marshal(DefaultPlant())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(written), "shortlived") {
		t.Errorf("a written default configuration does not list the profiles:\n%s", written)
	}
	if got := load("acme:\n  profiles: []\n"); len(got) != 0 {
		t.Errorf("profiles: [] gave %+v, want none", got)
	}
	if got := load("acme:\n  profiles:\n    - {name: only, description: x}\n"); len(got) != 1 || got[0].Name != "only" {
		t.Errorf("one profile: %+v", got)
	}
}
