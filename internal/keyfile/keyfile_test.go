package keyfile

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestAlgorithmNames(t *testing.T) {
	tests := []struct {
		name string
		want Algorithm
	}{
		{"ecdsa-p256", ECDSAP256},
		{"ecdsa-p384", ECDSAP384},
		{"rsa-2048", RSA2048},
		{"rsa-3072", RSA3072},
		{"rsa-4096", RSA4096},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse(tt.name)
			if err != nil || got != tt.want {
				t.Fatalf("Parse(%q) = %v, %v; want %v", tt.name, got, err, tt.want)
			}
			if got.String() != tt.name {
				t.Errorf("String() = %q, want %q", got.String(), tt.name)
			}
			text, err := got.MarshalText()
			if err != nil || string(text) != tt.name {
				t.Errorf("MarshalText() = %q, %v", text, err)
			}
			var back Algorithm
			if err := back.UnmarshalText(text); err != nil || back != got {
				t.Errorf("UnmarshalText(%q) = %v, %v", text, back, err)
			}
		})
	}
	if diff := cmp.Diff([]Algorithm{ECDSAP256, ECDSAP384, RSA2048, RSA3072, RSA4096}, Algorithms); diff != "" {
		t.Errorf("Algorithms (-want +got):\n%s", diff)
	}
}

func TestAlgorithmParseRejects(t *testing.T) {
	for _, in := range []string{"", "ECDSA-P256", "ecdsa-p521", "rsa-1024", "ed25519", "rsa2048"} {
		t.Run(in, func(t *testing.T) {
			if a, err := Parse(in); !errors.Is(err, ErrUnsupported) {
				t.Errorf("Parse(%q) = %v, %v; want ErrUnsupported", in, a, err)
			}
			var a Algorithm
			if err := a.UnmarshalText([]byte(in)); err == nil {
				t.Errorf("UnmarshalText(%q) succeeded", in)
			}
		})
	}
	if _, err := Algorithm(0).MarshalText(); err == nil {
		t.Error("MarshalText of the zero Algorithm succeeded")
	}
	if _, err := Generate(0, nil); !errors.Is(err, ErrUnsupported) {
		t.Errorf("Generate(0) error = %v, want ErrUnsupported", err)
	}
}

// keys caches one generated key per algorithm: RSA-4096 generation takes
// seconds and every test wants the same keys.
var keys = struct {
	once sync.Once
	m    map[Algorithm]crypto.Signer
	err  error
}{}

func testKeys(t *testing.T) map[Algorithm]crypto.Signer {
	t.Helper()
	keys.once.Do(func() {
		keys.m = map[Algorithm]crypto.Signer{}
		for _, a := range Algorithms {
			k, err := Generate(a, rand.Reader)
			if err != nil {
				keys.err = err
				return
			}
			keys.m[a] = k
		}
	})
	if keys.err != nil {
		t.Fatal(keys.err)
	}
	return keys.m
}

func TestGenerate(t *testing.T) {
	for alg, key := range testKeys(t) {
		t.Run(alg.String(), func(t *testing.T) {
			got, err := Of(key.Public())
			if err != nil || got != alg {
				t.Fatalf("Of(generated %s key) = %v, %v", alg, got, err)
			}
			checkSigns(t, key)
		})
	}
}

func checkSigns(t *testing.T, key crypto.Signer) {
	t.Helper()
	digest := sha256.Sum256([]byte("trustline"))
	sig, err := key.Sign(rand.Reader, digest[:], crypto.SHA256)
	if err != nil {
		t.Fatalf("Sign: %v", err)
	}
	switch pub := key.Public().(type) {
	case *ecdsa.PublicKey:
		if !ecdsa.VerifyASN1(pub, digest[:], sig) {
			t.Error("ECDSA signature does not verify")
		}
	case *rsa.PublicKey:
		if err := rsa.VerifyPKCS1v15(pub, crypto.SHA256, digest[:], sig); err != nil {
			t.Errorf("RSA signature does not verify: %v", err)
		}
	default:
		t.Fatalf("unexpected public key %T", pub)
	}
}

func TestWriteLoadRoundTrip(t *testing.T) {
	for alg, key := range testKeys(t) {
		t.Run(alg.String(), func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "ca.key")
			if err := Write(path, key); err != nil {
				t.Fatalf("Write: %v", err)
			}
			fi, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode().Perm() != 0o600 {
				t.Errorf("mode = %04o, want 0600", fi.Mode().Perm())
			}
			entries, err := os.ReadDir(dir)
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, e := range entries {
				names = append(names, e.Name())
			}
			if diff := cmp.Diff([]string{"ca.key"}, names); diff != "" {
				t.Errorf("directory after Write (-want +got):\n%s", diff)
			}
			loaded, err := Load(path)
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			eq, ok := loaded.(interface{ Equal(crypto.PrivateKey) bool })
			if !ok || !eq.Equal(key) {
				t.Error("loaded key differs from the written one")
			}
			checkSigns(t, loaded)
		})
	}
}

