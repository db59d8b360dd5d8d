package portal

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/trustline/trustline/internal/humanize"
	"github.com/trustline/trustline/internal/mail"
	"github.com/trustline/trustline/internal/store"
	"github.com/trustline/trustline/issuer"
)

// Sign-in (seed step 1): an API key pasted, or a one-time link mailed to
// the account's address; and sign-up, which shows a new account's API key
// once.

type signinData struct {
	Next        string
	Expired     bool
	SignedOut   bool
	Email       string // email sign-in, kept on error
	SignupEmail string // sign-up, kept on error
}

func (h *Handler) home(w http.ResponseWriter, r *http.Request) {
	v, state := h.visitOf(r)
	switch state {
	case sessionOK:
		h.dashboard(w, r, v)
		return
	case sessionUnavailable:
		h.unavailable(w, r)
		return
	}
	q := r.URL.Query()
	h.signinPage(w, r, http.StatusOK, signinData{
		Next:      safeNext(q.Get("next")),
		Expired:   q.Get("expired") == "1" || state == sessionExpired,
		SignedOut: q.Get("signedout") == "1",
	}, nil)
}

func (h *Handler) signinPage(w http.ResponseWriter, r *http.Request, status int, d signinData, errs []string) {
	h.render(w, r, status, "signin", view{Title: "Sign in to Trustline", CSRF: h.preToken(w, r), Errors: errs, Data: d})
}

// startSession signs the browser in as acct with a fresh session token (a
// token set before sign-in is never promoted), ending the session it had,
// and sends the token on.
func (h *Handler) startSession(w http.ResponseWriter, r *http.Request, acct store.Account) (*visit, error) {
	if c, err := r.Cookie(sessionCookie); err == nil {
		if err := h.sessions.end(r.Context(), c.Value); err != nil {
			return nil, err
		}
	}
	now := h.now()
	sid, sess, err := h.sessions.start(r.Context(), acct.ID, now)
	if err != nil {
		return nil, err
	}
	h.sweeper.sweep(r.Context(), now)
	h.setCookie(w, r, sessionCookie, sid, http.SameSiteLaxMode)
	h.d.Log.Info("signed in", "account", acct.ID, "role", acct.Role)
	return &visit{acct: acct, sess: sess, sid: sid}, nil
}

// landing is where a user goes after sign-in: where they were headed, or
// the console for reviewers and the dashboard for everyone else.
func landing(acct store.Account, next string) string {
	if next = safeNext(next); next != "" {
		return next
	}
	if acct.Role == store.RoleReviewer {
		return "/review"
	}
	return "/"
}

func (h *Handler) signIn(w http.ResponseWriter, r *http.Request) {
	next := safeNext(r.PostFormValue("next"))
	key := strings.TrimSpace(r.PostFormValue("api_key"))
	if key == "" {
		h.signinPage(w, r, http.StatusBadRequest, signinData{Next: next}, []string{"Paste your API key to sign in."})
		return
	}
	acct, err := h.d.Accounts.Authenticate(r.Context(), key)
	if errors.Is(err, issuer.ErrUnauthenticated) {
		if lerr := h.d.Limits.FailedAuth(r.Context(), r.RemoteAddr, issuer.KeyID(key)); lerr != nil {
			status, msg := h.formFailure(w, r, lerr)
			h.signinPage(w, r, status, signinData{Next: next}, []string{msg})
			return
		}
		h.signinPage(w, r, http.StatusUnauthorized, signinData{Next: next},
			[]string{"That API key is not valid. Paste the whole key, which starts with tl_, or sign in with an email link."})
		return
	}
	if err != nil {
		h.fail(w, r, nil, err)
		return
	}
	if _, err := h.startSession(w, r, acct); err != nil {
		h.fail(w, r, nil, err)
		return
	}
	http.Redirect(w, r, landing(acct, next), http.StatusSeeOther)
}

