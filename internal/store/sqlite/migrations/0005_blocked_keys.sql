-- 0005: compromised keys.
--
-- certificate_keys indexes certificates by the SHA-256 of their
-- subjectPublicKeyInfo, so that every certificate of a key reported
-- compromised can be found; it is filled for certificates inserted from
-- this version on (not for bulk-loaded test certificates). blocked_keys are
-- the keys the CA refuses to certify again.

CREATE TABLE certificate_keys (
	key_hash BLOB NOT NULL,
	serial   TEXT NOT NULL REFERENCES certificates (serial),
	PRIMARY KEY (key_hash, serial)
) STRICT, WITHOUT ROWID;

CREATE TABLE blocked_keys (
	key_hash   BLOB PRIMARY KEY,
	serial     TEXT NOT NULL, -- the certificate whose revocation reported it, or ''
	reason     TEXT NOT NULL,
	actor      TEXT NOT NULL,
	blocked_at INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
