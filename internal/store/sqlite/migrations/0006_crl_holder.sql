-- 0006: who published each stored CRL (a CRL generator's holder name), so
-- that a generator whose swap outcome was unknown can tell its own CRL from
-- another generator's of the same bytes. Empty for CRLs stored before.

ALTER TABLE crls ADD COLUMN holder TEXT NOT NULL DEFAULT '';
