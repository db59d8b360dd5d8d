package mail

import (
	"context"
	"net/mail"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestDirWritesParsableMessages(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "mail")
	d := Dir{Path: dir, Now: func() time.Time { return time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC) }}
	err := d.Send(context.Background(), Message{To: "admin@example.com", Subject: "Validate example.com", Body: "Hello\nValidation code: ABC123\n"})
	if err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*.eml"))
	if len(files) != 1 {
		t.Fatalf("%d message files, want 1", len(files))
	}
	f, _ := os.Open(files[0])
	defer f.Close()
	msg, err := mail.ReadMessage(f)
	if err != nil {
		t.Fatalf("not an RFC 5322 message: %v", err)
	}
	if msg.Header.Get("To") != "admin@example.com" || msg.Header.Get("Subject") != "Validate example.com" {
		t.Errorf("headers %v", msg.Header)
	}
	body := new(strings.Builder)
	buf := make([]byte, 1024)
	n, _ := msg.Body.Read(buf)
	body.Write(buf[:n])
	if !strings.Contains(body.String(), "\r\nValidation code: ABC123\r\n") {
		t.Errorf("code not on a line of its own: %q", body)
	}
}

func TestSendRefusesHeaderInjection(t *testing.T) {
	d := Dir{Path: t.TempDir()}
	for _, m := range []Message{
		{To: "a@example.com\r\nBcc: x@evil.test", Subject: "s"},
		{To: "a@example.com", Subject: "s\r\nBcc: x@evil.test"},
		{To: "not an address", Subject: "s"},
	} {
		if err := d.Send(context.Background(), m); err == nil {
			t.Errorf("Send(%q, %q) succeeded", m.To, m.Subject)
		}
	}
}
