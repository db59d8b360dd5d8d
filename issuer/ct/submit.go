package ct

import (
	"bytes"
	"context"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	ctgo "github.com/google/certificate-transparency-go"
	ctclient "github.com/google/certificate-transparency-go/client"
	"github.com/google/certificate-transparency-go/ctutil"
	"github.com/google/certificate-transparency-go/jsonclient"
	cttls "github.com/google/certificate-transparency-go/tls"
	ctx509 "github.com/google/certificate-transparency-go/x509"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/sony/gobreaker/v2"
)

// Config configures a Submitter.
type Config struct {
	Logs   []Log
	Policy Policy // zero fields: DefaultPolicy's
	// Timeout bounds one submission to one log, its retries of 429 and
	// 503 answers included; 0 means 10 s.
	Timeout time.Duration
	// BreakerFailures consecutive failures of a log open its circuit
	// breaker: the log is skipped until BreakerCooldown has passed, then
	// tried with one submission. 0 means 5 failures and 30 s.
	BreakerFailures uint32
	BreakerCooldown time.Duration
	// FinalSubmissions bounds the final certificates being submitted in
	// the background at once; beyond it one is dropped (counted). 0
	// means 64.
	FinalSubmissions int
}

// Deps are a Submitter's collaborators.
type Deps struct {
	HTTP     *http.Client // nil: a client with sane transport limits
	Log      *slog.Logger
	Registry prometheus.Registerer // nil: no metrics
}

// Submitter gets SCTs from the configured logs.
type Submitter struct {
	cfg   Config
	logs  []*logClient
	log   *slog.Logger
	m     *metrics
	final chan struct{} // a slot per background submission
	wg    sync.WaitGroup
}

type logClient struct {
	Log
	c  *ctclient.LogClient
	cb *gobreaker.CircuitBreaker[*ctgo.SignedCertificateTimestamp]
}

// New builds a Submitter over cfg.Logs.
func New(cfg Config, d Deps) (*Submitter, error) {
	if len(cfg.Logs) == 0 {
		return nil, errors.New("ct: no logs configured")
	}
	// Zero fields take the defaults.
	if cfg.Policy.MinSCTs == 0 {
		cfg.Policy.MinSCTs = DefaultPolicy.MinSCTs
	}
	if cfg.Policy.MinOperators == 0 {
		cfg.Policy.MinOperators = min(DefaultPolicy.MinOperators, cfg.Policy.MinSCTs)
	}
	if cfg.Policy.MinSCTsLong == 0 {
		cfg.Policy.MinSCTsLong = cfg.Policy.MinSCTs + 1
	}
	if err := cfg.Policy.Validate(); err != nil {
		return nil, err
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 10 * time.Second
	}
	if cfg.BreakerFailures == 0 {
		cfg.BreakerFailures = 5
	}
	if cfg.BreakerCooldown == 0 {
		cfg.BreakerCooldown = 30 * time.Second
	}
	if cfg.FinalSubmissions == 0 {
		cfg.FinalSubmissions = 64
	}
	if cfg.Timeout < 0 || cfg.BreakerCooldown < 0 || cfg.FinalSubmissions < 0 {
		return nil, errors.New("ct: negative timeout, cool-down or final submissions")
	}
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	if d.HTTP == nil {
		d.HTTP = &http.Client{Transport: &http.Transport{
			Proxy: http.ProxyFromEnvironment, MaxIdleConnsPerHost: 16, IdleConnTimeout: 90 * time.Second,
			TLSHandshakeTimeout: 10 * time.Second, ResponseHeaderTimeout: cfg.Timeout,
		}}
	}
	m, err := newMetrics(d.Registry)
	if err != nil {
		return nil, err
	}
	s := &Submitter{cfg: cfg, log: d.Log, m: m, final: make(chan struct{}, cfg.FinalSubmissions)}
	for _, l := range cfg.Logs {
		c, err := ctclient.New(l.URL, d.HTTP, jsonclient.Options{PublicKeyDER: l.KeyDER, UserAgent: "Trustline", Logger: printfLogger{d.Log.With("ct_log", l.Name)}})
		if err != nil {
			return nil, fmt.Errorf("ct: log %s: %w", l.Name, err)
		}
		lc := &logClient{Log: l, c: c}
		lc.cb = gobreaker.NewCircuitBreaker[*ctgo.SignedCertificateTimestamp](gobreaker.Settings{
			Name:        l.Name,
			MaxRequests: 1,
			Timeout:     cfg.BreakerCooldown,
			ReadyToTrip: func(c gobreaker.Counts) bool { return c.ConsecutiveFailures >= cfg.BreakerFailures },
			// A submission cancelled on our side is no failure of the log's.
			IsExcluded: func(err error) bool { return errors.Is(err, context.Canceled) },
			OnStateChange: func(name string, from, to gobreaker.State) {
				s.m.breakerState(name, to)
				lvl := slog.LevelInfo
				if to == gobreaker.StateOpen {
					lvl = slog.LevelWarn
				}
				d.Log.Log(context.Background(), lvl, "ct log circuit breaker", "ct_log", name, "from", from.String(), "to", to.String())
			},
		})
		s.m.breakerState(l.Name, gobreaker.StateClosed)
		s.logs = append(s.logs, lc)
	}
	return s, nil
}

