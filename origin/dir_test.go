package origin

import (
	"context"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"testing/synctest"
	"time"

	"github.com/trustline/trustline/crlgen/crlpub"
)

func served(t testing.TB, s *Server, path string) (int, []byte) {
	t.Helper()
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
	return rec.Code, rec.Body.Bytes()
}

// The directory written by crlpub.DirWriter is served; a CRL that does not
// verify under the issuer's certificate is not.
func TestLoadDir(t *testing.T) {
	dir := t.TempDir()
	ca, other := newCA(t, "int-p256"), newCA(t, "int-p256")
	w, err := crlpub.NewDirWriter(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.WriteIssuerCert(ca.id, ca.cert.Raw); err != nil {
		t.Fatal(err)
	}
	c0, c1 := ca.crl(t, 0, 5, t0, 2), ca.crl(t, 1, 5, t0, 0)
	for _, c := range []crlpub.CRL{c0, c1} {
		if err := w.Published(context.Background(), c); err != nil {
			t.Fatal(err)
		}
	}
	// A forged shard 2, signed by another key under the same name.
	forged := other.crl(t, 2, 9, t0, 0)
	if err := os.WriteFile(filepath.Join(dir, "int-p256", "2.crl"), forged.DER, 0o644); err != nil {
		t.Fatal(err)
	}
	// Strays are ignored.
	os.WriteFile(filepath.Join(dir, "int-p256", ".tmp-1"), []byte("x"), 0o644)
	os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("x"), 0o644)

	s := newServer(t, Config{Period: 30 * time.Second}, func() time.Time { return t0.Add(10 * time.Second) })
	if err := s.LoadDir(dir); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		path string
		code int
		body []byte
	}{
		{"/int-p256/0.crl", 200, c0.DER},
		{"/int-p256/1.crl", 200, c1.DER},
		{"/int-p256/2.crl", 404, nil},
		{"/int-p256.cer", 200, ca.cert.Raw},
		{"/int-p256/crls.json", 200, []byte(`["http://crl.example/int-p256/0.crl","http://crl.example/int-p256/1.crl"]`)},
	}
	for _, tc := range tests {
		t.Run(tc.path, func(t *testing.T) {
			code, body := served(t, s, tc.path)
			if code != tc.code || (tc.body != nil && string(body) != string(tc.body)) {
				t.Errorf("GET %s = %d (%d bytes), want %d (%d bytes)", tc.path, code, len(body), tc.code, len(tc.body))
			}
		})
	}
	// Directory CRLs are fresh until thisUpdate + Period.
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, httptest.NewRequest("GET", "/int-p256/0.crl", nil))
	if cc := rec.Header().Get("Cache-Control"); cc != "public, max-age=20, stale-if-error=3600" {
		t.Errorf("Cache-Control %q", cc)
	}

	if err := s.LoadDir(filepath.Join(dir, "missing")); err == nil {
		t.Error("LoadDir of a missing directory succeeded")
	}
}

// WatchDir picks up a new CRL and never goes back to an older one.
func TestWatchDir(t *testing.T) {
	ca := newCA(t, "int-p256")
	synctest.Test(t, func(t *testing.T) {
		dir := t.TempDir()
		w, err := crlpub.NewDirWriter(dir)
		if err != nil {
			t.Fatal(err)
		}
		if err := w.WriteIssuerCert(ca.id, ca.cert.Raw); err != nil {
			t.Fatal(err)
		}
		if err := w.Published(context.Background(), ca.crl(t, 0, 5, t0, 0)); err != nil {
			t.Fatal(err)
		}
		s := newServer(t, Config{}, nil)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error)
		go func() { done <- s.WatchDir(ctx, dir, time.Second) }()
		synctest.Wait()
		if n := s.lookup("/int-p256/0.crl").number; n != 5 {
			t.Fatalf("serving number %d, want 5", n)
		}

		next := ca.crl(t, 0, 6, t0.Add(time.Minute), 1)
		if err := w.Published(context.Background(), next); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Second)
		synctest.Wait()
		if n := s.lookup("/int-p256/0.crl").number; n != 6 {
			t.Errorf("after a new CRL: serving number %d, want 6", n)
		}

		// An older CRL copied in by hand is not served.
		old := ca.crl(t, 0, 4, t0, 0)
		if err := os.WriteFile(filepath.Join(dir, "int-p256", "0.crl"), old.DER, 0o644); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Second)
		synctest.Wait()
		if n := s.lookup("/int-p256/0.crl").number; n != 6 {
			t.Errorf("after an older CRL: serving number %d, want 6", n)
		}
		cancel()
		if err := <-done; err != nil {
			t.Errorf("WatchDir() = %v", err)
		}
	})
}
