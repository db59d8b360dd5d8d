package validation_test

import (
	"context"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/trustline/trustline/internal/store"
	"github.com/trustline/trustline/issuer/profile"
	"github.com/trustline/trustline/issuer/validation"
)

func utc(y int, m time.Month, d int) time.Time { return time.Date(y, m, d, 12, 0, 0, 0, time.UTC) }

// validAt is a validation completed at t, with the ValidUntil its
// completion stored then.
func validAt(t time.Time) store.Validation {
	return store.Validation{Status: store.ValidationValid, ValidatedAt: t, ValidUntil: t.Add(profile.ReusePeriod(t))}
}

// TestReusable: the reuse period is the one in force when the certificate
// is issued, counted from the validation's completion (BR §4.2.1 as
// amended by ballot SC-081), whatever ValidUntil the completion stored.
func TestReusable(t *testing.T) {
	tests := []struct {
		name      string
		validated time.Time
		issued    time.Time
		want      bool
	}{
		{"within 200 days before 2027-03-15", utc(2026, 10, 1), utc(2027, 3, 1), true},
		{"101 days later, after the step to 100", utc(2027, 3, 1), utc(2027, 6, 10), false},
		{"99 days later, after the step to 100", utc(2027, 3, 1), utc(2027, 6, 8), true},
		{"19 days later, after the step to 10", utc(2029, 3, 1), utc(2029, 3, 20), false},
		{"9 days later, after the step to 10", utc(2029, 3, 10), utc(2029, 3, 19), true},
		{"past the stored ValidUntil", utc(2025, 1, 1), utc(2026, 2, 10), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := validation.Reusable(validAt(tt.validated), tt.issued); got != tt.want {
				t.Errorf("Reusable(validated %s, issued %s) = %v, want %v", tt.validated.Format(time.DateOnly), tt.issued.Format(time.DateOnly), got, tt.want)
			}
		})
	}
	if validation.Reusable(store.Validation{Status: store.ValidationPending, ValidatedAt: utc(2027, 1, 1), ValidUntil: utc(2028, 1, 1)}, utc(2027, 1, 2)) {
		t.Error("a pending validation is reusable")
	}
}

// TestCoveringJudgesReuseAtIssuance: a validation stored with 200 days of
// reuse no longer covers its domain 101 days on, once the 100-day rule is
// in force, though its ValidUntil has not come.
func TestCoveringJudgesReuseAtIssuance(t *testing.T) {
	ctx := context.Background()
	log := slog.New(slog.DiscardHandler)
	st, acct := storeWithAccount(t)
	done := utc(2027, 3, 1)
	v := validAt(done)
	v.ID, v.AccountID, v.Domain, v.Method, v.Contact, v.CreatedAt, v.ExpiresAt = "val_1", acct.ID, "example.com", validation.MethodEmail, "admin@example.com", done, done.Add(time.Hour)
	if err := st.CreateValidation(ctx, v); err != nil {
		t.Fatal(err)
	}
	var now atomic.Int64
	vals, err := validation.New(validation.Config{}, validation.Deps{Store: st, Mail: &outbox{}, Log: log, Now: func() time.Time { return time.Unix(0, now.Load()) }})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		at      time.Time
		covered bool
	}{{utc(2027, 6, 8), true}, {utc(2027, 6, 10), false}} {
		now.Store(c.at.UnixNano())
		un, err := vals.Uncovered(ctx, acct.ID, []string{"www.example.com"})
		if err != nil {
			t.Fatal(err)
		}
		if covered := len(un) == 0; covered != c.covered {
			t.Errorf("at %s: covered %v, want %v (stored ValidUntil %s)", c.at.Format(time.DateOnly), covered, c.covered, v.ValidUntil.Format(time.DateOnly))
		}
	}
}

// TestReusableUntil: the end of reuse the order form shows is the stored
// bound until a schedule step shortens it.
func TestReusableUntil(t *testing.T) {
	v := validAt(utc(2027, 3, 1)) // stored: 200 days on
	if got, want := validation.ReusableUntil(v, utc(2027, 3, 2)), v.ValidUntil; !got.Equal(want) {
		t.Errorf("before the step: %s, want the stored %s", got, want)
	}
	if got, want := validation.ReusableUntil(v, utc(2027, 3, 20)), utc(2027, 3, 1).Add(100*24*time.Hour); !got.Equal(want) {
		t.Errorf("after the step to 100 days: %s, want %s", got, want)
	}
}
