package storetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/trustline/trustline/internal/store"
)

func order(i int, accountID string, st store.OrderStatus) store.Order {
	created := us(t0.Add(time.Duration(i) * time.Minute))
	return store.Order{
		ID:        fmt.Sprintf("order-%d", i),
		AccountID: accountID,
		Profile:   "dv",
		CSR:       []byte(fmt.Sprintf("csr-der-%d", i)),
		Names:     []string{fmt.Sprintf("d%d.example.com", i), fmt.Sprintf("www.d%d.example.com", i)},
		Status:    st,
		CreatedAt: created,
		UpdatedAt: created,
		Version:   1,
	}
}

func testOrders(t *testing.T, s store.Store) {
	a := seedAccount(t, s, 1)
	o := order(1, a.ID, store.OrderPendingReview)
	o.Profile = "ov"
	o.Organization = []byte(`{"o":"Example Ltd","c":"GB"}`)
	o.Validity = 6 * 24 * time.Hour // asked for by an ACME profile; kept, never updated
	o.AccountURI = "https://ca.example/acme/acct/1"
	must(t, s.CreateOrder(ctx(t), o), "creating order")
	got, err := s.Order(ctx(t), o.ID)
	must(t, err, "reading order")
	if d := diff(o, got); d != "" {
		t.Errorf("Order (-want +got):\n%s", d)
	}
	wantErr(t, s.CreateOrder(ctx(t), o), store.ErrDuplicate, "creating duplicate order")
	_, err = s.Order(ctx(t), "no-such-order")
	wantErr(t, err, store.ErrNotFound, "reading missing order")

	upd := o
	upd.Status = store.OrderIssued
	upd.Serial = sn(1)
	upd.UpdatedAt = us(t0.Add(time.Hour))
	got, err = s.UpdateOrder(ctx(t), upd)
	must(t, err, "updating order")
	want := upd
	want.Version = 2
	if d := diff(want, got); d != "" {
		t.Errorf("UpdateOrder returned (-want +got):\n%s", d)
	}
	stored, err := s.Order(ctx(t), o.ID)
	must(t, err, "reading updated order")
	if d := diff(want, stored); d != "" {
		t.Errorf("stored after UpdateOrder (-want +got):\n%s", d)
	}

	stale := o
	stale.Status = store.OrderRejected
	_, err = s.UpdateOrder(ctx(t), stale)
	wantErr(t, err, store.ErrConflict, "updating with a stale version")
	stored, err = s.Order(ctx(t), o.ID)
	must(t, err, "reading after stale update")
	if d := diff(want, stored); d != "" {
		t.Errorf("a stale update changed the row (-want +got):\n%s", d)
	}
	_, err = s.UpdateOrder(ctx(t), order(9, a.ID, store.OrderIssued))
	wantErr(t, err, store.ErrNotFound, "updating a missing order")
}

func testListOrders(t *testing.T, s store.Store) {
	a := seedAccount(t, s, 1)
	b := seedAccount(t, s, 2)
	// Created in minute order i; newest first means descending i.
	spec := []struct {
		acct string
		st   store.OrderStatus
	}{
		1: {a.ID, store.OrderPendingReview},
		2: {b.ID, store.OrderPendingReview},
		3: {a.ID, store.OrderIssued},
		4: {a.ID, store.OrderPendingReview},
		5: {b.ID, store.OrderIssued},
		6: {a.ID, store.OrderRejected},
	}
	byIdx := map[int]store.Order{}
	for i := 1; i < len(spec); i++ {
		byIdx[i] = order(i, spec[i].acct, spec[i].st)
		must(t, s.CreateOrder(ctx(t), byIdx[i]), "creating order")
	}
	pick := func(is ...int) []store.Order {
		var out []store.Order
		for _, i := range is {
			out = append(out, byIdx[i])
		}
		return out
	}
	for _, tc := range []struct {
		name string
		f    store.OrderFilter
		want []store.Order
	}{
		{"all", store.OrderFilter{}, pick(6, 5, 4, 3, 2, 1)},
		{"account", store.OrderFilter{AccountID: a.ID}, pick(6, 4, 3, 1)},
		{"status", store.OrderFilter{Status: store.OrderPendingReview}, pick(4, 2, 1)},
		{"account and status", store.OrderFilter{AccountID: b.ID, Status: store.OrderIssued}, pick(5)},
		{"limit", store.OrderFilter{AccountID: a.ID, Limit: 2}, pick(6, 4)},
		{"oldest first", store.OrderFilter{Status: store.OrderPendingReview, OldestFirst: true}, pick(1, 2, 4)},
		{"oldest first, limit", store.OrderFilter{Status: store.OrderPendingReview, OldestFirst: true, Limit: 2}, pick(1, 2)},
		{"no match", store.OrderFilter{AccountID: "nobody"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.ListOrders(ctx(t), tc.f)
			must(t, err, "listing orders")
			if d := diff(tc.want, got); d != "" {
				t.Errorf("ListOrders(%+v) (-want +got):\n%s", tc.f, d)
			}
		})
	}
}

