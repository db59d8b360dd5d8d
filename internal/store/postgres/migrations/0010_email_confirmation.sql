-- 0010: several accounts may share an email address (sign-up must not
-- reveal whether one exists), and an account's address is confirmed
-- before Trustline mails it anything else.

ALTER TABLE accounts DROP CONSTRAINT accounts_email_key;
CREATE INDEX accounts_email ON accounts (email);
ALTER TABLE accounts ADD COLUMN email_verified_at TIMESTAMPTZ;
-- Accounts made before confirmation existed keep receiving mail.
UPDATE accounts SET email_verified_at = created_at;