func TestWriteRefusesOverwrite(t *testing.T) {
	key := testKeys(t)[ECDSAP256]
	path := filepath.Join(t.TempDir(), "ca.key")
	if err := os.WriteFile(path, []byte("precious"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := Write(path, key); !errors.Is(err, ErrExists) {
		t.Fatalf("Write over an existing file: %v, want ErrExists", err)
	}
	got, err := os.ReadFile(path)
	if err != nil || string(got) != "precious" {
		t.Errorf("existing file changed: %q, %v", got, err)
	}
	// A dangling symlink is an existing name too.
	link := filepath.Join(t.TempDir(), "link.key")
	if err := os.Symlink(filepath.Join(t.TempDir(), "absent"), link); err != nil {
		t.Fatal(err)
	}
	if err := Write(link, key); !errors.Is(err, ErrExists) {
		t.Errorf("Write over a dangling symlink: %v, want ErrExists", err)
	}
}

func TestWriteConcurrentOnlyOneWins(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ca.key")
	const n = 8
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() { errs <- Write(path, testKeys(t)[ECDSAP256]) })
	}
	wg.Wait()
	close(errs)
	var ok int
	for err := range errs {
		switch {
		case err == nil:
			ok++
		case !errors.Is(err, ErrExists):
			t.Errorf("unexpected error: %v", err)
		}
	}
	if ok != 1 {
		t.Errorf("%d concurrent Writes succeeded, want exactly 1", ok)
	}
}

func TestWriteRejects(t *testing.T) {
	p521, err := ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	_, ed, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		key  crypto.Signer
	}{
		{"nil", nil},
		{"p521", p521},
		{"ed25519", ed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "k.pem")
			if err := Write(path, tt.key); err == nil {
				t.Fatal("Write succeeded")
			}
			if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("file left behind: %v", err)
			}
		})
	}
	if err := Write(filepath.Join(t.TempDir(), "missing", "k.pem"), testKeys(t)[ECDSAP256]); err == nil {
		t.Error("Write into a missing directory succeeded")
	}
}

func TestLoadRefusesLoosePermissions(t *testing.T) {
	key := testKeys(t)[ECDSAP256]
	tests := []struct {
		mode    os.FileMode
		wantErr bool
	}{
		{0o600, false},
		{0o400, false},
		{0o700, false},
		{0o640, true},
		{0o604, true},
		{0o660, true},
		{0o644, true},
		{0o610, true},
		{0o601, true},
	}
	for _, tt := range tests {
		t.Run(tt.mode.String(), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "ca.key")
			if err := Write(path, key); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(path, tt.mode); err != nil {
				t.Fatal(err)
			}
			_, err := Load(path)
			if tt.wantErr {
				if !errors.Is(err, ErrPermissions) {
					t.Fatalf("Load of a %04o file: %v, want ErrPermissions", tt.mode, err)
				}
				if !strings.Contains(err.Error(), "chmod 600") {
					t.Errorf("error %q does not say how to fix it", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Load of a %04o file: %v", tt.mode, err)
			}
		})
	}
}

