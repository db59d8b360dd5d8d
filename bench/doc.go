// Package bench is Trustline's load-benchmark suite behind `trustline bench`
// and `make bench`: OCSP, CRL and issuance load in closed and open loop,
// latencies in HDR histograms, every run verifying a sample of answers.
package bench
