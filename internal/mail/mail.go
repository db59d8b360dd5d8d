// Package mail sends Trustline's notifications: validation codes,
// "your certificate is ready", review outcomes and revocations.
//
// Dev mode delivers into a directory, one RFC 5322 message per file
// (CONTRACT.md: DIR/mail/); production hands each message to an SMTP relay
// (RFC 5321, STARTTLS per RFC 3207, optional AUTH PLAIN). Messages are
// plain text so a validation code stands on a line of its own
// ("Validation code: <code>").
//
// Imported by issuer/ (which mails) and cmd/ (which picks the sender).
package mail

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"mime"
	"net/mail"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Message is one plain-text email.
type Message struct {
	To      string
	Subject string
	Body    string
}

// Sender delivers messages.
type Sender interface {
	Send(ctx context.Context, m Message) error
}

// Validate checks addresses and header-injection attempts.
func (m Message) Validate() error {
	if _, err := mail.ParseAddress(m.To); err != nil {
		return fmt.Errorf("mail: bad recipient %q: %w", m.To, err)
	}
	if strings.ContainsAny(m.To+m.Subject, "\r\n") {
		return errors.New("mail: line break in a header")
	}
	return nil
}

// Render formats m as an RFC 5322 message from `from`.
func Render(m Message, from string, now time.Time, id string) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "From: %s\r\n", from)
	fmt.Fprintf(&b, "To: %s\r\n", m.To)
	fmt.Fprintf(&b, "Subject: %s\r\n", mime.QEncoding.Encode("utf-8", m.Subject))
	fmt.Fprintf(&b, "Date: %s\r\n", now.UTC().Format(time.RFC1123Z))
	fmt.Fprintf(&b, "Message-ID: <%s@trustline>\r\n", id)
	b.WriteString("MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n")
	body := strings.ReplaceAll(strings.ReplaceAll(m.Body, "\r\n", "\n"), "\n", "\r\n")
	b.WriteString(body)
	if !strings.HasSuffix(body, "\r\n") {
		b.WriteString("\r\n")
	}
	return []byte(b.String())
}

// Dir writes each message to a new file in Path (created 0700), named
// <unix-nanos>-<random>.eml so that listing sorts by time.
type Dir struct {
	Path string
	From string
	Now  func() time.Time
}

// Send writes m atomically (temp file, then rename).
func (d Dir) Send(_ context.Context, m Message) error {
	if err := m.Validate(); err != nil {
		return err
	}
	now := time.Now
	if d.Now != nil {
		now = d.Now
	}
	if err := os.MkdirAll(d.Path, 0o700); err != nil {
		return fmt.Errorf("mail: %w", err)
	}
	rb := make([]byte, 6)
	rand.Read(rb)
	id := fmt.Sprintf("%d-%s", now().UnixNano(), hex.EncodeToString(rb))
	from := d.From
	if from == "" {
		from = "Trustline <noreply@trustline.invalid>"
	}
	tmp := filepath.Join(d.Path, "."+id+".tmp")
	if err := os.WriteFile(tmp, Render(m, from, now(), id), 0o600); err != nil {
		return fmt.Errorf("mail: %w", err)
	}
	if err := os.Rename(tmp, filepath.Join(d.Path, id+".eml")); err != nil {
		return fmt.Errorf("mail: %w", err)
	}
	return nil
}
