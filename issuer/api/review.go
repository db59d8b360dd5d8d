package api

import (
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"github.com/trustline/trustline/internal/store"
	"github.com/trustline/trustline/issuer/profile"
	"github.com/trustline/trustline/issuer/review"
	"github.com/trustline/trustline/issuer/validation"
)

// The CMS review endpoints (reviewer role only; see the package comment).

type reviewItemJSON struct {
	orderJSON
	Account           reviewAccountJSON     `json:"account"`
	Organization      *profile.Organization `json:"organization"`
	ReviewReason      string                `json:"review_reason"`
	Approvals         int                   `json:"approvals"`
	ApprovalsRequired int                   `json:"approvals_required"`
	Approvers         []string              `json:"approvers"`
	Reviews           []reviewJSON          `json:"reviews"`
	Validations       []nameEvidenceJSON    `json:"validations"`
}

type reviewAccountJSON struct {
	ID        string    `json:"id"`
	Email     string    `json:"email"`
	CreatedAt time.Time `json:"created_at"`
}

type reviewJSON struct {
	Reviewer string          `json:"reviewer"`
	Decision string          `json:"decision"`
	Notes    string          `json:"notes"`
	Evidence json.RawMessage `json:"evidence,omitempty"`
	At       time.Time       `json:"at"`
}

// nameEvidenceJSON is the domain validation behind one name of an order.
type nameEvidenceJSON struct {
	Name              string          `json:"name"`
	Covered           bool            `json:"covered"`
	ValidationID      string          `json:"validation_id,omitempty"`
	Domain            string          `json:"domain,omitempty"`
	Method            string          `json:"method,omitempty"`
	Contact           string          `json:"contact,omitempty"`
	RandomValueSHA256 string          `json:"random_value_sha256,omitempty"`
	ValidatedAt       *time.Time      `json:"validated_at,omitempty"`
	ValidUntil        *time.Time      `json:"valid_until,omitempty"`
	Evidence          json.RawMessage `json:"evidence,omitempty"`
}

func toReviewItemJSON(it review.Item) reviewItemJSON {
	out := reviewItemJSON{
		orderJSON:         toOrderJSON(it.Order),
		Account:           reviewAccountJSON{ID: it.Account.ID, Email: it.Account.Email, CreatedAt: it.Account.CreatedAt.UTC()},
		Organization:      it.Organization,
		ReviewReason:      it.Why,
		Approvals:         len(it.Approvers),
		ApprovalsRequired: it.Required,
		Approvers:         append([]string{}, it.Approvers...),
		Reviews:           []reviewJSON{},
	}
	for _, r := range it.Reviews {
		out.Reviews = append(out.Reviews, reviewJSON{Reviewer: r.ReviewerID, Decision: r.Decision, Notes: r.Notes,
			Evidence: r.Evidence, At: r.At.UTC()})
	}
	for _, e := range it.Evidence {
		ne := nameEvidenceJSON{Name: e.Name, Covered: e.Validation != nil}
		if v := e.Validation; v != nil {
			va, vu := v.ValidatedAt.UTC(), v.ValidUntil.UTC()
			ne.ValidationID, ne.Domain, ne.Method, ne.Contact = v.ID, v.Domain, v.Method, v.Contact
			ne.RandomValueSHA256, ne.ValidatedAt, ne.ValidUntil, ne.Evidence = validation.RandomValueSHA256(*v), &va, &vu, v.Evidence
		}
		out.Validations = append(out.Validations, ne)
	}
	return out
}

// reviewsReady answers 503 when no review service is wired.
func (h *Handler) reviewsReady(w http.ResponseWriter) bool {
	if h.d.Reviews == nil {
		problem(w, http.StatusServiceUnavailable, "the review service is not configured on this server")
		return false
	}
	return true
}

func (h *Handler) reviewQueue(w http.ResponseWriter, r *http.Request, acct store.Account) {
	if !h.reviewsReady(w) {
		return
	}
	limit := review.MaxQueue
	if s := r.URL.Query().Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > review.MaxQueue {
			problem(w, http.StatusBadRequest, "limit must be a number from 1 to "+strconv.Itoa(review.MaxQueue))
			return
		}
		limit = n
	}
	items, err := h.d.Reviews.Queue(r.Context(), acct, limit)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	out := make([]reviewItemJSON, 0, len(items))
	for _, it := range items {
		out = append(out, toReviewItemJSON(it))
	}
	writeJSON(w, http.StatusOK, out)
}

func (h *Handler) reviewOrder(w http.ResponseWriter, r *http.Request, acct store.Account) {
	if !h.reviewsReady(w) {
		return
	}
	it, err := h.d.Reviews.Get(r.Context(), acct, r.PathValue("id"))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, toReviewItemJSON(it))
}

type decisionJSON struct {
	orderJSON
	Approvals         int `json:"approvals"`
	ApprovalsRequired int `json:"approvals_required"`
}

func (h *Handler) approveOrder(w http.ResponseWriter, r *http.Request, acct store.Account) {
	if !h.reviewsReady(w) {
		return
	}
	var req struct {
		Notes    string          `json:"notes"`
		Evidence json.RawMessage `json:"evidence"`
	}
	if err := decodeOptional(w, r, &req); err != nil {
		h.fail(w, r, err)
		return
	}
	if string(req.Evidence) == "null" {
		req.Evidence = nil
	}
	out, err := h.d.Reviews.Approve(r.Context(), acct, r.PathValue("id"), review.Decision{Notes: req.Notes, Evidence: req.Evidence})
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, decisionJSON{orderJSON: toOrderJSON(out.Order), Approvals: out.Approvals, ApprovalsRequired: out.Required})
}

func (h *Handler) rejectOrder(w http.ResponseWriter, r *http.Request, acct store.Account) {
	if !h.reviewsReady(w) {
		return
	}
	var req struct {
		Reason string `json:"reason"`
	}
	if err := decode(w, r, &req); err != nil {
		h.fail(w, r, err)
		return
	}
	ord, err := h.d.Reviews.Reject(r.Context(), acct, r.PathValue("id"), req.Reason)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, toOrderJSON(ord))
}
