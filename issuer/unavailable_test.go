package issuer

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"testing"
	"time"

	"github.com/trustline/trustline/internal/linter"
	"github.com/trustline/trustline/internal/testfix"
	"github.com/trustline/trustline/issuer/fault"
	"github.com/trustline/trustline/issuer/pki"
	"github.com/trustline/trustline/issuer/profile"
)

// tokenDown is how a signer says its key store is down for a while (the
// shape of pkcs11key.ErrUnavailable).
type tokenDown struct{}

func (tokenDown) Error() string     { return "token unavailable" }
func (tokenDown) Unavailable() bool { return true }

// failingSigner keeps the key's public half and fails every signature.
type failingSigner struct {
	crypto.Signer
	err error
}

func (f failingSigner) Sign(io.Reader, []byte, crypto.SignerOpts) ([]byte, error) { return nil, f.err }

// TestIssueWithSignerDown: a signer whose token is unreachable makes
// Issue fail as unavailable (the API answers 503 with Retry-After) and
// store nothing; any other signing failure stays the CA's own error.
func TestIssueWithSignerDown(t *testing.T) {
	tests := []struct {
		name        string
		err         error
		unavailable bool
	}{
		{"token down", fmt.Errorf("pkcs11key: signing with key %q: %w", "int", tokenDown{}), true},
		{"other failure", errors.New("pkcs11key: signing: CKR_FUNCTION_FAILED"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			p, err := pki.Create(context.Background(), pki.DefaultDev(filepath.Join(dir, "ca"), "http://127.0.0.1:8082", "file"),
				pki.FileKeys{Dir: filepath.Join(dir, "keys")}, time.Now(), rand.Reader)
			if err != nil {
				t.Fatal(err)
			}
			for _, is := range p.Intermediates {
				is.Signer = failingSigner{Signer: is.Signer, err: tt.err}
			}
			lt, err := linter.New(linter.Config{})
			if err != nil {
				t.Fatal(err)
			}
			st := newFakeStore()
			ca, err := New(Config{OCSPURL: "http://127.0.0.1:8081/", BaseURL: "http://127.0.0.1:8082", Shards: 8, SerialPrefix: 0x2a},
				Deps{Store: st, PKI: p, Linter: lt, Log: testfix.QuietLogger()})
			if err != nil {
				t.Fatal(err)
			}
			key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			_, err = ca.Issue(context.Background(), IssueRequest{Profile: profile.DV, Names: []string{"example.com"}, PublicKey: key.Public()})
			var un *fault.UnavailableError
			if got := errors.As(err, &un); got != tt.unavailable || err == nil {
				t.Errorf("Issue: %v; unavailable %v, want %v", err, got, tt.unavailable)
			}
			if len(st.certs) != 0 {
				t.Errorf("%d certificates stored after a failed signature", len(st.certs))
			}
		})
	}
}
