package pkcs11key

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"log/slog"
	"math/big"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/miekg/pkcs11"
	"github.com/trustline/trustline/internal/keyfile"
	"github.com/trustline/trustline/internal/pkcs11key/hsmtest"
	"github.com/trustline/trustline/internal/testfix"
)

// fixture is a fresh SoftHSM2 token and the config that opens it.
func fixture(t testing.TB, sessions int) Config {
	t.Helper()
	module, label, pin := hsmtest.NewToken(t)
	return Config{ModulePath: module, TokenLabel: label, PIN: pin, Sessions: sessions}
}

func openTest(t testing.TB, cfg Config) *Token {
	t.Helper()
	tok, err := Open(cfg, testfix.Logger(t))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := tok.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return tok
}

func newTestToken(t testing.TB, sessions int) *Token {
	t.Helper()
	return openTest(t, fixture(t, sessions))
}

func generate(t testing.TB, tok *Token, label string, alg keyfile.Algorithm) *Signer {
	t.Helper()
	s, err := tok.GenerateKey(context.Background(), label, alg)
	if err != nil {
		t.Fatalf("GenerateKey(%q, %s): %v", label, alg, err)
	}
	return s.(*Signer)
}

// keys is the subset of *Token that key consumers (issuer/pki) declare.
type keys interface {
	GenerateKey(ctx context.Context, label string, alg keyfile.Algorithm) (crypto.Signer, error)
	FindKey(ctx context.Context, label string) (crypto.Signer, error)
}

var _ keys = (*Token)(nil)

func verify(t testing.TB, pub crypto.PublicKey, h crypto.Hash, digest, sig []byte) {
	t.Helper()
	switch pub := pub.(type) {
	case *ecdsa.PublicKey:
		if !ecdsa.VerifyASN1(pub, digest, sig) {
			t.Fatal("ECDSA signature does not verify")
		}
	case *rsa.PublicKey:
		if err := rsa.VerifyPKCS1v15(pub, h, digest, sig); err != nil {
			t.Fatalf("RSA signature does not verify: %v", err)
		}
	default:
		t.Fatalf("unexpected public key type %T", pub)
	}
}

func digestOf(h crypto.Hash, msg string) []byte {
	hh := h.New()
	hh.Write([]byte(msg))
	return hh.Sum(nil)
}

var testAlgorithms = []keyfile.Algorithm{keyfile.ECDSAP256, keyfile.ECDSAP384, keyfile.RSA2048}

func TestGenerateSignVerify(t *testing.T) {
	tok := newTestToken(t, 2)
	for _, alg := range testAlgorithms {
		t.Run(alg.String(), func(t *testing.T) {
			s := generate(t, tok, "key-"+alg.String(), alg)
			if got, err := keyfile.Of(s.Public()); err != nil || got != alg {
				t.Fatalf("public key algorithm = %v, %v; want %v", got, err, alg)
			}
			if s.Label() != "key-"+alg.String() || s.Algorithm() != alg {
				t.Errorf("Label, Algorithm = %q, %v", s.Label(), s.Algorithm())
			}
			fs, err := tok.FindKey(context.Background(), "key-"+alg.String())
			if err != nil {
				t.Fatalf("FindKey: %v", err)
			}
			found := fs.(*Signer)
			if !found.Public().(interface{ Equal(crypto.PublicKey) bool }).Equal(s.Public()) {
				t.Fatal("FindKey's public key differs from GenerateKey's")
			}
			for _, h := range []crypto.Hash{crypto.SHA256, crypto.SHA384, crypto.SHA512} {
				t.Run(h.String(), func(t *testing.T) {
					for _, signer := range []*Signer{s, found} {
						d := digestOf(h, "to be signed")
						sig, err := signer.Sign(rand.Reader, d, h)
						if err != nil {
							t.Fatalf("Sign: %v", err)
						}
						verify(t, signer.Public(), h, d, sig)
						sig, err = signer.SignContext(context.Background(), d, h)
						if err != nil {
							t.Fatalf("SignContext: %v", err)
						}
						verify(t, signer.Public(), h, d, sig)
					}
				})
			}
		})
	}
}

