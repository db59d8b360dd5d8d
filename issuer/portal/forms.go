package portal

import (
	"bytes"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/trustline/trustline/issuer/csrcheck"
	"github.com/trustline/trustline/issuer/profile"
)

// Form decoding. Everything here reads untrusted input and is fuzzed
// (fuzz_test.go): it must never panic, and what it accepts must be what
// the issuer would accept in shape (the issuer still decides).

// Bounds on form fields, checked before anything reaches the issuer.
const (
	maxNames       = 100 // csrcheck's default MaxNames
	maxNameLen     = 253 // RFC 1035 §2.3.4, in presentation form
	maxOrgField    = 64  // RFC 5280 upper bounds (ub-organization-name …)
	maxShortField  = 320 // an email address, a domain, a reference
	maxNotes       = 4000
	maxEvidenceRaw = 8 << 10
)

// fieldText trims s and checks it is short, valid UTF-8 text without
// control characters (a line break in a field headed for a certificate
// subject or a mail body is never intended). label names the field in the
// message.
func fieldText(label, s string, max int) (string, error) {
	s = strings.TrimSpace(s)
	if len(s) > max {
		return "", fmt.Errorf("%s is longer than %d characters", label, max)
	}
	if !utf8.ValidString(s) {
		return "", fmt.Errorf("%s is not valid UTF-8 text", label)
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return "", fmt.Errorf("%s contains a control character", label)
		}
	}
	return s, nil
}

// longText is fieldText for multi-line fields: line breaks and tabs are
// allowed, other control characters are not.
func longText(label, s string, max int) (string, error) {
	s = strings.TrimSpace(strings.ReplaceAll(s, "\r\n", "\n"))
	if len(s) > max {
		return "", fmt.Errorf("%s is longer than %d characters", label, max)
	}
	if !utf8.ValidString(s) {
		return "", fmt.Errorf("%s is not valid UTF-8 text", label)
	}
	for _, r := range s {
		if unicode.IsControl(r) && r != '\n' && r != '\t' {
			return "", fmt.Errorf("%s contains a control character", label)
		}
	}
	return s, nil
}

// parseNames reads the names a subscriber types: separated by white space
// or commas, lowercased, duplicates removed, order kept. One trailing dot,
// the fully qualified form "example.com.", is dropped as the API's
// validations drop it (validation.NormalizeDomain); a name ending in more
// dots, or a lone dot, is refused here, since csrcheck would refuse what
// is left. Whether each name is otherwise acceptable is csrcheck's call,
// later.
func parseNames(s string) ([]string, error) {
	if len(s) > maxNames*(maxNameLen+2) {
		return nil, fmt.Errorf("names: more text than %d names can take", maxNames)
	}
	fields := strings.FieldsFunc(s, func(r rune) bool { return r == ',' || unicode.IsSpace(r) })
	var out []string
	for _, f := range fields {
		n := strings.ToLower(strings.TrimSuffix(f, "."))
		switch {
		case n == "":
			return nil, errors.New(`names: "." on its own is not a name`)
		case strings.HasSuffix(n, "."):
			if len(f) > 40 {
				f = "…" + f[len(f)-32:] // the end is what is wrong
			}
			return nil, fmt.Errorf("names: %q ends with more than one dot; write a name as example.com, with one dot at the end at most", f)
		}
		if len(n) > maxNameLen {
			return nil, fmt.Errorf("names: %q… is longer than %d characters", n[:32], maxNameLen)
		}
		if !utf8.ValidString(n) {
			return nil, errors.New("names: not valid UTF-8 text")
		}
		for _, r := range n {
			if unicode.IsControl(r) {
				return nil, errors.New("names: a name contains a control character")
			}
		}
		if !slices.Contains(out, n) {
			out = append(out, n)
		}
		if len(out) > maxNames {
			return nil, fmt.Errorf("names: more than %d names", maxNames)
		}
	}
	return out, nil
}

