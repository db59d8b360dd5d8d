package bench

import (
	"crypto"
	"encoding/base64"
	"errors"
	"fmt"
	"math"
	"math/big"
	"math/rand/v2"
	"sort"
	"strings"

	"github.com/trustline/trustline/internal/issuerid"
	"github.com/trustline/trustline/internal/status"
)

// Mix says what the OCSP requests look like.
type Mix struct {
	// Method is "get", "post" or "mix" (half of each).
	Method string `json:"method"`
	// GetEncoding is how GET paths carry the base64 request: "raw"
	// (standard base64 as is, what most clients send and the floor
	// server indexes) or "url" (percent-encoded, RFC 6960 Appendix A.1).
	GetEncoding string `json:"get_encoding"`
	// Zipf is the exponent s of the popularity distribution over the
	// certificates: the k-th most popular is asked about in proportion
	// to 1/k^s. 0 is uniform, the worst case for caches; real OCSP
	// traffic is skewed (s around 1).
	Zipf float64 `json:"zipf"`
	// Unknown, SHA256 and Nonce are the shares (0–1) of requests for
	// never-issued serials, with SHA-256 CertIDs (else SHA-1), and with
	// an RFC 8954 nonce.
	Unknown float64 `json:"unknown"`
	SHA256  float64 `json:"sha256"`
	Nonce   float64 `json:"nonce"`
	// Seed makes the mix reproducible.
	Seed uint64 `json:"seed"`
}

// Validate reports what is wrong with m.
func (m Mix) Validate() error {
	switch {
	case m.Method != "get" && m.Method != "post" && m.Method != "mix":
		return fmt.Errorf("bench: method %q: want get, post or mix", m.Method)
	case m.GetEncoding != "raw" && m.GetEncoding != "url":
		return fmt.Errorf("bench: GET encoding %q: want raw or url", m.GetEncoding)
	case m.Zipf < 0 || m.Zipf > 10 || math.IsNaN(m.Zipf):
		return errors.New("bench: zipf exponent must be in [0, 10]")
	}
	for _, f := range []float64{m.Unknown, m.SHA256, m.Nonce} {
		if !(f >= 0 && f <= 1) {
			return errors.New("bench: --unknown, --sha256 and --nonce are shares in [0, 1]")
		}
	}
	return nil
}

// expect is what a correct answer to a slot's request says.
type expect struct {
	issuer  *Issuer
	sn      *big.Int
	status  status.Status // of known certificates
	unknown bool          // a never-issued serial
	hash    crypto.Hash
}

// slot is one pre-built request. The generator walks the slots in order,
// so a run costs no encoding, hashing or random draws on the hot path.
type slot struct {
	post   bool
	target []byte // GET request target (path), or the POST path
	body   []byte // DER OCSPRequest (POST body; also what GET encodes)
	raw    []byte // the whole HTTP/1.1 request, rendered
	exp    expect
}

// corpus is the pre-built request sequence.
type corpus struct {
	slots []slot
}

// slotCount sizes the sequence: enough draws that the popularity
// distribution shows, bounded so a million-certificate store does not cost
// gigabytes.
func slotCount(certs int) int { return min(max(4*certs, 1<<16), 1<<18) }

