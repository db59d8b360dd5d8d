package ct

import (
	"bytes"
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/google/certificate-transparency-go/loglist3"
)

// Log is a CT log certificates may be submitted to.
type Log struct {
	// Name is the log's description in the list (or its URL), for
	// metrics, logs and errors.
	Name     string
	Operator string
	// URL is the submission prefix: add-pre-chain is URL+"/ct/v1/add-pre-chain".
	URL    string
	Key    crypto.PublicKey
	KeyDER []byte   // SubjectPublicKeyInfo
	ID     [32]byte // SHA-256 of KeyDER (RFC 6962 §3.2)
	// NotAfterStart and NotAfterLimit are the temporal interval: the log
	// takes certificates whose notAfter is at or after the start and
	// before the limit. Zero: unbounded on that side.
	NotAfterStart, NotAfterLimit time.Time
}

// Accepts reports whether the log takes a certificate expiring at notAfter.
func (l Log) Accepts(notAfter time.Time) bool {
	return (l.NotAfterStart.IsZero() || !notAfter.Before(l.NotAfterStart)) &&
		(l.NotAfterLimit.IsZero() || notAfter.Before(l.NotAfterLimit))
}

// ParseLogList reads a CT log list in the v3 JSON format (the one Chrome
// publishes; loglist3) and returns the logs a CA may submit to: those in
// state usable or qualified, or with no state (a list an operator wrote).
// Pending, read-only, retired and rejected logs are left out. Every log
// must have a parsable key whose SHA-256 is its log_id, and an http(s)
// URL.
func ParseLogList(data []byte) ([]Log, error) {
	ll, err := loglist3.NewFromJSON(data)
	if err != nil {
		return nil, fmt.Errorf("ct: the log list is not a v3 log list: %w", err)
	}
	var out []Log
	var errs []error
	for _, op := range ll.Operators {
		add := func(desc, rawURL string, id, key []byte, state *loglist3.LogStates, ti *loglist3.TemporalInterval) {
			if !usable(state) {
				return
			}
			l, err := newLog(op.Name, desc, rawURL, id, key, ti)
			if err != nil {
				errs = append(errs, err)
				return
			}
			out = append(out, l)
		}
		for _, l := range op.Logs {
			add(l.Description, l.URL, l.LogID, l.Key, l.State, l.TemporalInterval)
		}
		for _, l := range op.TiledLogs {
			add(l.Description, l.SubmissionURL, l.LogID, l.Key, l.State, l.TemporalInterval)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	seen := map[[32]byte]bool{}
	for _, l := range out {
		if seen[l.ID] {
			return nil, fmt.Errorf("ct: log %s is listed twice", l.Name)
		}
		seen[l.ID] = true
	}
	return out, nil
}

func usable(s *loglist3.LogStates) bool {
	if s == nil {
		return true
	}
	switch s.LogStatus() {
	case loglist3.UsableLogStatus, loglist3.QualifiedLogStatus, loglist3.UndefinedLogStatus:
		return true
	}
	return false
}

func newLog(operator, desc, rawURL string, id, keyDER []byte, ti *loglist3.TemporalInterval) (Log, error) {
	name := desc
	if name == "" {
		name = rawURL
	}
	if strings.TrimSpace(operator) == "" {
		return Log{}, fmt.Errorf("ct: log %s: its operator has no name", name)
	}
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return Log{}, fmt.Errorf("ct: log %s: %q is not an http(s) URL", name, rawURL)
	}
	key, err := x509.ParsePKIXPublicKey(keyDER)
	if err != nil {
		return Log{}, fmt.Errorf("ct: log %s: its key does not parse: %w", name, err)
	}
	sum := sha256.Sum256(keyDER)
	if !bytes.Equal(sum[:], id) {
		return Log{}, fmt.Errorf("ct: log %s: log_id %s is not the SHA-256 of its key (%s)", name,
			base64.StdEncoding.EncodeToString(id), base64.StdEncoding.EncodeToString(sum[:]))
	}
	l := Log{Name: name, Operator: operator, URL: strings.TrimSuffix(rawURL, "/"), Key: key, KeyDER: keyDER, ID: sum}
	if ti != nil {
		l.NotAfterStart, l.NotAfterLimit = ti.StartInclusive, ti.EndExclusive
		if !l.NotAfterLimit.IsZero() && !l.NotAfterLimit.After(l.NotAfterStart) {
			return Log{}, fmt.Errorf("ct: log %s: its temporal interval ends before it starts", name)
		}
	}
	return l, nil
}
