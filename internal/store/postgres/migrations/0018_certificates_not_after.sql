-- 0018: certificates by expiry.
--
-- The plant's self-watch lists the certificates whose not_after falls in a
-- window, soonest first and then by serial (ExpiringCertificates), to check
-- that certificates about to expire are still answered for. The index is
-- that order, so the listing reads only the rows it returns instead of
-- scanning the table. It is built inside the migration transaction (the
-- migrations run in one), so not CONCURRENTLY: writes to certificates wait
-- while it is built, for a few seconds per million rows. A large plant may
-- build it beforehand with CREATE INDEX CONCURRENTLY under this name; the
-- migration then finds it (IF NOT EXISTS).

CREATE INDEX IF NOT EXISTS certificates_not_after ON certificates (not_after, serial);
