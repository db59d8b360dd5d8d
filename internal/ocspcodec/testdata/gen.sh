#!/bin/sh
# Regenerates the openssl-made OCSP requests used as fuzz seeds and test
# inputs by request_test.go. Run from this directory: sh gen.sh
# Made with OpenSSL 3.0.19. Private keys are throwaway and not kept.
set -eu
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# A throwaway issuer and two leaves it issued (serials 0x01ab... and 0x8f... ;
# the second has its high bit set, so its INTEGER carries a 0x00 pad).
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$tmp/issuer.key" \
  -subj "/O=Trustline Test/CN=ocspcodec test issuer" -days 36500 -out issuer.pem
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$tmp/leaf.key" \
  -subj "/CN=leaf.example" -out "$tmp/leaf.csr"
openssl x509 -req -in "$tmp/leaf.csr" -CA issuer.pem -CAkey "$tmp/issuer.key" -days 36500 \
  -set_serial 0x01ab23cd45ef67890123456789abcdef01 -out leaf1.pem
openssl x509 -req -in "$tmp/leaf.csr" -CA issuer.pem -CAkey "$tmp/issuer.key" -days 36500 \
  -set_serial 0x8f00112233445566778899aabbccddeeff -out leaf2.pem

# Requests.
openssl ocsp -issuer issuer.pem -cert leaf1.pem -reqout req-sha1-nonce.der
openssl ocsp -issuer issuer.pem -cert leaf1.pem -no_nonce -reqout req-sha1-nononce.der
openssl ocsp -issuer issuer.pem -sha256 -cert leaf1.pem -reqout req-sha256-nonce.der
openssl ocsp -issuer issuer.pem -sha256 -cert leaf1.pem -no_nonce -reqout req-sha256-nononce.der
openssl ocsp -issuer issuer.pem -sha384 -cert leaf2.pem -no_nonce -reqout req-sha384-nononce.der
openssl ocsp -issuer issuer.pem -sha512 -cert leaf2.pem -reqout req-sha512-nonce.der
openssl ocsp -issuer issuer.pem -cert leaf1.pem -cert leaf2.pem -reqout req-two-cert.der
openssl ocsp -issuer issuer.pem -serial 0x01ab23cd45ef67890123456789abcdef01 \
  -serial 0x8f00112233445566778899aabbccddeeff -no_nonce -reqout req-two-serial.der
# Signed, which also sets requestorName to the signer's subject (directoryName).
openssl ocsp -issuer issuer.pem -cert leaf1.pem -signer leaf1.pem -signkey "$tmp/leaf.key" \
  -reqout req-signed.der
