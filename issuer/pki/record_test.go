package pki

import (
	"context"
	"crypto/rand"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"
)

var (
	errNotFound  = errors.New("not found")
	errDuplicate = errors.New("duplicate")
)

func isNotFound(err error) bool  { return errors.Is(err, errNotFound) }
func isDuplicate(err error) bool { return errors.Is(err, errDuplicate) }

// memRecords is a hand-written fake of the store's metadata methods.
type memRecords struct {
	mu sync.Mutex
	m  map[string][]byte
}

func (r *memRecords) Meta(_ context.Context, k string) ([]byte, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	v, ok := r.m[k]
	if !ok {
		return nil, errNotFound
	}
	return append([]byte(nil), v...), nil
}

func (r *memRecords) PutMeta(_ context.Context, k string, v []byte) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.m == nil {
		r.m = map[string][]byte{}
	}
	r.m[k] = append([]byte(nil), v...)
	return nil
}

func (r *memRecords) InsertMeta(ctx context.Context, k string, v []byte) error {
	r.mu.Lock()
	_, ok := r.m[k]
	r.mu.Unlock()
	if ok {
		return errDuplicate
	}
	return r.PutMeta(ctx, k, v)
}

func TestRecordOncePerStore(t *testing.T) {
	ctx := context.Background()
	rec := &memRecords{}
	p, _, _ := newDev(t)
	if ok, err := Recorded(ctx, rec, isNotFound); err != nil || ok {
		t.Fatalf("Recorded on an empty store = %v, %v", ok, err)
	}
	if err := p.Record(ctx, rec, isDuplicate); err != nil {
		t.Fatal(err)
	}
	if ok, _ := Recorded(ctx, rec, isNotFound); !ok {
		t.Fatal("Recorded = false after Record")
	}
	before := string(rec.m[recordKey])
	other, _, _ := newDev(t)
	if err := other.Record(ctx, rec, isDuplicate); !errors.Is(err, ErrHierarchyExists) {
		t.Fatalf("second Record = %v, want ErrHierarchyExists", err)
	}
	if string(rec.m[recordKey]) != before {
		t.Error("a refused Record changed the stored hierarchy")
	}
}

func TestLoadRecordedChecksKeys(t *testing.T) {
	ctx := context.Background()
	rec := &memRecords{}
	p, _, keys := newDev(t)
	if err := p.Record(ctx, rec, isDuplicate); err != nil {
		t.Fatal(err)
	}
	got, err := LoadRecorded(ctx, rec, isNotFound, keys, "file", IssuingKeys)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Root.Cert.Equal(p.Root.Cert) || len(got.Intermediates) != 2 || got.Root.Signer == nil {
		t.Fatalf("loaded hierarchy differs: root equal %v, %d intermediates", got.Root.Cert.Equal(p.Root.Cert), len(got.Intermediates))
	}
	for i, is := range got.Intermediates {
		if !is.Cert.Equal(p.Intermediates[i].Cert) || !is.Responder.Equal(p.Intermediates[i].Responder) || is.Signer == nil || is.ResponderSigner == nil {
			t.Errorf("intermediate %s not loaded whole", is.ID)
		}
	}
	// Another data dir's keys: refused, naming the root's fingerprint.
	_, _, otherKeys := newDev(t)
	_, err = LoadRecorded(ctx, rec, isNotFound, otherKeys, "file", IssuingKeys)
	if err == nil || !strings.Contains(err.Error(), Fingerprint(p.Root.Cert)) || !strings.Contains(err.Error(), "another hierarchy") {
		t.Errorf("LoadRecorded with another hierarchy's keys = %v", err)
	}
	// Keys of the wrong kind.
	if _, err := LoadRecorded(ctx, rec, isNotFound, keys, "pkcs11", IssuingKeys); err == nil || !strings.Contains(err.Error(), "keeps its keys in file") {
		t.Errorf("LoadRecorded with pkcs11 keys = %v", err)
	}
	// Certificates only: no keys needed.
	c, err := LoadRecorded(ctx, rec, isNotFound, nil, "", CertsOnly)
	if err != nil || c.Intermediates[0].Signer != nil || c.Root.Signer != nil {
		t.Fatalf("CertsOnly = %v (signers must stay nil)", err)
	}
	if _, err := LoadRecorded(ctx, &memRecords{}, isNotFound, keys, "file", IssuingKeys); !errors.Is(err, ErrNoHierarchy) {
		t.Errorf("LoadRecorded on an empty store = %v, want ErrNoHierarchy", err)
	}
}