func TestLoadRefusesNonFiles(t *testing.T) {
	dir := t.TempDir()
	if _, err := Load(filepath.Join(dir, "absent.key")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Load of a missing file: %v, want ErrNotExist", err)
	}
	sub := filepath.Join(dir, "sub")
	if err := os.Mkdir(sub, 0o700); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(sub); err == nil {
		t.Error("Load of a directory succeeded")
	}
	big := filepath.Join(dir, "big.key")
	if err := os.WriteFile(big, make([]byte, maxFileSize+1), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(big); err == nil {
		t.Error("Load of an oversized file succeeded")
	}
}

func pemOf(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

func mustPKCS8(t *testing.T, k any) []byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func TestLoadRejectsContent(t *testing.T) {
	p256 := testKeys(t)[ECDSAP256].(*ecdsa.PrivateKey)
	rsa2048 := testKeys(t)[RSA2048].(*rsa.PrivateKey)
	sec1, err := x509.MarshalECPrivateKey(p256)
	if err != nil {
		t.Fatal(err)
	}
	p521, err := ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	rsa1024, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	_, ed, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	good := pemOf("PRIVATE KEY", mustPKCS8(t, p256))
	withHeaders := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Headers: map[string]string{"Proc-Type": "4,ENCRYPTED"}, Bytes: mustPKCS8(t, p256)})

	tests := []struct {
		name            string
		data            []byte
		wantUnsupported bool
		wantInError     string
	}{
		{name: "empty", data: nil, wantInError: "no PEM block"},
		{name: "garbage", data: []byte("not a key\n"), wantInError: "no PEM block"},
		{name: "raw DER", data: mustPKCS8(t, p256), wantInError: "no PEM block"},
		{name: "SEC1", data: pemOf("EC PRIVATE KEY", sec1), wantUnsupported: true, wantInError: "openssl pkcs8 -topk8"},
		{name: "PKCS#1", data: pemOf("RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(rsa2048)), wantUnsupported: true, wantInError: "openssl pkcs8 -topk8"},
		{name: "encrypted", data: pemOf("ENCRYPTED PRIVATE KEY", []byte{0x30, 0x00}), wantUnsupported: true, wantInError: "encrypted"},
		{name: "certificate", data: pemOf("CERTIFICATE", []byte{0x30, 0x00}), wantInError: `"CERTIFICATE"`},
		{name: "headers", data: withHeaders, wantInError: "headers"},
		{name: "bad DER", data: pemOf("PRIVATE KEY", []byte{0x30, 0x03, 0x02, 0x01, 0x00}), wantInError: "parsing PKCS#8"},
		{name: "P-521", data: pemOf("PRIVATE KEY", mustPKCS8(t, p521)), wantUnsupported: true, wantInError: "P-521"},
		{name: "RSA-1024", data: pemOf("PRIVATE KEY", mustPKCS8(t, rsa1024)), wantUnsupported: true, wantInError: "1024-bit"},
		{name: "Ed25519", data: pemOf("PRIVATE KEY", mustPKCS8(t, ed)), wantUnsupported: true, wantInError: "ed25519"},
		{name: "two keys", data: append(append([]byte{}, good...), good...), wantInError: "more than one PEM block"},
		{name: "trailing", data: append(append([]byte{}, good...), "junk"...), wantInError: "trailing data"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "k.pem")
			if err := os.WriteFile(path, tt.data, 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := Load(path)
			if err == nil {
				t.Fatal("Load succeeded")
			}
			if got := errors.Is(err, ErrUnsupported); got != tt.wantUnsupported {
				t.Errorf("errors.Is(%v, ErrUnsupported) = %v, want %v", err, got, tt.wantUnsupported)
			}
			if !strings.Contains(err.Error(), tt.wantInError) {
				t.Errorf("error %q does not mention %q", err, tt.wantInError)
			}
			if !strings.HasPrefix(err.Error(), "keyfile: loading "+path+": ") {
				t.Errorf("error %q lacks the package and path prefix", err)
			}
			assertNoKeyMaterial(t, err, tt.data)
		})
	}
}

// assertNoKeyMaterial fails if any line of the PEM body, or any 8-byte run
// of the decoded bytes, appears in err.
func assertNoKeyMaterial(t *testing.T, err error, data []byte) {
	t.Helper()
	msg := err.Error()
	for _, line := range strings.Split(string(data), "\n") {
		if len(line) >= 16 && !strings.HasPrefix(line, "-----") && strings.Contains(msg, line) {
			t.Fatalf("error quotes the input: %q", msg)
		}
	}
	if b, _ := pem.Decode(data); b != nil {
		for i := 0; i+8 <= len(b.Bytes); i++ {
			if strings.Contains(msg, string(b.Bytes[i:i+8])) {
				t.Fatalf("error quotes key bytes at offset %d", i)
			}
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, a := range []Algorithm{ECDSAP256, RSA2048} {
		k, err := Generate(a, nil)
		if err != nil {
			f.Fatal(err)
		}
		der, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(pemOf("PRIVATE KEY", der))
		f.Add(der)
	}
	f.Add([]byte("-----BEGIN PRIVATE KEY-----\nMAA=\n-----END PRIVATE KEY-----\n"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		key, err := parse(data)
		if err != nil {
			if key != nil {
				t.Fatal("parse returned a key and an error")
			}
			// A bounded message cannot echo the input back.
			if len(err.Error()) > 400 {
				t.Fatalf("error of %d bytes: %q", len(err.Error()), err)
			}
			return
		}
		if _, err := Of(key.Public()); err != nil {
			t.Fatalf("parse accepted a key of an unsupported algorithm: %v", err)
		}
	})
}