// orgFields are the organization inputs of the Certificates Wizard, by
// form field name.
var orgFields = []struct {
	form, label string
	ev          bool // EV only
}{
	{"org_name", "Organization name", false},
	{"org_locality", "Locality (city)", false},
	{"org_province", "State or province", false},
	{"org_country", "Country", false},
	{"org_jurisdiction_country", "Jurisdiction country", true},
	{"org_jurisdiction_province", "Jurisdiction state or province", true},
	{"org_jurisdiction_locality", "Jurisdiction locality", true},
	{"org_business_category", "Business category", true},
	{"org_registration_number", "Registration number", true},
}

// businessCategories are the EV Guidelines §7.1.4.2.3 categories, as
// profile.Organization.Validate accepts them.
var businessCategories = []string{"Private Organization", "Government Entity", "Business Entity", "Non-Commercial Entity"}

// parseOrganization reads the organization fields for prof. DV ignores
// them and OV ignores the EV-only ones: without JavaScript the form cannot
// hide them, and a subscriber who filled them in and then chose a lesser
// profile meant the profile. Country codes are uppercased. The result has
// passed profile.Organization.Validate; errs lists every problem found.
func parseOrganization(get func(string) string, prof profile.Name) (*profile.Organization, []string) {
	if !prof.NeedsReview() {
		return nil, nil
	}
	var errs []string
	val := map[string]string{}
	for _, f := range orgFields {
		if f.ev && prof != profile.EV {
			continue
		}
		v, err := fieldText(f.label, get(f.form), maxOrgField)
		if err != nil {
			errs = append(errs, err.Error())
			continue
		}
		val[f.form] = v
	}
	if len(errs) > 0 {
		return nil, errs
	}
	org := &profile.Organization{
		Name:                 val["org_name"],
		Locality:             val["org_locality"],
		Province:             val["org_province"],
		Country:              strings.ToUpper(val["org_country"]),
		JurisdictionCountry:  strings.ToUpper(val["org_jurisdiction_country"]),
		JurisdictionProvince: val["org_jurisdiction_province"],
		JurisdictionLocality: val["org_jurisdiction_locality"],
		BusinessCategory:     val["org_business_category"],
		RegistrationNumber:   val["org_registration_number"],
	}
	if err := org.Validate(prof); err != nil {
		for _, line := range strings.Split(err.Error(), "\n") {
			errs = append(errs, orgMessage(line))
		}
		return nil, errs
	}
	if c := org.JurisdictionCountry; c != "" && (len(c) != 2 || c[0] < 'A' || c[0] > 'Z' || c[1] < 'A' || c[1] > 'Z') {
		return nil, []string{fmt.Sprintf("Jurisdiction country %q must be an ISO 3166-1 alpha-2 code such as GB", c)}
	}
	return org, nil
}

// orgMessage rewrites the issuer's "organization.name is required for ov"
// into the form's words.
func orgMessage(s string) string {
	for _, f := range orgFields {
		key := "organization." + strings.TrimPrefix(f.form, "org_")
		if strings.Contains(s, key) {
			s = strings.ReplaceAll(s, key, f.label)
		}
	}
	if s != "" {
		s = strings.ToUpper(s[:1]) + s[1:]
	}
	return s
}

// reviewEvidence builds the JSON object a reviewer's approval records: the
// source consulted and its reference, plus any extra JSON object the
// reviewer pasted. The named fields win over the same keys in extra.
func reviewEvidence(source, reference, extra string) ([]byte, error) {
	src, err := fieldText("Source consulted", source, maxShortField)
	if err != nil {
		return nil, err
	}
	if src == "" {
		return nil, formProblem("Source consulted is required: say what you checked the identity against")
	}
	ref, err := fieldText("Reference", reference, maxShortField)
	if err != nil {
		return nil, err
	}
	obj := map[string]any{}
	if extra = strings.TrimSpace(extra); extra != "" {
		if len(extra) > maxEvidenceRaw {
			return nil, formProblem(fmt.Sprintf("Additional evidence is larger than %d bytes", maxEvidenceRaw))
		}
		dec := json.NewDecoder(strings.NewReader(extra))
		dec.UseNumber()
		if err := dec.Decode(&obj); err != nil || obj == nil || dec.More() {
			return nil, formProblem(`Additional evidence must be one JSON object, such as {"registry_id": "01234567"}`)
		}
	}
	obj["source"] = src
	if ref != "" {
		obj["reference"] = ref
	}
	return json.Marshal(obj)
}

