package api

import (
	"errors"
	"net/http"

	"github.com/trustline/trustline/internal/store"
	"github.com/trustline/trustline/issuer/fault"
)

// Address confirmation (issuer.Confirmations): sign-up mails a link; the
// portal follows it at /confirm-email, and an API client posts its token
// here.

// sendConfirmation mails acct its link and says how it went, for the
// sign-up answer; the account exists either way.
func (h *Handler) sendConfirmation(r *http.Request, acct store.Account) string {
	if h.d.Confirmations == nil {
		return "not configured"
	}
	err := h.d.Confirmations.Send(r.Context(), acct)
	var rl *fault.RateLimitedError
	switch {
	case err == nil:
		return "sent"
	case errors.As(err, &rl):
		return "not sent: " + rl.Detail
	}
	h.d.Log.Error("confirmation link not mailed", "account", acct.ID, "err", err)
	return "not sent: the mail could not be delivered; ask again later"
}

// confirmEmail follows a confirmation link's token: POST {"token"}.
func (h *Handler) confirmEmail(w http.ResponseWriter, r *http.Request) {
	if h.d.Confirmations == nil {
		h.fail(w, r, &fault.UnavailableError{Detail: "address confirmation is not configured on this server"})
		return
	}
	var req struct {
		Token string `json:"token"`
	}
	if err := decode(w, r, &req); err != nil {
		h.fail(w, r, err)
		return
	}
	acct, err := h.d.Confirmations.Confirm(r.Context(), req.Token)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"id": acct.ID, "email": acct.Email, "email_verified": true})
}

// resendConfirmation mails the caller's address a new link.
func (h *Handler) resendConfirmation(w http.ResponseWriter, r *http.Request, a store.Account) {
	if !a.EmailVerifiedAt.IsZero() {
		writeJSON(w, http.StatusOK, map[string]any{"email_confirmation": "confirmed already"})
		return
	}
	status := h.sendConfirmation(r, a)
	code := http.StatusAccepted
	if status != "sent" {
		code = http.StatusTooManyRequests
		if h.d.Confirmations == nil {
			code = http.StatusServiceUnavailable
		}
		problem(w, code, "the confirmation link was "+status)
		return
	}
	writeJSON(w, code, map[string]any{"email_confirmation": status})
}
