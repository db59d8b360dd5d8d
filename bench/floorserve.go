package bench

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"time"

	"github.com/trustline/trustline/internal/cli"
	"github.com/trustline/trustline/internal/issuerid"
	"github.com/trustline/trustline/responder/floor"
)

// loadPairs reads DIR's certificates and signs every one's SHA-1 and
// SHA-256 responses with DIR's file keys.
func loadPairs(ctx context.Context, dataDir, postgresURL string, maxCerts int, issuerKey bool, now time.Time) ([]signedPair, map[issuerid.ID]*Issuer, error) {
	s, err := loadSignable(ctx, dataDir, postgresURL, maxCerts, issuerKey, now)
	if err != nil {
		return nil, nil, err
	}
	pairs, err := signPairs(s.certs, s.issuers, s.sig, []crypto.Hash{crypto.SHA1, crypto.SHA256}, now, rand.Reader)
	return pairs, s.issuers, err
}

// RunFloor is `trustline bench floor`: it serves DIR's certificates'
// responses, signed once at start with DIR's file keys, from the floor
// server (responder/floor: a map lookup, fasthttp, nothing else). It is
// the baseline of `make bench-peers`. Ready when it logs msg="floor
// ready" with addr=URL; it stops on SIGINT/SIGTERM (ctx).
func RunFloor(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("trustline bench floor", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dataDir := fs.String("data", "", "data dir: store, issuer certificates and file keys (required)")
	pg := fs.String("postgres", "", "PostgreSQL URL of the store (default: DIR/trustline.db)")
	listen := fs.String("listen", "127.0.0.1:8091", "listen address (port 0: any free port)")
	maxCerts := fs.Int("max-certs", 1_000_000, "serve at most this many certificates")
	issuerKey := fs.Bool("issuer-key", false, "sign with the issuer key instead of the delegated responder's")
	pairsFile := fs.String("pairs", "", "serve the request/response pairs in this file (as `bench peers` writes it) instead of signing DIR's")
	if err := cli.Parse(fs, args); err != nil {
		return err
	}
	if (*dataDir == "") == (*pairsFile == "") {
		return cli.Usage("floor: give --data DIR or --pairs FILE")
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	var fps []floor.Pair
	if *pairsFile != "" {
		b, err := os.ReadFile(*pairsFile)
		if err != nil {
			return fmt.Errorf("bench: floor: %w", err)
		}
		if fps, err = parsePairs(b); err != nil {
			return err
		}
	} else {
		pairs, _, err := loadPairs(ctx, *dataDir, *pg, *maxCerts, *issuerKey, time.Now())
		if err != nil {
			return err
		}
		for _, p := range pairs {
			fps = append(fps, p.Pair)
		}
	}
	h, err := floor.New(fps, time.Now())
	if err != nil {
		return fmt.Errorf("bench: floor: %w", err)
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("bench: floor: %w", err)
	}
	srv := h.Server()
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	log.Info("floor ready", "addr", "http://"+ln.Addr().String(), "responses", len(fps))
	select {
	case <-ctx.Done():
	case err := <-errc:
		return fmt.Errorf("bench: floor: %w", err)
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return srv.ShutdownWithContext(sctx)
}

// writeCFSSLResponses writes the SHA-1 responses, base64, one per line:
// the file `cfssl ocspserve -responses` reads (it keys them by serial
// alone, so one response per certificate).
func writeCFSSLResponses(path string, pairs []signedPair) error {
	var b []byte
	for _, p := range pairs {
		if p.hash != crypto.SHA1 {
			continue
		}
		b = base64.StdEncoding.AppendEncode(b, p.Response)
		b = append(b, '\n')
	}
	if len(b) == 0 {
		return errors.New("bench: no SHA-1 responses for cfssl")
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		return fmt.Errorf("bench: writing cfssl responses: %w", err)
	}
	return nil
}

// formatPairs writes pairs one per line: base64 request, a space, base64
// response.
func formatPairs(pairs []signedPair) []byte {
	var b []byte
	for _, p := range pairs {
		b = base64.StdEncoding.AppendEncode(b, p.Request)
		b = append(b, ' ')
		b = base64.StdEncoding.AppendEncode(b, p.Response)
		b = append(b, '\n')
	}
	return b
}

// parsePairs reads what formatPairs wrote.
func parsePairs(b []byte) ([]floor.Pair, error) {
	var out []floor.Pair
	for i, line := range bytes.Split(b, []byte("\n")) {
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		req, resp, ok := bytes.Cut(line, []byte(" "))
		if !ok {
			return nil, fmt.Errorf("bench: pairs line %d: want two base64 fields", i+1)
		}
		rq, err1 := base64.StdEncoding.AppendDecode(nil, req)
		rs, err2 := base64.StdEncoding.AppendDecode(nil, resp)
		if err := errors.Join(err1, err2); err != nil {
			return nil, fmt.Errorf("bench: pairs line %d: %w", i+1, err)
		}
		out = append(out, floor.Pair{Request: rq, Response: rs})
	}
	if len(out) == 0 {
		return nil, errors.New("bench: no pairs")
	}
	return out, nil
}
