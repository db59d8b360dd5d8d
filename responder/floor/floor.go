// Package floor is the baseline the OCSP responder is measured against:
// a fasthttp handler that answers each request by looking up the exact
// raw request target (GET) or body (POST) in a Go map, and writes the
// stored response bytes with the same headers the responder sends,
// fixed. It parses nothing, checks nothing and expires nothing, so it is
// as fast as fasthttp can serve those bytes on this machine: the
// responder's goal is at least 0.80 of its rate (docs/ocsp.md).
//
// It is a benchmark fixture, not a server to deploy. Who may import it:
// benchmarks and the bench suite; it imports nothing from issuer/.
package floor

import (
	"encoding/base64"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/valyala/fasthttp"
)

// Pair is one request and the response to answer it with.
type Pair struct {
	Request  []byte // DER OCSPRequest
	Response []byte // DER OCSPResponse
}

// answer is a response with its header values, rendered once.
type answer struct {
	body, cacheControl, lastModified, expires, etag []byte
}

// Handler serves the pairs.
type Handler struct {
	get  map[string]*answer // by raw request target
	post map[string]*answer // by body
}

// New indexes pairs: each request under its POST body and under the GET
// target "/" + standard base64 (what the bench load generator sends). The
// header values are fixed at New: max-age one day, Last-Modified now,
// Expires in three days, an ETag per response.
func New(pairs []Pair, now time.Time) (*Handler, error) {
	if len(pairs) == 0 {
		return nil, errors.New("floor: no pairs")
	}
	h := &Handler{get: make(map[string]*answer, len(pairs)), post: make(map[string]*answer, len(pairs))}
	lm := []byte(now.UTC().Format(http.TimeFormat))
	exp := []byte(now.Add(72 * time.Hour).UTC().Format(http.TimeFormat))
	for i, p := range pairs {
		a := &answer{
			body:         p.Response,
			cacheControl: []byte("max-age=86400, public, no-transform, must-revalidate"),
			lastModified: lm, expires: exp,
			etag: []byte(`"floor-` + strconv.Itoa(i) + `"`),
		}
		h.post[string(p.Request)] = a
		h.get["/"+base64.StdEncoding.EncodeToString(p.Request)] = a
	}
	return h, nil
}

// GETTarget is the request target New indexed a request under.
func GETTarget(req []byte) string { return "/" + base64.StdEncoding.EncodeToString(req) }

// Serve is the fasthttp handler.
func (h *Handler) Serve(ctx *fasthttp.RequestCtx) {
	var a *answer
	if ctx.IsPost() {
		a = h.post[string(ctx.PostBody())]
	} else {
		a = h.get[string(ctx.Request.Header.RequestURI())]
	}
	if a == nil {
		ctx.SetStatusCode(fasthttp.StatusNotFound)
		return
	}
	hd := &ctx.Response.Header
	hd.SetContentType("application/ocsp-response")
	hd.SetBytesV("Cache-Control", a.cacheControl)
	hd.SetBytesV("Last-Modified", a.lastModified)
	hd.SetBytesV("Expires", a.expires)
	hd.SetBytesV("ETag", a.etag)
	ctx.Response.SetBodyRaw(a.body)
}

// Server returns a fasthttp server for h configured like the responder's
// (responder/server), so that the two differ only in their handlers.
func (h *Handler) Server() *fasthttp.Server {
	return &fasthttp.Server{
		Handler:                      h.Serve,
		NoDefaultServerHeader:        true,
		NoDefaultContentType:         true,
		DisablePreParseMultipartForm: true,
		ReadTimeout:                  5 * time.Second,
		WriteTimeout:                 5 * time.Second,
		IdleTimeout:                  60 * time.Second,
		MaxRequestBodySize:           16 << 10,
		ReadBufferSize:               4096 + 4096,
	}
}