func TestGeneratedKeyAttributes(t *testing.T) {
	tok := newTestToken(t, 1)
	s := generate(t, tok, "attrs", keyfile.ECDSAP256)
	type attrs struct {
		Token, Private, Sign, Sensitive, Extractable, AlwaysSensitive, NeverExtractable bool
		Label                                                                           string
		IDLen                                                                           int
	}
	var got attrs
	var pubID []byte
	err := tok.do(context.Background(), 0, func(sh pkcs11.SessionHandle) error {
		a, err := tok.p11.GetAttributeValue(sh, pkcs11.ObjectHandle(s.handle.Load()), []*pkcs11.Attribute{
			pkcs11.NewAttribute(pkcs11.CKA_TOKEN, nil),
			pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, nil),
			pkcs11.NewAttribute(pkcs11.CKA_SIGN, nil),
			pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, nil),
			pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, nil),
			pkcs11.NewAttribute(pkcs11.CKA_ALWAYS_SENSITIVE, nil),
			pkcs11.NewAttribute(pkcs11.CKA_NEVER_EXTRACTABLE, nil),
			pkcs11.NewAttribute(pkcs11.CKA_LABEL, nil),
			pkcs11.NewAttribute(pkcs11.CKA_ID, nil),
		})
		if err != nil {
			return err
		}
		b := func(i int) bool { return len(a[i].Value) == 1 && a[i].Value[0] != 0 }
		got = attrs{b(0), b(1), b(2), b(3), b(4), b(5), b(6), string(a[7].Value), len(a[8].Value)}
		if string(a[8].Value) != string(s.id) {
			t.Errorf("CKA_ID = %x, signer holds %x", a[8].Value, s.id)
		}
		pubH, err := tok.findPublic(sh, "attrs", s.id)
		if err != nil {
			return err
		}
		p, err := tok.p11.GetAttributeValue(sh, pubH, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_ID, nil)})
		if err != nil {
			return err
		}
		pubID = p[0].Value
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := attrs{Token: true, Private: true, Sign: true, Sensitive: true, Extractable: false,
		AlwaysSensitive: true, NeverExtractable: true, Label: "attrs", IDLen: idLen}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("private key attributes (-want +got):\n%s", diff)
	}
	if string(pubID) != string(s.id) {
		t.Errorf("public key CKA_ID = %x, want %x", pubID, s.id)
	}
}

func TestGenerateKeyRefusesExistingLabel(t *testing.T) {
	tok := newTestToken(t, 1)
	generate(t, tok, "dup", keyfile.ECDSAP256)
	s, err := tok.GenerateKey(context.Background(), "dup", keyfile.RSA2048)
	if !errors.Is(err, ErrKeyExists) || s != nil {
		t.Fatalf("second GenerateKey(dup) = %v, %v; want a nil Signer and ErrKeyExists", s, err)
	}
	for _, tt := range []struct {
		label string
		alg   keyfile.Algorithm
	}{{"", keyfile.ECDSAP256}, {"bad-alg", 0}} {
		if _, err := tok.GenerateKey(context.Background(), tt.label, tt.alg); err == nil {
			t.Errorf("GenerateKey(%q, %v) succeeded", tt.label, tt.alg)
		}
	}
}

