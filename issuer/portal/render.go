package portal

import (
	"bytes"
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"strings"
	"time"

	"github.com/trustline/trustline/internal/humanize"
	"github.com/trustline/trustline/internal/store"
	"github.com/trustline/trustline/issuer"
	"github.com/trustline/trustline/issuer/fault"
	"github.com/trustline/trustline/issuer/ratelimit"
)

//go:embed templates/*.html static/portal.css
var assets embed.FS

// view is what every page template gets.
type view struct {
	Title   string
	Account *store.Account
	CSRF    string // the form token: the session's, or the pre-sign-in one
	Notice  string // one-shot success message
	Errors  []string
	Console bool   // a /review page: show the console's navigation
	Nav     string // the navigation entry to mark current
	ACME    bool   // the ACME page is served: show it in the navigation
	Data    any
}

// pageNames are the templates under templates/, each defining "content"
// (and "title" where the heading differs) inside base.html.
var pageNames = []string{
	"signin", "welcome", "link_sent", "link", "dashboard", "error", "email_confirmed",
	"validation_new", "validation", "order_new", "order", "certificate",
	"review_queue", "review_order", "acme",
}

var funcs = template.FuncMap{
	"when": func(t time.Time) string {
		if t.IsZero() {
			return "—"
		}
		return t.UTC().Format("2006-01-02 15:04 UTC")
	},
	"duration": humanize.Duration,
	"join":     strings.Join,
	"upper":    strings.ToUpper,
	// pretty indents a JSON document for a <pre>; html/template escapes it.
	"pretty": func(raw []byte) string {
		var b bytes.Buffer
		if err := json.Indent(&b, raw, "", "  "); err != nil {
			return string(raw)
		}
		return b.String()
	},
	"contains": func(list []string, s string) bool {
		for _, x := range list {
			if x == s {
				return true
			}
		}
		return false
	},
}

func parsePages() (map[string]*template.Template, error) {
	base, err := template.New("base.html").Funcs(funcs).ParseFS(assets, "templates/base.html")
	if err != nil {
		return nil, fmt.Errorf("portal: parsing base template: %w", err)
	}
	pages := make(map[string]*template.Template, len(pageNames))
	for _, name := range pageNames {
		t, err := template.Must(base.Clone()).ParseFS(assets, "templates/"+name+".html")
		if err != nil {
			return nil, fmt.Errorf("portal: parsing template %s: %w", name, err)
		}
		pages[name] = t
	}
	return pages, nil
}

// render writes a page. The template runs into a buffer first so that a
// template error becomes a clean 500, not half a page.
func (h *Handler) render(w http.ResponseWriter, r *http.Request, status int, page string, vw view) {
	vw.ACME = h.cfg.ACMEDirectory != ""
	var b bytes.Buffer
	if err := h.pages[page].ExecuteTemplate(&b, "base.html", vw); err != nil {
		h.d.Log.Error("rendering page", "page", page, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		w.Write(b.Bytes())
	}
}

// page renders for a signed-in user, with the session's token and notice.
func (h *Handler) page(w http.ResponseWriter, r *http.Request, v *visit, status int, name string, vw view) {
	if v != nil {
		vw.Account = &v.acct
		vw.CSRF = v.sess.csrf
		if vw.Notice == "" {
			vw.Notice = h.sessions.takeNotice(v.sid)
		}
	}
	h.render(w, r, status, name, vw)
}

type errorData struct {
	Status  int
	Message string
}

// errorPage renders a status page with a message that says what to do.
func (h *Handler) errorPage(w http.ResponseWriter, r *http.Request, v *visit, status int, title, msg string) {
	vw := view{Title: title, Data: errorData{Status: status, Message: msg}, Console: strings.HasPrefix(r.URL.Path, "/review")}
	if v == nil {
		if vv, state := h.visitOf(r); state == sessionOK {
			v = vv
		}
	}
	if v != nil {
		vw.Account, vw.CSRF = &v.acct, v.sess.csrf
	}
	if status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "5")
	}
	h.render(w, r, status, "error", vw)
}

