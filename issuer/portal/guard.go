package portal

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"slices"

	"github.com/trustline/trustline/internal/store"
)

// Cookie names. Neither uses the __Host- prefix: browsers require Secure
// with it, and dev serves plain HTTP on loopback.
const (
	sessionCookie = "tl_session"
	preCookie     = "tl_pre"
	csrfField     = "csrf"
)

// visit is a request from a signed-in user.
type visit struct {
	acct store.Account
	sess session // a snapshot taken when the request arrived
	sid  string  // the session cookie's value
}

type userHandler func(w http.ResponseWriter, r *http.Request, v *visit)

// user serves signed-in users whose role is in roles; POSTs are bounded
// by MaxForm, must come from this origin and carry the session's token.
func (h *Handler) user(roles []store.Role, next userHandler) http.Handler {
	return h.guard(roles, MaxForm, next)
}

// upload is user with the larger bound of the order form.
func (h *Handler) upload(roles []store.Role, next userHandler) http.Handler {
	return h.guard(roles, h.cfg.MaxUpload, next)
}

func (h *Handler) guard(roles []store.Role, limit int64, next userHandler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		post := r.Method == http.MethodPost
		if post && !h.acceptForm(w, r, limit) {
			return
		}
		v, state := h.visitOf(r)
		if state == sessionUnavailable {
			h.unavailable(w, r)
			return
		}
		if state != sessionOK {
			if post {
				// The form's data is lost either way; say why rather than
				// bounce to a sign-in page that looks like an error.
				title, msg := "You are not signed in", "Sign in, then submit the form again."
				if state == sessionExpired {
					title, msg = "Your session has expired", "Nothing was changed. Sign in again, then submit the form again."
				}
				h.errorPage(w, r, nil, http.StatusForbidden, title, msg)
				return
			}
			q := url.Values{"next": {r.URL.RequestURI()}}
			if state == sessionExpired {
				q.Set("expired", "1")
			}
			http.Redirect(w, r, "/?"+q.Encode(), http.StatusSeeOther)
			return
		}
		if post && !equalToken(r.PostFormValue(csrfField), v.sess.csrf) {
			h.errorPage(w, r, v, http.StatusForbidden, "This form has expired",
				"The form did not carry this session's security token (it may be from before you signed in again, or from another site). Nothing was changed. Go back, reload the page and submit it again.")
			return
		}
		if !slices.Contains(roles, v.acct.Role) {
			msg := fmt.Sprintf("This page is for the %s role; your account is a %s.", roles[0], v.acct.Role)
			if slices.Contains(roles, store.RoleReviewer) && len(roles) == 1 {
				msg = fmt.Sprintf("The CMS review console is for reviewers; your account is a %s.", v.acct.Role)
			}
			h.errorPage(w, r, v, http.StatusForbidden, "Not allowed", msg)
			return
		}
		next(w, r, v)
	})
}

// acceptForm admits a POST from this origin and reads its form, bounded by
// limit. Otherwise it answers the request itself and returns false.
func (h *Handler) acceptForm(w http.ResponseWriter, r *http.Request, limit int64) bool {
	if !h.sameOrigin(r) {
		h.crossSite(w, r)
		return false
	}
	if err := h.readForm(w, r, limit); err != nil {
		h.formError(w, r, nil, err, limit)
		return false
	}
	return true
}

// visitOf resolves the session cookie to a signed-in user. The account
// is read afresh so that a changed role counts at once. A store that
// cannot be asked is sessionUnavailable (and logged), not "signed out".
func (h *Handler) visitOf(r *http.Request) (*visit, sessionState) {
	c, err := r.Cookie(sessionCookie)
	if err != nil {
		return nil, sessionNone
	}
	sess, state, err := h.sessions.lookup(r.Context(), c.Value, h.now())
	if err != nil {
		if !errors.Is(err, context.Canceled) {
			h.d.Log.Error("resolving a portal session", "err", err)
		}
		return nil, state
	}
	if state != sessionOK {
		return nil, state
	}
	acct, err := h.d.Store.Account(r.Context(), sess.accountID)
	if err != nil {
		if !errors.Is(err, store.ErrNotFound) {
			h.d.Log.Error("reading session account", "err", err)
			return nil, sessionUnavailable
		}
		return nil, sessionNone
	}
	return &visit{acct: acct, sess: sess, sid: c.Value}, sessionOK
}

// unavailable answers a signed-in page when sessions cannot be read.
func (h *Handler) unavailable(w http.ResponseWriter, r *http.Request) {
	h.errorPage(w, r, nil, http.StatusServiceUnavailable, "Service unavailable",
		"The portal cannot reach its database just now. Nothing was changed. Try again in a minute.")
}

