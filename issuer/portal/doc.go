// Package portal is Trustline's web front end on --api (CONTRACT.md: "the
// web portal ... and the CMS review console are served on --api at / and
// /review"): server-rendered HTML over the same issuance services the JSON
// API drives (seed steps 1–4 and 10 for subscribers, 6–7 for reviewers).
//
// Subscribers sign in with an API key or a one-time link mailed to the
// account's address, run the Validations Wizard (email to a BR §3.2.2.4.4
// constructed address, dns-txt §3.2.2.4.7, http-token §3.2.2.4.18), the
// Certificates Wizard (validated domains, names, DV/OV/EV with the
// organization fields of BR §7.1.4.2.2 and the EV Guidelines §9.2, a pasted
// or uploaded CSR), follow their orders, download PEM chains and revoke
// with the reasons BR §7.2.2 allows. Reviewers work the CMS queue at
// /review: order details, the validation evidence behind every name, and
// approve/reject decisions with notes and evidence, EV needing two
// different reviewers.
//
// Security model, stated once here:
//   - Pages work without JavaScript and load nothing from elsewhere; the
//     Content-Security-Policy allows only this origin's stylesheet.
//   - Sessions are random 256-bit tokens in an HttpOnly, SameSite=Lax
//     cookie (Secure when the request came over TLS or BaseURL is https;
//     dev serves plain HTTP on loopback, where a Secure cookie would never
//     be sent back). The store keeps each session under the token's
//     SHA-256, never the token, so every API instance serves every
//     signed-in browser and a restart signs nobody out; the API key is
//     never put in a cookie.
//   - Sessions end after SessionLifetime, or SessionIdle without use (uses
//     are written at most once a minute, so idle ends up to a minute
//     early). An account has at most SessionsPerAccount: signing in again
//     ends its least recently used, so one account cannot sign others out
//     however often it signs in. Expired sessions are deleted when
//     presented and, with expired sign-in links, at most once a minute on
//     sign-in and on link requests.
//   - Every state-changing form carries a token checked in constant time:
//     once signed in, the session's form token (a hash of the session
//     token, so any instance can check it); before sign-in, an HMAC of a
//     random SameSite=Strict cookie under a per-process key. Every POST
//     must also come from this origin (Sec-Fetch-Site, else Origin, else
//     Referer); a POST with none of them is refused.
//   - Sign-in links are 256-bit tokens, good once and for
//     LoginLinkLifetime. Like sessions they live in the store under the
//     token's SHA-256, so a link mailed by one API instance works on every
//     other, and of two redeeming it at once exactly one signs in. An
//     account is mailed at most one link every 30 s and has at most 3
//     outstanding; beyond MaxSignInLinks outstanding in all, requests are
//     answered as usual and mail nothing.
//   - The pre-sign-in key is shared between instances only when FormKey
//     is set (cmd/ sets it); without it, the sign-in forms must be posted
//     to the instance that served them.
//   - Roles are enforced on every page as in issuer/api: subscribers see
//     only their own validations, orders and certificates; /review is for
//     the reviewer role only.
//   - Request bodies are bounded (413 with a page that says so).
//
// It holds no business logic: every decision is the issuer's. Only cmd/
// imports it.
package portal
