package pkcs11key

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/miekg/pkcs11"
	"github.com/trustline/trustline/internal/keyfile"
	"github.com/trustline/trustline/internal/testfix"
)

func fmtV(v any) string { return fmt.Sprintf("%v %+v %#v %s", v, v, v, v) }

func TestECDSADER(t *testing.T) {
	type sig struct{ R, S *big.Int }
	tests := []struct {
		name string
		r, s []byte
	}{
		{"plain", []byte{0x01}, []byte{0x02}},
		{"high bit needs a zero octet", []byte{0x80, 0x01}, []byte{0xff, 0xff}},
		{"leading zeros stripped", []byte{0x00, 0x00, 0x7f}, []byte{0x00, 0x01}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			const size = 32
			raw := make([]byte, 2*size)
			copy(raw[size-len(tt.r):size], tt.r)
			copy(raw[2*size-len(tt.s):], tt.s)
			got, err := ecdsaDER(raw, size)
			if err != nil {
				t.Fatal(err)
			}
			want, err := asn1.Marshal(sig{new(big.Int).SetBytes(tt.r), new(big.Int).SetBytes(tt.s)})
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("DER (-want +got):\n%s", diff)
			}
		})
	}
	for _, bad := range [][]byte{nil, make([]byte, 63), make([]byte, 65), make([]byte, 64)} {
		if _, err := ecdsaDER(bad, 32); err == nil {
			t.Errorf("ecdsaDER(%d bytes) succeeded", len(bad))
		}
	}
}

// TestDigestInfoPrefix checks the hand-written prefixes against DER built
// from RFC 8017's DigestInfo definition.
func TestDigestInfoPrefix(t *testing.T) {
	type digestInfo struct {
		Alg    pkix.AlgorithmIdentifier
		Digest []byte
	}
	oids := map[crypto.Hash]asn1.ObjectIdentifier{
		crypto.SHA256: {2, 16, 840, 1, 101, 3, 4, 2, 1},
		crypto.SHA384: {2, 16, 840, 1, 101, 3, 4, 2, 2},
		crypto.SHA512: {2, 16, 840, 1, 101, 3, 4, 2, 3},
	}
	for h, oid := range oids {
		t.Run(h.String(), func(t *testing.T) {
			digest := make([]byte, h.Size())
			want, err := asn1.Marshal(digestInfo{pkix.AlgorithmIdentifier{Algorithm: oid, Parameters: asn1.NullRawValue}, digest})
			if err != nil {
				t.Fatal(err)
			}
			prefix, ok := digestInfoPrefix(h)
			if !ok {
				t.Fatal("no prefix")
			}
			if diff := cmp.Diff(want, append(prefix, digest...)); diff != "" {
				t.Errorf("DigestInfo (-want +got):\n%s", diff)
			}
		})
	}
	for _, h := range []crypto.Hash{0, crypto.MD5, crypto.SHA1, crypto.SHA224, crypto.SHA3_256} {
		if _, ok := digestInfoPrefix(h); ok {
			t.Errorf("digestInfoPrefix(%v) is supported", h)
		}
	}
}

