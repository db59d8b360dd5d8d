package sqlite

import (
	"log/slog"
	"path/filepath"
	"testing"

	"github.com/trustline/trustline/internal/store"
	"github.com/trustline/trustline/internal/store/storetest"
)

func openBench(tb testing.TB) store.Store {
	tb.Helper()
	s, err := Open(tb.Context(), Config{Path: filepath.Join(tb.TempDir(), "bench.db")}, slog.New(slog.DiscardHandler))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

// BenchmarkInsertCertificates: acceptance target ≥ 20k rows/s.
func BenchmarkInsertCertificates(b *testing.B) { storetest.BenchInsertCertificates(b, openBench) }

// BenchmarkScanShard reads the shards a CRL build reads.
func BenchmarkScanShard(b *testing.B) { storetest.BenchScanShard(b, openBench) }
