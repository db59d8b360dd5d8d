-- 0017: the findings of the plant's self-watch (`trustline watch`).
--
-- One row per disagreement between what a relying party received (an
-- OCSP response, a CRL, from the CDN, a responder or an origin) and the
-- CA's records, with its evidence: the HTTP status, the response headers
-- (JSON) and the bytes fetched. at is when it was fetched; serial is ''
-- for a finding about a whole CRL. id is assigned under the adapter's
-- watch lock, so id order is commit order and readers page by it without
-- skipping a late commit. Rows fetched before the retention period are
-- deleted by at; the index serves that and the listing's since filter.

CREATE TABLE watch_findings (
	id          BIGSERIAL PRIMARY KEY,
	at          TIMESTAMPTZ NOT NULL,
	watcher     TEXT NOT NULL,
	object      TEXT NOT NULL, -- "ocsp" or "crl"
	kind        TEXT NOT NULL,
	url         TEXT NOT NULL,
	serial      TEXT COLLATE "C" NOT NULL,
	issuer_id   TEXT COLLATE "C" NOT NULL,
	detail      TEXT NOT NULL,
	http_status INTEGER NOT NULL,
	header      BYTEA,
	body        BYTEA
);
CREATE INDEX watch_findings_at ON watch_findings (at, id);
