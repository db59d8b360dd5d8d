-- 0001: the initial schema.
--
-- Times are INTEGER microseconds since the Unix epoch, UTC (what both
-- adapters keep); the zero time.Time is stored as its own instant
-- (0001-01-01), so "zero" sorts before every real time and needs no NULLs.
-- Serials are canonical lowercase hex TEXT, compared bytewise (BINARY),
-- so serial order is the same here and in PostgreSQL (COLLATE "C").

CREATE TABLE accounts (
	id         TEXT PRIMARY KEY,
	email      TEXT NOT NULL UNIQUE,
	role       TEXT NOT NULL,
	created_at INTEGER NOT NULL
) STRICT;

CREATE TABLE api_keys (
	id         TEXT PRIMARY KEY,
	account_id TEXT NOT NULL REFERENCES accounts (id),
	hash       BLOB,
	created_at INTEGER NOT NULL
) STRICT;
CREATE INDEX api_keys_account ON api_keys (account_id);

CREATE TABLE validations (
	id           TEXT PRIMARY KEY,
	account_id   TEXT NOT NULL REFERENCES accounts (id),
	domain       TEXT NOT NULL,
	method       TEXT NOT NULL,
	contact      TEXT NOT NULL,
	secret       BLOB,
	status       TEXT NOT NULL,
	attempts     INTEGER NOT NULL,
	created_at   INTEGER NOT NULL,
	expires_at   INTEGER NOT NULL,
	validated_at INTEGER NOT NULL,
	valid_until  INTEGER NOT NULL,
	evidence     BLOB,
	version      INTEGER NOT NULL
) STRICT;
CREATE INDEX validations_account ON validations (account_id, status, valid_until);

CREATE TABLE orders (
	id            TEXT PRIMARY KEY,
	account_id    TEXT NOT NULL REFERENCES accounts (id),
	profile       TEXT NOT NULL,
	csr           BLOB,
	names         TEXT NOT NULL, -- JSON array of strings
	organization  BLOB,
	status        TEXT NOT NULL,
	serial        TEXT NOT NULL,
	reject_reason TEXT NOT NULL,
	created_at    INTEGER NOT NULL,
	updated_at    INTEGER NOT NULL,
	version       INTEGER NOT NULL
) STRICT;
CREATE INDEX orders_account_created ON orders (account_id, created_at);
CREATE INDEX orders_status_created ON orders (status, created_at);

CREATE TABLE reviews (
	id          INTEGER PRIMARY KEY AUTOINCREMENT, -- keeps insertion order for ties on at
	order_id    TEXT NOT NULL REFERENCES orders (id),
	reviewer_id TEXT NOT NULL,
	decision    TEXT NOT NULL,
	notes       TEXT NOT NULL,
	evidence    BLOB,
	at          INTEGER NOT NULL
) STRICT;
CREATE INDEX reviews_order ON reviews (order_id, at);

CREATE TABLE review_patterns (
	id         TEXT PRIMARY KEY,
	pattern    TEXT NOT NULL,
	created_by TEXT NOT NULL,
	created_at INTEGER NOT NULL
) STRICT;

CREATE TABLE serials (
	serial      TEXT PRIMARY KEY,
	issuer_id   TEXT NOT NULL,
	reserved_at INTEGER NOT NULL
) STRICT;

CREATE TABLE certificates (
	serial          TEXT PRIMARY KEY,
	issuer_id       TEXT NOT NULL,
	shard           INTEGER NOT NULL,
	account_id      TEXT NOT NULL,
	order_id        TEXT NOT NULL,
	der             BLOB,
	not_before      INTEGER NOT NULL,
	not_after       INTEGER NOT NULL,
	status          INTEGER NOT NULL, -- status.Status: 1 good, 2 revoked
	revoked_at      INTEGER NOT NULL,
	reason          INTEGER NOT NULL, -- reason.Reason (RFC 5280 CRLReason)
	ocsp_refresh_at INTEGER NOT NULL
) STRICT;
-- CRL builds read one shard's revoked entries; full scans (warm start,
-- audits) read the whole shard. Both walk in serial order for paging.
CREATE INDEX certificates_shard ON certificates (issuer_id, shard, serial);
CREATE INDEX certificates_shard_revoked ON certificates (issuer_id, shard, serial) WHERE status = 2;
CREATE INDEX certificates_ocsp_refresh ON certificates (ocsp_refresh_at);

CREATE TABLE events (
	seq       INTEGER PRIMARY KEY AUTOINCREMENT, -- never reused, strictly increasing
	kind      TEXT NOT NULL,
	serial    TEXT NOT NULL,
	issuer_id TEXT NOT NULL,
	shard     INTEGER NOT NULL,
	at        INTEGER NOT NULL
) STRICT;

CREATE TABLE crls (
	issuer_id   TEXT NOT NULL,
	shard       INTEGER NOT NULL, -- -1: the issuer's full CRL
	number      INTEGER NOT NULL,
	this_update INTEGER NOT NULL,
	next_update INTEGER NOT NULL,
	der         BLOB,
	PRIMARY KEY (issuer_id, shard)
) STRICT;

CREATE TABLE leases (
	name   TEXT PRIMARY KEY,
	holder TEXT NOT NULL,
	until  INTEGER NOT NULL
) STRICT;

CREATE TABLE audit (
	seq       INTEGER PRIMARY KEY, -- assigned as previous+1; a fork would collide here
	at        INTEGER NOT NULL,
	kind      TEXT NOT NULL,
	actor     TEXT NOT NULL,
	subject   TEXT NOT NULL,
	payload   BLOB,
	prev_hash BLOB,
	hash      BLOB NOT NULL
) STRICT;

CREATE TABLE meta (
	key   TEXT PRIMARY KEY,
	value BLOB
) STRICT;