func TestRenewalReachesOtherInstances(t *testing.T) {
	ctx := context.Background()
	rec := &memRecords{}
	p, _, keys := newDev(t)
	if err := p.Record(ctx, rec, isDuplicate); err != nil {
		t.Fatal(err)
	}
	leader, err := LoadRecorded(ctx, rec, isNotFound, keys, "file", IssuingKeys)
	if err != nil {
		t.Fatal(err)
	}
	follower, err := LoadRecorded(ctx, rec, isNotFound, keys, "file", IssuingKeys)
	if err != nil {
		t.Fatal(err)
	}
	old := follower.ResponderCert(follower.Intermediates[0])
	later := time.Now().Add(25 * 24 * time.Hour)
	if n, err := leader.RenewResponders(ctx, later, rand.Reader); err != nil || n != 2 {
		t.Fatalf("RenewResponders = %d, %v; want 2", n, err)
	}
	n, err := follower.ReloadResponders(ctx)
	if err != nil || n != 2 {
		t.Fatalf("ReloadResponders = %d, %v; want 2", n, err)
	}
	now := follower.ResponderCert(follower.Intermediates[0])
	if now.Equal(old) || !now.Equal(leader.ResponderCert(leader.Intermediates[0])) {
		t.Error("the follower did not pick up the leader's renewed certificate")
	}
	if n, _ := follower.ReloadResponders(ctx); n != 0 {
		t.Errorf("a second ReloadResponders changed %d certificates", n)
	}
	// An older certificate written back (a slow leader) is not installed.
	rec.PutMeta(ctx, responderKeyPrefix+string(p.Intermediates[0].ID), old.Raw)
	if n, _ := follower.ReloadResponders(ctx); n != 0 || !follower.ResponderCert(follower.Intermediates[0]).Equal(now) {
		t.Error("ReloadResponders went back to an older certificate")
	}
}

func TestExportWritesTheDevFiles(t *testing.T) {
	p, _, _ := newDev(t)
	dir := t.TempDir()
	if err := p.Export(dir); err != nil {
		t.Fatal(err)
	}
	if !Exists(dir) {
		t.Fatal("Export wrote no pki.json")
	}
	c, err := readCert(CertPath(dir, "root"))
	if err != nil || !c.Equal(p.Root.Cert) {
		t.Fatalf("exported root = %v", err)
	}
}

// A root created in its own key store stays out of the plant's keys: the
// recorded hierarchy says so, every role loads without it, and the
// ceremony attaches it from its own store (and no other key).
func TestOfflineRoot(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	cfg := DefaultDev(dir+"/ca", "http://127.0.0.1:8082", "file")
	rootKeys := FileKeys{Dir: dir + "/root"}
	cfg.RootKeys = rootKeys
	keys := FileKeys{Dir: dir + "/keys"}
	p, err := Create(ctx, cfg, keys, time.Now(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := keys.FindKey(ctx, rootLabel()); err == nil {
		t.Fatal("the offline root's key was written with the plant's keys")
	}
	if err := p.Intermediates[0].Cert.CheckSignatureFrom(p.Root.Cert); err != nil {
		t.Fatalf("intermediate not signed by the root: %v", err)
	}
	rec := &memRecords{}
	if err := p.Record(ctx, rec, isDuplicate); err != nil {
		t.Fatal(err)
	}
	got, err := LoadRecorded(ctx, rec, isNotFound, keys, "file", IssuingKeys)
	if err != nil {
		t.Fatal(err)
	}
	if !got.RootOffline() || got.Root.Signer != nil || got.Intermediates[0].Signer == nil {
		t.Fatalf("loaded: offline %v, root signer %v", got.RootOffline(), got.Root.Signer != nil)
	}
	if err := got.AttachRoot(ctx, keys); err == nil {
		t.Error("AttachRoot found a root among the plant's keys")
	}
	_, _, otherKeys := newDev(t)
	if err := got.AttachRoot(ctx, otherKeys); err == nil || !strings.Contains(err.Error(), "another hierarchy") {
		t.Errorf("AttachRoot with another hierarchy's root = %v", err)
	}
	if err := got.AttachRoot(ctx, rootKeys); err != nil || got.Root.Signer == nil {
		t.Fatalf("AttachRoot with the root's own store: %v", err)
	}
	if online, _, _ := newDev(t); online.RootOffline() {
		t.Error("a hierarchy created with one key store says its root is offline")
	}
}
