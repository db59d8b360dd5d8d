package caa

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/trustline/trustline/issuer/mpic"
)

// fakeRemote answers every check with the same answers.
type fakeRemote struct {
	answers []mpic.Answer
	asked   []mpic.Check
}

func (f *fakeRemote) Corroborate(_ context.Context, c mpic.Check) mpic.Outcome {
	f.asked = append(f.asked, c)
	return mpic.Decide(c, mpic.QuorumOnly(time.Time{}), f.answers)
}

func TestCorroborated(t *testing.T) {
	permit := func(_ context.Context, r Request) (Result, error) { return Result{Name: r.Name, Permitted: true}, nil }
	forbid := func(_ context.Context, r Request) (Result, error) { return Result{Name: r.Name}, ErrForbidden }
	yes, no, down := mpic.Answer{Corroborates: true}, mpic.Answer{Detail: "issue \"other.example\""}, mpic.Answer{Unreachable: true}
	req := Request{Name: "*.example.com", AccountURI: "https://ca.test/acct/1", Method: "dns-01"}
	for _, tc := range []struct {
		name    string
		primary CheckFunc
		answers []mpic.Answer
		err     error
		asked   bool
	}{
		{"quorum met", permit, []mpic.Answer{yes, no, yes}, nil, true},
		{"two disagree", permit, []mpic.Answer{yes, no, no}, ErrNotCorroborated, true},
		{"one disagrees, one down", permit, []mpic.Answer{yes, no, down}, ErrResolver, true},
		{"primary forbids: no one asked", forbid, []mpic.Answer{yes, yes, yes}, ErrForbidden, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			remote := &fakeRemote{answers: tc.answers}
			res, err := Corroborated(tc.primary, remote).Check(context.Background(), req)
			if !errors.Is(err, tc.err) || (err == nil) != res.Permitted {
				t.Fatalf("err %v permitted %v, want %v", err, res.Permitted, tc.err)
			}
			if (len(remote.asked) == 1) != tc.asked || (tc.asked && (res.Corroboration == nil || remote.asked[0].Domain != req.Name || remote.asked[0].Method != "dns-01")) {
				t.Errorf("asked %+v, corroboration %+v", remote.asked, res.Corroboration)
			}
			if errors.Is(tc.err, ErrNotCorroborated) && !errors.Is(err, ErrForbidden) {
				t.Error("a refusal for want of corroboration is not a refusal")
			}
		})
	}
}
