package api

import (
	"cmp"
	"context"
	"net/http"

	"github.com/trustline/trustline/internal/store"
	"github.com/trustline/trustline/issuer/acme"
)

// EABKeyMaker makes ACME external account binding keys (*acme.EABKeys).
type EABKeyMaker interface {
	Create(ctx context.Context, actor store.Account, accountID string, opts acme.EABKeyOptions) (store.ACMEEABKey, string, error)
}

// createOwnEABKey gives the account a binding key for one ACME account
// (RFC 8555 §7.3.4): the key id and HMAC key an ACME client is given
// (certbot --eab-kid/--eab-hmac-key), shown once. An optional body
// {"profile": "ov"|"ev", "organization": {…}} makes that account's orders
// OV or EV orders for the organization.
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
	var opts acme.EABKeyOptions
	if err := decodeOptional(w, r, &opts); err != nil {
		h.fail(w, r, err)
		return
	}
	k, hmacKey, err := h.d.EABKeys.Create(r.Context(), actor, accountID, opts)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	out := map[string]any{"key_id": k.ID, "hmac_key": hmacKey, "expires_at": k.ExpiresAt.UTC(), "profile": cmp.Or(k.CertProfile, "dv")}
	writeJSON(w, http.StatusCreated, out)
}
