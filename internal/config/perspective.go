package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"strings"
	"time"
)

// Perspectives are the remote network perspectives the primary (the api
// role, or dev) asks to corroborate every dns-txt and http-token
// validation and every CAA check (BR 3.2.2.9).
type Perspectives struct {
	// KeyFile is the primary's key (ECDSA P-256, PKCS#8 PEM, mode 0600),
	// presented to the perspectives as its TLS client certificate;
	// `trustline perspective keygen` writes one. Relative paths are
	// relative to the configuration file.
	KeyFile string `yaml:"key_file"`
	// Policy is "br" (the default: BR 3.2.2.9's quorum table, minimum
	// number of perspectives and RIR spread, as dated) or "quorum-only"
	// (the table alone, for test plants whose perspectives share a
	// machine).
	Policy string `yaml:"policy"`
	// Timeout bounds one perspective's answer; 0 means 20 s.
	Timeout time.Duration `yaml:"timeout"`
	// Remotes are asked, all of them, in parallel.
	Remotes []RemotePerspective `yaml:"remotes"`
}

// RemotePerspective names one perspective.
type RemotePerspective struct {
	Name string `yaml:"name"`
	// URL is https://host:port of its `trustline perspective` listener.
	URL string `yaml:"url"`
	// RIR is the Regional Internet Registry whose service region it and
	// its resolver are in (ARIN, RIPE, APNIC, LACNIC, AFRINIC).
	RIR string `yaml:"rir"`
	// PublicKey is its key as `trustline perspective keygen` prints it.
	PublicKey string `yaml:"public_key"`
}

// On reports whether any perspective is configured.
func (p Perspectives) On() bool { return len(p.Remotes) > 0 }

func (p Perspectives) check(bad badFunc) {
	if !p.On() {
		return
	}
	if p.KeyFile == "" {
		bad("validation.perspectives.key_file", "the primary's key is required with remotes")
	}
	switch p.Policy {
	case "", "br", "quorum-only":
	default:
		bad("validation.perspectives.policy", "%q: want br or quorum-only", p.Policy)
	}
	if p.Timeout < 0 || p.Timeout > 2*time.Minute {
		bad("validation.perspectives.timeout", "%s out of range [0, 2 minutes]", p.Timeout)
	}
	names := map[string]bool{}
	for i, r := range p.Remotes {
		key := fmt.Sprintf("validation.perspectives.remotes[%d]", i)
		if r.Name == "" || names[r.Name] {
			bad(key+".name", "%q: each remote needs a unique name", r.Name)
		}
		names[r.Name] = true
		if u, err := url.Parse(r.URL); err != nil || u.Scheme != "https" || u.Host == "" || (u.Path != "" && u.Path != "/") {
			bad(key+".url", "%q: want https://host:port", r.URL)
		}
		if r.PublicKey == "" {
			bad(key+".public_key", "required: the perspective's key, as `trustline perspective keygen` prints it")
		}
	}
}

// resolve makes KeyFile relative to base.
func (p *Perspectives) resolve(base string) {
	if p.KeyFile != "" && !filepath.IsAbs(p.KeyFile) {
		p.KeyFile = filepath.Join(base, p.KeyFile)
	}
}

// Perspective is the configuration of a `trustline perspective` role: a
// remote network perspective on its own machine, in its own network.
type Perspective struct {
	// Name identifies it in evidence; RIR is its registry's service region.
	Name string `yaml:"name"`
	RIR  string `yaml:"rir"`
	// KeyFile is its key (`trustline perspective keygen`); relative paths
	// are relative to the configuration file.
	KeyFile string `yaml:"key_file"`
	// Clients are the public keys of the primaries (api roles) that may
	// ask it; no one else can.
	Clients []string `yaml:"clients"`
	// Resolver is its own recursive DNS resolver, host:port, in its own
	// RIR region (BR 3.2.2.9: not a cache shared with other perspectives).
	Resolver string `yaml:"resolver"`
	// CAAIdentities are the CA's issuer domain names, as the api role's
	// validation.caa_identities; empty: CAA checks are not offered.
	CAAIdentities []string `yaml:"caa_identities"`
	// AllowPrivateAddresses lets http-token reach loopback and private
	// addresses: for local testing only.
	AllowPrivateAddresses bool `yaml:"allow_private_addresses"`
	// OpsListen, when set, serves /healthz and /metrics over plain HTTP
	// there (the checks themselves need the client certificate).
	OpsListen string `yaml:"ops_listen"`
	Log       string `yaml:"log"`
	LogLevel  string `yaml:"log_level"`
}

// LoadPerspective reads path strictly over the defaults.
func LoadPerspective(path string) (Perspective, error) {
	cfg := Perspective{Log: "json", LogLevel: "info"}
	if err := decodeFile(path, &cfg); err != nil {
		return Perspective{}, err
	}
	if cfg.KeyFile != "" && !filepath.IsAbs(cfg.KeyFile) {
		cfg.KeyFile = filepath.Join(filepath.Dir(path), cfg.KeyFile)
	}
	return cfg, nil
}

// Validate checks every field and returns all problems at once.
func (c Perspective) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("config: %s: %s", key, fmt.Sprintf(format, args...)))
	}
	if c.Name == "" {
		bad("name", "required: it names this perspective in the evidence")
	}
	if c.KeyFile == "" {
		bad("key_file", "required (trustline perspective keygen --out FILE)")
	}
	if len(c.Clients) == 0 {
		bad("clients", "at least one primary's public key is required")
	}
	if _, _, err := net.SplitHostPort(c.Resolver); err != nil {
		bad("resolver", "%q: want host:port of this perspective's own resolver", c.Resolver)
	}
	for i, id := range c.CAAIdentities {
		if strings.TrimSpace(id) == "" || strings.ContainsAny(id, " \t;\"") {
			bad(fmt.Sprintf("caa_identities[%d]", i), "%q is not a domain name", id)
		}
	}
	if c.OpsListen != "" {
		if _, _, err := net.SplitHostPort(c.OpsListen); err != nil {
			bad("ops_listen", "%q is not host:port", c.OpsListen)
		}
	}
	checkLog(c.Log, c.LogLevel, bad)
	return errors.Join(errs...)
}
