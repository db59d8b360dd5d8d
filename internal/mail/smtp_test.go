package mail

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"errors"
	"math/big"
	"net"
	"net/mail"
	"net/textproto"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// smtpServer is a minimal RFC 5321 server on loopback for the tests: EHLO,
// HELO, optional STARTTLS (RFC 3207), AUTH PLAIN (only after TLS), MAIL,
// RCPT, DATA, RSET, NOOP, QUIT. It records what it received.
type smtpServer struct {
	ln         net.Listener
	tls        *tls.Config       // offer STARTTLS when set
	users      map[string]string // AUTH PLAIN accounts, offered after TLS
	rejectRcpt string            // RCPT TO this address gets 550
	silent     bool              // accept, never greet

	mu   sync.Mutex
	got  []received
	wg   sync.WaitGroup
	done chan struct{}
}

type received struct {
	From string
	To   []string
	Data []byte
	TLS  bool
	User string
}

func startSMTP(t *testing.T, s *smtpServer) *smtpServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.ln, s.done = ln, make(chan struct{})
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.wg.Add(1)
			go func() { defer s.wg.Done(); s.serve(c) }()
		}
	}()
	t.Cleanup(func() { close(s.done); ln.Close(); s.wg.Wait() })
	return s
}

func (s *smtpServer) addr() string { return s.ln.Addr().String() }

func (s *smtpServer) messages() []received {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]received(nil), s.got...)
}

func (s *smtpServer) serve(conn net.Conn) {
	defer conn.Close()
	if s.silent {
		<-s.done
		return
	}
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	tp := textproto.NewConn(conn)
	var (
		cur     received
		inTLS   bool
		user    string
		greeted bool
	)
	reply := func(code int, msg string) { tp.PrintfLine("%d %s", code, msg) }
	reply(220, "test ESMTP ready")
	for {
		line, err := tp.ReadLine()
		if err != nil {
			return
		}
		verb, arg, _ := strings.Cut(line, " ")
		switch strings.ToUpper(verb) {
		case "EHLO":
			greeted = true
			lines := []string{"test greets " + arg, "8BITMIME"}
			if s.tls != nil && !inTLS {
				lines = append(lines, "STARTTLS")
			}
			if s.users != nil && inTLS {
				lines = append(lines, "AUTH PLAIN")
			}
			for i, l := range lines {
				sep := "-"
				if i == len(lines)-1 {
					sep = " "
				}
				tp.PrintfLine("250%s%s", sep, l)
			}
		case "HELO":
			greeted = true
			reply(250, "hello")
		case "STARTTLS":
			if s.tls == nil || inTLS {
				reply(502, "not offered")
				continue
			}
			reply(220, "go ahead")
			tc := tls.Server(conn, s.tls)
			if err := tc.Handshake(); err != nil {
				return
			}
			conn, inTLS, greeted = tc, true, false // RFC 3207 §4.2: forget the session
			tp = textproto.NewConn(tc)
			cur = received{}
		case "AUTH":
			mech, ir, _ := strings.Cut(arg, " ")
			raw, err := base64.StdEncoding.DecodeString(ir)
			parts := bytes.Split(raw, []byte{0})
			if !inTLS || s.users == nil || strings.ToUpper(mech) != "PLAIN" || err != nil || len(parts) != 3 ||
				s.users[string(parts[1])] != string(parts[2]) || s.users[string(parts[1])] == "" {
				reply(535, "authentication failed")
				continue
			}
			user = string(parts[1])
			reply(235, "authenticated")
		case "MAIL":
			if !greeted {
				reply(503, "EHLO first")
				continue
			}
			cur = received{From: angle(arg), TLS: inTLS, User: user}
			reply(250, "ok")
		case "RCPT":
			to := angle(arg)
			if to == s.rejectRcpt {
				reply(550, "no such user")
				continue
			}
			cur.To = append(cur.To, to)
			reply(250, "ok")
		case "DATA":
			if cur.From == "" || len(cur.To) == 0 {
				reply(503, "MAIL and RCPT first")
				continue
			}
			reply(354, "end with .")
			data, err := tp.ReadDotBytes()
			if err != nil {
				return
			}
			cur.Data = data
			s.mu.Lock()
			s.got = append(s.got, cur)
			s.mu.Unlock()
			cur = received{}
			reply(250, "queued")
		case "RSET":
			cur = received{}
			reply(250, "ok")
		case "NOOP":
			reply(250, "ok")
		case "QUIT":
			reply(221, "bye")
			return
		default:
			reply(502, "unknown command")
		}
	}
}

