package floor_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/trustline/trustline/responder/floor"
)

func TestFloor(t *testing.T) {
	pairs := []floor.Pair{
		{Request: []byte{0x30, 0x01, 0x01}, Response: []byte("one")},
		{Request: []byte{0x30, 0x01, 0x02}, Response: []byte("two")},
	}
	h, err := floor.New(pairs, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, method, target string
		body                 []byte
		code                 int
		want                 []byte
	}{
		{"GET", "GET", floor.GETTarget(pairs[1].Request), nil, 200, []byte("two")},
		{"POST", "POST", "/", pairs[0].Request, 200, []byte("one")},
		{"GET unknown", "GET", "/AAAA", nil, 404, nil},
		{"POST unknown", "POST", "/", []byte{1}, 404, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var ctx fasthttp.RequestCtx
			var req fasthttp.Request
			req.Header.SetMethod(tc.method)
			req.Header.SetRequestURI(tc.target)
			req.SetBody(tc.body)
			ctx.Init(&req, nil, nil)
			h.Serve(&ctx)
			if got := ctx.Response.StatusCode(); got != tc.code {
				t.Fatalf("status %d, want %d", got, tc.code)
			}
			if tc.want != nil && !bytes.Equal(ctx.Response.Body(), tc.want) {
				t.Errorf("body %q, want %q", ctx.Response.Body(), tc.want)
			}
		})
	}
	if _, err := floor.New(nil, time.Now()); err == nil {
		t.Error("New accepted no pairs")
	}
}
