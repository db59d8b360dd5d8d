package crlpub

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/trustline/trustline/internal/issuerid"
	"github.com/trustline/trustline/internal/shard"
)

// DirWriter is a Publisher that writes each CRL, and its issuer's CCADB
// array, into a directory in the layout of the package comment, for origins
// that serve from a directory (a volume shared with, or synchronised to,
// the origin hosts).
//
// A file is only ever replaced by a CRL with a higher number, so two
// generators writing into one directory cannot move it backwards.
type DirWriter struct {
	dir string

	mu      sync.Mutex
	numbers map[string]int64  // relative path → number of the CRL on disk
	lists   map[string][]byte // relative path → crls.json on disk
}

var _ Publisher = (*DirWriter)(nil)

// NewDirWriter writes into dir, creating it if needed.
func NewDirWriter(dir string) (*DirWriter, error) {
	if dir == "" {
		return nil, errors.New("crlpub: directory writer: no directory")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("crlpub: creating %s: %w", dir, err)
	}
	removeStaleTemps(dir, time.Now().Add(-staleTemp))
	return &DirWriter{dir: dir, numbers: map[string]int64{}, lists: map[string][]byte{}}, nil
}

// staleTemp is the age past which a temporary file is a crashed writer's
// leftover rather than another writer's work in progress.
const staleTemp = time.Minute

// removeStaleTemps deletes temporary files that a killed writer left, in dir
// and the issuer directories under it. Failures only leave litter.
func removeStaleTemps(dir string, before time.Time) {
	for _, pattern := range []string{filepath.Join(dir, tempPrefix+"*"), filepath.Join(dir, "*", tempPrefix+"*")} {
		names, _ := filepath.Glob(pattern)
		for _, name := range names {
			if fi, err := os.Lstat(name); err == nil && fi.Mode().IsRegular() && fi.ModTime().Before(before) {
				os.Remove(name)
			}
		}
	}
}

// tempPrefix starts the name of every temporary file; readers skip such
// names.
const tempPrefix = ".tmp-"

// Dir is the directory written to.
func (w *DirWriter) Dir() string { return w.dir }

// Published writes c (unless the file already holds a CRL numbered at
// least as high) and, when it changed, the issuer's crls.json.
func (w *DirWriter) Published(ctx context.Context, c CRL) error {
	if !c.Issuer.Valid() {
		return fmt.Errorf("crlpub: CRL with invalid issuer id %q", c.Issuer)
	}
	if c.Shard < shard.Full {
		return fmt.Errorf("crlpub: CRL with invalid shard %d", c.Shard)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("crlpub: writing %s: %w", Path(c.Issuer, c.Shard), err)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	rel := filepath.Join(string(c.Issuer), FileName(c.Shard))
	onDisk, err := w.numberOnDisk(rel)
	if err != nil {
		return err
	}
	if c.Number > onDisk {
		if err := writeAtomic(filepath.Join(w.dir, rel), c.DER); err != nil {
			return err
		}
		w.numbers[rel] = c.Number
	}
	if len(c.ShardURLs) > 0 {
		list, err := json.Marshal(c.ShardURLs)
		if err != nil {
			return fmt.Errorf("crlpub: encoding %s list: %w", c.Issuer, err)
		}
		listRel := filepath.Join(string(c.Issuer), ListName)
		if !bytes.Equal(w.lists[listRel], list) {
			if err := writeAtomic(filepath.Join(w.dir, listRel), list); err != nil {
				return err
			}
			w.lists[listRel] = list
		}
	}
	return nil
}

// WriteIssuerCert writes an issuer's certificate (DER) as <id>.cer.
func (w *DirWriter) WriteIssuerCert(id issuerid.ID, der []byte) error {
	if !id.Valid() {
		return fmt.Errorf("crlpub: invalid issuer id %q", id)
	}
	if _, err := x509.ParseCertificate(der); err != nil {
		return fmt.Errorf("crlpub: issuer %s certificate: %w", id, err)
	}
	return writeAtomic(filepath.Join(w.dir, CertName(id)), der)
}

// numberOnDisk returns the number of the CRL at rel, reading it once per
// process (another writer, or an earlier run, may have put it there). A
// file that does not parse counts as absent, so a good CRL replaces it.
func (w *DirWriter) numberOnDisk(rel string) (int64, error) {
	if n, ok := w.numbers[rel]; ok {
		return n, nil
	}
	b, err := os.ReadFile(filepath.Join(w.dir, rel))
	if errors.Is(err, fs.ErrNotExist) {
		w.numbers[rel] = 0
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("crlpub: reading %s: %w", rel, err)
	}
	var n int64
	if rl, err := x509.ParseRevocationList(b); err == nil && rl.Number != nil && rl.Number.IsInt64() {
		n = rl.Number.Int64()
	}
	w.numbers[rel] = n
	return n, nil
}

// writeAtomic replaces path with b: a temporary file in the same directory,
// synced, then renamed over path, then the directory synced, so a crash
// leaves the old file or the new one.
func writeAtomic(path string, b []byte) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("crlpub: creating %s: %w", dir, err)
	}
	tmp, err := os.CreateTemp(dir, tempPrefix+"*")
	if err != nil {
		return fmt.Errorf("crlpub: writing %s: %w", path, err)
	}
	defer os.Remove(tmp.Name()) // after a successful rename this finds nothing
	_, err = tmp.Write(b)
	if err == nil {
		err = tmp.Chmod(0o644)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		return fmt.Errorf("crlpub: writing %s: %w", path, err)
	}
	if d, err := os.Open(dir); err == nil {
		// The rename is durable only once the directory is.
		d.Sync()
		d.Close()
	}
	return nil
}
