package portal

import (
	"context"
	"net/http"
	"time"

	"github.com/trustline/trustline/internal/store"
	"github.com/trustline/trustline/issuer/acme"
)

// EABKeyMaker makes ACME external account binding keys (*acme.EABKeys).
type EABKeyMaker interface {
	Create(ctx context.Context, actor store.Account, accountID string, opts acme.EABKeyOptions) (store.ACMEEABKey, string, error)
}

// acmeData is the ACME page: how to point a client at the CA, and a
// binding key just made (shown this once).
type acmeData struct {
	Directory string
	Key       *madeKey
	Lifetime  time.Duration
}

type madeKey struct {
	ID        string
	HMAC      string
	ExpiresAt time.Time
}

// acmePage explains ACME for this account: the directory URL, and binding
// keys that make an ACME client's orders this account's (its validated
// domains reused).
func (h *Handler) acmePage(w http.ResponseWriter, r *http.Request, v *visit) {
	h.page(w, r, v, http.StatusOK, "acme", view{Title: "ACME", Nav: "acme",
		Data: acmeData{Directory: h.cfg.ACMEDirectory, Lifetime: acme.EABKeyLifetime}})
}

// makeEABKey makes a DV binding key for the signed-in account and shows
// it once. (OV and EV binding keys carry an organization: the API makes
// those, docs/acme.md.)
func (h *Handler) makeEABKey(w http.ResponseWriter, r *http.Request, v *visit) {
	k, hmacKey, err := h.d.EABKeys.Create(r.Context(), v.acct, v.acct.ID, acme.EABKeyOptions{})
	if err != nil {
		code, msg := h.formFailure(w, r, err)
		h.page(w, r, v, code, "acme", view{Title: "ACME", Nav: "acme", Errors: []string{msg},
			Data: acmeData{Directory: h.cfg.ACMEDirectory, Lifetime: acme.EABKeyLifetime}})
		return
	}
	// The page carries a credential; like every portal page it is sent
	// with Cache-Control: no-store.
	h.page(w, r, v, http.StatusOK, "acme", view{Title: "ACME", Nav: "acme",
		Notice: "A binding key was made. Copy the HMAC key now: it is not stored and is shown only this once.",
		Data: acmeData{Directory: h.cfg.ACMEDirectory, Lifetime: acme.EABKeyLifetime,
			Key: &madeKey{ID: k.ID, HMAC: hmacKey, ExpiresAt: k.ExpiresAt}}})
}
