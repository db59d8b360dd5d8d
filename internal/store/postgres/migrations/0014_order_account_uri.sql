-- 0014: the URI that names the ordering account in CAA accounturi
-- parameters (RFC 8657), kept with the order so that the check before a
-- late signing uses the same one: an ACME order's is its ACME account's
-- URL. '': the account's API URI.
ALTER TABLE orders ADD COLUMN account_uri TEXT NOT NULL DEFAULT '';