func TestECPublicKey(t *testing.T) {
	k, err := keyfile.Generate(keyfile.ECDSAP384, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pub := k.Public().(*ecdsa.PublicKey)
	point, err := pub.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	wrapped, _ := asn1.Marshal(point)
	p384, _ := asn1.Marshal(oidP384)
	p521, _ := asn1.Marshal(asn1.ObjectIdentifier{1, 3, 132, 0, 35})
	tests := []struct {
		name          string
		params, point []byte
		wantErr       bool
	}{
		{"DER point", p384, wrapped, false},
		{"raw point", p384, point, false},
		{"P-521", p521, wrapped, true},
		{"params not an OID", wrapped, wrapped, true},
		{"params with trailing data", append(p384, 0), wrapped, true},
		{"point off the curve", p384, append([]byte{4}, make([]byte, 96)...), true},
		{"compressed point", p384, append([]byte{2}, point[1:49]...), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ecPublicKey(tt.params, tt.point)
			if tt.wantErr {
				if err == nil {
					t.Fatal("succeeded")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !got.Equal(pub) {
				t.Error("decoded key differs")
			}
		})
	}
}

func TestRSAPublicKey(t *testing.T) {
	n := new(big.Int).Lsh(big.NewInt(1), 2047).Bytes()
	tests := []struct {
		name    string
		e       []byte
		wantErr bool
	}{
		{"65537", []byte{1, 0, 1}, false},
		{"3", []byte{3}, false},
		{"even", []byte{1, 0, 0}, true},
		{"one", []byte{1}, true},
		{"empty", nil, true},
		{"huge", []byte{1, 0, 0, 0, 0, 1}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := rsaPublicKey(n, tt.e)
			if (err != nil) != tt.wantErr {
				t.Fatalf("rsaPublicKey: %v, wantErr %v", err, tt.wantErr)
			}
		})
	}
}

func TestULong(t *testing.T) {
	b8 := binary.NativeEndian.AppendUint64(nil, 0x1234)
	b4 := binary.NativeEndian.AppendUint32(nil, 0x1234)
	for _, b := range [][]byte{b8, b4} {
		if v, err := ulong(b); err != nil || v != 0x1234 {
			t.Errorf("ulong(%x) = %x, %v", b, v, err)
		}
	}
	if _, err := ulong([]byte{1, 2}); err == nil {
		t.Error("ulong of 2 bytes succeeded")
	}
}

func TestSessionLost(t *testing.T) {
	tests := []struct {
		err  error
		want bool
	}{
		{nil, false},
		{errors.New("other"), false},
		{pkcs11.Error(pkcs11.CKR_SESSION_HANDLE_INVALID), true},
		{fmt.Errorf("C_Sign: %w", pkcs11.Error(pkcs11.CKR_SESSION_CLOSED)), true},
		{pkcs11.Error(pkcs11.CKR_DEVICE_ERROR), true},
		{pkcs11.Error(pkcs11.CKR_DEVICE_REMOVED), true},
		{pkcs11.Error(pkcs11.CKR_TOKEN_NOT_PRESENT), true},
		{pkcs11.Error(pkcs11.CKR_USER_NOT_LOGGED_IN), true},
		{pkcs11.Error(pkcs11.CKR_OPERATION_ACTIVE), true},
		{pkcs11.Error(pkcs11.CKR_KEY_HANDLE_INVALID), false},
		{pkcs11.Error(pkcs11.CKR_PIN_INCORRECT), false},
		{pkcs11.Error(pkcs11.CKR_DATA_LEN_RANGE), false},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.err), func(t *testing.T) {
			if got := sessionLost(tt.err); got != tt.want {
				t.Errorf("sessionLost(%v) = %v, want %v", tt.err, got, tt.want)
			}
		})
	}
}

func TestTokenDown(t *testing.T) {
	down := []uint{
		pkcs11.CKR_TOKEN_NOT_PRESENT, pkcs11.CKR_DEVICE_REMOVED, pkcs11.CKR_TOKEN_NOT_RECOGNIZED,
		pkcs11.CKR_SLOT_ID_INVALID, pkcs11.CKR_DEVICE_ERROR, pkcs11.CKR_DEVICE_MEMORY,
		pkcs11.CKR_GENERAL_ERROR, pkcs11.CKR_SESSION_COUNT,
	}
	up := []uint{
		pkcs11.CKR_PIN_INCORRECT, pkcs11.CKR_PIN_LOCKED, pkcs11.CKR_KEY_HANDLE_INVALID,
		pkcs11.CKR_ARGUMENTS_BAD, pkcs11.CKR_SESSION_HANDLE_INVALID, pkcs11.CKR_USER_NOT_LOGGED_IN,
		pkcs11.CKR_FUNCTION_FAILED, pkcs11.CKR_HOST_MEMORY, pkcs11.CKR_CRYPTOKI_NOT_INITIALIZED,
	}
	for want, rvs := range map[bool][]uint{true: down, false: up} {
		for _, rv := range rvs {
			err := fmt.Errorf("pkcs11key: opening a session: %w", pkcs11.Error(rv))
			if got := tokenDown(err); got != want {
				t.Errorf("tokenDown(%v) = %v, want %v", err, got, want)
			}
		}
	}
	if tokenDown(nil) || tokenDown(errors.New("other")) {
		t.Error("tokenDown of a nil or non-PKCS#11 error")
	}
}