func TestFindKey(t *testing.T) {
	cfg := fixture(t, 1)
	tok, err := Open(cfg, testfix.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	want := generate(t, tok, "persistent", keyfile.ECDSAP384).Public()
	if s, err := tok.FindKey(context.Background(), "absent"); !errors.Is(err, ErrKeyNotFound) || s != nil {
		t.Errorf("FindKey(absent) = %v, %v; want a nil Signer and ErrKeyNotFound", s, err)
	}
	if _, err := tok.FindKey(context.Background(), ""); err == nil {
		t.Error("FindKey(\"\") succeeded")
	}
	if err := tok.Close(); err != nil {
		t.Fatal(err)
	}
	// Keys are token objects: they outlive the sessions and the module.
	tok = openTest(t, cfg)
	s, err := tok.FindKey(context.Background(), "persistent")
	if err != nil {
		t.Fatalf("FindKey after reopening: %v", err)
	}
	if !s.Public().(*ecdsa.PublicKey).Equal(want) {
		t.Error("public key changed across reopening")
	}
}

func TestFindKeyRefusesMismatchedPair(t *testing.T) {
	tok := newTestToken(t, 1)
	a := generate(t, tok, "a", keyfile.ECDSAP256)
	b := generate(t, tok, "b", keyfile.ECDSAP256)
	// Give a's public key object b's CKA_ID and label, and b's public key
	// a's: FindKey("a") now pairs a's private key with b's public key.
	err := tok.do(context.Background(), 0, func(sh pkcs11.SessionHandle) error {
		pa, err := tok.findPublic(sh, "a", a.id)
		if err != nil {
			return err
		}
		pb, err := tok.findPublic(sh, "b", b.id)
		if err != nil {
			return err
		}
		if err := tok.p11.SetAttributeValue(sh, pa, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_LABEL, "b"), pkcs11.NewAttribute(pkcs11.CKA_ID, b.id)}); err != nil {
			return err
		}
		return tok.p11.SetAttributeValue(sh, pb, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_LABEL, "a"), pkcs11.NewAttribute(pkcs11.CKA_ID, a.id)})
	})
	if err != nil {
		t.Fatal(err)
	}
	_, err = tok.FindKey(context.Background(), "a")
	if err == nil || !strings.Contains(err.Error(), "do not match") {
		t.Fatalf("FindKey of a mismatched pair: %v, want a self-check failure", err)
	}
}

func TestCreateCertificate(t *testing.T) {
	tok := newTestToken(t, 2)
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, alg := range testAlgorithms {
		t.Run(alg.String(), func(t *testing.T) {
			ca := generate(t, tok, "ca-"+alg.String(), alg)
			tmpl := &x509.Certificate{
				SerialNumber:          big.NewInt(1),
				Subject:               pkix.Name{CommonName: "Trustline Test CA " + alg.String()},
				NotBefore:             now,
				NotAfter:              now.Add(24 * time.Hour),
				KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
				BasicConstraintsValid: true,
				IsCA:                  true,
			}
			der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, ca.Public(), ca)
			if err != nil {
				t.Fatalf("CreateCertificate: %v", err)
			}
			cert, err := x509.ParseCertificate(der)
			if err != nil {
				t.Fatal(err)
			}
			if err := cert.CheckSignatureFrom(cert); err != nil {
				t.Fatalf("self-signed certificate does not verify: %v", err)
			}
			leafKey, err := keyfile.Generate(keyfile.ECDSAP256, rand.Reader)
			if err != nil {
				t.Fatal(err)
			}
			leafDER, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{
				SerialNumber: big.NewInt(2),
				Subject:      pkix.Name{CommonName: "leaf.example"},
				DNSNames:     []string{"leaf.example"},
				NotBefore:    now,
				NotAfter:     now.Add(time.Hour),
				ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
			}, cert, leafKey.Public(), ca)
			if err != nil {
				t.Fatalf("CreateCertificate (leaf): %v", err)
			}
			leaf, err := x509.ParseCertificate(leafDER)
			if err != nil {
				t.Fatal(err)
			}
			roots := x509.NewCertPool()
			roots.AddCert(cert)
			if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, CurrentTime: now.Add(time.Minute), DNSName: "leaf.example"}); err != nil {
				t.Fatalf("leaf does not verify: %v", err)
			}
		})
	}
}

