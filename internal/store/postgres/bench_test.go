package postgres

import (
	"testing"

	"github.com/trustline/trustline/internal/store"
	"github.com/trustline/trustline/internal/store/storetest"
)

func openBench(tb testing.TB) store.Store { return openFresh(tb) }

// BenchmarkInsertCertificates: acceptance target ≥ 50k rows/s (COPY).
func BenchmarkInsertCertificates(b *testing.B) { storetest.BenchInsertCertificates(b, openBench) }

// BenchmarkScanShard reads the shards a CRL build reads.
func BenchmarkScanShard(b *testing.B) { storetest.BenchScanShard(b, openBench) }
