package watch

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Kind names what disagrees. The kinds are stable: metrics and alerts
// (docs/operations.md) use them.
type Kind string

const (
	Unreachable     Kind = "unreachable"       // no answer, or not 200
	Malformed       Kind = "malformed"         // does not parse as what it should be
	ErrorStatus     Kind = "error_status"      // an OCSP error answer (unauthorized: the responder does not know the certificate)
	BadSignature    Kind = "bad_signature"     // does not verify against the stored hierarchy
	WrongSubject    Kind = "wrong_subject"     // an answer about another certificate or shard
	StatusMismatch  Kind = "status_mismatch"   // good where the store says revoked, or the reverse
	ReasonMismatch  Kind = "reason_mismatch"   // another revocation reason than the store's
	TimeMismatch    Kind = "time_mismatch"     // another revocation time than the store's
	Expired         Kind = "expired"           // served at or past its nextUpdate
	NotYetValid     Kind = "not_yet_valid"     // thisUpdate in the future
	ValidityTooLong Kind = "validity_too_long" // nextUpdate too far after thisUpdate (BR 4.9.10, 7.2)
	Stale           Kind = "stale"             // not refreshed when the BR say it must be
	CacheOutlives   Kind = "cache_outlives"    // Cache-Control or Expires past nextUpdate
	MissingEntry    Kind = "missing_entry"     // a revocation older than the promised delay not listed
	NumberBackwards Kind = "number_backwards"  // a CRL number lower than one seen before
	WrongIDP        Kind = "wrong_idp"         // issuingDistributionPoint other than the URL certificates name
	BadReason       Kind = "bad_reason"        // a reason BR 7.2.2 does not allow
	MissingShard    Kind = "missing_shard"     // crls.json does not list a shard in use
)

// Finding is one disagreement, with the evidence.
type Finding struct {
	Kind    Kind
	Object  string // "ocsp" or "crl"
	URL     string
	Serial  string // the certificate, for OCSP and missing entries
	Issuer  string
	Detail  string
	Fetched Evidence
}

func (f Finding) String() string {
	s := fmt.Sprintf("%s %s %s", f.Object, f.Kind, f.URL)
	if f.Serial != "" {
		s += " serial " + f.Serial
	}
	return s + ": " + f.Detail
}

// Evidence is what was fetched: enough to show a relying party's view
// later.
type Evidence struct {
	At     time.Time
	Status int
	Header http.Header
	Body   []byte
}

// MaxBody bounds what is read of an answer: a CRL of a busy shard is the
// largest thing fetched.
const MaxBody = 64 << 20

// fetch GETs url and keeps what came back.
func fetch(ctx context.Context, hc *http.Client, url string, now func() time.Time) (Evidence, error) {
	ev := Evidence{At: now()}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return ev, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return ev, err
	}
	defer resp.Body.Close()
	ev.Status, ev.Header = resp.StatusCode, resp.Header.Clone()
	ev.Body, err = io.ReadAll(io.LimitReader(resp.Body, MaxBody+1))
	if err == nil && len(ev.Body) > MaxBody {
		err = fmt.Errorf("answer larger than %d bytes", MaxBody)
	}
	return ev, err
}

// cacheUntil is how long a cache may keep an answer fetched at at: by
// Cache-Control max-age (less Age, what a cache on the way already spent),
// else by Expires. ok is false when neither says.
func cacheUntil(h http.Header, at time.Time) (until time.Time, ok bool) {
	for _, d := range strings.Split(h.Get("Cache-Control"), ",") {
		d = strings.TrimSpace(strings.ToLower(d))
		if v, found := strings.CutPrefix(d, "max-age="); found {
			secs, err := strconv.ParseInt(strings.Trim(v, `"`), 10, 64)
			if err != nil || secs < 0 {
				continue
			}
			age, _ := strconv.ParseInt(h.Get("Age"), 10, 64)
			return at.Add(time.Duration(secs-max(age, 0)) * time.Second), true
		}
	}
	if e := h.Get("Expires"); e != "" {
		if t, err := http.ParseTime(e); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}
