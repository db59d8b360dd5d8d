-- 0016: precertificates (RFC 6962 Certificate Transparency).
--
-- A certificate is first stored as its precertificate (same serial), so
-- that OCSP and CRLs cover the serial at once; precertificate is true while
-- der holds it, false once the final certificate replaced it, and false for
-- every certificate stored before this version. precertificates keeps, per
-- completed certificate, the precertificate that was replaced, with the
-- SignedCertificateTimestampList (RFC 6962 §3.3, TLS encoding) embedded in
-- the final certificate; created_at is when it was replaced. A certificate
-- never completed has no row here: its certificates row holds the
-- precertificate.

ALTER TABLE certificates ADD COLUMN precertificate BOOLEAN NOT NULL DEFAULT false;

CREATE TABLE precertificates (
	serial     TEXT COLLATE "C" PRIMARY KEY REFERENCES certificates (serial),
	der        BYTEA,
	sct_list   BYTEA,
	created_at TIMESTAMPTZ NOT NULL
);
