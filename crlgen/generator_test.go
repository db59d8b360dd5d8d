package crlgen

import (
	"context"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"errors"
	"math/big"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/trustline/trustline/crlgen/crlpub"
	"github.com/trustline/trustline/internal/issuerid"
	"github.com/trustline/trustline/internal/reason"
	"github.com/trustline/trustline/internal/serial"
	"github.com/trustline/trustline/internal/shard"
	"github.com/trustline/trustline/internal/store"
	"github.com/trustline/trustline/internal/testfix"
	"github.com/trustline/trustline/issuer/pki"
)

func TestConfigValidate(t *testing.T) {
	ok := testConfig(4)
	tests := []struct {
		name   string
		mutate func(*Config)
		want   string // substring of the error; "" for valid
	}{
		{"valid", func(*Config) {}, ""},
		{"defaults fill zero durations", func(c *Config) {
			c.Period, c.RevocationDelay, c.Validity, c.PollInterval, c.LeaseTTL = 0, 0, 0, 0, 0
		}, ""},
		{"dev config", func(c *Config) { *c = DevConfig(testBase, 4, 30*time.Second, "dev") }, ""},
		{"no base URL", func(c *Config) { c.BaseURL = "" }, "BaseURL"},
		{"base URL with trailing slash", func(c *Config) { c.BaseURL = testBase + "/" }, "trailing slash"},
		{"ftp base URL", func(c *Config) { c.BaseURL = "ftp://example.com" }, "BaseURL"},
		{"zero shards", func(c *Config) { c.Shards = 0 }, "Shards"},
		{"too many shards", func(c *Config) { c.Shards = 4097 }, "Shards"},
		{"validity over 10 days", func(c *Config) { c.Validity = 10*24*time.Hour + time.Second }, "Validity"},
		{"validity 10 days", func(c *Config) { c.Validity = 10 * 24 * time.Hour }, ""},
		{"period over 7 days", func(c *Config) { c.Period = 8 * 24 * time.Hour; c.Validity = 10 * 24 * time.Hour }, "Period"},
		{"validity not above period", func(c *Config) { c.Period = 2 * time.Hour; c.Validity = 2 * time.Hour }, "must exceed Period"},
		{"revocation delay over 24h", func(c *Config) { c.RevocationDelay = 25 * time.Hour }, "RevocationDelay"},
		{"poll too slow for the delay", func(c *Config) { c.PollInterval = 90 * time.Second }, "RevocationDelay/2"},
		{"poll below a second", func(c *Config) { c.PollInterval = 100 * time.Millisecond }, "PollInterval"},
		{"lease shorter than two polls", func(c *Config) { c.LeaseTTL = time.Second }, "LeaseTTL"},
		{"no holder", func(c *Config) { c.Holder = "" }, "Holder"},
		{"root CRL for a year", func(c *Config) { c.FullValidity = 365 * 24 * time.Hour }, ""},
		{"root CRL over a year", func(c *Config) { c.FullValidity = 366 * 24 * time.Hour }, "FullValidity"},
		{"root CRL not above period", func(c *Config) { c.FullValidity = c.Period }, "must exceed Period"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := ok
			tc.mutate(&c)
			err := c.Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("Validate() = %v, want nil", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("Validate() = %v, want an error mentioning %q", err, tc.want)
			}
		})
	}
}