// angle extracts the address from "FROM:<a@b> BODY=8BITMIME".
func angle(arg string) string {
	_, rest, _ := strings.Cut(arg, "<")
	addr, _, _ := strings.Cut(rest, ">")
	return addr
}

// testTLS makes a server certificate for 127.0.0.1 and a client config
// that trusts it.
func testTLS(t *testing.T) (server, client *tls.Config) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "smtp test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"localhost"},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, KeyUsage: x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}},
		&tls.Config{RootCAs: pool}
}

var fixedNow = func() time.Time { return time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC) }

func newSender(t *testing.T, cfg SMTPConfig, tc *tls.Config) *SMTP {
	t.Helper()
	if cfg.From == "" {
		cfg.From = "Trustline <noreply@ca.example>"
	}
	s, err := NewSMTP(cfg, SMTPDeps{TLS: tc, Now: fixedNow})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSMTPDelivers(t *testing.T) {
	srvTLS, cliTLS := testTLS(t)
	_, otherCli := testTLS(t) // trusts a different certificate
	msg := Message{To: "admin@example.com", Subject: "Validate example.com",
		Body: "Hello\nValidation code: ABC123\n.a line that starts with a dot\n"}
	tests := []struct {
		name     string
		server   *smtpServer
		cfg      SMTPConfig
		client   *tls.Config
		wantErr  string // "" means delivered
		wantTLS  bool
		wantUser string
	}{
		{name: "plain relay", server: &smtpServer{}},
		{name: "STARTTLS used when offered", server: &smtpServer{tls: srvTLS}, client: cliTLS, wantTLS: true},
		{name: "RequireTLS without STARTTLS", server: &smtpServer{}, cfg: SMTPConfig{RequireTLS: true}, wantErr: "does not offer STARTTLS"},
		{name: "RequireTLS with STARTTLS", server: &smtpServer{tls: srvTLS}, cfg: SMTPConfig{RequireTLS: true}, client: cliTLS, wantTLS: true},
		{name: "untrusted certificate never falls back", server: &smtpServer{tls: srvTLS}, client: otherCli, wantErr: "STARTTLS"},
		{name: "AUTH PLAIN over TLS", server: &smtpServer{tls: srvTLS, users: map[string]string{"ca": "s3cret"}},
			cfg: SMTPConfig{Username: "ca", Password: "s3cret"}, client: cliTLS, wantTLS: true, wantUser: "ca"},
		{name: "wrong password", server: &smtpServer{tls: srvTLS, users: map[string]string{"ca": "s3cret"}},
			cfg: SMTPConfig{Username: "ca", Password: "nope"}, client: cliTLS, wantErr: "AUTH"},
		{name: "AUTH needs TLS", server: &smtpServer{users: map[string]string{"ca": "s3cret"}},
			cfg: SMTPConfig{Username: "ca", Password: "s3cret"}, wantErr: "AUTH"},
		{name: "recipient refused", server: &smtpServer{rejectRcpt: "admin@example.com"}, wantErr: "RCPT"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := startSMTP(t, tt.server)
			cfg := tt.cfg
			cfg.Addr = srv.addr()
			err := newSender(t, cfg, tt.client).Send(context.Background(), msg)
			got := srv.messages()
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Send: %v, want an error with %q", err, tt.wantErr)
				}
				if len(got) != 0 {
					t.Errorf("%d messages delivered despite the error", len(got))
				}
				return
			}
			if err != nil {
				t.Fatalf("Send: %v", err)
			}
			if len(got) != 1 {
				t.Fatalf("%d messages received, want 1", len(got))
			}
			r := got[0]
			if d := cmp.Diff(received{From: "noreply@ca.example", To: []string{"admin@example.com"}, TLS: tt.wantTLS, User: tt.wantUser},
				received{From: r.From, To: r.To, TLS: r.TLS, User: r.User}); d != "" {
				t.Errorf("envelope (-want +got):\n%s", d)
			}
			parsed, err := mail.ReadMessage(bytes.NewReader(r.Data))
			if err != nil {
				t.Fatalf("received message does not parse: %v", err)
			}
			if parsed.Header.Get("To") != "admin@example.com" || parsed.Header.Get("Subject") != "Validate example.com" ||
				parsed.Header.Get("From") != "Trustline <noreply@ca.example>" || parsed.Header.Get("Date") != "Fri, 27 Nov 2026 10:00:00 +0000" {
				t.Errorf("headers: %v", parsed.Header)
			}
			body := new(bytes.Buffer)
			body.ReadFrom(parsed.Body)
			// The server's dot reader turns CRLF into LF.
			want := "Hello\nValidation code: ABC123\n.a line that starts with a dot\n"
			if body.String() != want {
				t.Errorf("body %q, want %q (dot-stuffing must round-trip)", body, want)
			}
		})
	}
}

