package perspective

import (
	"bytes"
	"context"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/trustline/trustline/internal/keyfile"
	"github.com/trustline/trustline/internal/testfix/dnstest"
	"github.com/trustline/trustline/issuer/caa"
	"github.com/trustline/trustline/issuer/mpic"
	"github.com/trustline/trustline/issuer/validation"
)

func newKey(t testing.TB) crypto.Signer {
	t.Helper()
	k, err := keyfile.Generate(keyfile.ECDSAP256, nil)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// remote is one perspective on loopback with its own DNS server.
type remote struct {
	Remote
	zone *dnstest.Zone
	srv  *httptest.Server
}

// startRemote runs a perspective that trusts primary, answering through
// its own dnstest zone; http-token fetches go to web.
func startRemote(t *testing.T, name, rir string, primary crypto.PublicKey, web string) *remote {
	t.Helper()
	z := dnstest.Start(t)
	key := newKey(t)
	dial := func(ctx context.Context, network, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, network, web)
	}
	probe, err := validation.NewProbe(validation.Config{Resolver: z.Addr, AllowPrivateAddresses: true}, dial)
	if err != nil {
		t.Fatal(err)
	}
	checker, err := caa.New(caa.Config{Identities: []string{"trustline.test"}, Resolver: z.Addr})
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewServer(ServerConfig{Name: name, RIR: rir, Key: key, Clients: []crypto.PublicKey{primary}}, probe, checker, nil)
	if err != nil {
		t.Fatal(err)
	}
	tc, err := s.TLSConfig()
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(s.Handler())
	srv.TLS = tc
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return &remote{Remote: Remote{Name: name, URL: srv.URL, RIR: rir, Key: key.Public()}, zone: z, srv: srv}
}

func newClient(t *testing.T, key crypto.Signer, rs ...*remote) *Client {
	t.Helper()
	var remotes []Remote
	for _, r := range rs {
		remotes = append(remotes, r.Remote)
	}
	c, err := NewClient(ClientConfig{Key: key, Remotes: remotes, Timeout: 5 * time.Second, Policy: mpic.BR,
		Now: func() time.Time { return time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC) }}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// fivePerspectives runs five perspectives in two RIRs, each with the TXT
// record published at its own resolver.
func fivePerspectives(t *testing.T, primary crypto.PublicKey, value string) []*remote {
	var rs []*remote
	for i, rir := range []string{"ARIN", "RIPE", "APNIC", "ARIN", "RIPE"} {
		r := startRemote(t, "p"+string(rune('1'+i)), rir, primary, "127.0.0.1:1")
		r.zone.SetTXT("_pki-validation.example.com", value)
		rs = append(rs, r)
	}
	return rs
}

func TestQuorum(t *testing.T) {
	key := newKey(t)
	check := mpic.Check{Kind: mpic.KindDNSTXT, Domain: "example.com", Value: "the-random-value"}
	for _, tc := range []struct {
		name       string
		lie, down  []int // perspectives whose resolver lies (no record), or that are down
		met, unavl bool
	}{
		{"all agree", nil, nil, true, false},
		{"one lies", []int{2}, nil, true, false},
		{"two lie", []int{0, 3}, nil, false, false},
		{"one down", nil, []int{4}, true, false},
		{"one lies, one down", []int{1}, []int{4}, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rs := fivePerspectives(t, key.Public(), check.Value)
			for _, i := range tc.lie {
				rs[i].zone.SetTXT("_pki-validation.example.com", "something-else")
			}
			for _, i := range tc.down {
				rs[i].srv.Close()
			}
			o := newClient(t, key, rs...).Corroborate(context.Background(), check)
			if o.Met != tc.met || o.Unavailable() != tc.unavl {
				t.Fatalf("Met %v Unavailable %v, want %v %v: %s", o.Met, o.Unavailable(), tc.met, tc.unavl, o.Reason)
			}
			if o.Asked != 5 || o.Corroborated != 5-len(tc.lie)-len(tc.down) {
				t.Errorf("asked %d corroborated %d", o.Asked, o.Corroborated)
			}
			for i, a := range o.Answers {
				if a.Perspective != rs[i].Name {
					t.Errorf("answer %d is from %s, want %s", i, a.Perspective, rs[i].Name)
				}
				if a.Unreachable {
					continue
				}
				// Every answer that came back verifies against its perspective's key, later.
				if err := Verify(rs[i].Key, a.Statement, a.Signature); err != nil {
					t.Errorf("%s: %v", a.Perspective, err)
				}
				var st Statement
				if err := json.Unmarshal(a.Statement, &st); err != nil || st.Check != check || st.Passed != a.Corroborates {
					t.Errorf("%s: statement %s does not match the answer %+v", a.Perspective, a.Statement, a)
				}
			}
		})
	}
}

