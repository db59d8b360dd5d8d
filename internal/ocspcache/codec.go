package ocspcache

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/trustline/trustline/internal/ocspcodec"
	"github.com/trustline/trustline/internal/status"
)

// The stored form of an Entry (Redis values): a fixed header, then the
// response. The status octet is at a fixed offset so that the write script
// can apply the no-downgrade rule with GETRANGE, without decoding the
// value.
//
//	[0]      '1' | '2'        format version
//	[1]      'G' | 'R' | 'U'  status
//	[2:10]   thisUpdate       Unix seconds, big-endian
//	[10:18]  nextUpdate       Unix seconds
//	[18:26]  refreshAt        Unix seconds
//	version '1': the response as it is served
//	[26:]    DER
//	version '2': the response without its certs (ocspcodec.SplitCerts)
//	[26:34]  certs id         zero, or the first 8 octets of the SHA-256 of the certs
//	[34:]    body
//
// Version 2 is what Put writes for every response it can split: the
// delegated responder certificate, over half of a P-256 response, is then
// stored once per cache (under its id) instead of once per response, and
// put back by Get. Version 1 is written for anything else and still read,
// so a cache filled by an older Trustline keeps answering.
const (
	valueV1     = '1'
	valueV2     = '2'
	valueHeader = 26
	certsIDLen  = 8
)

// Errors of decodeValue; the responder treats a value it cannot decode as
// absent, so these only reach logs and tests.
var (
	errValueShort   = errors.New("ocspcache: stored value shorter than its header")
	errValueVersion = errors.New("ocspcache: stored value of an unknown format version")
	errValueStatus  = errors.New("ocspcache: stored value with an unknown status")
	errValueTimes   = errors.New("ocspcache: stored value with nextUpdate not after thisUpdate")
	errValueDER     = errors.New("ocspcache: stored value does not hold a DER SEQUENCE")
)

// certsID names a certs element: the first octets of its SHA-256. The
// zero id means "no certs".
type certsID [certsIDLen]byte

func idOf(certs []byte) certsID {
	sum := sha256.Sum256(certs)
	return certsID(sum[:certsIDLen])
}

func (id certsID) String() string { return hex.EncodeToString(id[:]) }

func statusOctet(s status.Status) byte {
	switch s {
	case status.Good:
		return 'G'
	case status.Revoked:
		return 'R'
	}
	return 'U'
}

// appendValue appends the stored form of e. certs is what the value left
// out: the certs element to store once under its id (nil when the value
// is whole, or its response carries no certs).
func appendValue(dst []byte, e *Entry) (v, certs []byte) {
	body, certs, split := ocspcodec.SplitCerts(e.DER)
	version := byte(valueV1)
	if split {
		version = valueV2
	}
	dst = append(dst, version, statusOctet(e.Status))
	dst = binary.BigEndian.AppendUint64(dst, uint64(e.ThisUpdate.Unix()))
	dst = binary.BigEndian.AppendUint64(dst, uint64(e.NextUpdate.Unix()))
	dst = binary.BigEndian.AppendUint64(dst, uint64(e.RefreshAt.Unix()))
	if !split {
		return append(dst, e.DER...), nil
	}
	var id certsID
	if certs != nil {
		id = idOf(certs)
	}
	dst = append(dst, id[:]...)
	return append(dst, body...), certs
}

// storedValue is a decoded value. Its Entry has no DER yet: a version 2
// value needs its certs (certs, when hasCerts) to make it.
type storedValue struct {
	Entry
	body     string // version 1: the DER; version 2: the split body
	split    bool
	hasCerts bool
	certs    certsID
}

// decodeValue parses a stored value.
func decodeValue(v string) (storedValue, error) {
	if len(v) <= valueHeader {
		return storedValue{}, errValueShort
	}
	var sv storedValue
	switch v[0] {
	case valueV1:
		sv.body = v[valueHeader:]
	case valueV2:
		if len(v) <= valueHeader+certsIDLen {
			return storedValue{}, errValueShort
		}
		sv.split = true
		copy(sv.certs[:], v[valueHeader:])
		sv.hasCerts = sv.certs != certsID{}
		sv.body = v[valueHeader+certsIDLen:]
	default:
		return storedValue{}, errValueVersion
	}
	switch v[1] {
	case 'G':
		sv.Status = status.Good
	case 'R':
		sv.Status = status.Revoked
	case 'U':
		sv.Status = status.Unknown
	default:
		return storedValue{}, errValueStatus
	}
	u := func(off int) time.Time {
		return time.Unix(int64(binary.BigEndian.Uint64([]byte(v[off:off+8]))), 0).UTC()
	}
	sv.ThisUpdate, sv.NextUpdate, sv.RefreshAt = u(2), u(10), u(18)
	if !sv.NextUpdate.After(sv.ThisUpdate) {
		return storedValue{}, errValueTimes
	}
	if sv.body[0] != 0x30 {
		return storedValue{}, errValueDER
	}
	return sv, nil
}

// entry returns the Entry with its DER, a fresh copy: the body joined with
// certs for a version 2 value (certs are the bytes under sv.certs, ignored
// unless hasCerts).
func (sv *storedValue) entry(certs []byte) Entry {
	e := sv.Entry
	if !sv.split {
		e.DER = []byte(sv.body)
		return e
	}
	if !sv.hasCerts {
		certs = nil
	}
	e.DER = make([]byte, 0, ocspcodec.JoinedLen(len(sv.body), len(certs)))
	e.DER = ocspcodec.JoinCerts(e.DER, sv.body, certs)
	return e
}

// The stored form of a State: "v2 <epoch> <0|1> <seq> <refresh floor>
// <after>", after "-" when empty. The v1 form ("v1 <epoch> <0|1> <seq>"
// and an optional " <after>") is still read. Epochs and serials hold no
// spaces (the pipeline makes both from hex).
func encodeState(s State) string {
	c := "0"
	if s.Complete {
		c = "1"
	}
	after := s.After
	if after == "" {
		after = "-"
	}
	return "v2 " + s.Epoch + " " + c + " " + strconv.FormatInt(s.Seq, 10) + " " + strconv.FormatInt(s.RefreshFloor, 10) + " " + after
}

func decodeState(v string) (State, error) {
	f := strings.Fields(v)
	bad := fmt.Errorf("ocspcache: malformed stored state %q", v)
	ok := len(f) > 0 && ((f[0] == "v1" && (len(f) == 4 || len(f) == 5)) || (f[0] == "v2" && len(f) == 6))
	if !ok || (f[2] != "0" && f[2] != "1") {
		return State{}, bad
	}
	seq, err := strconv.ParseInt(f[3], 10, 64)
	if err != nil {
		return State{}, bad
	}
	st := State{Epoch: f[1], Complete: f[2] == "1", Seq: seq}
	switch {
	case f[0] == "v1" && len(f) == 5:
		if f[4] == "-" { // "-" is v2's empty After; never a serial
			return State{}, bad
		}
		st.After = f[4]
	case f[0] == "v2":
		if st.RefreshFloor, err = strconv.ParseInt(f[4], 10, 64); err != nil {
			return State{}, bad
		}
		if f[5] != "-" {
			st.After = f[5]
		}
	}
	return st, nil
}

func validEpoch(e string) bool {
	return e != "" && !strings.ContainsAny(e, " \t\r\n")
}

// validState: a State SwapState may store.
func validState(s State) error {
	if !validEpoch(s.Epoch) || strings.ContainsAny(s.After, " \t\r\n") || s.After == "-" {
		return errors.New("ocspcache: SwapState: a State needs an Epoch, and neither Epoch nor After may hold spaces")
	}
	return nil
}
