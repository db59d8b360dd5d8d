package origin

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/trustline/trustline/crlgen/crlpub"
	"github.com/trustline/trustline/internal/issuerid"
)

// fileStamp is what tells a changed file from an unchanged one without
// reading it. crlpub.DirWriter replaces files by rename, so a change always
// brings a new inode time and usually a new size.
type fileStamp struct {
	mod  time.Time
	size int64
}

// dirSource remembers, per file, the stamp it last loaded.
type dirSource struct {
	dir   string
	seen  map[string]fileStamp
	certs map[issuerid.ID]*x509.Certificate // to verify CRLs before serving them
}

// WatchDir loads the directory written by crlpub.DirWriter, then reloads
// what changed every interval until ctx ends. A file that does not parse,
// a CRL whose signature does not verify under the issuer certificate in
// the same directory, or one numbered below what is served is logged and
// skipped. It returns an error only if the first load fails.
func (s *Server) WatchDir(ctx context.Context, dir string, interval time.Duration) error {
	if interval <= 0 {
		return fmt.Errorf("origin: watching %s: interval %v must be positive", dir, interval)
	}
	src := &dirSource{dir: dir, seen: map[string]fileStamp{}, certs: map[issuerid.ID]*x509.Certificate{}}
	if err := s.loadDir(src); err != nil {
		return err
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		if err := s.loadDir(src); err != nil {
			s.log.Warn("reloading CRL directory failed", "dir", dir, "err", err)
		}
	}
}

// LoadDir loads the directory once (see WatchDir).
func (s *Server) LoadDir(dir string) error {
	return s.loadDir(&dirSource{dir: dir, seen: map[string]fileStamp{}, certs: map[issuerid.ID]*x509.Certificate{}})
}

// loadDir reads the issuer certificates first, so that the CRLs after them
// can be verified.
func (s *Server) loadDir(src *dirSource) error {
	entries, err := os.ReadDir(src.dir)
	if err != nil {
		return fmt.Errorf("origin: reading %s: %w", src.dir, err)
	}
	var issuerDirs []issuerid.ID
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() {
			if id, err := issuerid.Parse(name); err == nil {
				issuerDirs = append(issuerDirs, id)
			}
			continue
		}
		idName, ok := strings.CutSuffix(name, ".cer")
		if !ok {
			continue
		}
		id, err := issuerid.Parse(idName)
		if err != nil {
			continue
		}
		b, changed, err := src.readIfChanged(name)
		if err != nil || !changed {
			s.logSkip(name, err)
			continue
		}
		if err := s.SetIssuerCert(id, b); err != nil {
			src.forget(name) // retried when it changes
			s.logSkip(name, err)
			continue
		}
		c, _ := x509.ParseCertificate(b) // SetIssuerCert parsed it
		src.certs[id] = c
	}
	for _, id := range issuerDirs {
		s.loadIssuerDir(src, id)
	}
	return nil
}

func (s *Server) loadIssuerDir(src *dirSource, id issuerid.ID) {
	entries, err := os.ReadDir(filepath.Join(src.dir, string(id)))
	if err != nil {
		s.log.Warn("reading issuer CRL directory failed", "issuer", id, "err", err)
		return
	}
	for _, e := range entries {
		rel := filepath.Join(string(id), e.Name())
		if !e.Type().IsRegular() {
			continue
		}
		t, ok := ParsePath("/" + string(id) + "/" + e.Name())
		if !ok || t.Kind == KindCert {
			continue // temporary files and strays
		}
		b, changed, err := src.readIfChanged(rel)
		if err != nil || !changed {
			s.logSkip(rel, err)
			continue
		}
		if t.Kind == KindList {
			var urls []string
			if err := json.Unmarshal(b, &urls); err != nil || len(urls) == 0 {
				s.logSkip(rel, fmt.Errorf("not a JSON array of URLs: %v", err))
				continue
			}
			fi, _ := e.Info()
			s.putList(id, b, fi.ModTime())
			continue
		}
		if err := s.loadCRL(src, id, "/"+filepath.ToSlash(rel), b); err != nil {
			if errors.Is(err, errNoCert) {
				src.forget(rel) // retried next round: the certificate may come later
			}
			s.logSkip(rel, err)
		}
	}
}

var errNoCert = errors.New("no issuer certificate to verify the CRL with")

func (s *Server) loadCRL(src *dirSource, id issuerid.ID, path string, der []byte) error {
	rl, err := x509.ParseRevocationList(der)
	if err != nil {
		return err
	}
	if rl.Number == nil || !rl.Number.IsInt64() {
		return errors.New("CRL number missing or above 2^63")
	}
	cert := src.certs[id]
	if cert == nil {
		return fmt.Errorf("%w: %s", errNoCert, crlpub.CertName(id))
	}
	if err := rl.CheckSignatureFrom(cert); err != nil {
		return fmt.Errorf("signature: %w", err)
	}
	o := newObject(der, typeCRL, rl.ThisUpdate)
	o.freshUntil, o.nextUpdate, o.number = rl.ThisUpdate.Add(s.cfg.Period), rl.NextUpdate, rl.Number.Int64()
	s.putCRL(path, o)
	return nil
}

func (s *Server) logSkip(name string, err error) {
	if err != nil {
		s.log.Warn("skipping file in CRL directory", "file", name, "err", err)
	}
}

// readIfChanged reads dir/rel if its stamp moved since the last read.
func (src *dirSource) readIfChanged(rel string) ([]byte, bool, error) {
	// Stat and read through one descriptor: a rename in between cannot
	// pair one file's stamp with another's bytes.
	f, err := os.Open(filepath.Join(src.dir, rel))
	if err != nil {
		return nil, false, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, false, err
	}
	st := fileStamp{fi.ModTime(), fi.Size()}
	if src.seen[rel] == st {
		return nil, false, nil
	}
	b, err := io.ReadAll(io.LimitReader(f, maxFile+1))
	if err != nil {
		return nil, false, err
	}
	if len(b) > maxFile {
		return nil, false, fmt.Errorf("larger than %d bytes", maxFile)
	}
	src.seen[rel] = st
	return b, true, nil
}

// maxFile bounds what is read into memory: a CRL of a few million entries.
const maxFile = 512 << 20

func (src *dirSource) forget(rel string) { delete(src.seen, rel) }
