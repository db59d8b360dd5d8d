package ocspcache

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/trustline/trustline/internal/status"
)

// The stored form of an Entry (Redis values): a fixed header, then the
// DER. The status octet is at a fixed offset so that the write script can
// apply the no-downgrade rule with GETRANGE, without decoding the value.
//
//	[0]      '1'              format version
//	[1]      'G' | 'R' | 'U'  status
//	[2:10]   thisUpdate       Unix seconds, big-endian
//	[10:18]  nextUpdate       Unix seconds
//	[18:26]  refreshAt        Unix seconds
//	[26:]    DER
const (
	valueVersion = '1'
	valueHeader  = 26
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

func statusOctet(s status.Status) byte {
	switch s {
	case status.Good:
		return 'G'
	case status.Revoked:
		return 'R'
	}
	return 'U'
}

// appendValue appends the stored form of e.
func appendValue(dst []byte, e *Entry) []byte {
	dst = append(dst, valueVersion, statusOctet(e.Status))
	dst = binary.BigEndian.AppendUint64(dst, uint64(e.ThisUpdate.Unix()))
	dst = binary.BigEndian.AppendUint64(dst, uint64(e.NextUpdate.Unix()))
	dst = binary.BigEndian.AppendUint64(dst, uint64(e.RefreshAt.Unix()))
	return append(dst, e.DER...)
}

// decodeValue parses a stored value. The Entry's DER is a fresh copy (v is
// a string, as go-redis returns values).
func decodeValue(v string) (Entry, error) {
	if len(v) <= valueHeader {
		return Entry{}, errValueShort
	}
	if v[0] != valueVersion {
		return Entry{}, errValueVersion
	}
	var e Entry
	switch v[1] {
	case 'G':
		e.Status = status.Good
	case 'R':
		e.Status = status.Revoked
	case 'U':
		e.Status = status.Unknown
	default:
		return Entry{}, errValueStatus
	}
	u := func(off int) time.Time {
		return time.Unix(int64(binary.BigEndian.Uint64([]byte(v[off:off+8]))), 0).UTC()
	}
	e.ThisUpdate, e.NextUpdate, e.RefreshAt = u(2), u(10), u(18)
	if !e.NextUpdate.After(e.ThisUpdate) {
		return Entry{}, errValueTimes
	}
	if v[valueHeader] != 0x30 {
		return Entry{}, errValueDER
	}
	e.DER = []byte(v[valueHeader:])
	return e, nil
}

// The stored form of a State: "v1 <epoch> <0|1> <seq>". Epochs hold no
// spaces (the pipeline makes them from hex).
func encodeState(s State) string {
	c := "0"
	if s.Complete {
		c = "1"
	}
	return "v1 " + s.Epoch + " " + c + " " + strconv.FormatInt(s.Seq, 10)
}

func decodeState(v string) (State, error) {
	f := strings.Fields(v)
	if len(f) != 4 || f[0] != "v1" || (f[2] != "0" && f[2] != "1") {
		return State{}, fmt.Errorf("ocspcache: malformed stored state %q", v)
	}
	seq, err := strconv.ParseInt(f[3], 10, 64)
	if err != nil {
		return State{}, fmt.Errorf("ocspcache: malformed stored state %q", v)
	}
	return State{Epoch: f[1], Complete: f[2] == "1", Seq: seq}, nil
}

func validEpoch(e string) bool {
	return e != "" && !strings.ContainsAny(e, " \t\r\n")
}
