-- 0001: the initial schema.
--
-- Times are TIMESTAMPTZ (microsecond precision, UTC on the way out); the
-- zero time.Time is stored as its own instant (0001-01-01 UTC), so "zero"
-- sorts before every real time and needs no NULLs. Serials and issuer ids
-- are COLLATE "C": bytewise order, the same as SQLite's, and cheaper.

CREATE TABLE accounts (
	id         TEXT PRIMARY KEY,
	email      TEXT NOT NULL UNIQUE,
	role       TEXT NOT NULL,
	created_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE api_keys (
	id         TEXT PRIMARY KEY,
	account_id TEXT NOT NULL REFERENCES accounts (id),
	hash       BYTEA,
	created_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX api_keys_account ON api_keys (account_id);

CREATE TABLE validations (
	id           TEXT PRIMARY KEY,
	account_id   TEXT NOT NULL REFERENCES accounts (id),
	domain       TEXT NOT NULL,
	method       TEXT NOT NULL,
	contact      TEXT NOT NULL,
	secret       BYTEA,
	status       TEXT NOT NULL,
	attempts     INTEGER NOT NULL,
	created_at   TIMESTAMPTZ NOT NULL,
	expires_at   TIMESTAMPTZ NOT NULL,
	validated_at TIMESTAMPTZ NOT NULL,
	valid_until  TIMESTAMPTZ NOT NULL,
	evidence     BYTEA,
	version      INTEGER NOT NULL
);
CREATE INDEX validations_account ON validations (account_id, status, valid_until);

CREATE TABLE orders (
	id            TEXT PRIMARY KEY,
	account_id    TEXT NOT NULL REFERENCES accounts (id),
	profile       TEXT NOT NULL,
	csr           BYTEA,
	names         TEXT NOT NULL, -- JSON array of strings
	organization  BYTEA,
	status        TEXT NOT NULL,
	serial        TEXT COLLATE "C" NOT NULL,
	reject_reason TEXT NOT NULL,
	created_at    TIMESTAMPTZ NOT NULL,
	updated_at    TIMESTAMPTZ NOT NULL,
	version       INTEGER NOT NULL
);
CREATE INDEX orders_account_created ON orders (account_id, created_at);
CREATE INDEX orders_status_created ON orders (status, created_at);

CREATE TABLE reviews (
	id          BIGSERIAL PRIMARY KEY, -- keeps insertion order for ties on at
	order_id    TEXT NOT NULL REFERENCES orders (id),
	reviewer_id TEXT NOT NULL,
	decision    TEXT NOT NULL,
	notes       TEXT NOT NULL,
	evidence    BYTEA,
	at          TIMESTAMPTZ NOT NULL
);
CREATE INDEX reviews_order ON reviews (order_id, at);

CREATE TABLE review_patterns (
	id         TEXT PRIMARY KEY,
	pattern    TEXT NOT NULL,
	created_by TEXT NOT NULL,
	created_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE serials (
	serial      TEXT COLLATE "C" PRIMARY KEY,
	issuer_id   TEXT COLLATE "C" NOT NULL,
	reserved_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE certificates (
	serial          TEXT COLLATE "C" PRIMARY KEY,
	issuer_id       TEXT COLLATE "C" NOT NULL,
	shard           INTEGER NOT NULL,
	account_id      TEXT NOT NULL,
	order_id        TEXT NOT NULL,
	der             BYTEA,
	not_before      TIMESTAMPTZ NOT NULL,
	not_after       TIMESTAMPTZ NOT NULL,
	status          SMALLINT NOT NULL, -- status.Status: 1 good, 2 revoked
	revoked_at      TIMESTAMPTZ NOT NULL,
	reason          SMALLINT NOT NULL, -- reason.Reason (RFC 5280 CRLReason)
	ocsp_refresh_at TIMESTAMPTZ NOT NULL
);
-- CRL builds read one shard's revoked entries; full scans (warm start,
-- audits) read the whole shard. Both walk in serial order for paging.
CREATE INDEX certificates_shard ON certificates (issuer_id, shard, serial);
CREATE INDEX certificates_shard_revoked ON certificates (issuer_id, shard, serial) WHERE status = 2;
CREATE INDEX certificates_ocsp_refresh ON certificates (ocsp_refresh_at);

CREATE TABLE events (
	-- Assigned under the log lock (see the adapter), so Seq order is
	-- commit order and a consumer paging by Seq never skips a late commit.
	seq       BIGSERIAL PRIMARY KEY,
	kind      TEXT NOT NULL,
	serial    TEXT COLLATE "C" NOT NULL,
	issuer_id TEXT COLLATE "C" NOT NULL,
	shard     INTEGER NOT NULL,
	at        TIMESTAMPTZ NOT NULL
);

CREATE TABLE crls (
	issuer_id   TEXT COLLATE "C" NOT NULL,
	shard       INTEGER NOT NULL, -- -1: the issuer's full CRL
	number      BIGINT NOT NULL,
	this_update TIMESTAMPTZ NOT NULL,
	next_update TIMESTAMPTZ NOT NULL,
	der         BYTEA,
	PRIMARY KEY (issuer_id, shard)
);

CREATE TABLE leases (
	name   TEXT PRIMARY KEY,
	holder TEXT NOT NULL,
	until  TIMESTAMPTZ NOT NULL
);

CREATE TABLE audit (
	seq       BIGINT PRIMARY KEY, -- assigned as previous+1; a fork would collide here
	at        TIMESTAMPTZ NOT NULL,
	kind      TEXT NOT NULL,
	actor     TEXT NOT NULL,
	subject   TEXT NOT NULL,
	payload   BYTEA,
	prev_hash BYTEA,
	hash      BYTEA NOT NULL
);

CREATE TABLE meta (
	key   TEXT PRIMARY KEY,
	value BYTEA
);