func (h *Handler) notFound(w http.ResponseWriter, r *http.Request) {
	h.errorPage(w, r, nil, http.StatusNotFound, "Page not found",
		"There is no page at this address. Use the navigation above, or go to the start page.")
}

// classify maps an issuer error to a status and a message for the page.
// ok is false for unexpected errors, which are logged and shown without
// their text.
func classify(err error) (status int, msg string, ok bool) {
	var (
		in *fault.InputError
		cf *fault.ConflictError
		fb *fault.ForbiddenError
		nf *fault.NotFoundError
		un *fault.UnavailableError
		rl *fault.RateLimitedError
	)
	switch {
	case errors.As(err, &rl):
		return http.StatusTooManyRequests, sentence(rl.Detail), true
	case errors.As(err, &in):
		return http.StatusBadRequest, sentence(in.Detail), true
	case errors.As(err, &cf):
		return http.StatusConflict, sentence(cf.Detail), true
	case errors.As(err, &fb):
		return http.StatusForbidden, sentence(fb.Detail), true
	case errors.As(err, &nf):
		return http.StatusNotFound, sentence(nf.Detail), true
	case errors.As(err, &un):
		return http.StatusServiceUnavailable, sentence(un.Detail) + " Try again in a minute.", true
	case errors.Is(err, issuer.ErrNoIssuer):
		return http.StatusBadRequest, "No intermediate of this CA issues for this key type; use an ECDSA P-256 or RSA key.", true
	case errors.Is(err, store.ErrUnavailable):
		return http.StatusServiceUnavailable, "The CA's database cannot be reached right now. Go back and try again in a few seconds.", true
	}
	return http.StatusInternalServerError, "Something went wrong on our side; nothing you did caused it. Try again; if it keeps happening, contact the CA.", false
}

// sentence capitalises the issuer's lower-case detail for a page.
func sentence(s string) string {
	if s == "" {
		return s
	}
	s = strings.ToUpper(s[:1]) + s[1:]
	if !strings.HasSuffix(s, ".") {
		s += "."
	}
	return s
}

// fail shows an issuer error as a whole page.
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, v *visit, err error) {
	if errors.Is(err, context.Canceled) {
		return // the browser went away
	}
	status, msg, ok := classify(err)
	if !ok {
		h.d.Log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	setRetryAfter(w, err)
	h.errorPage(w, r, v, status, http.StatusText(status), msg)
}

// formFailure is fail for a form that is shown again with the message:
// it returns the status and message, logging unexpected errors, and sets
// Retry-After on a rate-limited answer.
func (h *Handler) formFailure(w http.ResponseWriter, r *http.Request, err error) (int, string) {
	status, msg, ok := classify(err)
	if !ok {
		h.d.Log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	setRetryAfter(w, err)
	return status, msg
}

// setRetryAfter tells a browser or script when a rate-limited request may
// be made again (RFC 6585 §4), as the API does.
func setRetryAfter(w http.ResponseWriter, err error) {
	var rl *fault.RateLimitedError
	if errors.As(err, &rl) {
		w.Header().Set("Retry-After", ratelimit.RetryAfterSeconds(rl.RetryAfter))
	}
}

// redirectNotice leaves a notice for the next page and sends the browser
// there (Post/Redirect/Get: reloading the result does not post again).
func (h *Handler) redirectNotice(w http.ResponseWriter, r *http.Request, v *visit, to, notice string) {
	if notice != "" {
		h.sessions.setNotice(v.sid, notice)
	}
	http.Redirect(w, r, to, http.StatusSeeOther)
}

func serveCSS(w http.ResponseWriter, r *http.Request) {
	b, err := assets.ReadFile("static/portal.css")
	if err != nil {
		http.Error(w, "missing stylesheet", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/css; charset=utf-8")
	w.Header().Set("Cache-Control", "public, max-age=3600")
	http.ServeContent(w, r, "portal.css", time.Time{}, bytes.NewReader(b))
}
