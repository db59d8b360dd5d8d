package perspective

import (
	"bytes"
	"context"
	"crypto"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/trustline/trustline/issuer/caa"
	"github.com/trustline/trustline/issuer/mpic"
)

// Validations repeats dns-txt and http-token checks (*validation.Probe).
type Validations interface {
	Check(ctx context.Context, c mpic.Check) (found bool, detail string, evidence map[string]any, err error)
}

// CAAChecker repeats CAA checks (*caa.Checker).
type CAAChecker interface {
	Check(ctx context.Context, r caa.Request) (caa.Result, error)
}

// ServerConfig configures a perspective.
type ServerConfig struct {
	// Name identifies the perspective in evidence ("eu-central-1").
	Name string
	// RIR is the Regional Internet Registry whose service region the
	// perspective and its resolver are in (ARIN, RIPE, APNIC, LACNIC,
	// AFRINIC): BR §3.2.2.9 wants corroborations from two.
	RIR string
	// Key is the perspective's key: TLS and statement signatures.
	Key crypto.Signer
	// Clients are the primaries' public keys; no one else may ask.
	Clients []crypto.PublicKey
	// CheckTimeout bounds one check; 0 means 30 s.
	CheckTimeout time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Server answers checks.
type Server struct {
	cfg  ServerConfig
	val  Validations
	caa  CAAChecker
	log  *slog.Logger
	cert tls.Certificate
}

// NewServer checks cfg and builds a perspective that performs
// validations through val and CAA checks through caa (either may be nil:
// those checks are then answered 501).
func NewServer(cfg ServerConfig, val Validations, caaChecker CAAChecker, log *slog.Logger) (*Server, error) {
	var errs []error
	if cfg.Name == "" {
		errs = append(errs, errors.New("perspective: a name is required"))
	}
	if cfg.Key == nil {
		errs = append(errs, errors.New("perspective: a key is required"))
	}
	if len(cfg.Clients) == 0 {
		errs = append(errs, errors.New("perspective: at least one client (primary) key is required"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if cfg.CheckTimeout == 0 {
		cfg.CheckTimeout = 30 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cert, err := selfSigned(cfg.Key, "trustline perspective "+cfg.Name)
	if err != nil {
		return nil, err
	}
	return &Server{cfg: cfg, val: val, caa: caaChecker, log: log, cert: cert}, nil
}

// TLSConfig is the listener's: TLS 1.3, the perspective's key, and a
// client certificate required and pinned to the configured primaries.
func (s *Server) TLSConfig() (*tls.Config, error) {
	verify, err := pinned(s.cfg.Clients)
	if err != nil {
		return nil, err
	}
	return &tls.Config{
		MinVersion:            tls.VersionTLS13,
		Certificates:          []tls.Certificate{s.cert},
		ClientAuth:            tls.RequireAnyClientCert,
		VerifyPeerCertificate: verify,
	}, nil
}

// Handler serves CheckPath. It relies on TLSConfig having authenticated
// the client.
func (s *Server) Handler() http.Handler {
	m := http.NewServeMux()
	m.HandleFunc("POST "+CheckPath, s.serveCheck)
	return m
}

func (s *Server) serveCheck(w http.ResponseWriter, r *http.Request) {
	if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
		http.Error(w, "a client certificate is required", http.StatusUnauthorized)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		http.Error(w, "the request body is too large or unreadable", http.StatusRequestEntityTooLarge)
		return
	}
	var req Request
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		http.Error(w, "the request is not a check: "+err.Error(), http.StatusBadRequest)
		return
	}
	if err := req.Check.Validate(); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if n, err := base64.RawURLEncoding.DecodeString(req.Nonce); err != nil || len(n) < 16 || len(n) > 64 {
		http.Error(w, "the nonce must be 16 to 64 bytes in unpadded base64url", http.StatusBadRequest)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.CheckTimeout)
	defer cancel()
	st := Statement{Perspective: s.cfg.Name, RIR: s.cfg.RIR, Check: req.Check, Nonce: req.Nonce}
	if err := s.perform(ctx, &st); err != nil {
		s.log.Warn("check not performed", "kind", req.Check.Kind, "domain", req.Check.Domain, "err", err)
		var nb notBuilt
		if errors.As(err, &nb) {
			http.Error(w, err.Error(), http.StatusNotImplemented)
			return
		}
		http.Error(w, "the perspective could not perform the check: "+err.Error(), http.StatusServiceUnavailable)
		return
	}
	st.At = s.cfg.Now().UTC()
	out, err := json.Marshal(st)
	if err != nil {
		http.Error(w, "encoding the statement failed", http.StatusInternalServerError)
		return
	}
	sig, err := sign(s.cfg.Key, out)
	if err != nil {
		s.log.Error("statement not signed", "err", err)
		http.Error(w, "signing the statement failed", http.StatusInternalServerError)
		return
	}
	s.log.Info("check performed", "kind", req.Check.Kind, "domain", req.Check.Domain, "passed", st.Passed)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set(SignatureHeader, base64.StdEncoding.EncodeToString(sig))
	w.Write(out)
}

// notBuilt: this perspective was not given the checker a kind needs.
type notBuilt struct{ kind string }

func (e notBuilt) Error() string { return "this perspective does not perform " + e.kind + " checks" }

// perform runs the check and fills st. An error is this side's: the
// resolver did not answer, or the check is not offered.
func (s *Server) perform(ctx context.Context, st *Statement) error {
	c := st.Check
	if c.Kind == mpic.KindCAA {
		if s.caa == nil {
			return notBuilt{c.Kind}
		}
		res, err := s.caa.Check(ctx, caa.Request{Name: c.Domain, AccountURI: c.AccountURI, Method: c.Method})
		if errors.Is(err, caa.ErrResolver) {
			return err
		}
		st.Passed, st.Detail = err == nil && res.Permitted, res.Reason
		st.Evidence = map[string]any{"caa": res}
		return nil
	}
	if s.val == nil {
		return notBuilt{c.Kind}
	}
	found, detail, evidence, err := s.val.Check(ctx, c)
	if err != nil {
		return fmt.Errorf("%s check: %w", c.Kind, err)
	}
	st.Passed, st.Detail, st.Evidence = found, detail, evidence
	return nil
}
