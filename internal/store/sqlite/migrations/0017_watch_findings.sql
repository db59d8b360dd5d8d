-- 0017: the findings of the plant's self-watch (`trustline watch`).
--
-- One row per disagreement between what a relying party received (an
-- OCSP response, a CRL, from the CDN, a responder or an origin) and the
-- CA's records, with its evidence: the HTTP status, the response headers
-- (JSON) and the bytes fetched. at is when it was fetched; serial is ''
-- for a finding about a whole CRL. id is assigned in insertion order and
-- never reused (AUTOINCREMENT), so readers page by it. Rows fetched before
-- the retention period are deleted by at; the index serves that and the
-- listing's since filter.

CREATE TABLE watch_findings (
	id          INTEGER PRIMARY KEY AUTOINCREMENT,
	at          INTEGER NOT NULL,
	watcher     TEXT NOT NULL,
	object      TEXT NOT NULL, -- "ocsp" or "crl"
	kind        TEXT NOT NULL,
	url         TEXT NOT NULL,
	serial      TEXT NOT NULL,
	issuer_id   TEXT NOT NULL,
	detail      TEXT NOT NULL,
	http_status INTEGER NOT NULL,
	header      BLOB,
	body        BLOB
) STRICT;
CREATE INDEX watch_findings_at ON watch_findings (at, id);