// Policy is the policy SCTs meets.
func (s *Submitter) Policy() Policy { return s.cfg.Policy }

// eligible lists the logs that take a certificate expiring at notAfter
// and whose breaker is not open.
func (s *Submitter) eligible(notAfter time.Time) (ok []*logClient, skipped map[string]error) {
	skipped = map[string]error{}
	for _, l := range s.logs {
		switch {
		case !l.Accepts(notAfter):
			// Not this log's certificates: no failure.
		case l.cb.State() == gobreaker.StateOpen:
			skipped[l.Name] = fmt.Errorf("skipped: it failed %d times in a row; tried again after a cool-down of %v", s.cfg.BreakerFailures, s.cfg.BreakerCooldown)
		default:
			ok = append(ok, l)
		}
	}
	return ok, skipped
}

// CanMeet reports whether the logs available now could meet the policy
// for a certificate valid from notBefore to notAfter: the CA asks before
// it signs a precertificate, so that nothing is signed that cannot be
// completed.
func (s *Submitter) CanMeet(notBefore, notAfter time.Time) error {
	logs, skipped := s.eligible(notAfter)
	var ls []Log
	for _, l := range logs {
		ls = append(ls, l.Log)
	}
	policy := s.cfg.Policy.For(notBefore, notAfter)
	if policy.metBy(ls) { // were every one of them to answer
		return nil
	}
	if len(skipped) == 0 && len(ls) < len(s.logs) {
		skipped["(temporal intervals)"] = fmt.Errorf("only %d of the %d configured logs take certificates expiring %s", len(ls), len(s.logs), notAfter.UTC().Format(time.RFC3339))
	}
	return &PolicyError{Policy: policy, Got: 0, Operators: 0, Failures: skipped}
}

// Result is what SCTs obtained.
type Result struct {
	// Extension is the SCT list extension to embed in the final
	// certificate (RFC 6962 §3.3).
	Extension pkix.Extension
	// List is the TLS-encoded SignedCertificateTimestampList in it.
	List []byte
	// SCTs says which logs gave an SCT, in the order they answered.
	SCTs []Obtained
}

// Obtained is one SCT, for the audit log.
type Obtained struct {
	Log       string    `json:"log"`
	Operator  string    `json:"operator"`
	LogID     []byte    `json:"log_id"`
	Timestamp time.Time `json:"timestamp"`
}

type answer struct {
	l   *logClient
	sct *ctgo.SignedCertificateTimestamp
	err error
}

// SCTs submits a precertificate chain (the precertificate, its issuer, and
// the root) to the logs that take its notAfter, in parallel, and returns
// once their SCTs meet the policy. The other submissions run to their end
// (their SCTs unused): a log may have taken the entry already, and a
// request cut off mid-way can fail the log's other requests of the same
// batch. Each SCT's signature is checked against its log's key. If the
// policy cannot be met, the error is a *PolicyError.
func (s *Submitter) SCTs(ctx context.Context, chain [][]byte, notBefore, notAfter time.Time) (Result, error) {
	policy := s.cfg.Policy.For(notBefore, notAfter)
	logs, failures := s.eligible(notAfter)
	// Each submission is bounded by the per-log timeout, not by the
	// caller: it outlives SCTs when the policy is met first.
	ctx = context.WithoutCancel(ctx)
	answers := make(chan answer, len(logs))
	asn1Chain := asn1Certs(chain)
	for _, l := range logs {
		go func() {
			sct, err := s.submit(ctx, l, kindPrecert, asn1Chain)
			answers <- answer{l, sct, err}
		}()
	}
	var (
		got   []*ctgo.SignedCertificateTimestamp
		from  []Log
		res   Result
		ended = 0
	)
	for ended < len(logs) && !policy.metBy(from) {
		a := <-answers
		ended++
		if a.err != nil {
			failures[a.l.Name] = a.err
			continue
		}
		if !policy.useful(from, a.l.Log) {
			continue // another of an operator already counted, with no slot to spare
		}
		got, from = append(got, a.sct), append(from, a.l.Log)
		res.SCTs = append(res.SCTs, Obtained{Log: a.l.Name, Operator: a.l.Operator, LogID: a.l.ID[:], Timestamp: time.UnixMilli(int64(a.sct.Timestamp)).UTC()})
	}
	if !policy.metBy(from) {
		s.m.policyUnmet.Inc()
		return Result{SCTs: res.SCTs}, &PolicyError{Policy: policy, Got: len(from), Operators: operators(from), Failures: failures}
	}
	var err error
	if res.Extension, res.List, err = sctListExtension(got); err != nil {
		return Result{}, err
	}
	return res, nil
}

