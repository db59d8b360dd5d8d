package acme

import (
	"encoding/json"
	"fmt"
	"net/http"
)

// ProblemType is an ACME error type, the last part of
// "urn:ietf:params:acme:error:<type>" (RFC 8555 §6.7, and §6.7's IANA
// registry, which RFC 9773 and the profiles draft extend).
type ProblemType string

// The error types this server sends.
const (
	AccountDoesNotExist ProblemType = "accountDoesNotExist"
	AlreadyRevoked      ProblemType = "alreadyRevoked"
	// AlreadyReplaced: the certificate an order replaces is replaced by
	// another order already (RFC 9773 §7.4).
	AlreadyReplaced         ProblemType = "alreadyReplaced"
	BadCSR                  ProblemType = "badCSR"
	BadNonce                ProblemType = "badNonce"
	BadPublicKey            ProblemType = "badPublicKey"
	BadRevocationReason     ProblemType = "badRevocationReason"
	BadSignatureAlgorithm   ProblemType = "badSignatureAlgorithm"
	CAA                     ProblemType = "caa"
	Connection              ProblemType = "connection"
	DNS                     ProblemType = "dns"
	ExternalAccountRequired ProblemType = "externalAccountRequired"
	IncorrectResponse       ProblemType = "incorrectResponse"
	InvalidContact          ProblemType = "invalidContact"
	Malformed               ProblemType = "malformed"
	OrderNotReady           ProblemType = "orderNotReady"
	RateLimited             ProblemType = "rateLimited"
	RejectedIdentifier      ProblemType = "rejectedIdentifier"
	ServerInternal          ProblemType = "serverInternal"
	TLS                     ProblemType = "tls"
	Unauthorized            ProblemType = "unauthorized"
	UnsupportedContact      ProblemType = "unsupportedContact"
	UnsupportedIdentifier   ProblemType = "unsupportedIdentifier"
	UserActionRequired      ProblemType = "userActionRequired"
	// InvalidProfile: the order names a profile the server does not offer
	// (draft-ietf-acme-profiles).
	InvalidProfile ProblemType = "invalidProfile"
)

// URN returns the type's full name.
func (t ProblemType) URN() string { return "urn:ietf:params:acme:error:" + string(t) }

// Identifier is an ACME identifier (RFC 8555 §9.7.7).
type Identifier struct {
	Type  string `json:"type"`
	Value string `json:"value"`
}

// Problem is an RFC 7807 problem document with the ACME fields. It is an
// error, so that the layers below the handler can return one and the
// handler writes it as it is.
type Problem struct {
	Type   ProblemType
	Detail string
	// Status is the HTTP status; 0 means the type's usual one.
	Status int
	// Identifier names the identifier a subproblem is about (§6.7.1).
	Identifier *Identifier
	// Subproblems are per-identifier problems (§6.7.1).
	Subproblems []*Problem
	// Algorithms lists the acceptable JWS algorithms of a
	// badSignatureAlgorithm problem (§6.2).
	Algorithms []string
}

// Problemf makes a problem of type t with a formatted detail.
func Problemf(t ProblemType, format string, args ...any) *Problem {
	return &Problem{Type: t, Detail: fmt.Sprintf(format, args...)}
}

func (p *Problem) Error() string { return "acme: " + string(p.Type) + ": " + p.Detail }

// HTTPStatus returns Status or the type's usual status.
func (p *Problem) HTTPStatus() int {
	if p.Status != 0 {
		return p.Status
	}
	switch p.Type {
	case Unauthorized:
		return http.StatusForbidden
	case AccountDoesNotExist:
		return http.StatusBadRequest
	case RateLimited:
		return http.StatusTooManyRequests
	case ServerInternal:
		return http.StatusInternalServerError
	case OrderNotReady:
		return http.StatusForbidden
	case UserActionRequired:
		return http.StatusForbidden
	}
	return http.StatusBadRequest
}

// MarshalJSON writes the problem document with full type URNs.
func (p *Problem) MarshalJSON() ([]byte, error) {
	type doc struct {
		Type        string      `json:"type"`
		Detail      string      `json:"detail,omitempty"`
		Status      int         `json:"status,omitempty"`
		Identifier  *Identifier `json:"identifier,omitempty"`
		Subproblems []*Problem  `json:"subproblems,omitempty"`
		Algorithms  []string    `json:"algorithms,omitempty"`
	}
	d := doc{Type: p.Type.URN(), Detail: p.Detail, Identifier: p.Identifier, Subproblems: p.Subproblems, Algorithms: p.Algorithms}
	if p.Identifier == nil || p.Status != 0 {
		d.Status = p.HTTPStatus() // subproblems carry no status of their own
	}
	return json.Marshal(d)
}