func TestSignRejectsOptions(t *testing.T) {
	tok := newTestToken(t, 1)
	ec := generate(t, tok, "ec", keyfile.ECDSAP256)
	rs := generate(t, tok, "rsa", keyfile.RSA2048)
	d256 := sha256.Sum256([]byte("x"))
	d512 := sha512.Sum512([]byte("x"))
	tests := []struct {
		name   string
		signer *Signer
		digest []byte
		opts   crypto.SignerOpts
		want   string
	}{
		{"PSS", rs, d256[:], &rsa.PSSOptions{Hash: crypto.SHA256}, "RSA-PSS is not supported"},
		{"SHA-1 RSA", rs, d256[:20], crypto.SHA1, "hash SHA-1 is not supported"},
		{"SHA-1 ECDSA", ec, d256[:20], crypto.SHA1, "hash SHA-1 is not supported"},
		{"no hash", ec, d256[:], crypto.Hash(0), "is not supported"},
		{"nil opts", ec, d256[:], nil, "nil SignerOpts"},
		{"short digest", rs, d256[:31], crypto.SHA256, "digest is 31 bytes"},
		{"digest of another hash", ec, d512[:], crypto.SHA256, "digest is 64 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.signer.Sign(rand.Reader, tt.digest, tt.opts)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Sign: %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

func TestConcurrentSigning(t *testing.T) {
	tok := newTestToken(t, 2)
	signers := []*Signer{
		generate(t, tok, "ec", keyfile.ECDSAP256),
		generate(t, tok, "rsa", keyfile.RSA2048),
	}
	const goroutines, each = 16, 25
	var wg sync.WaitGroup
	errs := make(chan error, goroutines)
	for g := range goroutines {
		wg.Go(func() {
			s := signers[g%len(signers)]
			for i := range each {
				d := digestOf(crypto.SHA256, string(rune(g*each+i)))
				sig, err := s.Sign(rand.Reader, d, crypto.SHA256)
				if err != nil {
					errs <- err
					return
				}
				if s.alg.Curve() != nil && !ecdsa.VerifyASN1(s.Public().(*ecdsa.PublicKey), d, sig) ||
					s.alg.Curve() == nil && rsa.VerifyPKCS1v15(s.Public().(*rsa.PublicKey), crypto.SHA256, d, sig) != nil {
					errs <- errors.New("signature does not verify")
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := len(tok.pool); n != 2 {
		t.Errorf("pool holds %d sessions after the run, want 2", n)
	}
}

// sabotage runs f on a session taken from the pool behind its back.
func sabotage(t *testing.T, tok *Token, f func(*session) error) {
	t.Helper()
	s, err := tok.acquire(context.Background(), 0)
	if err != nil {
		t.Fatal(err)
	}
	defer tok.release(s)
	if err := f(s); err != nil {
		t.Fatalf("sabotage: %v", err)
	}
}

func TestSessionRecovery(t *testing.T) {
	tests := []struct {
		name     string
		sessions int
		break_   func(tok *Token, s *session) error
	}{
		{"session closed", 1, func(tok *Token, s *session) error { return tok.p11.CloseSession(s.h) }},
		{"logged out", 1, func(tok *Token, s *session) error { return tok.p11.Logout(s.h) }},
		{"all sessions closed", 3, func(tok *Token, s *session) error { return tok.p11.CloseAllSessions(tok.slot) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok := newTestToken(t, tt.sessions)
			signers := []*Signer{generate(t, tok, "ec", keyfile.ECDSAP256), generate(t, tok, "rsa", keyfile.RSA2048)}
			sabotage(t, tok, func(s *session) error { return tt.break_(tok, s) })
			// Every pooled session has to recover, not just the first.
			for i := range 2 * tt.sessions {
				for _, s := range signers {
					d := digestOf(crypto.SHA256, "after sabotage")
					sig, err := s.SignContext(context.Background(), d, crypto.SHA256)
					if err != nil {
						t.Fatalf("sign %d with %s after sabotage: %v", i, s.alg, err)
					}
					verify(t, s.Public(), crypto.SHA256, d, sig)
				}
			}
			if _, err := tok.FindKey(context.Background(), "ec"); err != nil {
				t.Errorf("FindKey after sabotage: %v", err)
			}
		})
	}
}

func TestAcquireWaitIsBounded(t *testing.T) {
	cfg := fixture(t, 1)
	cfg.AcquireTimeout = 100 * time.Millisecond
	tok := openTest(t, cfg)
	s := generate(t, tok, "ec", keyfile.ECDSAP256)
	held, err := tok.acquire(context.Background(), 0)
	if err != nil {
		t.Fatal(err)
	}
	d := digestOf(crypto.SHA256, "busy")

	t.Run("cancel", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(20*time.Millisecond, cancel)
		start := time.Now()
		_, err := s.SignContext(ctx, d, crypto.SHA256)
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("SignContext: %v, want context.Canceled", err)
		}
		// Generous: this only catches a wait that ignores the context.
		if el := time.Since(start); el > 2*time.Second {
			t.Errorf("cancellation took %v", el)
		}
	})
	t.Run("deadline", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		defer cancel()
		if _, err := s.SignContext(ctx, d, crypto.SHA256); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("SignContext: %v, want context.DeadlineExceeded", err)
		}
	})
	t.Run("already cancelled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		tok.release(held) // a free session must not win over a dead context
		defer func() { held, _ = tok.acquire(context.Background(), 0) }()
		if _, err := s.SignContext(ctx, d, crypto.SHA256); !errors.Is(err, context.Canceled) {
			t.Fatalf("SignContext: %v, want context.Canceled", err)
		}
	})
	t.Run("Sign uses AcquireTimeout", func(t *testing.T) {
		_, err := s.Sign(rand.Reader, d, crypto.SHA256)
		if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "no session free within 100ms") {
			t.Fatalf("Sign: %v, want a pool timeout", err)
		}
	})
	t.Run("GenerateKey", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		defer cancel()
		if _, err := tok.GenerateKey(ctx, "late", keyfile.ECDSAP256); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("GenerateKey: %v, want context.DeadlineExceeded", err)
		}
	})
	tok.release(held)
	if _, err := s.SignContext(context.Background(), d, crypto.SHA256); err != nil {
		t.Fatalf("SignContext once the session is free: %v", err)
	}
}

