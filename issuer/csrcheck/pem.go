package csrcheck

import (
	"bytes"
	"encoding/pem"
	"strings"
)

// NotACSR is the Detail of a refusal of input that is not a certificate
// request in either form: random bytes, or text with no PEM block in it.
const NotACSR = "not a PEM or DER certificate request"

// Decode returns the DER of a CSR given as PEM or DER, the two forms
// subscribers paste and upload. DER is recognised by its first byte (a
// SEQUENCE, 0x30), which no PEM text starts with; anything else is read as
// PEM by DecodePEM, so text around the block (openssl req -text) is fine.
// Decode checks the form only: Check judges the DER.
func Decode(in []byte) ([]byte, error) {
	switch {
	case len(in) > MaxInputSize:
		return nil, refuse(BadCSR, "the CSR is %d bytes, more than the %d allowed", len(in), MaxInputSize)
	case len(bytes.TrimSpace(in)) == 0:
		return nil, refuse(BadCSR, "the CSR is empty")
	case in[0] == 0x30:
		return in, nil
	case !bytes.Contains(in, []byte("-----BEGIN")):
		return nil, refuse(BadCSR, NotACSR)
	}
	return DecodePEM(in)
}

// DecodePEM returns the DER of the one "CERTIFICATE REQUEST" PEM block in
// in (RFC 7468 §7). Text around the block is ignored, as openssl's -text
// output puts some there; a second block of any type, a block with
// headers, or input over MaxInputSize is refused with an *Error of Kind
// BadCSR. The legacy label "NEW CERTIFICATE REQUEST" is not accepted.
func DecodePEM(in []byte) ([]byte, error) {
	if len(in) > MaxInputSize {
		return nil, refuse(BadCSR, "the PEM input is %d bytes, more than the %d allowed", len(in), MaxInputSize)
	}
	var der []byte
	blocks := 0
	for rest := in; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		blocks++
		switch {
		case strings.Contains(b.Type, "PRIVATE KEY"):
			// Said plainly because the subscriber has just sent us a secret.
			return nil, refuse(BadCSR, "the input contains a private key; send only the certificate request, never the private key")
		case b.Type != "CERTIFICATE REQUEST":
			return nil, refuse(BadCSR, "the input has a PEM block of type %s; expected \"CERTIFICATE REQUEST\"", snippet(b.Type, 40))
		case len(b.Headers) != 0:
			return nil, refuse(BadCSR, "the CERTIFICATE REQUEST PEM block has headers; expected none")
		case blocks > 1:
			return nil, refuse(BadCSR, "the input has more than one CERTIFICATE REQUEST PEM block; send exactly one")
		}
		der = b.Bytes
	}
	if blocks == 0 {
		return nil, refuse(BadCSR, NotACSR+": no complete PEM block found; expected one from \"-----BEGIN CERTIFICATE REQUEST-----\" to \"-----END CERTIFICATE REQUEST-----\"")
	}
	return der, nil
}