// requestLink mails a sign-in link if the address belongs to an account.
// The answer is the same either way, so the form tells nobody which
// addresses have accounts.
func (h *Handler) requestLink(w http.ResponseWriter, r *http.Request) {
	next := safeNext(r.PostFormValue("next"))
	raw := r.PostFormValue("email")
	email, err := issuer.NormalizeEmail(raw)
	if err != nil {
		shown, _ := fieldText("email", raw, maxShortField)
		h.signinPage(w, r, http.StatusBadRequest, signinData{Next: next, Email: shown},
			[]string{"Enter the email address of your account, such as alice@example.com."})
		return
	}
	accts, err := h.d.Store.AccountsByEmail(r.Context(), email)
	if err != nil {
		h.fail(w, r, nil, fmt.Errorf("portal: looking up accounts: %w", err))
		return
	}
	mailed := 0
	for _, acct := range accts {
		// Only a confirmed address gets anything but its confirmation link.
		if !acct.EmailVerifiedAt.IsZero() {
			h.mailLink(r, acct, next)
			mailed++
		}
	}
	if mailed == 0 {
		h.d.Log.Info("sign-in link asked for an address with no confirmed account")
	}
	h.render(w, r, http.StatusOK, "link_sent", view{Title: "Check your mail", Data: struct {
		Email    string
		Lifetime time.Duration
	}{email, h.cfg.LoginLinkLifetime}})
}

// mailLink mails acct a sign-in link. Failures are logged, never shown:
// the page must read the same as for an address without an account.
func (h *Handler) mailLink(r *http.Request, acct store.Account, next string) {
	now := h.now()
	tok, err := h.links.issue(r.Context(), acct.ID, now)
	h.sweeper.sweep(r.Context(), now)
	if err != nil {
		h.d.Log.Error("making a sign-in link", "account", acct.ID, "err", err)
		return
	}
	if tok == "" {
		h.d.Log.Info("sign-in link not sent: one was sent moments ago, or too many are outstanding", "account", acct.ID)
		return
	}
	q := url.Values{"token": {tok}}
	if next != "" {
		q.Set("next", next)
	}
	link := h.cfg.BaseURL + "/signin/link?" + q.Encode()
	msg := mail.Message{
		To:      acct.Email,
		Subject: "Your Trustline sign-in link",
		Body: fmt.Sprintf("Someone asked to sign in to Trustline as %s.\n"+
			"If that was you, open this link within %s to sign in. It works once:\n\n"+
			"Sign-in link: %s\n\nIf it was not you, ignore this message: nobody can sign in without the link.\n",
			acct.Email, humanize.Duration(h.cfg.LoginLinkLifetime), link),
	}
	// A visitor who leaves does not cancel the mail.
	if err := h.d.Mail.Send(context.WithoutCancel(r.Context()), msg); err != nil {
		h.d.Log.Error("mailing a sign-in link", "account", acct.ID, "err", err)
	}
}

// linkPage asks the visitor to confirm the sign-in with a button. The GET
// itself changes nothing: mail scanners that fetch links must not use them
// up.
func (h *Handler) linkPage(w http.ResponseWriter, r *http.Request) {
	tok := r.URL.Query().Get("token")
	acct, ok := h.linkAccount(w, r, h.links.peek, tok)
	if !ok {
		return
	}
	h.render(w, r, http.StatusOK, "link", view{Title: "Sign in as " + acct.Email + "?", CSRF: h.preToken(w, r), Data: struct {
		Email, Token, Next string
	}{acct.Email, tok, safeNext(r.URL.Query().Get("next"))}})
}

// linkAccount finds, with find (peek or redeem), the account a sign-in
// link names. When it is not ok, the page saying why has been written.
func (h *Handler) linkAccount(w http.ResponseWriter, r *http.Request,
	find func(context.Context, string, time.Time) (string, bool, error), tok string) (store.Account, bool) {
	id, ok, err := find(r.Context(), tok, h.now())
	if err != nil {
		h.fail(w, r, nil, err)
		return store.Account{}, false
	}
	if !ok {
		h.badLink(w, r)
		return store.Account{}, false
	}
	acct, err := h.d.Store.Account(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		h.badLink(w, r)
		return store.Account{}, false
	}
	if err != nil {
		h.fail(w, r, nil, fmt.Errorf("portal: reading a sign-in link's account: %w", err))
		return store.Account{}, false
	}
	return acct, true
}