// TestCAA: a perspective whose resolver serves a CAA set naming another
// CA does not corroborate the primary's permission.
func TestCAA(t *testing.T) {
	key := newKey(t)
	var rs []*remote
	for i, rir := range []string{"ARIN", "RIPE", "APNIC"} {
		r := startRemote(t, "p"+string(rune('1'+i)), rir, key.Public(), "127.0.0.1:1")
		r.zone.SetCAA("example.com", `0 issue "trustline.test"`)
		rs = append(rs, r)
	}
	rs[0].zone.SetCAA("example.com", `0 issue "other-ca.example"`)
	c, err := NewClient(ClientConfig{Key: key, Remotes: []Remote{rs[0].Remote, rs[1].Remote, rs[2].Remote}, Policy: mpic.QuorumOnly}, nil)
	if err != nil {
		t.Fatal(err)
	}
	o := c.Corroborate(context.Background(), mpic.Check{Kind: mpic.KindCAA, Domain: "www.example.com", AccountURI: "https://ca.test/acct/1", Method: "dns-01"})
	if !o.Met || o.Corroborated != 2 || o.Answers[0].Corroborates || !strings.Contains(o.Answers[0].Detail, "other-ca.example") {
		t.Fatalf("outcome %+v", o)
	}
	rs[1].zone.SetFail("example.com", 2) // SERVFAIL: does not corroborate either
	o = c.Corroborate(context.Background(), mpic.Check{Kind: mpic.KindCAA, Domain: "www.example.com"})
	if o.Met || o.Unavailable() {
		t.Fatalf("two perspectives not permitting: Met %v Unavailable %v (%s)", o.Met, o.Unavailable(), o.Reason)
	}
}

// TestHTTPToken: the perspective fetches the file itself.
func TestHTTPToken(t *testing.T) {
	key := newKey(t)
	web := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/.well-known/pki-validation/00ff" {
			w.Write([]byte("the-random-value\n"))
			return
		}
		http.NotFound(w, r)
	}))
	t.Cleanup(web.Close)
	addr := strings.TrimPrefix(web.URL, "http://")
	r1 := startRemote(t, "p1", "ARIN", key.Public(), addr)
	r2 := startRemote(t, "p2", "RIPE", key.Public(), addr)
	c := newClient(t, key, r1, r2)
	c.cfg.Policy = mpic.QuorumOnly
	o := c.Corroborate(context.Background(), mpic.Check{Kind: mpic.KindHTTPToken, Domain: "example.com", Value: "the-random-value", Token: "00ff"})
	if !o.Met || o.Corroborated != 2 {
		t.Fatalf("outcome %s: %+v", o.Reason, o.Answers)
	}
	o = c.Corroborate(context.Background(), mpic.Check{Kind: mpic.KindHTTPToken, Domain: "example.com", Value: "the-random-value", Token: "00fe"})
	if o.Met || o.Corroborated != 0 || !strings.Contains(o.Answers[0].Detail, "404") {
		t.Fatalf("a missing file: %s: %+v", o.Reason, o.Answers)
	}
}

