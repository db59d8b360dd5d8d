package portal

import (
	"net/url"
	"testing"
	"time"

	"github.com/trustline/trustline/internal/store"
)

// TestPagesWriteDurationsForPeople: a lifetime on a page reads as people
// write it ("15 minutes"), never as Go prints it ("15m0s").
func TestPagesWriteDurationsForPeople(t *testing.T) {
	tests := []struct {
		lifetime time.Duration
		want     string
	}{
		{0, "The link works once, for 15 minutes."}, // the default
		{90 * time.Second, "The link works once, for 1 minute 30 seconds."},
		{time.Hour, "The link works once, for 1 hour."},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			e := newEnvWith(t, envOpts{cfg: Config{LoginLinkLifetime: tt.lifetime}})
			e.account(t, "alice@example.com", store.RoleSubscriber)
			b := e.browser(t)
			b.get(t, "/")
			p := b.post(t, "/signin/email", url.Values{"email": {"alice@example.com"}})
			wantStatus(t, "link sent", p, 200)
			wantContains(t, "link sent", p, tt.want)
		})
	}
}
