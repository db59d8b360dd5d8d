// Package follow is how a long-running part of the plant follows the
// store's status-change event log: under a named lease that one process
// holds at a time, in pages, from a cursor that outlives the process.
//
// The CRL generator (crlgen) and the OCSP pre-signer (issuer/presign) both
// work this way; they keep only the work an event asks for, as a Consumer
// with one method. What this package holds:
//
//   - Read: apply the events after a sequence number, up to a bound, page by
//     page, to a Consumer.
//   - Follower: Read from a Cursor and move the cursor after each page, so a
//     page is applied at least once and a restart resumes where the last
//     page ended.
//   - Lease: take, renew and give back a store lease (store.Store's
//     AcquireLease/ReleaseLease), remembering whether it is held.
//   - Lead: the run loop of a single leader: renew a Lease in the
//     background, run a round every poll while it is held, and cancel the
//     round under way when it is lost.
//
// The event log is a strictly increasing sequence (DESIGN.md, "Storage");
// a consumer must tolerate seeing a page again after a crash, since the
// cursor moves only after the page was applied.
//
// It imports internal/store (for store.Event) and the standard library; any
// package that reads the store may import it.
package follow