func (h *Handler) badLink(w http.ResponseWriter, r *http.Request) {
	h.errorPage(w, r, nil, http.StatusBadRequest, "This sign-in link does not work",
		"The link is wrong, has been used already, or has expired. Request a new one from the sign-in page.")
}

func (h *Handler) redeemLink(w http.ResponseWriter, r *http.Request) {
	acct, ok := h.linkAccount(w, r, h.links.redeem, r.PostFormValue("token"))
	if !ok {
		return
	}
	if _, err := h.startSession(w, r, acct); err != nil {
		h.fail(w, r, nil, err)
		return
	}
	http.Redirect(w, r, landing(acct, r.PostFormValue("next")), http.StatusSeeOther)
}

// signUp creates a subscriber account, signs it in and shows its API key
// once. The key is rendered into this one response only: it is neither
// stored nor put in a cookie.
func (h *Handler) signUp(w http.ResponseWriter, r *http.Request) {
	raw := r.PostFormValue("email")
	if err := h.d.Limits.SignUp(r.Context(), r.RemoteAddr); err != nil {
		status, msg := h.formFailure(w, r, err)
		shown, _ := fieldText("email", raw, maxShortField)
		h.signinPage(w, r, status, signinData{SignupEmail: shown}, []string{msg})
		return
	}
	acct, key, err := h.d.Accounts.Create(r.Context(), raw, store.RoleSubscriber)
	if err != nil {
		status, msg := h.formFailure(w, r, err)
		shown, _ := fieldText("email", raw, maxShortField)
		h.signinPage(w, r, status, signinData{SignupEmail: shown}, []string{msg})
		return
	}
	v, err := h.startSession(w, r, acct)
	if err != nil {
		h.fail(w, r, nil, err)
		return
	}
	confirmation := "We have mailed a confirmation link to " + acct.Email + ": open it, and Trustline will mail you sign-in links and notices about your certificates."
	if h.d.Confirmations == nil {
		confirmation = ""
	} else if err := h.d.Confirmations.Send(r.Context(), acct); err != nil {
		status, msg := h.formFailure(w, r, err)
		h.d.Log.Warn("confirmation link not mailed", "account", acct.ID, "status", status)
		confirmation = "We could not mail a confirmation link to " + acct.Email + " now (" + msg + ")"
	}
	h.page(w, r, v, http.StatusCreated, "welcome", view{
		Title: "Your account is ready", Data: struct{ APIKey, Confirmation string }{key, confirmation},
	})
}

// confirmEmail follows a confirmation link. It is a GET, as a link in a
// mail is; following it twice, or by a mail scanner, only confirms again.
func (h *Handler) confirmEmail(w http.ResponseWriter, r *http.Request) {
	if h.d.Confirmations == nil {
		h.errorPage(w, r, nil, http.StatusNotFound, "Page not found", "Address confirmation is not offered here.")
		return
	}
	acct, err := h.d.Confirmations.Confirm(r.Context(), r.URL.Query().Get("token"))
	if err != nil {
		h.fail(w, r, nil, err)
		return
	}
	h.render(w, r, http.StatusOK, "email_confirmed", view{Title: "Address confirmed", Data: struct{ Email string }{acct.Email}})
}

func (h *Handler) signOut(w http.ResponseWriter, r *http.Request, v *visit) {
	if err := h.sessions.end(r.Context(), v.sid); err != nil {
		h.fail(w, r, v, err) // still signed in: do not say otherwise
		return
	}
	h.clearCookie(w, r, sessionCookie)
	h.d.Log.Info("signed out", "account", v.acct.ID)
	http.Redirect(w, r, "/?signedout=1", http.StatusSeeOther)
}