func TestNewRefusesBadDeps(t *testing.T) {
	e := newEnv(t, 2)
	root, ints := fromPKI(e.pki)
	good := Deps{Store: e.st, Root: root, Intermediates: ints, Linter: testLinter(t), Log: testfix.Logger(t)}
	tests := []struct {
		name   string
		mutate func(*Deps)
		want   string
	}{
		{"no store", func(d *Deps) { d.Store = nil }, "no store"},
		{"no linter", func(d *Deps) { d.Linter = nil }, "no linter"},
		{"offline root and no intermediates", func(d *Deps) { d.Root.Signer = nil; d.Intermediates = nil }, "nothing to publish"},
		{"offline root without a certificate", func(d *Deps) { d.Root = Issuer{ID: root.ID} }, "needs a certificate"},
		{"issuer twice", func(d *Deps) { d.Intermediates = []Issuer{ints[0], ints[0]} }, "given twice"},
		{"wrong signer", func(d *Deps) {
			d.Intermediates = []Issuer{{ID: ints[0].ID, Cert: ints[0].Cert, Signer: ints[1].Signer}}
		}, "does not match"},
		{"nil publisher", func(d *Deps) { d.Publishers = []crlpub.Publisher{nil} }, "publisher 0 is nil"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := good
			tc.mutate(&d)
			_, err := New(e.cfg, d)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("New() = %v, want an error mentioning %q", err, tc.want)
			}
		})
	}
	if _, err := New(e.cfg, good); err != nil {
		t.Errorf("New(good) = %v", err)
	}
}