// TestBreaker walks the breaker through its states on a settable clock.
func TestBreaker(t *testing.T) {
	clock := testfix.NewClock(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	var logs testfix.Buffer
	b := &breaker{
		interval: time.Second,
		now:      clock.Now,
		log:      slog.New(slog.NewTextHandler(&logs, nil)),
		token:    "ca",
	}
	gone := fmt.Errorf("%w: %w", ErrUnavailable, pkcs11.Error(pkcs11.CKR_TOKEN_NOT_PRESENT))

	b.record(nil)
	b.record(pkcs11.Error(pkcs11.CKR_KEY_HANDLE_INVALID))
	if b.down.Load() {
		t.Fatal("ordinary results opened the breaker")
	}
	b.record(gone)
	wantAdmit(t, b, false, "just tripped")
	clock.Advance(999 * time.Millisecond)
	wantAdmit(t, b, false, "before the interval")
	clock.Advance(time.Millisecond)
	wantAdmit(t, b, true, "after the interval")
	wantAdmit(t, b, false, "while another probe is out")
	b.abandon()
	wantAdmit(t, b, true, "after a probe was abandoned")
	b.record(gone)
	wantAdmit(t, b, false, "after a failed probe")
	clock.Advance(time.Second)
	wantAdmit(t, b, true, "an interval after the failed probe")
	b.record(nil)
	wantAdmit(t, b, false, "closed")
	if b.down.Load() {
		t.Fatal("a successful probe left the breaker open")
	}
	for msg, want := range map[string]int{"level=WARN msg=\"pkcs11 token unavailable": 1, "level=INFO msg=\"pkcs11 token available again": 1} {
		if n := strings.Count(logs.String(), msg); n != want {
			t.Errorf("%s logged %d times, want %d:\n%s", msg, n, want, logs.String())
		}
	}
}

// wantAdmit checks whether b lets the next caller through as a probe; a
// caller not let through must get ErrUnavailable while b is open.
func wantAdmit(t *testing.T, b *breaker, probe bool, when string) {
	t.Helper()
	got, err := b.admit()
	if got != probe {
		t.Fatalf("%s: admit() probe = %v, want %v", when, got, probe)
	}
	if wantErr := b.down.Load() && !probe; wantErr != errors.Is(err, ErrUnavailable) {
		t.Fatalf("%s: admit() error = %v, want ErrUnavailable: %v", when, err, wantErr)
	}
}

// FuzzECPublicKey feeds arbitrary CKA_EC_PARAMS and CKA_EC_POINT values, as
// a faulty or hostile module might return them.
func FuzzECPublicKey(f *testing.F) {
	p256, _ := asn1.Marshal(oidP256)
	k, err := keyfile.Generate(keyfile.ECDSAP256, rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	point, _ := k.Public().(*ecdsa.PublicKey).Bytes()
	wrapped, _ := asn1.Marshal(point)
	f.Add(p256, wrapped)
	f.Add(p256, point)
	f.Add([]byte{}, []byte{})
	f.Fuzz(func(t *testing.T, params, point []byte) {
		pub, err := ecPublicKey(params, point)
		//lint:ignore SA1019 the fuzz oracle checks the raw point
		if err == nil && !pub.Curve.IsOnCurve(pub.X, pub.Y) {
			t.Fatal("accepted a point off the curve")
		}
	})
}

// TestErrUnavailableSaysSo: packages that must not import this one (the
// issuance core, the responder) recognise ErrUnavailable by its method.
func TestErrUnavailableSaysSo(t *testing.T) {
	err := fmt.Errorf("pkcs11key: signing with key %q: %w", "int", ErrUnavailable)
	var u interface{ Unavailable() bool }
	if !errors.As(err, &u) || !u.Unavailable() {
		t.Errorf("%v: no Unavailable() true in its chain", err)
	}
	if !errors.Is(err, ErrUnavailable) {
		t.Errorf("%v: errors.Is(ErrUnavailable) false", err)
	}
}
