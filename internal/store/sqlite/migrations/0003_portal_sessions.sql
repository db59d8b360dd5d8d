-- 0003: web portal sessions.
--
-- Keyed by the SHA-256 of the session token; the token (the cookie's
-- value) is never stored. idle_expires_at <= expires_at always (the
-- adapter caps it). Lookups are by token_hash; sign-in trims an account's
-- sessions by last_used; the sweep deletes by idle_expires_at.

CREATE TABLE portal_sessions (
	token_hash      BLOB PRIMARY KEY,
	account_id      TEXT NOT NULL REFERENCES accounts (id),
	created_at      INTEGER NOT NULL,
	last_used       INTEGER NOT NULL,
	expires_at      INTEGER NOT NULL, -- absolute end, fixed at sign-in
	idle_expires_at INTEGER NOT NULL, -- moved forward by touches
	notice          TEXT NOT NULL     -- for the next page; '' for none
) STRICT, WITHOUT ROWID;
CREATE INDEX portal_sessions_account ON portal_sessions (account_id, last_used);
CREATE INDEX portal_sessions_idle_expiry ON portal_sessions (idle_expires_at);