// TestAuthentication: a perspective answers only a configured primary, and
// the primary trusts only the configured perspective key.
func TestAuthentication(t *testing.T) {
	key, stranger := newKey(t), newKey(t)
	r := startRemote(t, "p1", "ARIN", key.Public(), "127.0.0.1:1")
	r.zone.SetTXT("_pki-validation.example.com", "v")
	check := mpic.Check{Kind: mpic.KindDNSTXT, Domain: "example.com", Value: "v"}

	if a := newClient(t, stranger, r).Corroborate(context.Background(), check).Answers[0]; !a.Unreachable {
		t.Errorf("a primary the perspective does not know got an answer: %+v", a)
	}
	impostor := *r
	impostor.Key = newKey(t).Public()
	var logs bytes.Buffer
	c, err := NewClient(ClientConfig{Key: key, Remotes: []Remote{impostor.Remote}, Policy: mpic.QuorumOnly}, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if a := c.Corroborate(context.Background(), check).Answers[0]; !a.Unreachable || !strings.Contains(logs.String(), "not one this side is configured with") {
		t.Errorf("a perspective with another key was trusted: %+v; log: %s", a, logs.String())
	} else if strings.Contains(a.Detail, "127.0.0.1") {
		t.Errorf("the evidence names the perspective's address: %q", a.Detail)
	}
	// Without a client certificate the handshake itself fails.
	plain := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	if resp, err := plain.Post(r.URL+CheckPath, "application/json", strings.NewReader(`{}`)); err == nil {
		resp.Body.Close()
		t.Errorf("a client without a certificate got %s", resp.Status)
	}
}

// TestBadRequests: a configured primary sending nonsense gets 400, and
// a statement changed after signing does not verify.
func TestBadRequests(t *testing.T) {
	key := newKey(t)
	r := startRemote(t, "p1", "ARIN", key.Public(), "127.0.0.1:1")
	c := newClient(t, key, r)
	for _, body := range []string{`nonsense`, `{"check":{"kind":"dns-txt","domain":"example.com","value":"v"},"nonce":"short"}`,
		`{"check":{"kind":"tls-alpn","domain":"example.com"},"nonce":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}`,
		`{"check":{"kind":"caa","domain":"example.com"},"nonce":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA","extra":1}`,
		strings.Repeat("x", maxBody+10)} {
		resp, err := c.clients[0].Post(r.URL+CheckPath, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest && resp.StatusCode != http.StatusRequestEntityTooLarge {
			t.Errorf("body %.40q: %s, want 400 or 413", body, resp.Status)
		}
	}
	r.zone.SetTXT("_pki-validation.example.com", "v")
	a := c.Corroborate(context.Background(), mpic.Check{Kind: mpic.KindDNSTXT, Domain: "example.com", Value: "v"}).Answers[0]
	if !a.Corroborates {
		t.Fatalf("answer %+v", a)
	}
	forged := []byte(strings.Replace(string(a.Statement), `"passed":true`, `"passed":false`, 1))
	if err := Verify(r.Key, forged, a.Signature); err == nil {
		t.Error("a statement changed after signing verified")
	}
}

func TestKeyEncoding(t *testing.T) {
	k := newKey(t)
	s, err := EncodeKey(k.Public())
	if err != nil {
		t.Fatal(err)
	}
	back, err := DecodeKey(s)
	if err != nil || !back.Equal(k.Public()) {
		t.Fatalf("DecodeKey(EncodeKey) = %v, %v", back, err)
	}
	for _, bad := range []string{"", "not base64!", "AAAA"} {
		if _, err := DecodeKey(bad); err == nil {
			t.Errorf("DecodeKey(%q) = nil error", bad)
		}
	}
}

// FuzzCheckRequest: whatever a configured primary sends, the perspective
// answers 400, 413 or 501 (this one performs no checks), never panics and
// never signs.
func FuzzCheckRequest(f *testing.F) {
	f.Add([]byte(`{"check":{"kind":"dns-txt","domain":"example.com","value":"v"},"nonce":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}`))
	f.Add([]byte(`{"check":{"kind":"http-token","domain":"example.com","value":"v","token":"00ff"},"nonce":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}`))
	f.Add([]byte(`{"check":{"kind":"caa","domain":"*.example.com","account_uri":"https://x/acct/1"},"nonce":"x"}`))
	f.Add([]byte(`{}`))
	key := newKey(f)
	s, err := NewServer(ServerConfig{Name: "p", Key: key, Clients: []crypto.PublicKey{key.Public()}}, nil, nil, nil)
	if err != nil {
		f.Fatal(err)
	}
	h := s.Handler()
	f.Fuzz(func(t *testing.T, body []byte) {
		req := httptest.NewRequest("POST", CheckPath, bytes.NewReader(body))
		req.TLS = &tls.ConnectionState{PeerCertificates: []*x509.Certificate{{}}}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		switch w.Code {
		case http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusNotImplemented:
		default:
			t.Fatalf("answered %d to %q", w.Code, body)
		}
		if w.Header().Get(SignatureHeader) != "" {
			t.Fatal("signed an answer to a check it did not perform")
		}
	})
}
