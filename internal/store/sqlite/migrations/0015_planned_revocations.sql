-- 0015: finalization claims and planned revocations.
--
-- An ACME order's finalized_at is when a finalization claimed it, the
-- zero instant before (orders finalized before this version keep it).
-- planned_revocations are certificates the CA has decided to revoke by a
-- deadline (revoke_by), one row per serial; until then the certificate
-- stays good, and ACME renewal information moves its window before the
-- deadline. reason is the reason.Reason the revocation is expected to
-- carry; explanation_url '' for none. The index is the listing order,
-- earliest deadline first.

ALTER TABLE acme_orders ADD COLUMN finalized_at INTEGER NOT NULL DEFAULT -62135596800000000;

CREATE TABLE planned_revocations (
	serial          TEXT PRIMARY KEY REFERENCES certificates (serial),
	revoke_by       INTEGER NOT NULL,
	reason          INTEGER NOT NULL, -- reason.Reason (RFC 5280 CRLReason)
	explanation_url TEXT NOT NULL DEFAULT '',
	created_by      TEXT NOT NULL,
	created_at      INTEGER NOT NULL
) STRICT;
CREATE INDEX planned_revocations_revoke_by ON planned_revocations (revoke_by, serial);