func testReviews(t *testing.T, s store.Store) {
	a := seedAccount(t, s, 1)
	r1 := seedAccount(t, s, 2)
	r2 := seedAccount(t, s, 3)
	o1, o2 := order(1, a.ID, store.OrderPendingReview), order(2, a.ID, store.OrderPendingReview)
	must(t, s.CreateOrder(ctx(t), o1), "creating order")
	must(t, s.CreateOrder(ctx(t), o2), "creating order")
	reviews := []store.Review{
		{OrderID: o1.ID, ReviewerID: r1.ID, Decision: "approve", Notes: "identity checked", Evidence: []byte(`{"doc":"passport"}`), At: us(t0.Add(time.Hour))},
		{OrderID: o2.ID, ReviewerID: r1.ID, Decision: "reject", Notes: "", At: us(t0.Add(90 * time.Minute))},
		{OrderID: o1.ID, ReviewerID: r2.ID, Decision: "approve", Notes: "second approval", At: us(t0.Add(2 * time.Hour))},
	}
	// Stored out of order: Reviews sorts by At.
	for _, i := range []int{2, 0, 1} {
		must(t, s.AddReview(ctx(t), reviews[i]), "adding review")
	}
	for _, tc := range []struct {
		order string
		want  []store.Review
	}{
		{o1.ID, []store.Review{reviews[0], reviews[2]}},
		{o2.ID, []store.Review{reviews[1]}},
		{"no-such-order", nil},
	} {
		t.Run(tc.order, func(t *testing.T) {
			got, err := s.Reviews(ctx(t), tc.order)
			must(t, err, "listing reviews")
			if d := diff(tc.want, got); d != "" {
				t.Errorf("Reviews (-want +got):\n%s", d)
			}
		})
	}
}

func testReviewPatterns(t *testing.T, s store.Store) {
	ps := []store.ReviewPattern{
		{ID: "p1", Pattern: "*.bank.example", CreatedBy: "acct-9", CreatedAt: us(t0)},
		{ID: "p2", Pattern: "paypal*", CreatedBy: "acct-9", CreatedAt: us(t0.Add(time.Minute))},
	}
	for _, p := range ps {
		must(t, s.AddReviewPattern(ctx(t), p), "adding pattern")
	}
	wantErr(t, s.AddReviewPattern(ctx(t), ps[0]), store.ErrDuplicate, "adding duplicate pattern")
	got, err := s.ReviewPatterns(ctx(t))
	must(t, err, "listing patterns")
	if d := diff(ps, got); d != "" {
		t.Errorf("ReviewPatterns (-want +got):\n%s", d)
	}
	must(t, s.DeleteReviewPattern(ctx(t), "p1"), "deleting pattern")
	wantErr(t, s.DeleteReviewPattern(ctx(t), "p1"), store.ErrNotFound, "deleting it again")
	got, err = s.ReviewPatterns(ctx(t))
	must(t, err, "listing patterns")
	if d := diff(ps[1:], got); d != "" {
		t.Errorf("ReviewPatterns after delete (-want +got):\n%s", d)
	}
}
