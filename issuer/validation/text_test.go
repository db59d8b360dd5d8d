package validation_test

import (
	"context"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/trustline/trustline/internal/mail"
	"github.com/trustline/trustline/internal/store"
	"github.com/trustline/trustline/internal/store/sqlite"
	"github.com/trustline/trustline/issuer"
	"github.com/trustline/trustline/issuer/validation"
)

// outbox is a hand-written mail.Sender that keeps what it is given.
type outbox struct{ msgs []mail.Message }

func (o *outbox) Send(_ context.Context, m mail.Message) error {
	o.msgs = append(o.msgs, m)
	return nil
}

// TestValidationMailForPeople: the validation mail says how long the code
// works as people write it, and names the validation it belongs to, so
// that a script (or a person with several in flight) picks the right one.
// storeWithAccount opens a fresh SQLite store, closed when the test ends,
// holding one subscriber account.
func storeWithAccount(t *testing.T) (*sqlite.Store, store.Account) {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, sqlite.Config{Path: filepath.Join(t.TempDir(), "t.db")}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	acct, _, err := issuer.NewAccounts(st, nil).Create(ctx, "alice@example.com", store.RoleSubscriber)
	if err != nil {
		t.Fatal(err)
	}
	return st, acct
}

func TestValidationMailForPeople(t *testing.T) {
	ctx := context.Background()
	log := slog.New(slog.DiscardHandler)
	st, acct := storeWithAccount(t)
	box := &outbox{}
	vals, err := validation.New(validation.Config{}, validation.Deps{Store: st, Mail: box, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	val, err := vals.Start(ctx, acct, validation.StartRequest{Domain: "example.com", Method: validation.MethodEmail, Email: "admin@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	if len(box.msgs) != 1 {
		t.Fatalf("%d mails, want 1", len(box.msgs))
	}
	body := box.msgs[0].Body
	for _, want := range []string{"\nValidation code: ", "The code works for 24 hours, until ", "\nValidation id: " + val.ID + "\n"} {
		if !strings.Contains(body, want) {
			t.Errorf("mail body lacks %q:\n%s", want, body)
		}
	}
	if strings.Contains(body, "24h0m0s") {
		t.Errorf("mail body shows a Go duration:\n%s", body)
	}
}

func TestConfigDurationsForPeople(t *testing.T) {
	err := validation.Config{ChallengeLifetime: 31 * 24 * time.Hour}.Validate()
	if err == nil || !strings.Contains(err.Error(), "ChallengeLifetime 31 days must be in [0, 30 days]") {
		t.Errorf("Validate = %v, want the lifetime in days", err)
	}
}
