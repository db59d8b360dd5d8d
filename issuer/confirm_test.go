package issuer

import (
	"context"
	"errors"
	"regexp"
	"testing"
	"time"

	"github.com/trustline/trustline/internal/mail"
	"github.com/trustline/trustline/internal/store"
	"github.com/trustline/trustline/issuer/fault"
)

type confirmFake struct{ a store.Account }

func (f *confirmFake) Account(_ context.Context, id string) (store.Account, error) {
	if id != f.a.ID {
		return store.Account{}, store.ErrNotFound
	}
	return f.a, nil
}

func (f *confirmFake) VerifyAccountEmail(_ context.Context, id, email string, at time.Time) error {
	if id != f.a.ID || email != f.a.Email {
		return store.ErrNotFound
	}
	if f.a.EmailVerifiedAt.IsZero() {
		f.a.EmailVerifiedAt = at
	}
	return nil
}

type captureMail struct{ last mail.Message }

func (c *captureMail) Send(_ context.Context, m mail.Message) error { c.last = m; return nil }

// TestConfirmations: a link confirms its account's address once; a forged,
// expired or stale (address changed) link does not.
func TestConfirmations(t *testing.T) {
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	st := &confirmFake{a: store.Account{ID: "acct_1", Email: "dana@example.com"}}
	m := &captureMail{}
	c, err := NewConfirmations(ConfirmConfig{Key: make([]byte, 32), BaseURL: "https://ca.test/"},
		ConfirmDeps{Store: st, Mail: m, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Send(context.Background(), st.a); err != nil {
		t.Fatal(err)
	}
	tok := regexp.MustCompile(`https://ca\.test/confirm-email\?token=(\S+)`).FindStringSubmatch(m.last.Body)
	if tok == nil || m.last.To != "dana@example.com" {
		t.Fatalf("mail: %+v", m.last)
	}
	var in *fault.InputError
	for name, bad := range map[string]string{
		"forged MAC":   tok[1][:len(tok[1])-2] + "AA",
		"other expiry": "acct_1.99999999999." + tok[1][len(tok[1])-43:],
		"garbage":      "...",
	} {
		if _, err := c.Confirm(context.Background(), bad); !errors.As(err, &in) {
			t.Errorf("%s: %v", name, err)
		}
	}
	later := now
	now = now.Add(8 * 24 * time.Hour)
	if _, err := c.Confirm(context.Background(), tok[1]); !errors.As(err, &in) || !regexp.MustCompile("expired").MatchString(in.Detail) {
		t.Errorf("after 8 days: %v", err)
	}
	now = later
	st.a.Email = "dana@elsewhere.example"
	if _, err := c.Confirm(context.Background(), tok[1]); !errors.As(err, &in) {
		t.Errorf("after the address changed: %v", err)
	}
	st.a.Email = "dana@example.com"
	a, err := c.Confirm(context.Background(), tok[1])
	if err != nil || !a.EmailVerifiedAt.Equal(now) {
		t.Fatalf("the link: %+v, %v", a, err)
	}
	m.last = mail.Message{}
	if err := c.Send(context.Background(), a); err != nil || m.last.To != "" {
		t.Errorf("a confirmed address was sent another link: %+v %v", m.last, err)
	}
}
