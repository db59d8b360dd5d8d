// Package crlgen builds and publishes Trustline's sharded CRLs (RFC 5280 §5,
// BR §4.9.7 and §7.2): per issuer N shards, each with a critical Issuing
// Distribution Point naming the URL in its certificates' CRL distribution
// point, CRL numbers strictly increasing per shard, published on a fixed
// period and soon after every revocation, checked before publication and
// swapped in atomically.
package crlgen