// anon guards the forms used before sign-in: same origin, bounded, and a
// token that is the HMAC of the visitor's pre-sign-in cookie. An attacker
// who can plant a cookie (from a sibling subdomain) still cannot compute
// the field without the per-process key.
func (h *Handler) anon(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !h.acceptForm(w, r, MaxForm) {
			return
		}
		c, err := r.Cookie(preCookie)
		if err != nil || !equalToken(r.PostFormValue(csrfField), h.preTokenFor(c.Value)) {
			h.errorPage(w, r, nil, http.StatusForbidden, "This form has expired",
				"The form did not carry a valid security token (cookies may be blocked, or the page is old). Nothing was changed. Reload the sign-in page and try again.")
			return
		}
		next(w, r)
	}
}

// preToken makes sure the visitor has a pre-sign-in cookie and returns
// the form token that goes with it.
func (h *Handler) preToken(w http.ResponseWriter, r *http.Request) string {
	if c, err := r.Cookie(preCookie); err == nil && len(c.Value) == 43 {
		return h.preTokenFor(c.Value)
	}
	v, err := randomToken(h.d.Rand, 32)
	if err != nil {
		h.d.Log.Error("making a form token", "err", err)
		return ""
	}
	h.setCookie(w, r, preCookie, v, http.SameSiteStrictMode)
	return h.preTokenFor(v)
}

func (h *Handler) preTokenFor(cookie string) string {
	m := hmac.New(sha256.New, h.preKey)
	m.Write([]byte("trustline portal pre-sign-in form\x00"))
	m.Write([]byte(cookie))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// equalToken compares form tokens in constant time; empty never matches.
func equalToken(got, want string) bool {
	return want != "" && subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}

// setCookie sets an HttpOnly cookie for the whole site. Secure when the
// request came over TLS or the portal's origin is https; without a
// Max-Age, so the browser forgets it on exit (the server ends sessions
// anyway).
func (h *Handler) setCookie(w http.ResponseWriter, r *http.Request, name, value string, same http.SameSite) {
	http.SetCookie(w, &http.Cookie{Name: name, Value: value, Path: "/", HttpOnly: true, SameSite: same,
		Secure: h.secure || r.TLS != nil})
}

func (h *Handler) clearCookie(w http.ResponseWriter, r *http.Request, name string) {
	http.SetCookie(w, &http.Cookie{Name: name, Value: "", Path: "/", MaxAge: -1, HttpOnly: true,
		SameSite: http.SameSiteLaxMode, Secure: h.secure || r.TLS != nil})
}

// sameOrigin reports whether a state-changing request comes from a page
// of this portal: the browser's Sec-Fetch-Site if it sent one, else
// Origin, else Referer. A request with none of them is refused: every
// browser this portal supports sends at least Origin on a form POST.
func (h *Handler) sameOrigin(r *http.Request) bool {
	switch r.Header.Get("Sec-Fetch-Site") {
	case "same-origin":
		return true
	case "same-site", "cross-site":
		return false
	}
	if o := r.Header.Get("Origin"); o != "" {
		return o == h.origin || o == requestOrigin(r)
	}
	if ref := r.Header.Get("Referer"); ref != "" {
		u, err := url.Parse(ref)
		if err != nil || u.Host == "" {
			return false
		}
		o := u.Scheme + "://" + u.Host
		return o == h.origin || o == requestOrigin(r)
	}
	return false
}

func requestOrigin(r *http.Request) string {
	if r.TLS != nil {
		return "https://" + r.Host
	}
	return "http://" + r.Host
}

func (h *Handler) crossSite(w http.ResponseWriter, r *http.Request) {
	h.errorPage(w, r, nil, http.StatusForbidden, "Cross-site request refused",
		"Forms of this portal may only be submitted from its own pages (the request's Origin or Referer did not match, or was missing). Nothing was changed.")
}

// errTooLarge and errBadForm are what readForm reports.
var (
	errTooLarge = errors.New("portal: request body too large")
	errBadForm  = errors.New("portal: malformed form")
)

// readForm parses a urlencoded or multipart form of at most limit bytes.
func (h *Handler) readForm(w http.ResponseWriter, r *http.Request, limit int64) error {
	if r.ContentLength > limit {
		return errTooLarge
	}
	r.Body = http.MaxBytesReader(w, r.Body, limit)
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil {
		return errBadForm
	}
	switch mt {
	case "application/x-www-form-urlencoded":
		err = r.ParseForm()
	case "multipart/form-data":
		// The body is bounded by limit, so every part stays in memory.
		err = r.ParseMultipartForm(limit)
	default:
		return errBadForm
	}
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		return errTooLarge
	case err != nil:
		return errBadForm
	}
	return nil
}

// formError answers a form that could not be read.
func (h *Handler) formError(w http.ResponseWriter, r *http.Request, v *visit, err error, limit int64) {
	if errors.Is(err, errTooLarge) {
		h.errorPage(w, r, v, http.StatusRequestEntityTooLarge, "Too large",
			fmt.Sprintf("The form you sent is larger than this page accepts (%d KiB). A certificate signing request is usually 1–4 KiB: check that you chose the CSR file and not something else. Nothing was changed.", limit>>10))
		return
	}
	h.errorPage(w, r, v, http.StatusBadRequest, "The form could not be read",
		"The request was not a form this page understands. Nothing was changed. Go back and submit the form again.")
}
