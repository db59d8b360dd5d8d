package humanize

import (
	"os/exec"
	"strings"
	"testing"
	"time"
)

func TestDuration(t *testing.T) {
	const day = 24 * time.Hour
	tests := []struct {
		in   time.Duration
		want string
	}{
		{0, "0 seconds"},
		{time.Nanosecond, "1 nanosecond"},
		{1500 * time.Nanosecond, "1 microsecond 500 nanoseconds"},
		{250 * time.Millisecond, "250 milliseconds"},
		{time.Second, "1 second"},
		{1500 * time.Millisecond, "1 second 500 milliseconds"},
		{45 * time.Second, "45 seconds"},
		{90 * time.Second, "1 minute 30 seconds"},
		{15 * time.Minute, "15 minutes"},
		{time.Hour, "1 hour"},
		{2 * time.Hour, "2 hours"},
		{90 * time.Minute, "1 hour 30 minutes"},
		{8 * time.Hour, "8 hours"},
		{24 * time.Hour, "24 hours"},
		{30 * time.Hour, "30 hours"},
		{48*time.Hour - time.Second, "2 days"},
		{48 * time.Hour, "2 days"},
		{54 * time.Hour, "2 days 6 hours"},
		{7 * day, "7 days"},
		{200 * day, "200 days"},
		{398 * day, "398 days"},
		// Two units at most, rounded to the smaller one shown.
		{time.Hour + 30*time.Minute + 29*time.Second, "1 hour 30 minutes"},
		{time.Hour + 30*time.Minute + 31*time.Second, "1 hour 31 minutes"},
		{time.Hour + 5*time.Second, "1 hour"},
		{day + 5*time.Minute, "24 hours 5 minutes"},
		{2*day + 5*time.Minute, "2 days"},
		// Rounding carries into the larger unit.
		{2*time.Hour - time.Second, "2 hours"},
		{time.Hour - 400*time.Millisecond, "1 hour"},
		{day - 20*time.Second, "24 hours"},
		{2*day - 20*time.Minute, "47 hours 40 minutes"},
		{-15 * time.Minute, "-15 minutes"},
		{time.Duration(-1 << 63), "-106751 days 23 hours"},
		{time.Duration(1<<63 - 1), "106751 days 23 hours"},
	}
	for _, tt := range tests {
		t.Run(tt.in.String(), func(t *testing.T) {
			if got := Duration(tt.in); got != tt.want {
				t.Errorf("Duration(%v) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

// humanize is a leaf that any package may import, the stateless responder
// and origin included: it must stay on the standard library.
func TestImportsOnlyTheStandardLibrary(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, p := range strings.Fields(string(out)) {
		if p != "github.com/trustline/trustline/internal/humanize" {
			t.Errorf("humanize imports %s; it may import only the standard library", p)
		}
	}
}
