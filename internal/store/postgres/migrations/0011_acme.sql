-- 0011: the ACME server's objects (RFC 8555 §7.1): accounts, external
-- account binding keys, orders and authorizations.
--
-- An ACME account acts for a Trustline account; its key's thumbprint is
-- unique whatever its status (the UNIQUE index is the lookup by key). An
-- external account binding key binds one ACME account: used_at is NULL
-- while unused, and the adapter sets it in the transaction that creates
-- the account. An order's names and authorization ids are JSON arrays of
-- strings, in the same order; its authorizations may be shared with other
-- orders of the same ACME account. Empty strings stand for "none" (an
-- ACME account made without a binding key, an order not finalized, an
-- authorization whose challenge was not answered).

CREATE TABLE acme_eab_keys (
	id         TEXT PRIMARY KEY,
	account_id TEXT NOT NULL REFERENCES accounts (id),
	created_by TEXT NOT NULL,
	created_at TIMESTAMPTZ NOT NULL,
	expires_at TIMESTAMPTZ NOT NULL,
	used_at    TIMESTAMPTZ
);

CREATE TABLE acme_accounts (
	id         TEXT PRIMARY KEY,
	account_id TEXT NOT NULL REFERENCES accounts (id),
	thumbprint TEXT NOT NULL UNIQUE, -- RFC 7638, base64url
	jwk        BYTEA,
	status     TEXT NOT NULL,
	contact    TEXT NOT NULL,        -- JSON array of strings
	eab_key_id TEXT NOT NULL,        -- '' for none
	created_at TIMESTAMPTZ NOT NULL,
	version    INTEGER NOT NULL
);

CREATE TABLE acme_orders (
	id              TEXT PRIMARY KEY,
	acme_account_id TEXT NOT NULL REFERENCES acme_accounts (id),
	names           TEXT NOT NULL, -- JSON array of strings
	authz_ids       TEXT NOT NULL, -- JSON array of strings, one per name
	status          TEXT NOT NULL,
	profile         TEXT NOT NULL,
	replaces        TEXT NOT NULL, -- ARI certificate identifier, '' for none
	order_id        TEXT NOT NULL, -- the Trustline order, '' before finalization
	error           BYTEA,         -- problem document (JSON)
	expires_at      TIMESTAMPTZ NOT NULL,
	created_at      TIMESTAMPTZ NOT NULL,
	version         INTEGER NOT NULL
);
-- An account's orders, newest first.
CREATE INDEX acme_orders_account_created ON acme_orders (acme_account_id, created_at, id);

CREATE TABLE acme_authorizations (
	id              TEXT PRIMARY KEY,
	acme_account_id TEXT NOT NULL REFERENCES acme_accounts (id),
	domain          TEXT NOT NULL,
	wildcard        BOOLEAN NOT NULL,
	token           TEXT NOT NULL,
	status          TEXT NOT NULL,
	challenge       TEXT NOT NULL,
	validation_id   TEXT NOT NULL,
	expires_at      TIMESTAMPTZ NOT NULL,
	created_at      TIMESTAMPTZ NOT NULL,
	version         INTEGER NOT NULL
);