func TestClose(t *testing.T) {
	cfg := fixture(t, 2)
	tok, err := Open(cfg, testfix.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	s := generate(t, tok, "ec", keyfile.ECDSAP256)
	held, err := tok.acquire(context.Background(), 0)
	if err != nil {
		t.Fatal(err)
	}
	closed := make(chan error)
	go func() { closed <- tok.Close() }()
	select {
	case err := <-closed:
		t.Fatalf("Close returned (%v) while a session was in use", err)
	case <-time.After(50 * time.Millisecond):
	}
	tok.release(held)
	if err := <-closed; err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := tok.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	d := digestOf(crypto.SHA256, "closed")
	if _, err := s.Sign(rand.Reader, d, crypto.SHA256); !errors.Is(err, ErrClosed) {
		t.Errorf("Sign after Close: %v, want ErrClosed", err)
	}
	if _, err := tok.FindKey(context.Background(), "ec"); !errors.Is(err, ErrClosed) {
		t.Errorf("FindKey after Close: %v, want ErrClosed", err)
	}
	assertNoModules(t)
}

func assertNoModules(t *testing.T) {
	t.Helper()
	modules.Lock()
	defer modules.Unlock()
	if n := len(modules.byPath); n != 0 {
		t.Errorf("%d modules still loaded", n)
	}
}

func TestTokensShareTheModule(t *testing.T) {
	cfg := fixture(t, 1)
	a, err := Open(cfg, testfix.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	b := openTest(t, cfg)
	generate(t, a, "shared", keyfile.ECDSAP256)
	// Closing a must not finalise the module under b.
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	s, err := b.FindKey(context.Background(), "shared")
	if err != nil {
		t.Fatalf("FindKey on the second Token after closing the first: %v", err)
	}
	d := digestOf(crypto.SHA256, "shared")
	if _, err := s.Sign(rand.Reader, d, crypto.SHA256); err != nil {
		t.Fatalf("Sign: %v", err)
	}
}

func TestOpenErrors(t *testing.T) {
	cfg := fixture(t, 1)
	tests := []struct {
		name    string
		mutate  func(*Config)
		wantIs  error
		wantMsg string
	}{
		{"wrong PIN", func(c *Config) { c.PIN = "00000000" }, ErrPINIncorrect, "logging in to token " + `"` + cfg.TokenLabel + `": incorrect PIN`},
		{"unknown label", func(c *Config) { c.TokenLabel = "no-such-token" }, ErrTokenNotFound, `no initialised token labelled "no-such-token"`},
		{"missing module", func(c *Config) { c.ModulePath = "/nonexistent/libpkcs11.so" }, nil, "loading module /nonexistent/libpkcs11.so"},
		{"not a module", func(c *Config) { c.ModulePath = "/etc/hostname" }, nil, "dlopen failed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := cfg
			tt.mutate(&c)
			tok, err := Open(c, testfix.Logger(t))
			if err == nil {
				tok.Close()
				t.Fatal("Open succeeded")
			}
			if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
				t.Errorf("Open: %v, want %v", err, tt.wantIs)
			}
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("Open: %q, want it to contain %q", err, tt.wantMsg)
			}
			if strings.Contains(err.Error(), c.PIN) {
				t.Errorf("error %q contains the PIN", err)
			}
			assertNoModules(t)
		})
	}
	// The present label is listed to help the operator.
	c := cfg
	c.TokenLabel = "typo"
	if _, err := Open(c, nil); err == nil || !strings.Contains(err.Error(), cfg.TokenLabel) {
		t.Errorf("unknown-label error %v does not list the present token", err)
	}
}

