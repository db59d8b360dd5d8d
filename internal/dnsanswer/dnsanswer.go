// Package dnsanswer reads records out of a recursive resolver's answer
// section the way the CA's checks need: the records of one type at a name,
// following the CNAME chain the resolver returned with them. Domain
// validation (TXT) and CAA share it.
package dnsanswer

import "github.com/miekg/dns"

// MaxCNAMEHops bounds the chain At follows.
const MaxCNAMEHops = 8

// At returns what pick keeps of the records at qname in answer, following a
// CNAME chain from qname (at most MaxCNAMEHops; a loop ends it with
// nothing). Records of the name win over its CNAME. Records of other names
// and classes are ignored: the answer comes from the network.
func At[T any](answer []dns.RR, qname string, pick func(owner string, rr dns.RR) (T, bool)) []T {
	name := dns.CanonicalName(qname)
	seen := map[string]bool{}
	for hop := 0; hop <= MaxCNAMEHops && !seen[name]; hop++ {
		seen[name] = true
		var out []T
		next := ""
		for _, rr := range answer {
			h := rr.Header()
			if h == nil || h.Class != dns.ClassINET || dns.CanonicalName(h.Name) != name {
				continue
			}
			if cn, ok := rr.(*dns.CNAME); ok {
				next = dns.CanonicalName(cn.Target)
				continue
			}
			if v, ok := pick(name, rr); ok {
				out = append(out, v)
			}
		}
		if len(out) > 0 || next == "" {
			return out
		}
		name = next
	}
	return nil
}