const (
	kindPrecert = "precertificate"
	kindFinal   = "final"
)

// submit sends chain to one log through its breaker, within the timeout.
func (s *Submitter) submit(ctx context.Context, l *logClient, kind string, chain []ctgo.ASN1Cert) (*ctgo.SignedCertificateTimestamp, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	start := time.Now()
	sct, err := l.cb.Execute(func() (*ctgo.SignedCertificateTimestamp, error) {
		var (
			sct *ctgo.SignedCertificateTimestamp
			err error
		)
		if kind == kindPrecert {
			sct, err = l.c.AddPreChain(ctx, chain)
		} else {
			sct, err = l.c.AddChain(ctx, chain)
		}
		if err == nil && !bytes.Equal(sct.LogID.KeyID[:], l.ID[:]) {
			// The client checked the signature with this log's key, so
			// this cannot pass unnoticed; say it plainly all the same.
			err = fmt.Errorf("the SCT names log %x", sct.LogID.KeyID)
		}
		return sct, err
	})
	outcome := "ok"
	switch {
	case err == nil:
	case errors.Is(err, gobreaker.ErrOpenState), errors.Is(err, gobreaker.ErrTooManyRequests):
		outcome = "breaker_open"
	case errors.Is(err, context.Canceled):
		outcome = "cancelled"
	case errors.Is(err, context.DeadlineExceeded):
		outcome = "timeout"
		err = fmt.Errorf("no SCT within %v", s.cfg.Timeout)
	default:
		outcome = "error"
	}
	s.m.submission(l.Name, kind, outcome, time.Since(start))
	if err != nil && outcome == "error" {
		s.log.Warn("ct submission failed", "ct_log", l.Name, "kind", kind, "err", err)
	}
	return sct, err
}

// VerifyEmbedded checks every SCT embedded in a final certificate against
// the key of the log it names (the certificate's TBS, less the SCT list,
// is what the log signed), and that they meet the policy.
func (s *Submitter) VerifyEmbedded(cert, issuer []byte) error {
	c, err := ctx509.ParseCertificate(cert)
	if err != nil {
		return fmt.Errorf("ct: parsing the final certificate: %w", err)
	}
	is, err := ctx509.ParseCertificate(issuer)
	if err != nil {
		return fmt.Errorf("ct: parsing the issuer: %w", err)
	}
	var from []Log
	for _, raw := range c.SCTList.SCTList {
		var sct ctgo.SignedCertificateTimestamp
		if rest, err := cttls.Unmarshal(raw.Val, &sct); err != nil || len(rest) > 0 {
			return fmt.Errorf("ct: an embedded SCT does not parse: %v", err)
		}
		l := s.byID(sct.LogID.KeyID)
		if l == nil {
			return fmt.Errorf("ct: an embedded SCT names log %x, which is not configured", sct.LogID.KeyID)
		}
		if err := ctutil.VerifySCT(l.Key, []*ctx509.Certificate{c, is}, &sct, true); err != nil {
			return fmt.Errorf("ct: the embedded SCT of %s does not verify: %w", l.Name, err)
		}
		from = append(from, l.Log)
	}
	if policy := s.cfg.Policy.For(c.NotBefore, c.NotAfter); !policy.metBy(from) {
		return fmt.Errorf("ct: the certificate embeds %d SCTs from %d operators; the policy needs %d from %d",
			len(from), operators(from), policy.MinSCTs, policy.MinOperators)
	}
	return nil
}

func (s *Submitter) byID(id [32]byte) *logClient {
	for _, l := range s.logs {
		if l.ID == id {
			return l
		}
	}
	return nil
}

// LogFinal submits a final certificate chain to every log that takes its
// notAfter, in the background (the SCTs it already embeds are what
// browsers check; this makes the certificate itself public too). When
// FinalSubmissions are under way already, it is dropped and counted.
func (s *Submitter) LogFinal(chain [][]byte, notAfter time.Time) {
	select {
	case s.final <- struct{}{}:
	default:
		s.m.finalDropped.Inc()
		return
	}
	logs, _ := s.eligible(notAfter)
	asn1Chain := asn1Certs(chain)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer func() { <-s.final }()
		var wg sync.WaitGroup
		for _, l := range logs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				s.submit(context.Background(), l, kindFinal, asn1Chain)
			}()
		}
		wg.Wait()
	}()
}

// Wait waits for the background submissions, at most until ctx is done.
func (s *Submitter) Wait(ctx context.Context) error {
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func asn1Certs(chain [][]byte) []ctgo.ASN1Cert {
	out := make([]ctgo.ASN1Cert, len(chain))
	for i, c := range chain {
		out[i] = ctgo.ASN1Cert{Data: c}
	}
	return out
}

// printfLogger sends the CT client's retry notes to slog at debug level.
type printfLogger struct{ l *slog.Logger }

func (p printfLogger) Printf(format string, args ...any) { p.l.Debug(fmt.Sprintf(format, args...)) }
