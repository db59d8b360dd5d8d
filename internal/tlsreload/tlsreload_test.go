package tlsreload

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"io/fs"
	stdlog "log"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/trustline/trustline/internal/testfix"
)

const serverName = "tls.trustline.test"

// testCA signs leaf certificates for the tests' server.
type testCA struct {
	*testfix.CA
	pool *x509.CertPool
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	ca := testfix.NewCA(t, "tlsreload test root", time.Now().Add(-time.Hour), time.Now().Add(24*time.Hour))
	return &testCA{CA: ca, pool: ca.Pool()}
}

// pair is a leaf certificate and its key as PEM.
type pair struct {
	serial          int64
	certPEM, keyPEM []byte
}

// leaf issues a certificate for serverName valid in [notBefore, notAfter].
func (ca *testCA) leaf(t *testing.T, serial int64, notBefore, notAfter time.Time) pair {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: serverName}, DNSNames: []string{serverName},
		NotBefore: notBefore, NotAfter: notAfter,
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der := ca.Issue(t, tmpl, &key.PublicKey).Raw
	k, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pair{
		serial:  serial,
		certPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		keyPEM:  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: k}),
	}
}

func (ca *testCA) valid(t *testing.T, serial int64) pair {
	return ca.leaf(t, serial, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
}

// files writes a certificate and key into dir and returns their paths.
func files(t *testing.T, dir string, certPEM, keyPEM []byte) (string, string) {
	t.Helper()
	cf, kf := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	if err := os.WriteFile(cf, certPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(kf, keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	return cf, kf
}

func newLog() (*slog.Logger, *testfix.Buffer) {
	buf := &testfix.Buffer{}
	return slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug})), buf
}

// reloader writes p into dir and returns a Reloader over the files, and
// what it logs.
func reloader(t *testing.T, dir string, p pair) (*Reloader, *testfix.Buffer) {
	t.Helper()
	cf, kf := files(t, dir, p.certPEM, p.keyPEM)
	log, buf := newLog()
	r, err := New(cf, kf, log)
	if err != nil {
		t.Fatal(err)
	}
	return r, buf
}

// keyLeaks reports whether s shows any part of a PEM private key: its
// armour or a piece of any line of its base64 body.
func keyLeaks(s string, keys ...[]byte) bool {
	if strings.Contains(s, "PRIVATE KEY-----") {
		return true
	}
	for _, k := range keys {
		for _, line := range strings.Split(string(k), "\n") {
			if len(line) >= 16 && !strings.HasPrefix(line, "-----") && strings.Contains(s, line[:16]) {
				return true
			}
		}
	}
	return false
}

func TestNewRefusesBadPairs(t *testing.T) {
	ca := newTestCA(t)
	good, other := ca.valid(t, 10), ca.valid(t, 11)
	expired := ca.leaf(t, 12, time.Now().Add(-48*time.Hour), time.Now().Add(-time.Hour))
	tests := []struct {
		name    string
		setup   func(dir string) (string, string)
		wantErr string
	}{
		{"missing certificate", func(dir string) (string, string) {
			_, kf := files(t, dir, good.certPEM, good.keyPEM)
			return filepath.Join(dir, "absent.crt"), kf
		}, "absent.crt"},
		{"missing key", func(dir string) (string, string) {
			cf, _ := files(t, dir, good.certPEM, good.keyPEM)
			return cf, filepath.Join(dir, "absent.key")
		}, "absent.key"},
		{"key of another certificate", func(dir string) (string, string) {
			return files(t, dir, good.certPEM, other.keyPEM)
		}, "private key does not match public key"},
		{"key and certificate swapped", func(dir string) (string, string) {
			return files(t, dir, good.keyPEM, good.certPEM)
		}, "tls.crt and"},
		{"expired", func(dir string) (string, string) {
			return files(t, dir, expired.certPEM, expired.keyPEM)
		}, "certificate expired at"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			log, buf := newLog()
			cf, kf := tt.setup(t.TempDir())
			r, err := New(cf, kf, log)
			if err == nil {
				t.Fatalf("New = %v, nil; want an error", r)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error %q does not mention %q", err, tt.wantErr)
			}
			if keyLeaks(err.Error(), good.keyPEM, other.keyPEM, expired.keyPEM) || keyLeaks(buf.String(), good.keyPEM, other.keyPEM, expired.keyPEM) {
				t.Errorf("key material in the error or log:\n%v\n%s", err, buf)
			}
		})
	}
	t.Run("missing file is fs.ErrNotExist", func(t *testing.T) {
		log, _ := newLog()
		_, err := New(filepath.Join(t.TempDir(), "none.crt"), "none.key", log)
		if !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("err = %v, want fs.ErrNotExist", err)
		}
	})
}

// serve starts an HTTPS server on loopback with r's configuration.
func serve(t *testing.T, r *Reloader) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{
		Handler:           http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("ok")) }),
		TLSConfig:         r.TLSConfig(),
		ReadHeaderTimeout: 5 * time.Second,
		ErrorLog:          stdlog.New(io.Discard, "", 0), // refused handshakes are expected
	}
	go srv.ServeTLS(ln, "", "")
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