// buildCorpus draws the request sequence for certs and renders each
// request for ep (whose path, "" or e.g. "/ocsp", prefixes GET and POST
// paths).
func buildCorpus(certs []Cert, issuers map[issuerid.ID]*Issuer, m Mix, ep endpoint) (*corpus, error) {
	basePath := ep.basePath
	if err := m.Validate(); err != nil {
		return nil, err
	}
	if len(certs) == 0 {
		return nil, errors.New("bench: no certificates to ask about")
	}
	keys := map[issuerid.ID]issuerKey{}
	var ids []issuerid.ID
	for _, c := range certs {
		if _, ok := keys[c.IssuerID]; ok {
			continue
		}
		is, ok := issuers[c.IssuerID]
		if !ok {
			return nil, fmt.Errorf("bench: certificate %s is issued by %q, which has no certificate in DIR/ca", c.Serial, c.IssuerID)
		}
		k, err := newIssuerKey(is.Cert)
		if err != nil {
			return nil, err
		}
		keys[c.IssuerID] = k
		ids = append(ids, c.IssuerID)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })

	r := rand.New(rand.NewPCG(m.Seed, 0x7275737469))
	// Popularity rank k maps to a random certificate, so that popularity
	// is not correlated with serial order, issuer or shard.
	perm := r.Perm(len(certs))
	pick := newZipf(len(certs), m.Zipf)

	type reqKey struct {
		cert int
		hash crypto.Hash
	}
	ders := map[reqKey][]byte{}
	raws := map[string][]byte{} // rendered requests, shared between slots
	render := func(method string, target, body []byte) []byte {
		key := method + string(target) + string(body)
		if r, ok := raws[key]; ok {
			return r
		}
		r := renderRequest(ep, method, string(target), "application/ocsp-request", body)
		raws[key] = r
		return r
	}
	unknown := make([]*big.Int, 256)
	for i := range unknown {
		// 20 octets with a leading 0x01: positive, and longer than the 17
		// octets of every Trustline serial, so never one that was issued.
		b := make([]byte, 20)
		for j := range b {
			b[j] = byte(r.Uint32())
		}
		b[0] = 0x01
		unknown[i] = new(big.Int).SetBytes(b)
	}

	n := slotCount(len(certs))
	c := &corpus{slots: make([]slot, n)}
	for i := range c.slots {
		s := &c.slots[i]
		s.exp.hash = crypto.SHA1
		if r.Float64() < m.SHA256 {
			s.exp.hash = crypto.SHA256
		}
		var issuer issuerid.ID
		idx := -1
		if r.Float64() < m.Unknown {
			issuer = ids[r.IntN(len(ids))]
			s.exp.sn, s.exp.unknown = unknown[r.IntN(len(unknown))], true
		} else {
			idx = perm[pick.draw(r)]
			cert := &certs[idx]
			issuer, s.exp.sn, s.exp.status = cert.IssuerID, cert.SN, cert.Status
		}
		s.exp.issuer = issuers[issuer]
		var nonce []byte
		if r.Float64() < m.Nonce {
			nonce = make([]byte, 32)
			for j := range nonce {
				nonce[j] = byte(r.Uint32())
			}
		}
		key := reqKey{idx, s.exp.hash}
		der, cached := ders[key]
		if !cached || idx < 0 || nonce != nil {
			var err error
			if der, err = buildRequest(keys[issuer], s.exp.hash, s.exp.sn, nonce); err != nil {
				return nil, err
			}
			if idx >= 0 && nonce == nil {
				ders[key] = der
			}
		}
		s.body = der
		switch m.Method {
		case "post":
			s.post = true
		case "mix":
			s.post = r.IntN(2) == 0
		}
		if s.post {
			s.target = []byte(basePath + "/")
			s.raw = render("POST", s.target, der)
			continue
		}
		s.target = []byte(getTarget(basePath, der, m.GetEncoding))
		s.raw = render("GET", s.target, nil)
	}
	return c, nil
}

// getTarget is the GET request target for a DER request.
func getTarget(basePath string, der []byte, encoding string) string {
	b64 := base64.StdEncoding.EncodeToString(der)
	if encoding == "url" {
		b64 = strings.NewReplacer("+", "%2B", "/", "%2F", "=", "%3D").Replace(b64)
	}
	return basePath + "/" + b64
}

// zipf draws popularity ranks 0..n-1 with P(k) ∝ 1/(k+1)^s. Go's
// rand.Zipf needs s > 1; real popularity is often s ≤ 1, so the bench
// keeps its own table.
type zipf struct {
	n   int
	cdf []float64 // nil: uniform
}

func newZipf(n int, s float64) *zipf {
	z := &zipf{n: n}
	if s == 0 {
		return z
	}
	z.cdf = make([]float64, n)
	sum := 0.0
	for k := range n {
		sum += math.Pow(float64(k+1), -s)
		z.cdf[k] = sum
	}
	for k := range z.cdf {
		z.cdf[k] /= sum
	}
	return z
}

func (z *zipf) draw(r *rand.Rand) int {
	if z.cdf == nil {
		return r.IntN(z.n)
	}
	u := r.Float64()
	return min(sort.SearchFloat64s(z.cdf, u), z.n-1)
}
