package api

import (
	"net/http"
	"time"

	"github.com/trustline/trustline/internal/store"
	"github.com/trustline/trustline/issuer/fault"
)

// Dual control over staff roles (issuer.Staff, docs/security.md).

type grantJSON struct {
	ID          string     `json:"id"`
	AccountID   string     `json:"account_id"`
	Role        store.Role `json:"role"`
	Status      string     `json:"status"`
	RequestedBy string     `json:"requested_by"`
	RequestedAt time.Time  `json:"requested_at"`
	DecidedBy   string     `json:"decided_by,omitempty"`
	DecidedAt   *time.Time `json:"decided_at,omitempty"`
}

func toGrantJSON(g store.RoleGrant) grantJSON {
	out := grantJSON{ID: g.ID, AccountID: g.AccountID, Role: g.Role, Status: string(g.Status),
		RequestedBy: g.RequestedBy, RequestedAt: g.RequestedAt.UTC(), DecidedBy: g.DecidedBy}
	if !g.DecidedAt.IsZero() {
		t := g.DecidedAt.UTC()
		out.DecidedAt = &t
	}
	return out
}

func (h *Handler) staffOn(w http.ResponseWriter, r *http.Request) bool {
	if h.d.Staff == nil {
		h.fail(w, r, &fault.UnavailableError{Detail: "role grants are not configured on this server"})
		return false
	}
	return true
}

// requestRole asks for an existing account to become a reviewer or an
// admin: 202 with the pending grant under dual control, 200 when granted.
func (h *Handler) requestRole(w http.ResponseWriter, r *http.Request, admin store.Account) {
	if !h.staffOn(w, r) {
		return
	}
	var req struct {
		Role store.Role `json:"role"`
	}
	if err := decode(w, r, &req); err != nil {
		h.fail(w, r, err)
		return
	}
	g, err := h.d.Staff.Request(r.Context(), admin, r.PathValue("id"), req.Role)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	status := http.StatusOK
	if g.Status == store.GrantPending {
		status = http.StatusAccepted
	}
	writeJSON(w, status, toGrantJSON(g))
}

func (h *Handler) listGrants(w http.ResponseWriter, r *http.Request, _ store.Account) {
	if !h.staffOn(w, r) {
		return
	}
	status := store.GrantStatus(r.URL.Query().Get("status"))
	switch status {
	case "", store.GrantPending, store.GrantApproved, store.GrantRejected:
	default:
		problem(w, http.StatusBadRequest, "status: want pending, approved or rejected")
		return
	}
	gs, err := h.d.Staff.List(r.Context(), status)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	out := []grantJSON{}
	for _, g := range gs {
		out = append(out, toGrantJSON(g))
	}
	writeJSON(w, http.StatusOK, out)
}

func (h *Handler) approveGrant(w http.ResponseWriter, r *http.Request, admin store.Account) {
	h.decideGrant(w, r, admin, true)
}

func (h *Handler) rejectGrant(w http.ResponseWriter, r *http.Request, admin store.Account) {
	h.decideGrant(w, r, admin, false)
}

func (h *Handler) decideGrant(w http.ResponseWriter, r *http.Request, admin store.Account, approve bool) {
	if !h.staffOn(w, r) {
		return
	}
	g, err := h.d.Staff.Decide(r.Context(), admin, r.PathValue("id"), approve)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, toGrantJSON(g))
}

// setPerson records the natural person behind an account, linking it to
// that person's other accounts.
func (h *Handler) setPerson(w http.ResponseWriter, r *http.Request, admin store.Account) {
	if !h.staffOn(w, r) {
		return
	}
	var req struct {
		Person string `json:"person"`
	}
	if err := decode(w, r, &req); err != nil {
		h.fail(w, r, err)
		return
	}
	if err := h.d.Staff.SetPerson(r.Context(), admin, r.PathValue("id"), req.Person); err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"id": r.PathValue("id"), "person": req.Person})
}
