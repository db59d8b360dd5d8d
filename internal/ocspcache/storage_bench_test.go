package ocspcache_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/binary"
	"math/big"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/trustline/trustline/internal/ocspcache"
	"github.com/trustline/trustline/internal/ocspcache/cachetest"
	"github.com/trustline/trustline/internal/ocspcodec"
	"github.com/trustline/trustline/internal/status"
	"github.com/trustline/trustline/internal/testfix"
)

// BenchmarkRedisBytesPerResponse measures what one pre-signed response
// costs in Redis memory (used_memory growth over n responses, keys and
// expiry included): P-256, a delegated responder certificate, SHA-1
// CertIDs, 17-octet serials, as the pre-signer writes them. It reports
// the stored bytes per response, the response's DER and their ratio, for
// the format Put writes (certs stored once) and for whole responses as an
// older Trustline stored them ("whole"), in one run.
//
//	go test -run XXX -bench RedisBytesPerResponse -benchtime 1x ./internal/ocspcache
func BenchmarkRedisBytesPerResponse(b *testing.B) {
	const n = 50_000
	signer := benchSigner(b)
	now := time.Now().Truncate(time.Second)
	items := make([]ocspcache.Item, n)
	derTotal := 0
	for i := range items {
		sn := make([]byte, 17)
		rand.Read(sn)
		sn[0] = 0x42
		one := ocspcodec.Single{ID: ocspcodec.CertID{Hash: ocspcodec.SHA1, Serial: sn}, Status: status.Good,
			ThisUpdate: now.Add(-time.Hour), NextUpdate: now.Add(7 * 24 * time.Hour)}
		resp, err := signer.Sign(nil, one, now, rand.Reader)
		if err != nil {
			b.Fatal(err)
		}
		derTotal += len(resp)
		items[i] = ocspcache.Item{Key: ocspcache.Key("int-p256", bigHex(sn), ocspcodec.SHA1), Entry: ocspcache.Entry{
			DER: resp, Status: status.Good, ThisUpdate: one.ThisUpdate, NextUpdate: one.NextUpdate, RefreshAt: now.Add(3 * 24 * time.Hour)}}
	}
	derPer := float64(derTotal) / n
	ctx := context.Background()

	for b.Loop() {
		for _, format := range []string{"split", "whole"} {
			srv := cachetest.StartPrivateRedis(b)
			client := srv.Client()
			before := usedMemory(b, client)
			switch format {
			case "split":
				c := newRedis(b, ocspcache.RedisConfig{Prefix: "trustline:ocsp:"}, client)
				if err := c.Put(ctx, items); err != nil {
					b.Fatal(err)
				}
			case "whole": // the version 1 layout: header, then the DER
				pipe := client.Pipeline()
				for i := range items {
					e := &items[i].Entry
					v := make([]byte, 0, 26+len(e.DER))
					v = append(v, '1', 'G')
					for _, t := range []time.Time{e.ThisUpdate, e.NextUpdate, e.RefreshAt} {
						v = binary.BigEndian.AppendUint64(v, uint64(t.Unix()))
					}
					v = append(v, e.DER...)
					pipe.SetArgs(ctx, "trustline:ocsp:r:"+items[i].Key, v, redis.SetArgs{ExpireAt: e.NextUpdate})
					if pipe.Len() == 512 {
						if _, err := pipe.Exec(ctx); err != nil {
							b.Fatal(err)
						}
					}
				}
				if _, err := pipe.Exec(ctx); err != nil {
					b.Fatal(err)
				}
			}
			per := float64(usedMemory(b, client)-before) / n
			b.ReportMetric(per, format+"-bytes/response")
			b.ReportMetric(per/derPer, format+"/DER")
			srv.Stop()
		}
		b.ReportMetric(derPer, "DER-bytes/response")
	}
}

func benchSigner(tb testing.TB) *ocspcodec.Signer {
	now := time.Now()
	ca := testfix.NewCA(tb, "bench issuer", now.Add(-time.Hour), now.AddDate(1, 0, 0))
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	responder := ca.Issue(tb, &x509.Certificate{
		SerialNumber: big.NewInt(3), Subject: pkix.Name{Organization: []string{"Trustline Bench"}, CommonName: "Trustline Bench OCSP Responder"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.AddDate(0, 1, 0),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageOCSPSigning},
		ExtraExtensions: []pkix.Extension{{Id: asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 48, 1, 5}, Value: []byte{0x05, 0x00}}},
	}, key.Public())
	s, err := ocspcodec.NewSigner(ocspcodec.Config{Issuer: ca.Cert, Responder: responder, Key: key})
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

func bigHex(b []byte) string { return new(big.Int).SetBytes(b).Text(16) }

func usedMemory(tb testing.TB, client *redis.Client) int64 {
	tb.Helper()
	info, err := client.Info(context.Background(), "memory").Result()
	if err != nil {
		tb.Fatal(err)
	}
	for line := range strings.SplitSeq(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "used_memory:"); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				tb.Fatal(err)
			}
			return n
		}
	}
	tb.Fatal("INFO memory has no used_memory")
	return 0
}
