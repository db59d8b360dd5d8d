package api

import (
	"net/http"
	"strings"
	"time"

	"github.com/trustline/trustline/internal/store"
	"github.com/trustline/trustline/issuer"
	"github.com/trustline/trustline/issuer/fault"
)

// API keys: an account rotates its own (create a new one, then revoke the
// old, or rotate in one call) and revokes a leaked one; an admin lists and
// revokes any account's. Secrets are shown once, at creation; only their
// hashes are stored, and every change is audited (issuer.Keys).

type apiKeyJSON struct {
	ID        string     `json:"id"`
	CreatedAt time.Time  `json:"created_at"`
	RevokedAt *time.Time `json:"revoked_at,omitempty"`
	// Current marks the key that authenticated this request.
	Current bool `json:"current,omitempty"`
}

func toKeyJSON(k store.APIKey, current string) apiKeyJSON {
	out := apiKeyJSON{ID: k.ID, CreatedAt: k.CreatedAt.UTC(), Current: k.ID == current}
	if !k.RevokedAt.IsZero() {
		t := k.RevokedAt.UTC()
		out.RevokedAt = &t
	}
	return out
}

// bearerKeyID is the id part of the request's API key ("tl_<id>_<secret>");
// auth has already checked the whole key.
func bearerKeyID(r *http.Request) string {
	tok, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	return issuer.KeyID(tok)
}

func (h *Handler) keysOn(w http.ResponseWriter, r *http.Request) bool {
	if h.d.Keys == nil {
		h.fail(w, r, &fault.UnavailableError{Detail: "API key management is not configured on this server"})
		return false
	}
	return true
}

func (h *Handler) writeKeys(w http.ResponseWriter, r *http.Request, accountID, current string) {
	keys, err := h.d.Keys.List(r.Context(), accountID)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	out := []apiKeyJSON{}
	for _, k := range keys {
		out = append(out, toKeyJSON(k, current))
	}
	writeJSON(w, http.StatusOK, out)
}

func (h *Handler) listOwnKeys(w http.ResponseWriter, r *http.Request, a store.Account) {
	if h.keysOn(w, r) {
		h.writeKeys(w, r, a.ID, bearerKeyID(r))
	}
}

func (h *Handler) createOwnKey(w http.ResponseWriter, r *http.Request, a store.Account) {
	if !h.keysOn(w, r) {
		return
	}
	if out, ok := h.createKey(w, r, a); ok {
		writeJSON(w, http.StatusCreated, out)
	}
}

// createKey makes a key for a and returns the answer that shows it once;
// ok is false when the failure has been answered.
func (h *Handler) createKey(w http.ResponseWriter, r *http.Request, a store.Account) (map[string]any, bool) {
	token, row, err := h.d.Keys.Create(r.Context(), a, a.ID)
	if err != nil {
		h.fail(w, r, err)
		return nil, false
	}
	return map[string]any{"id": row.ID, "api_key": token, "created_at": row.CreatedAt.UTC()}, true
}

// rotateOwnKey makes a new key and revokes the one this request used.
func (h *Handler) rotateOwnKey(w http.ResponseWriter, r *http.Request, a store.Account) {
	if !h.keysOn(w, r) {
		return
	}
	out, ok := h.createKey(w, r, a)
	if !ok {
		return
	}
	old := bearerKeyID(r)
	if _, err := h.d.Keys.Revoke(r.Context(), a, a.ID, old); err != nil {
		h.fail(w, r, err)
		return
	}
	out["revoked"] = old
	writeJSON(w, http.StatusCreated, out)
}

func (h *Handler) revokeOwnKey(w http.ResponseWriter, r *http.Request, a store.Account) {
	if !h.keysOn(w, r) {
		return
	}
	k, err := h.d.Keys.Revoke(r.Context(), a, a.ID, r.PathValue("id"))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, toKeyJSON(k, bearerKeyID(r)))
}

func (h *Handler) adminListKeys(w http.ResponseWriter, r *http.Request, _ store.Account) {
	if h.keysOn(w, r) {
		h.writeKeys(w, r, r.PathValue("id"), bearerKeyID(r))
	}
}

func (h *Handler) adminRevokeKey(w http.ResponseWriter, r *http.Request, admin store.Account) {
	if !h.keysOn(w, r) {
		return
	}
	k, err := h.d.Keys.Revoke(r.Context(), admin, r.PathValue("id"), r.PathValue("key"))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, toKeyJSON(k, bearerKeyID(r)))
}
