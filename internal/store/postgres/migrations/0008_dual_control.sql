-- 0008: dual control. created_by is the admin account that created an
-- account ('' for a sign-up or the first accounts of a plant); person
-- names the natural person behind a staff account (set by admins), so
-- that one person's several accounts are known to be one. A role grant
-- makes an account a reviewer or an admin once a second admin approves.

ALTER TABLE accounts ADD COLUMN created_by TEXT NOT NULL DEFAULT '';
ALTER TABLE accounts ADD COLUMN person TEXT NOT NULL DEFAULT '';

CREATE TABLE role_grants (
	id           TEXT PRIMARY KEY,
	account_id   TEXT NOT NULL REFERENCES accounts (id),
	role         TEXT NOT NULL,
	requested_by TEXT NOT NULL,
	requested_at TIMESTAMPTZ NOT NULL,
	status       TEXT NOT NULL,
	decided_by   TEXT NOT NULL DEFAULT '',
	decided_at   TIMESTAMPTZ
);
CREATE INDEX role_grants_status ON role_grants (status, requested_at);