func TestSMTPGivesUp(t *testing.T) {
	t.Run("silent relay hits the timeout", func(t *testing.T) {
		srv := startSMTP(t, &smtpServer{silent: true})
		s := newSender(t, SMTPConfig{Addr: srv.addr(), Timeout: 200 * time.Millisecond}, nil)
		err := s.Send(context.Background(), Message{To: "a@example.com", Subject: "s"})
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Send: %v, want a deadline error", err)
		}
	})
	t.Run("cancelled context", func(t *testing.T) {
		srv := startSMTP(t, &smtpServer{silent: true})
		s := newSender(t, SMTPConfig{Addr: srv.addr()}, nil)
		ctx, cancel := context.WithCancel(context.Background())
		go func() { time.Sleep(50 * time.Millisecond); cancel() }()
		if err := s.Send(ctx, Message{To: "a@example.com", Subject: "s"}); !errors.Is(err, context.Canceled) {
			t.Errorf("Send: %v, want context.Canceled", err)
		}
	})
	t.Run("header injection refused before connecting", func(t *testing.T) {
		s := newSender(t, SMTPConfig{Addr: "192.0.2.1:25"}, nil) // TEST-NET: never dialled
		if err := s.Send(context.Background(), Message{To: "a@example.com\r\nBcc: x@evil.test", Subject: "s"}); err == nil {
			t.Error("Send accepted a line break in To")
		}
	})
}

func TestSMTPConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  SMTPConfig
		want string
	}{
		{"ok", SMTPConfig{Addr: "smtp.example.net:587", From: "ca@example.net"}, ""},
		{"no port", SMTPConfig{Addr: "smtp.example.net", From: "ca@example.net"}, "host:port"},
		{"bad from", SMTPConfig{Addr: "smtp.example.net:25", From: "nobody"}, "From"},
		{"negative timeout", SMTPConfig{Addr: "smtp.example.net:25", From: "ca@example.net", Timeout: -1}, "Timeout"},
		{"password alone", SMTPConfig{Addr: "smtp.example.net:25", From: "ca@example.net", Password: "x"}, "Username"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if (tt.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tt.want)) {
				t.Errorf("Validate: %v, want %q", err, tt.want)
			}
		})
	}
}