func TestConfigValidate(t *testing.T) {
	good := Config{ModulePath: "/usr/lib/softhsm/libsofthsm2.so", TokenLabel: "ca", PIN: "1234"}
	tests := []struct {
		name    string
		mutate  func(*Config)
		wantErr string
	}{
		{"good", func(*Config) {}, ""},
		{"no module", func(c *Config) { c.ModulePath = "" }, "ModulePath is required"},
		{"relative module", func(c *Config) { c.ModulePath = "libsofthsm2.so" }, "must be absolute"},
		{"no label", func(c *Config) { c.TokenLabel = "" }, "TokenLabel is required"},
		{"long label", func(c *Config) { c.TokenLabel = strings.Repeat("x", 33) }, "longer than 32 bytes"},
		{"no PIN", func(c *Config) { c.PIN = "" }, "PIN is required"},
		{"negative sessions", func(c *Config) { c.Sessions = -1 }, "Sessions -1"},
		{"too many sessions", func(c *Config) { c.Sessions = 5000 }, "Sessions 5000"},
		{"negative timeout", func(c *Config) { c.AcquireTimeout = -time.Second }, "AcquireTimeout"},
		{"negative probe interval", func(c *Config) { c.ProbeInterval = -time.Second }, "ProbeInterval -1s must not be negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := good
			tt.mutate(&c)
			err := c.Validate()
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Validate: %v, want an error containing %q", err, tt.wantErr)
			}
			if _, err := Open(c, nil); err == nil {
				t.Error("Open accepted an invalid config")
			}
		})
	}
	d := good.withDefaults()
	if d.Sessions != DefaultSessions || d.AcquireTimeout != DefaultAcquireTimeout || d.ProbeInterval != DefaultProbeInterval {
		t.Errorf("withDefaults = %+v", d)
	}
}

func TestConfigHidesPIN(t *testing.T) {
	c := Config{ModulePath: "/m.so", TokenLabel: "ca", PIN: "s3cret-pin"}
	var b strings.Builder
	slog.New(slog.NewTextHandler(&b, nil)).Info("x", "config", c)
	for _, s := range []string{c.String(), b.String(), fmtV(c)} {
		if strings.Contains(s, "s3cret-pin") {
			t.Errorf("PIN shown in %q", s)
		}
	}
}

func TestConfigShowsProbeInterval(t *testing.T) {
	c := Config{ModulePath: "/m.so", TokenLabel: "ca", PIN: "1234", ProbeInterval: 2500 * time.Millisecond}
	var b strings.Builder
	slog.New(slog.NewTextHandler(&b, nil)).Info("x", "config", c)
	if s := c.String(); !strings.Contains(s, "ProbeInterval:2.5s") {
		t.Errorf("String() = %q, want ProbeInterval:2.5s in it", s)
	}
	if s := b.String(); !strings.Contains(s, "config.probe_interval=2.5s") {
		t.Errorf("logged %q, want config.probe_interval=2.5s in it", s)
	}
}

func TestStaleKeyHandle(t *testing.T) {
	tok := newTestToken(t, 1)
	s := generate(t, tok, "ec", keyfile.ECDSAP256)
	good := s.handle.Load()
	s.handle.Store(good + 1000) // no such object
	d := digestOf(crypto.SHA256, "stale")
	sig, err := s.Sign(rand.Reader, d, crypto.SHA256)
	if err != nil {
		t.Fatalf("Sign with a stale handle: %v", err)
	}
	verify(t, s.Public(), crypto.SHA256, d, sig)
	if got := s.handle.Load(); got != good {
		t.Errorf("handle after refind = %d, want %d", got, good)
	}
}
