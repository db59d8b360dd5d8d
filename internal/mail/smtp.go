package mail

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/mail"
	"net/smtp"
	"os"
	"time"
)

// SMTPConfig configures delivery through a mail relay (RFC 5321), with
// STARTTLS (RFC 3207) and optional AUTH PLAIN (RFC 4954).
type SMTPConfig struct {
	// Addr is the relay as host:port ("smtp.example.net:587").
	Addr string
	// From is the From header ("Trustline <noreply@ca.example>"); its
	// address is also the envelope sender.
	From string
	// HeloName is the name announced in EHLO; "" means "localhost".
	HeloName string
	// Username and Password, when Username is set, authenticate with AUTH
	// PLAIN. net/smtp sends them only over TLS (or to a relay on
	// localhost), so a relay that does not offer STARTTLS fails the send.
	Username string
	Password string
	// RequireTLS refuses to send when the relay does not offer STARTTLS.
	// Without it a relay that offers STARTTLS is still always used with
	// TLS, and a failed TLS handshake never falls back to plain text.
	RequireTLS bool
	// Timeout bounds one whole delivery, from connect to QUIT; 0 means
	// 30 s. It must not be negative.
	Timeout time.Duration
}

// DefaultSMTPTimeout bounds a delivery when SMTPConfig.Timeout is 0.
const DefaultSMTPTimeout = 30 * time.Second

// Validate checks the configuration.
func (c SMTPConfig) Validate() error {
	var errs []error
	if _, port, err := net.SplitHostPort(c.Addr); err != nil || port == "" {
		errs = append(errs, fmt.Errorf("mail: smtp Addr %q must be host:port", c.Addr))
	}
	if a, err := mail.ParseAddress(c.From); err != nil || a.Address == "" {
		errs = append(errs, fmt.Errorf("mail: smtp From %q is not an address", c.From))
	}
	if c.Timeout < 0 {
		errs = append(errs, errors.New("mail: smtp Timeout must not be negative"))
	}
	if c.Password != "" && c.Username == "" {
		errs = append(errs, errors.New("mail: smtp Password given without Username"))
	}
	return errors.Join(errs...)
}

// SMTPDeps are the SMTP sender's collaborators; all are optional.
type SMTPDeps struct {
	// TLS is the client configuration for STARTTLS; nil means the system
	// roots. ServerName defaults to Addr's host.
	TLS *tls.Config
	// Dial opens the connection; nil means a net.Dialer.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// Now stamps the Date header; Rand makes Message-IDs.
	Now  func() time.Time
	Rand io.Reader
}

// SMTP delivers each message in its own SMTP session to the relay.
type SMTP struct {
	cfg      SMTPConfig
	host     string
	envelope string // bare address of cfg.From
	tls      *tls.Config
	dial     func(ctx context.Context, network, addr string) (net.Conn, error)
	now      func() time.Time
	rand     io.Reader
}

// NewSMTP checks cfg and builds the sender. It does not connect.
func NewSMTP(cfg SMTPConfig, d SMTPDeps) (*SMTP, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultSMTPTimeout
	}
	if cfg.HeloName == "" {
		cfg.HeloName = "localhost"
	}
	host, _, _ := net.SplitHostPort(cfg.Addr)
	from, _ := mail.ParseAddress(cfg.From)
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if d.TLS != nil {
		tc = d.TLS.Clone()
	}
	if tc.ServerName == "" {
		tc.ServerName = host
	}
	if d.Dial == nil {
		var nd net.Dialer
		d.Dial = nd.DialContext
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Rand == nil {
		d.Rand = rand.Reader
	}
	return &SMTP{cfg: cfg, host: host, envelope: from.Address, tls: tc, dial: d.Dial, now: d.Now, rand: d.Rand}, nil
}

// Send delivers m: EHLO, STARTTLS when offered (or required), AUTH when
// configured, MAIL, RCPT, DATA, QUIT. Any failure is returned; the caller
// decides whether it is fatal.
func (s *SMTP) Send(ctx context.Context, m Message) error {
	if err := m.Validate(); err != nil {
		return err
	}
	to, _ := mail.ParseAddress(m.To)
	idb := make([]byte, 12)
	if _, err := io.ReadFull(s.rand, idb); err != nil {
		return fmt.Errorf("mail: smtp: making a Message-ID: %w", err)
	}
	body := Render(m, s.cfg.From, s.now(), hex.EncodeToString(idb))

	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	conn, err := s.dial(ctx, "tcp", s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("mail: smtp: connecting to %s: %w", s.cfg.Addr, err)
	}
	defer conn.Close()
	deadline, _ := ctx.Deadline()
	conn.SetDeadline(deadline)
	// net/smtp takes no context: a cancellation moves the deadline into
	// the past, which fails the blocked read or write at once.
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	err = s.converse(conn, to.Address, body)
	switch {
	case err == nil:
		return nil
	case ctx.Err() != nil:
		return fmt.Errorf("%w (%w)", ctx.Err(), err)
	case errors.Is(err, os.ErrDeadlineExceeded):
		// The connection's deadline is the context's: it can fire a moment
		// before the context notices.
		return fmt.Errorf("%w (%w)", context.DeadlineExceeded, err)
	}
	return err
}

func (s *SMTP) converse(conn net.Conn, rcpt string, body []byte) error {
	step := func(doing string, err error) error {
		return fmt.Errorf("mail: smtp %s: %s: %w", s.cfg.Addr, doing, err)
	}
	c, err := smtp.NewClient(conn, s.host)
	if err != nil {
		return step("reading the greeting", err)
	}
	defer c.Close()
	if err := c.Hello(s.cfg.HeloName); err != nil {
		return step("EHLO", err)
	}
	if ok, _ := c.Extension("STARTTLS"); ok {
		if err := c.StartTLS(s.tls); err != nil {
			return step("STARTTLS", err)
		}
	} else if s.cfg.RequireTLS {
		return step("STARTTLS", errors.New("the relay does not offer STARTTLS and RequireTLS is set"))
	}
	if s.cfg.Username != "" {
		if ok, _ := c.Extension("AUTH"); !ok {
			return step("AUTH", errors.New("the relay offers no AUTH (is STARTTLS missing?)"))
		}
		if err := c.Auth(smtp.PlainAuth("", s.cfg.Username, s.cfg.Password, s.host)); err != nil {
			return step("AUTH", err)
		}
	}
	if err := c.Mail(s.envelope); err != nil {
		return step("MAIL FROM", err)
	}
	if err := c.Rcpt(rcpt); err != nil {
		return step("RCPT TO", err)
	}
	w, err := c.Data()
	if err != nil {
		return step("DATA", err)
	}
	if _, err := w.Write(body); err != nil {
		return step("sending the message", err)
	}
	if err := w.Close(); err != nil {
		return step("ending DATA", err)
	}
	// The relay took the message at the end of DATA; a failed QUIT loses
	// nothing.
	_ = c.Quit()
	return nil
}
