package api

import (
	"testing"
	"time"

	"github.com/trustline/trustline/internal/store"
)

// TestValidUntilIsTheReusePeriodInForce: a validation completed before
// 2027-03-15 under the 200-day reuse period shows, once the 100-day
// period is in force, the end that period gives (BR 4.2.1).
func TestValidUntilIsTheReusePeriodInForce(t *testing.T) {
	done := time.Date(2027, 3, 1, 0, 0, 0, 0, time.UTC)
	v := store.Validation{Status: store.ValidationValid, ValidatedAt: done, ValidUntil: done.Add(200 * 24 * time.Hour)}
	if got := toValidationJSON(v, done.Add(time.Hour)).ValidUntil; got == nil || !got.Equal(v.ValidUntil) {
		t.Errorf("under the 200-day period: valid_until %v, want %v", got, v.ValidUntil)
	}
	if got, want := toValidationJSON(v, time.Date(2027, 3, 20, 0, 0, 0, 0, time.UTC)).ValidUntil, done.Add(100*24*time.Hour); got == nil || !got.Equal(want) {
		t.Errorf("under the 100-day period: valid_until %v, want %v", got, want)
	}
}