// safeNext returns s if it is a path on this site to go to after sign-in,
// else "". Only absolute paths: no scheme, no host, no "//" or "/\" that
// a browser would read as another host.
func safeNext(s string) string {
	if s == "" || len(s) > 512 || !strings.HasPrefix(s, "/") ||
		strings.HasPrefix(s, "//") || strings.HasPrefix(s, "/\\") || strings.ContainsAny(s, "\\\r\n\t") {
		return ""
	}
	u, err := url.Parse(s)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || u.Opaque != "" {
		return ""
	}
	return s
}

// csrInput picks the CSR from the pasted text or the uploaded file; the
// subscriber must give exactly one. The file is returned as uploaded: a
// DER file may end in bytes that look like white space.
func csrInput(pasted string, file []byte) ([]byte, error) {
	pasted = strings.TrimSpace(pasted)
	if len(bytes.TrimSpace(file)) == 0 {
		file = nil
	}
	switch {
	case pasted != "" && len(file) > 0:
		return nil, formProblem("Give the CSR once: paste it or upload a file, not both")
	case pasted == "" && len(file) == 0:
		return nil, formProblem("A CSR is required: paste it (PEM) or upload the file (PEM or DER)")
	case pasted != "":
		return []byte(pasted), nil
	}
	return file, nil
}

// csrNames is a preview of the names a CSR asks for (its dNSName SANs and
// common name, lowercased), used only to check them against the domains
// and names the subscriber picked. ok is false when the CSR does not
// parse; the issuer's own check then says why.
func csrNames(in []byte) (names []string, ok bool) {
	der, err := csrcheck.Decode(in)
	if err != nil {
		return nil, false
	}
	csr, err := x509.ParseCertificateRequest(der)
	if err != nil {
		return nil, false
	}
	for _, n := range append(slices.Clone(csr.DNSNames), csr.Subject.CommonName) {
		n = strings.ToLower(strings.TrimSuffix(n, "."))
		if n != "" && !slices.Contains(names, n) {
			names = append(names, n)
		}
	}
	return names, true
}

// underDomain reports whether name is domain, a name below it, or a
// wildcard below it.
func underDomain(name, domain string) bool {
	base := strings.TrimPrefix(name, "*.")
	return base == domain || strings.HasSuffix(base, "."+domain)
}

// checkCSRNames compares the CSR's names with what the subscriber chose:
// each must lie under one of the chosen domains and, if the subscriber
// listed names, the two sets must be equal.
func checkCSRNames(got, listed, domains []string) []string {
	var errs []string
	var outside []string
	for _, n := range got {
		if !slices.ContainsFunc(domains, func(d string) bool { return underDomain(n, d) }) {
			outside = append(outside, n)
		}
	}
	if len(outside) > 0 {
		errs = append(errs, fmt.Sprintf("The CSR names %s, which %s not under the domain(s) you chose (%s)",
			strings.Join(outside, ", "), plural(len(outside), "is", "are"), strings.Join(domains, ", ")))
	}
	if len(listed) > 0 {
		var missing, extra []string
		for _, n := range listed {
			if !slices.Contains(got, n) {
				missing = append(missing, n)
			}
		}
		for _, n := range got {
			if !slices.Contains(listed, n) {
				extra = append(extra, n)
			}
		}
		if len(missing) > 0 {
			errs = append(errs, "The CSR does not contain these names you listed: "+strings.Join(missing, ", "))
		}
		if len(extra) > 0 {
			errs = append(errs, "The CSR contains names you did not list: "+strings.Join(extra, ", "))
		}
	}
	return errs
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// formProblem is a mistake in a form, worded as the sentence the page
// shows the user.
type formProblem string

func (p formProblem) Error() string { return string(p) }