// An issuer with no revocations still publishes every shard: an empty but
// valid CRL whose IDP is the certificates' CRLDP, and the root's full CRL
// with no IDP. Every one passes openssl and zlint.
func TestPublishesEmptyValidCRLs(t *testing.T) {
	e := newEnv(t, 3)
	reg := prometheus.NewRegistry()
	root, ints := fromPKI(e.pki)
	g, err := New(e.cfg, Deps{Store: e.st, Root: root, Intermediates: ints, Linter: testLinter(t),
		Publishers: []crlpub.Publisher{e.rec}, Registerer: reg, Log: testfix.Logger(t), Now: e.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	cycle(t, g)

	got := e.rec.take()
	type key struct {
		issuer issuerid.ID
		shard  int
	}
	var keys []key
	for _, c := range got {
		keys = append(keys, key{c.Issuer, c.Shard})
	}
	want := []key{{"root", shard.Full}, {"int-p256", 0}, {"int-p256", 1}, {"int-p256", 2},
		{"int-rsa2048", 0}, {"int-rsa2048", 1}, {"int-rsa2048", 2}}
	if d := cmp.Diff(want, keys, cmp.AllowUnexported(key{})); d != "" {
		t.Fatalf("published CRLs (-want +got):\n%s", d)
	}
	issuers := map[issuerid.ID]*x509.Certificate{"root": e.pki.Root.Cert}
	for _, is := range e.pki.Intermediates {
		issuers[is.ID] = is.Cert
	}
	for _, c := range got {
		t.Run(label(c.Issuer, c.Shard), func(t *testing.T) {
			stored, rl := storedCRLOf(t, e.st, c.Issuer, c.Shard)
			if !slices.Equal(stored.DER, c.DER) || stored.Number != c.Number {
				t.Errorf("publisher was told number %d, store holds %d", c.Number, stored.Number)
			}
			if len(rl.RevokedCertificateEntries) != 0 || c.Entries != 0 {
				t.Errorf("%d entries on an issuer with no revocations", len(rl.RevokedCertificateEntries))
			}
			if err := rl.CheckSignatureFrom(issuers[c.Issuer]); err != nil {
				t.Errorf("signature: %v", err)
			}
			if err := testLinter(t).CRL(c.DER); err != nil {
				t.Errorf("zlint: %v", err)
			}
			opensslVerify(t, c.DER, issuers[c.Issuer])
			if !rl.ThisUpdate.Equal(t0) || !rl.NextUpdate.Equal(t0.Add(7*24*time.Hour)) {
				t.Errorf("thisUpdate %s nextUpdate %s, want %s + 7 days", rl.ThisUpdate, rl.NextUpdate, t0)
			}
			if rl.Number.Cmp(big.NewInt(t0.UnixNano())) != 0 {
				t.Errorf("number %v, want thisUpdate in Unix nanoseconds %d", rl.Number, t0.UnixNano())
			}
			wantURL := pki.FullCRLURL(testBase, c.Issuer)
			if c.Shard != shard.Full {
				wantURL = pki.ShardCRLURL(testBase, c.Issuer, c.Shard)
			}
			if c.URL != wantURL {
				t.Errorf("URL %q, want %q", c.URL, wantURL)
			}
			idp := ""
			if c.Shard != shard.Full {
				idp = wantURL
			}
			if err := checkIDP(rl, idp); err != nil {
				t.Error(err)
			}
			if !c.NextPublication.Equal(t0.Add(time.Hour)) {
				t.Errorf("NextPublication %s, want thisUpdate + Period", c.NextPublication)
			}
		})
	}
	wantURLs := []string{testBase + "/int-p256/0.crl", testBase + "/int-p256/1.crl", testBase + "/int-p256/2.crl"}
	if d := cmp.Diff(wantURLs, got[1].ShardURLs); d != "" {
		t.Errorf("ShardURLs (-want +got):\n%s", d)
	}
	if d := cmp.Diff([]string{testBase + "/root/full.crl"}, got[0].ShardURLs); d != "" {
		t.Errorf("root ShardURLs (-want +got):\n%s", d)
	}
	if n := value(t, g.m.published.WithLabelValues("int-p256")); n != 3 {
		t.Errorf("publications metric for int-p256 = %v, want 3", n)
	}
	if n, err := seriesCount(reg, "trustline_crlgen_shard_entries"); err != nil || n != 7 {
		t.Errorf("shard entries series = %d (%v), want 7", n, err)
	}

	// The audit log has one crl.published per CRL.
	var audits []string
	if err := e.st.(interface {
		ScanAudit(context.Context, int64, func(store.AuditEntry) error) error
	}).ScanAudit(context.Background(), 0, func(a store.AuditEntry) error {
		if a.Kind == "crl.published" {
			var p struct {
				Number int64  `json:"number"`
				SHA256 string `json:"sha256"`
			}
			if err := json.Unmarshal(a.Payload, &p); err != nil || p.Number == 0 || len(p.SHA256) != 64 {
				t.Errorf("audit payload %s: %v", a.Payload, err)
			}
			audits = append(audits, a.Subject)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	wantAudits := []string{"root/full", "int-p256/0", "int-p256/1", "int-p256/2", "int-rsa2048/0", "int-rsa2048/1", "int-rsa2048/2"}
	if d := cmp.Diff(wantAudits, audits); d != "" {
		t.Errorf("audit subjects (-want +got):\n%s", d)
	}

	// Nothing is due a minute later, so nothing is published.
	e.clock.Advance(time.Minute)
	cycle(t, g)
	if got := e.rec.take(); len(got) != 0 {
		t.Errorf("%d CRLs republished before they were due", len(got))
	}
	// A period later, all are.
	e.clock.Advance(time.Hour)
	cycle(t, g)
	if got := e.rec.take(); len(got) != 7 {
		t.Errorf("%d CRLs republished after a period, want 7", len(got))
	}
}

// A revocation republishes its shard, and only it, within the next round;
// the entry carries the reason (none for unspecified).
func TestRevocationRepublishesItsShard(t *testing.T) {
	e := newEnv(t, 4)
	c1, c2, other := cert(t, "int-p256", 2), cert(t, "int-p256", 2), cert(t, "int-rsa2048", 1)
	insert(t, e.st, c1, c2, other)
	g := e.generator(t, e.cfg)
	cycle(t, g)
	e.rec.take()

	e.clock.Advance(10 * time.Second)
	revoke(t, e.st, c1.Serial, reason.KeyCompromise, e.clock.Now())
	revoke(t, e.st, c2.Serial, reason.Unspecified, e.clock.Now())
	e.clock.Advance(time.Second)
	cycle(t, g)
	got := e.rec.take()
	if len(got) != 1 || got[0].Issuer != "int-p256" || got[0].Shard != 2 {
		t.Fatalf("published %v, want only int-p256/2", summarize(got))
	}
	_, rl := storedCRLOf(t, e.st, "int-p256", 2)
	type entry struct {
		Serial serial.Serial
		At     time.Time
		Reason int
	}
	var entries []entry
	for _, r := range rl.RevokedCertificateEntries {
		s, _ := serial.FromBigInt(r.SerialNumber)
		var hasExt bool
		for _, x := range r.Extensions {
			hasExt = hasExt || x.Id.Equal([]int{2, 5, 29, 21})
		}
		if r.ReasonCode == 0 && hasExt {
			t.Errorf("%s carries a reasonCode extension for unspecified (BR §7.2.2)", s)
		}
		entries = append(entries, entry{s, r.RevocationTime, r.ReasonCode})
	}
	want := []entry{{c1.Serial, t0.Add(10 * time.Second), int(reason.KeyCompromise)}, {c2.Serial, t0.Add(10 * time.Second), 0}}
	slices.SortFunc(want, func(a, b entry) int { return strings.Compare(string(a.Serial), string(b.Serial)) })
	if d := cmp.Diff(want, entries); d != "" {
		t.Errorf("entries (-want +got):\n%s", d)
	}
	if got[0].Entries != 2 {
		t.Errorf("Entries = %d, want 2", got[0].Entries)
	}
	opensslVerify(t, got[0].DER, e.pki.Intermediates[0].Cert)

	// The next round has nothing to do.
	e.clock.Advance(time.Second)
	cycle(t, g)
	if got := e.rec.take(); len(got) != 0 {
		t.Errorf("republished %v with nothing changed", summarize(got))
	}
}

func summarize(cs []crlpub.CRL) []string {
	var out []string
	for _, c := range cs {
		out = append(out, label(c.Issuer, c.Shard))
	}
	return out
}

// A revoked certificate stays listed until one CRL after it expires.
func TestExpiredEntryKeptUntilOneCRLAfterExpiry(t *testing.T) {
	e := newEnv(t, 1)
	c := cert(t, "int-p256", 0)
	c.NotAfter = t0.Add(30 * time.Minute)
	insert(t, e.st, c)
	revoke(t, e.st, c.Serial, reason.Superseded, t0.Add(-time.Minute))
	g := e.generator(t, e.cfg)

	count := func() int {
		_, rl := storedCRLOf(t, e.st, "int-p256", 0)
		return len(rl.RevokedCertificateEntries)
	}
	cycle(t, g) // t0: not expired
	if n := count(); n != 1 {
		t.Fatalf("at %s: %d entries, want 1", e.clock.Now(), n)
	}
	e.clock.Advance(time.Hour) // expired at t0+30m, after the previous thisUpdate (t0): kept
	cycle(t, g)
	if n := count(); n != 1 {
		t.Fatalf("first CRL after expiry: %d entries, want 1", n)
	}
	e.clock.Advance(time.Hour) // expired before the previous thisUpdate: dropped
	cycle(t, g)
	if n := count(); n != 0 {
		t.Fatalf("second CRL after expiry: %d entries, want 0", n)
	}
}

// Numbers and thisUpdate never go back when the clock does, and revocations
// are still published.
func TestClockStepsBackwards(t *testing.T) {
	e := newEnv(t, 2)
	c := cert(t, "int-rsa2048", 1)
	insert(t, e.st, c)
	g := e.generator(t, e.cfg)
	cycle(t, g)
	first, _ := storedCRLOf(t, e.st, "int-rsa2048", 1)

	e.clock.Advance(-3 * time.Hour) // an NTP step backwards
	revoke(t, e.st, c.Serial, reason.KeyCompromise, e.clock.Now())
	cycle(t, g)
	got := e.rec.take()
	if d := cmp.Diff([]string{"int-rsa2048/1"}, summarize(got[len(got)-1:])); d != "" {
		t.Fatalf("after the step: (-want +got):\n%s", d)
	}
	second, rl := storedCRLOf(t, e.st, "int-rsa2048", 1)
	if second.Number <= first.Number {
		t.Errorf("number went from %d to %d", first.Number, second.Number)
	}
	if !second.ThisUpdate.After(first.ThisUpdate) {
		t.Errorf("thisUpdate went from %s to %s", first.ThisUpdate, second.ThisUpdate)
	}
	if len(rl.RevokedCertificateEntries) != 1 {
		t.Errorf("%d entries, want the revocation", len(rl.RevokedCertificateEntries))
	}

	// A restarted generator (fresh memory) with the clock still behind:
	// nothing is due (the stored CRLs are fresh by their own dates), and a
	// forced republication still moves forwards.
	g2 := e.generator(t, e.cfg)
	cycle(t, g2)
	if got := e.rec.take(); len(got) != 0 {
		t.Errorf("restarted generator republished %v although nothing was due", summarize(got))
	}
	c2 := cert(t, "int-rsa2048", 1)
	insert(t, e.st, c2)
	revoke(t, e.st, c2.Serial, reason.Superseded, e.clock.Now())
	cycle(t, g2)
	third, _ := storedCRLOf(t, e.st, "int-rsa2048", 1)
	if third.Number <= second.Number || !third.ThisUpdate.After(second.ThisUpdate) {
		t.Errorf("third CRL number %d thisUpdate %s after %d %s", third.Number, third.ThisUpdate, second.Number, second.ThisUpdate)
	}
}

// Lowering the shard count moves no certificate: shards beyond it that
// hold certificates are still published and listed.
func TestShardCountLowered(t *testing.T) {
	e := newEnv(t, 8)
	c := cert(t, "int-p256", 6)
	insert(t, e.st, c)
	revoke(t, e.st, c.Serial, reason.KeyCompromise, t0.Add(-time.Minute))

	cfg := e.cfg
	cfg.Shards = 4
	g := e.generator(t, cfg)
	cycle(t, g)
	var p256 []crlpub.CRL
	for _, c := range e.rec.take() {
		if c.Issuer == "int-p256" {
			p256 = append(p256, c)
		}
	}
	if len(p256) != 7 {
		t.Fatalf("int-p256 published %v, want shards 0-6", summarize(p256))
	}
	if n := len(p256[0].ShardURLs); n != 7 {
		t.Errorf("crls.json lists %d shards, want 7 (highest in use + 1)", n)
	}
	if p256[6].Entries != 1 {
		t.Errorf("shard 6 has %d entries, want 1", p256[6].Entries)
	}

	// A generator started later finds shard 6 from the stored CRLs.
	e.clock.Advance(2 * time.Hour)
	g2 := e.generator(t, cfg)
	cycle(t, g2)
	n := 0
	for _, c := range e.rec.take() {
		if c.Issuer == "int-p256" {
			n++
			if len(c.ShardURLs) != 7 {
				t.Errorf("restarted: crls.json lists %d shards, want 7", len(c.ShardURLs))
			}
		}
	}
	if n != 7 {
		t.Errorf("restarted: int-p256 published %d CRLs, want 7", n)
	}
}

// A revocation made while no generator ran is published by the next one,
// from the persisted cursor.
func TestRevocationWhileStoppedIsPublishedAfterRestart(t *testing.T) {
	e := newEnv(t, 2)
	c := cert(t, "int-p256", 1)
	insert(t, e.st, c)
	g := e.generator(t, e.cfg)
	cycle(t, g)
	g.release()
	e.rec.take()

	e.clock.Advance(time.Minute)
	revoke(t, e.st, c.Serial, reason.KeyCompromise, e.clock.Now())
	e.clock.Advance(time.Second)
	g2 := e.generator(t, e.cfg)
	cycle(t, g2)
	if d := cmp.Diff([]string{"int-p256/1"}, summarize(e.rec.take())); d != "" {
		t.Errorf("after restart (-want +got):\n%s", d)
	}
}

// failingLinter refuses every CRL.
type failingLinter struct{}

func (failingLinter) CRL([]byte) error { return errors.New("lint says no") }

// A CRL that fails a check is counted and never published.
func TestFailedCheckIsNotPublished(t *testing.T) {
	e := newEnv(t, 1)
	root, ints := fromPKI(e.pki)
	g, err := New(e.cfg, Deps{Store: e.st, Root: root, Intermediates: ints, Linter: failingLinter{},
		Publishers: []crlpub.Publisher{e.rec}, Log: testfix.Logger(t), Now: e.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Cycle(context.Background()); err == nil || !strings.Contains(err.Error(), "check lint") {
		t.Errorf("Cycle() = %v, want the lint failure", err)
	}
	if got := e.rec.take(); len(got) != 0 {
		t.Errorf("published %v", summarize(got))
	}
	if _, err := e.st.CRL(context.Background(), "int-p256", 0); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("stored CRL: %v, want ErrNotFound", err)
	}
	if n := value(t, g.m.failures.WithLabelValues("int-p256", "lint")); n != 1 {
		t.Errorf("lint failures metric = %v, want 1", n)
	}
}

func TestCheckIDP(t *testing.T) {
	const url = testBase + "/int-p256/3.crl"
	// DER: SEQUENCE { [0] { [0] { [6] url } }, [1] TRUE }.
	idp := func(uri string, tail ...byte) []byte {
		name := append([]byte{0x86, byte(len(uri))}, uri...)
		full := append([]byte{0xa0, byte(len(name))}, name...)
		dp := append([]byte{0xa0, byte(len(full))}, full...)
		body := append(dp, tail...)
		return append([]byte{0x30, byte(len(body))}, body...)
	}
	ext := func(v []byte, critical bool) []pkix.Extension {
		return []pkix.Extension{{Id: oidIDP, Critical: critical, Value: v}}
	}
	tests := []struct {
		name string
		exts []pkix.Extension
		want string
		err  string
	}{
		{"shard", ext(idp(url, 0x81, 0x01, 0xff), true), url, ""},
		{"not critical", ext(idp(url, 0x81, 0x01, 0xff), false), url, "not critical"},
		{"other URL", ext(idp(testBase+"/int-p256/4.crl", 0x81, 0x01, 0xff), true), url, "names"},
		{"no onlyContainsUserCerts", ext(idp(url), true), url, "lacks onlyContainsUserCerts"},
		{"onlyContainsCACerts too", ext(idp(url, 0x81, 0x01, 0xff, 0x82, 0x01, 0xff), true), url, "beyond"},
		{"BER true", ext(idp(url, 0x81, 0x01, 0x01), true), url, "DER TRUE"},
		{"missing", nil, url, "0 issuingDistributionPoint"},
		{"full CRL without", nil, "", ""},
		{"full CRL with", ext(idp(url, 0x81, 0x01, 0xff), true), "", "full CRL"},
		{"not a SEQUENCE", ext([]byte{0x30, 0x03, 0x01}, true), url, "not one SEQUENCE"},
		{"no distribution point", ext([]byte{0x30, 0x03, 0x81, 0x01, 0xff}, true), url, "fullName"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rl := &x509.RevocationList{Extensions: tc.exts}
			err := checkIDP(rl, tc.want)
			switch {
			case tc.err == "" && err != nil:
				t.Errorf("checkIDP = %v", err)
			case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
				t.Errorf("checkIDP = %v, want %q", err, tc.err)
			}
		})
	}
}

func FuzzParseIDP(f *testing.F) {
	f.Add([]byte{0x30, 0x06, 0xa0, 0x04, 0xa0, 0x02, 0x86, 0x00})
	f.Add([]byte{0x30, 0x09, 0xa0, 0x04, 0xa0, 0x02, 0x86, 0x00, 0x81, 0x01, 0xff})
	f.Add([]byte{0x30, 0x00})
	f.Fuzz(func(t *testing.T, der []byte) {
		uri, _, err := parseIDP(der)
		if err == nil && len(uri) > len(der) {
			t.Fatalf("URI longer than its input")
		}
	})
}

// value reads a counter or gauge.
func value(t testing.TB, m prometheus.Metric) float64 {
	t.Helper()
	var d dto.Metric
	if err := m.Write(&d); err != nil {
		t.Fatal(err)
	}
	if d.Counter != nil {
		return d.Counter.GetValue()
	}
	return d.Gauge.GetValue()
}

// seriesCount counts the series of one metric family.
func seriesCount(g prometheus.Gatherer, name string) (int, error) {
	mfs, err := g.Gather()
	if err != nil {
		return 0, err
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return len(mf.Metric), nil
		}
	}
	return 0, nil
}
