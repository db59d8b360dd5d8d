package portal

import (
	"fmt"
	"net/http"
	"slices"

	"github.com/trustline/trustline/internal/store"
	"github.com/trustline/trustline/issuer/review"
)

// The CMS review console (seed steps 6–7), for the reviewer role only: the
// queue, each order with the validation evidence of its names, and
// approve/reject. EV orders need two approvals from different reviewers;
// the page says where an order stands.

type queueData struct {
	Items []review.Item
}

func (h *Handler) reviewQueue(w http.ResponseWriter, r *http.Request, v *visit) {
	items, err := h.d.Reviews.Queue(r.Context(), v.acct, review.MaxQueue)
	if err != nil {
		h.fail(w, r, v, err)
		return
	}
	h.page(w, r, v, http.StatusOK, "review_queue", view{Title: "Review queue", Console: true, Nav: "queue", Data: queueData{Items: items}})
}

type reviewLine struct {
	Review   store.Review
	Reviewer string // the reviewer's email, or their account id
}

type reviewOrderData struct {
	Item      review.Item
	Reviews   []reviewLine
	Approvals int
	Pending   bool // still pending review
	OwnOrder  bool // placed by the reviewer's own account
	IApproved bool
	CanDecide bool
	Notes     string
	Source    string
	Reference string
	Extra     string
	Reason    string
}

func (h *Handler) reviewPage(w http.ResponseWriter, r *http.Request, v *visit, status int, form reviewOrderData, errs []string) {
	it, err := h.d.Reviews.Get(r.Context(), v.acct, r.PathValue("id"))
	if err != nil {
		h.fail(w, r, v, err)
		return
	}
	d := form
	d.Item = it
	d.Approvals = len(it.Approvers)
	d.Pending = it.Order.Status == store.OrderPendingReview
	d.OwnOrder = it.Order.AccountID == v.acct.ID
	d.IApproved = slices.Contains(it.Approvers, v.acct.ID)
	d.CanDecide = d.Pending && !d.OwnOrder && !d.IApproved
	names := map[string]string{}
	for _, rv := range it.Reviews {
		who, ok := names[rv.ReviewerID]
		if !ok {
			who = rv.ReviewerID
			if a, err := h.d.Store.Account(r.Context(), rv.ReviewerID); err == nil {
				who = a.Email
			}
			names[rv.ReviewerID] = who
		}
		d.Reviews = append(d.Reviews, reviewLine{Review: rv, Reviewer: who})
	}
	h.page(w, r, v, status, "review_order", view{Title: "Order " + it.Order.ID, Console: true, Errors: errs, Data: d})
}

func (h *Handler) reviewOrder(w http.ResponseWriter, r *http.Request, v *visit) {
	h.reviewPage(w, r, v, http.StatusOK, reviewOrderData{}, nil)
}

func (h *Handler) approve(w http.ResponseWriter, r *http.Request, v *visit) {
	form := reviewOrderData{Notes: r.PostFormValue("notes"), Source: r.PostFormValue("evidence_source"),
		Reference: r.PostFormValue("evidence_reference"), Extra: r.PostFormValue("evidence_extra")}
	notes, err := longText("Notes", form.Notes, review.MaxNotes)
	if err != nil {
		h.reviewPage(w, r, v, http.StatusBadRequest, form, []string{err.Error()})
		return
	}
	evidence, err := reviewEvidence(form.Source, form.Reference, form.Extra)
	if err != nil {
		h.reviewPage(w, r, v, http.StatusBadRequest, form, []string{err.Error()})
		return
	}
	out, err := h.d.Reviews.Approve(r.Context(), v.acct, r.PathValue("id"), review.Decision{Notes: notes, Evidence: evidence})
	if err != nil {
		status, msg := h.formFailure(w, r, err)
		h.reviewPage(w, r, v, status, form, []string{msg})
		return
	}
	var notice string
	switch {
	case out.Order.Status == store.OrderIssued:
		notice = fmt.Sprintf("Approved (%d of %d). The certificate is issued, serial %s; the subscriber has been mailed.", out.Approvals, out.Required, out.Order.Serial)
	case out.Approvals < out.Required:
		notice = fmt.Sprintf("Approved (%d of %d). The order needs %d more approval(s) from a different reviewer.", out.Approvals, out.Required, out.Required-out.Approvals)
	default:
		notice = fmt.Sprintf("Approved (%d of %d). The order is being signed.", out.Approvals, out.Required)
	}
	h.redirectNotice(w, r, v, "/review/orders/"+out.Order.ID, notice)
}

func (h *Handler) reject(w http.ResponseWriter, r *http.Request, v *visit) {
	form := reviewOrderData{Reason: r.PostFormValue("reason")}
	why, err := longText("Reason", form.Reason, 1000)
	if err == nil && why == "" {
		err = fmt.Errorf("a reason is required: the subscriber is told why")
	}
	if err != nil {
		h.reviewPage(w, r, v, http.StatusBadRequest, form, []string{sentence(err.Error())})
		return
	}
	ord, err := h.d.Reviews.Reject(r.Context(), v.acct, r.PathValue("id"), why)
	if err != nil {
		status, msg := h.formFailure(w, r, err)
		h.reviewPage(w, r, v, status, form, []string{msg})
		return
	}
	h.redirectNotice(w, r, v, "/review/orders/"+ord.ID, "Rejected. The subscriber has been mailed the reason.")
}
