package api

import (
	"context"
	"net/http"

	"github.com/trustline/trustline/internal/store"
)

// EABKeyMaker makes ACME external account binding keys (*acme.EABKeys).
type EABKeyMaker interface {
	Create(ctx context.Context, actor store.Account, accountID string) (store.ACMEEABKey, string, error)
}

// createOwnEABKey gives the account a binding key for one ACME account
// (RFC 8555 §7.3.4): the key id and HMAC key an ACME client is given
// (certbot --eab-kid/--eab-hmac-key), shown once.
func (h *Handler) createOwnEABKey(w http.ResponseWriter, r *http.Request, a store.Account) {
	h.createEABKey(w, r, a, a.ID)
}

// adminCreateEABKey makes a binding key for another account.
func (h *Handler) adminCreateEABKey(w http.ResponseWriter, r *http.Request, a store.Account) {
	h.createEABKey(w, r, a, r.PathValue("id"))
}

func (h *Handler) createEABKey(w http.ResponseWriter, r *http.Request, actor store.Account, accountID string) {
	if h.d.EABKeys == nil {
		problem(w, http.StatusServiceUnavailable, "ACME is not configured on this server")
		return
	}
	k, hmacKey, err := h.d.EABKeys.Create(r.Context(), actor, accountID)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, map[string]any{"key_id": k.ID, "hmac_key": hmacKey, "expires_at": k.ExpiresAt.UTC()})
}
