package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/trustline/trustline/internal/testenv"
	"github.com/trustline/trustline/internal/testfix"
	"github.com/trustline/trustline/internal/testfix/dnstest"
)

// keygen runs `trustline perspective keygen` and returns the public key it
// prints.
func keygen(t *testing.T, path string) string {
	t.Helper()
	out, err := exec.Command(binary, "perspective", "keygen", "--out", path).CombinedOutput()
	if err != nil {
		t.Fatalf("perspective keygen: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	return lines[len(lines)-1]
}

// perspectiveProc is one `trustline perspective` process with its own
// resolver (a DNS server of its own).
type perspectiveProc struct {
	name, rir, url, pub string
	zone                *dnstest.Zone
	cmd                 *exec.Cmd
	logs                *testfix.Buffer
}

func startPerspective(t *testing.T, dir, name, rir, primaryPub string) *perspectiveProc {
	t.Helper()
	p := &perspectiveProc{name: name, rir: rir, zone: dnstest.Start(t), logs: &testfix.Buffer{}}
	p.pub = keygen(t, filepath.Join(dir, name+".key"))
	ops, listen := testenv.FreeAddr(t), testenv.FreeAddr(t)
	cfg := filepath.Join(dir, name+".yaml")
	body := fmt.Sprintf("name: %s\nrir: %s\nkey_file: %s.key\nclients: [%q]\nresolver: %q\ncaa_identities: [trustline.test]\nops_listen: %q\nlog: text\n",
		name, rir, name, primaryPub, p.zone.Addr, ops)
	if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	p.url = "https://" + listen
	p.cmd = exec.Command(binary, "perspective", "--config", cfg, "--listen", listen)
	p.cmd.Stdout, p.cmd.Stderr = p.logs, p.logs
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		p.cmd.Process.Signal(syscall.SIGTERM)
		p.cmd.Wait()
		if t.Failed() {
			t.Logf("--- perspective %s logs:\n%s", name, tailLines(p.logs.String(), 20))
		}
	})
	waitFor(t, 30*time.Second, "perspective "+name+" healthy", func() bool {
		resp, err := http.Get("http://" + ops + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	return p
}

// TestPerspectives: five `trustline perspective` processes on loopback,
// each with its own resolver, corroborate (or not) what `trustline dev`
// sees through its own: the quorum rule of BR 3.2.2.9 decides, and every
// answer is kept as evidence.
func TestPerspectives(t *testing.T) {
	if testing.Short() {
		t.Skip("starts seven processes")
	}
	dir := t.TempDir()
	primaryPub := keygen(t, filepath.Join(dir, "primary.key"))
	var ps []*perspectiveProc
	for i, rir := range []string{"ARIN", "RIPE", "APNIC", "ARIN", "RIPE"} {
		ps = append(ps, startPerspective(t, dir, fmt.Sprintf("p%d", i+1), rir, primaryPub))
	}
	primary := dnstest.Start(t)
	var remotes strings.Builder
	for _, p := range ps {
		fmt.Fprintf(&remotes, "      - {name: %s, url: %q, rir: %s, public_key: %q}\n", p.name, p.url, p.rir, p.pub)
	}
	cfg := filepath.Join(dir, "dev.yaml")
	body := fmt.Sprintf("validation:\n  resolver: %q\n  caa_identities: [trustline.test]\n  perspectives:\n    key_file: primary.key\n    policy: br\n    timeout: 5s\n    remotes:\n%s",
		primary.Addr, remotes.String())
	if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(dir, "data")
	dev := startDev(t, "--data", data, "--config", cfg)
	if !strings.Contains(dev.logs.String(), "remote perspectives corroborate") {
		t.Errorf("dev does not say it asks remote perspectives:\n%s", dev.logs)
	}
	u := &user{t: t, p: dev, data: data, work: t.TempDir()}
	u.key = u.call("POST", "/api/v1/accounts", map[string]string{"email": "mpic@example.com"}, 201)["api_key"].(string)

	// publish puts the random value of a new dns-txt validation of domain
	// at the primary's resolver and at every perspective's but those in lie.
	publish := func(domain string, lie ...int) (id, value string) {
		v := u.call("POST", "/api/v1/validations", map[string]string{"domain": domain, "method": "dns-txt"}, 201)
		value = v["random_value"].(string)
		primary.SetTXT("_pki-validation."+domain, value)
		for i, p := range ps {
			p.zone.SetTXT("_pki-validation."+domain, value)
			for _, l := range lie {
				if l == i {
					p.zone.SetTXT("_pki-validation."+domain, "what-an-attacker-near-the-CA-sees")
				}
			}
		}
		return v["id"].(string), value
	}

	t.Run("one perspective lies: quorum met", func(t *testing.T) {
		u.t = t
		id, _ := publish("one-lies.com", 2)
		out := u.call("POST", "/api/v1/validations/"+id+"/confirm", nil, 200)
		var ev struct {
			MPIC struct {
				Met          bool `json:"met"`
				Asked        int  `json:"asked"`
				Corroborated int  `json:"corroborated"`
				Answers      []struct {
					Perspective  string `json:"perspective"`
					Corroborates bool   `json:"corroborates"`
					Statement    json.RawMessage
				} `json:"answers"`
			} `json:"mpic"`
		}
		raw, _ := json.Marshal(out["evidence"])
		if err := json.Unmarshal(raw, &ev); err != nil || !ev.MPIC.Met || ev.MPIC.Asked != 5 || ev.MPIC.Corroborated != 4 ||
			len(ev.MPIC.Answers) != 5 || ev.MPIC.Answers[2].Corroborates || len(ev.MPIC.Answers[0].Statement) == 0 {
			t.Fatalf("status %v, evidence %s", out["status"], raw)
		}
	})
	t.Run("two lie: quorum not met, an attempt spent", func(t *testing.T) {
		u.t = t
		id, _ := publish("two-lie.com", 0, 3)
		out := u.call("POST", "/api/v1/validations/"+id+"/confirm", nil, 400)
		if d, _ := out["detail"].(string); !strings.Contains(d, "BR 3.2.2.9") || !strings.Contains(d, "p1:") || !strings.Contains(d, "p4:") || !strings.Contains(d, "attempt(s) left") {
			t.Errorf("detail: %v", out["detail"])
		}
	})
	t.Run("CAA: two perspectives see another CA", func(t *testing.T) {
		u.t = t
		id, _ := publish("caa.com")
		u.call("POST", "/api/v1/validations/"+id+"/confirm", nil, 200)
		for _, i := range []int{1, 4} {
			ps[i].zone.SetCAA("caa.com", `0 issue "other-ca.example"`)
		}
		u.openssl("req", "-new", "-nodes", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-keyout", "caa.key", "-out", "caa.csr",
			"-subj", "/CN=caa.com", "-addext", "subjectAltName=DNS:caa.com")
		csr, _ := os.ReadFile(filepath.Join(u.work, "caa.csr"))
		out := u.call("POST", "/api/v1/orders", map[string]string{"csr": string(csr), "profile": "dv"}, 403)
		if d, _ := out["detail"].(string); !strings.Contains(d, "BR 3.2.2.9") || !strings.Contains(d, "other-ca.example") {
			t.Errorf("detail: %v", out["detail"])
		}
		ps[4].zone.SetCAA("caa.com") // one left: quorum met
		if out := u.call("POST", "/api/v1/orders", map[string]string{"csr": string(csr), "profile": "dv"}, 201); out["status"] != "issued" {
			t.Errorf("order with one perspective seeing another CA: %v", out)
		}
	})
	t.Run("one lies, one down: unavailable, no attempt spent", func(t *testing.T) {
		u.t = t
		id, value := publish("down.com", 0)
		ps[2].cmd.Process.Kill()
		ps[2].cmd.Wait()
		out := u.call("POST", "/api/v1/validations/"+id+"/confirm", nil, 503)
		if d, _ := out["detail"].(string); !strings.Contains(d, "remote network perspectives answered") {
			t.Errorf("detail: %v", out["detail"])
		}
		ps[0].zone.SetTXT("_pki-validation.down.com", value)
		out = u.call("POST", "/api/v1/validations/"+id+"/confirm", nil, 200)
		if ev, _ := out["evidence"].(map[string]any); ev["attempts"] != 1.0 {
			t.Errorf("the unavailable attempt was counted: %v", ev["attempts"])
		}
	})
}
