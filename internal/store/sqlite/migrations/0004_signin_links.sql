-- 0004: web portal sign-in links.
--
-- Keyed by the SHA-256 of the mailed token; the token is never stored.
-- Lookups are by token_hash; a new link finds the account's newest and
-- trims its oldest by created_at; the flood bound counts and the sweep
-- deletes by expires_at.

CREATE TABLE signin_links (
	token_hash BLOB PRIMARY KEY,
	account_id TEXT NOT NULL REFERENCES accounts (id),
	created_at INTEGER NOT NULL,
	expires_at INTEGER NOT NULL -- good once, until then
) STRICT, WITHOUT ROWID;
CREATE INDEX signin_links_account ON signin_links (account_id, created_at);
CREATE INDEX signin_links_expiry ON signin_links (expires_at);
