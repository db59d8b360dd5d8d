// Package issuer is Trustline's issuance core: accounts and API keys, domain
// validation (BR §3.2.2.4), orders and the review queue, the serial-number
// generator, certificate profiles (DV/OV/EV, BR §7.1), lint-before-sign with
// zlint (BR §4.3.1.2), and signing with the intermediate keys held by a
// crypto.Signer (key files or a PKCS#11 token).
//
// It imports the store and the signers; the responder and the origin must
// never import it (see internal/deptest).
package issuer