// servedSerial makes a fresh HTTPS request and returns the serial of the
// certificate the server presented.
func servedSerial(t *testing.T, ca *testCA, addr string) int64 {
	t.Helper()
	tr := &http.Transport{
		TLSClientConfig:   &tls.Config{RootCAs: ca.pool, ServerName: serverName},
		DisableKeepAlives: true,
		ForceAttemptHTTP2: true,
	}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr, Timeout: 5 * time.Second}).Get("https://" + addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.TLS == nil {
		t.Fatalf("status %d, TLS %v", resp.StatusCode, resp.TLS)
	}
	return resp.TLS.PeerCertificates[0].SerialNumber.Int64()
}

func TestReloadServesTheNewCertificate(t *testing.T) {
	ca := newTestCA(t)
	first, second := ca.valid(t, 100), ca.valid(t, 200)
	dir := t.TempDir()
	r, buf := reloader(t, dir, first)
	addr := serve(t, r)
	if got := servedSerial(t, ca, addr); got != first.serial {
		t.Fatalf("serving serial %d, want %d", got, first.serial)
	}

	files(t, dir, second.certPEM, second.keyPEM)
	if err := r.Reload(); err != nil {
		t.Fatal(err)
	}
	if got := servedSerial(t, ca, addr); got != second.serial {
		t.Errorf("after reload: serving serial %d, want %d", got, second.serial)
	}
	if got := r.Leaf().SerialNumber.Int64(); got != second.serial {
		t.Errorf("Leaf serial %d, want %d", got, second.serial)
	}
	if keyLeaks(buf.String(), first.keyPEM, second.keyPEM) {
		t.Errorf("key material in the log:\n%s", buf)
	}
}

func TestBadReloadKeepsServing(t *testing.T) {
	ca := newTestCA(t)
	good, next := ca.valid(t, 100), ca.valid(t, 300)
	expired := ca.leaf(t, 400, time.Now().Add(-48*time.Hour), time.Now().Add(-time.Hour))
	tests := []struct {
		name    string
		write   func(dir string)
		wantErr string
	}{
		{"mismatched key", func(dir string) { files(t, dir, next.certPEM, good.keyPEM) }, "private key does not match"},
		{"expired", func(dir string) { files(t, dir, expired.certPEM, expired.keyPEM) }, "expired"},
		{"key removed", func(dir string) { os.Remove(filepath.Join(dir, "tls.key")) }, "reading key"},
		{"garbage certificate", func(dir string) { os.WriteFile(filepath.Join(dir, "tls.crt"), []byte("not PEM"), 0o644) }, "certificate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			r, buf := reloader(t, dir, good)
			addr := serve(t, r)
			tt.write(dir)
			err := r.Reload()
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Reload = %v, want an error mentioning %q", err, tt.wantErr)
			}
			if got := servedSerial(t, ca, addr); got != good.serial {
				t.Errorf("serving serial %d after a bad reload, want the old %d", got, good.serial)
			}
			if !strings.Contains(buf.String(), "still serving the previous one") {
				t.Errorf("the failed reload was not logged:\n%s", buf)
			}
			if keyLeaks(err.Error(), good.keyPEM, next.keyPEM, expired.keyPEM) || keyLeaks(buf.String(), good.keyPEM, next.keyPEM, expired.keyPEM) {
				t.Errorf("key material in the error or log:\n%v\n%s", err, buf)
			}
		})
	}
}

func TestTLSConfigRefusesOldVersions(t *testing.T) {
	ca := newTestCA(t)
	r, _ := reloader(t, t.TempDir(), ca.valid(t, 1))
	addr := serve(t, r)
	conn, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: ca.pool, ServerName: serverName, MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11})
	if err == nil {
		conn.Close()
		t.Fatal("a TLS 1.1 handshake succeeded")
	}
	conn, err = tls.Dial("tcp", addr, &tls.Config{RootCAs: ca.pool, ServerName: serverName, MaxVersion: tls.VersionTLS12})
	if err != nil {
		t.Fatalf("TLS 1.2: %v", err)
	}
	conn.Close()
	if a, b := r.TLSConfig(), r.TLSConfig(); a == b {
		t.Error("TLSConfig returns a shared *tls.Config; callers may modify it")
	}
}

// Handshakes during reloads see one whole pair or the other (run with
// -race).
func TestConcurrentReloads(t *testing.T) {
	ca := newTestCA(t)
	a, b := ca.valid(t, 1), ca.valid(t, 2)
	dir := t.TempDir()
	r, _ := reloader(t, dir, a)
	cf, kf := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key") // as files wrote them
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			p := a
			if i%2 == 1 {
				p = b
			}
			// Rewrites race with reads: a reload that sees a torn pair
			// fails and keeps the old one, which is the point.
			os.WriteFile(cf, p.certPEM, 0o644)
			os.WriteFile(kf, p.keyPEM, 0o600)
			_ = r.Reload()
		}
	})
	for range 200 {
		c, err := r.GetCertificate(&tls.ClientHelloInfo{ServerName: serverName})
		if err != nil {
			t.Fatal(err)
		}
		leaf, err := x509.ParseCertificate(c.Certificate[0])
		if err != nil {
			t.Fatal(err)
		}
		pub := leaf.PublicKey.(*ecdsa.PublicKey)
		if !pub.Equal(c.PrivateKey.(*ecdsa.PrivateKey).Public()) {
			t.Fatal("served a certificate with another pair's key")
		}
	}
	close(stop)
	wg.Wait()
}
