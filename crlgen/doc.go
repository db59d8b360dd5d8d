// Package crlgen builds and publishes Trustline's sharded CRLs (RFC 5280 §5,
// BR §4.9.7 and §7.2): per intermediate N shards, each with a critical
// Issuing Distribution Point naming the URL in its certificates' CRL
// distribution point and onlyContainsUserCerts; for the root one full CRL;
// CRL numbers strictly increasing per shard, published on a fixed period and
// soon after every revocation, checked before publication and swapped in
// atomically.
//
// How a CRL is published (Generator.Cycle, which Run calls on a timer):
//
//  1. The generator follows the store's status-change events. A revocation
//     marks its shard dirty; issuance records which shards are in use.
//  2. It holds a lease per issuer in the store ("crlgen/<issuer-id>"), so
//     several generators split the issuers between them; a generator that
//     takes an issuer over replays the events since the last one persisted
//     for it (store meta "crlgen/cursor/<issuer-id>"), so a revocation is
//     never forgotten across restarts or takeovers.
//  3. A shard is built when it is dirty or its CRL is Period old. Its
//     thisUpdate is max(now, previous thisUpdate + 1 s, latest revocation
//     date): it never goes backwards, even when the clock does, and strictly
//     increases so Last-Modified orders a shard's CRLs. Its number is
//     max(previous + 1, thisUpdate in Unix nanoseconds). Entries are the
//     shard's revoked certificates not expired at the previous CRL's
//     thisUpdate (kept until one CRL after expiry), encoded by crlenc.
//  4. Before publication the CRL must parse, verify under the issuer's
//     certificate, pass zlint's CRL lints, carry the intended number, times,
//     entry count and IDP. A CRL that fails is logged and counted, never
//     published.
//  5. store.PublishCRL swaps it in by compare-and-swap on the previous
//     number, so a kill -9 leaves the old CRL or the new one and two racing
//     generators cannot both win; the loser re-reads and moves on. The
//     audit log's "crl.published" entry is written in the swap's own
//     transaction, so no CRL is out without it even if the database goes
//     away right after the commit. Then every crlpub.Publisher (origin,
//     purgers, directory writer) is told.
//
// The root's full CRL lists the certificates the root issued that the store
// knows (normally none: the intermediates are not store rows; a root-issued
// row belongs in shard 0). It has no IDP: a full and complete CRL needs
// none (RFC 5280 §5.2.5), crlenc's IDP is the subscriber-only form, and the
// intermediates' CRL distribution point then matches it by RFC 5280
// §6.3.3(b)(2).
//
// Who may import it: cmd/ (wiring). It imports issuer/pki for the URL
// helpers, never the CA core in issuer/.
package crlgen
