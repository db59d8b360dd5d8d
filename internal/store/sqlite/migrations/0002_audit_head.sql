-- 0002: the audit log's anchored head.
--
-- One row: the seq and hash of the newest audit entry, written in the same
-- transaction as every append, so that deleting the newest entries leaves
-- the log shorter than its anchor (store.VerifyAudit reports it). Appends
-- chain from the anchor, so such a gap stays visible after them.
-- An existing log is anchored at its newest entry as it stands now.

CREATE TABLE audit_head (
	id   INTEGER PRIMARY KEY CHECK (id = 1),
	seq  INTEGER NOT NULL,
	hash BLOB NOT NULL
) STRICT;

INSERT INTO audit_head (id, seq, hash)
	SELECT 1, seq, hash FROM audit ORDER BY seq DESC LIMIT 1;
