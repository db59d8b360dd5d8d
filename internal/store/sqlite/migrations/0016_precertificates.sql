-- 0016: precertificates (RFC 6962 Certificate Transparency).
--
-- A certificate is first stored as its precertificate (same serial), so
-- that OCSP and CRLs cover the serial at once; precertificate is 1 while
-- der holds it, 0 once the final certificate replaced it, and 0 for every
-- certificate stored before this version. precertificates keeps, per
-- completed certificate, the precertificate that was replaced, with the
-- SignedCertificateTimestampList (RFC 6962 §3.3, TLS encoding) embedded in
-- the final certificate; created_at is when it was replaced. A certificate
-- never completed has no row here: its certificates row holds the
-- precertificate.

ALTER TABLE certificates ADD COLUMN precertificate INTEGER NOT NULL DEFAULT 0 CHECK (precertificate IN (0, 1));

CREATE TABLE precertificates (
	serial     TEXT PRIMARY KEY REFERENCES certificates (serial),
	der        BLOB,
	sct_list   BLOB,
	created_at INTEGER NOT NULL
) STRICT;
