package api

import (
	"context"
	"encoding/base64"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/trustline/trustline/internal/serial"
	"github.com/trustline/trustline/internal/store"
	"github.com/trustline/trustline/issuer/acme"
	"github.com/trustline/trustline/issuer/fault"
)

// RevocationPlanner records planned revocations (*acme.RevocationPlans):
// certificates the CA will revoke by a deadline, whose ACME renewal
// windows move before it.
type RevocationPlanner interface {
	Plan(ctx context.Context, actor store.Account, req acme.PlanRequest) ([]store.PlannedRevocation, error)
	List(ctx context.Context, after store.PlannedRevocationCursor, limit int) ([]store.PlannedRevocation, error)
	Cancel(ctx context.Context, actor store.Account, s serial.Serial) error
}

// plannedJSON is a planned revocation as the API shows it.
type plannedJSON struct {
	Serial         string    `json:"serial"`
	RevokeBy       time.Time `json:"revoke_by"`
	Reason         string    `json:"reason"`
	ExplanationURL string    `json:"explanation_url,omitempty"`
	CreatedBy      string    `json:"created_by"`
	CreatedAt      time.Time `json:"created_at"`
}

func toPlannedJSON(p store.PlannedRevocation) plannedJSON {
	return plannedJSON{Serial: p.Serial.String(), RevokeBy: p.RevokeBy.UTC(), Reason: p.Reason.String(),
		ExplanationURL: p.ExplanationURL, CreatedBy: p.CreatedBy, CreatedAt: p.CreatedAt.UTC()}
}

// planRevocations records that the certificates named will be revoked by
// revoke_by. Admins only; audited.
func (h *Handler) planRevocations(w http.ResponseWriter, r *http.Request, a store.Account) {
	if h.d.Plans == nil {
		problem(w, http.StatusServiceUnavailable, "ACME is not configured on this server")
		return
	}
	var req acme.PlanRequest
	if err := decode(w, r, &req); err != nil {
		h.fail(w, r, err)
		return
	}
	plans, err := h.d.Plans.Plan(r.Context(), a, req)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	out := make([]plannedJSON, len(plans))
	for i, p := range plans {
		out[i] = toPlannedJSON(p)
	}
	h.d.Log.Info("revocations planned", "count", len(plans), "revoke_by", req.RevokeBy, "by", a.ID)
	writeJSON(w, http.StatusCreated, map[string]any{"planned_revocations": out})
}

// listPlannedRevocations lists plans, earliest deadline first, a page at a
// time: ?limit (1–1000, default 100) and ?after (the previous page's next).
func (h *Handler) listPlannedRevocations(w http.ResponseWriter, r *http.Request, a store.Account) {
	if h.d.Plans == nil {
		problem(w, http.StatusServiceUnavailable, "ACME is not configured on this server")
		return
	}
	limit := 100
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			problem(w, http.StatusBadRequest, "limit must be a number from 1 to 1000")
			return
		}
		limit = n
	}
	after, err := parsePlanCursor(r.URL.Query().Get("after"))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	plans, err := h.d.Plans.List(r.Context(), after, limit)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	list := make([]plannedJSON, len(plans))
	for i, p := range plans {
		list[i] = toPlannedJSON(p)
	}
	out := map[string]any{"planned_revocations": list}
	if len(plans) == limit {
		last := plans[len(plans)-1]
		out["next"] = formatPlanCursor(store.PlannedRevocationCursor{RevokeBy: last.RevokeBy, Serial: last.Serial})
	}
	writeJSON(w, http.StatusOK, out)
}

// cancelPlannedRevocation deletes a plan (the certificate keeps its
// normal renewal window). Admins only; audited.
func (h *Handler) cancelPlannedRevocation(w http.ResponseWriter, r *http.Request, a store.Account) {
	if h.d.Plans == nil {
		problem(w, http.StatusServiceUnavailable, "ACME is not configured on this server")
		return
	}
	sn, err := serial.Parse(r.PathValue("serial"))
	if err != nil {
		problem(w, http.StatusNotFound, "no revocation is planned for that certificate")
		return
	}
	if err := h.d.Plans.Cancel(r.Context(), a, sn); err != nil {
		h.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// Cursors are opaque to clients: base64url of "unix-microseconds.serial".
func formatPlanCursor(c store.PlannedRevocationCursor) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(c.RevokeBy.UnixMicro(), 10) + "." + c.Serial.String()))
}

func parsePlanCursor(s string) (store.PlannedRevocationCursor, error) {
	if s == "" {
		return store.PlannedRevocationCursor{}, nil
	}
	bad := &fault.InputError{Detail: "after must be the next value of a previous page"}
	b, err := base64.RawURLEncoding.Strict().DecodeString(s)
	if err != nil {
		return store.PlannedRevocationCursor{}, bad
	}
	us, sn, ok := strings.Cut(string(b), ".")
	micro, err1 := strconv.ParseInt(us, 10, 64)
	n, err2 := serial.Parse(sn)
	if !ok || err1 != nil || err2 != nil {
		return store.PlannedRevocationCursor{}, bad
	}
	return store.PlannedRevocationCursor{RevokeBy: time.UnixMicro(micro).UTC(), Serial: n}, nil
}
