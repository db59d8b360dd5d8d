-- 0010: several accounts may share an email address (sign-up must not
-- reveal whether one exists), and an account's address is confirmed
-- before Trustline mails it anything else. SQLite cannot drop a column's
-- UNIQUE, so the table is rebuilt (migrations run with foreign keys off,
-- and checked before they commit).

CREATE TABLE accounts_new (
	id                TEXT PRIMARY KEY,
	email             TEXT NOT NULL,
	role              TEXT NOT NULL,
	created_at        INTEGER NOT NULL,
	created_by        TEXT NOT NULL DEFAULT '',
	person            TEXT NOT NULL DEFAULT '',
	email_verified_at INTEGER NOT NULL DEFAULT -62135596800000000
) STRICT;
-- Accounts made before confirmation existed keep receiving mail.
INSERT INTO accounts_new (id, email, role, created_at, created_by, person, email_verified_at)
	SELECT id, email, role, created_at, created_by, person, created_at FROM accounts;
DROP TABLE accounts;
ALTER TABLE accounts_new RENAME TO accounts;
CREATE INDEX accounts_email ON accounts (email);
