-- 0009: rate limit counters shared by every API instance: hits of one
-- kind by one key (an account, a source address, a domain) in a fixed
-- window. Rows past expires_at are deleted in the background.

CREATE TABLE rate_counters (
	key          TEXT NOT NULL,
	window_start TIMESTAMPTZ NOT NULL,
	count        BIGINT NOT NULL,
	expires_at   TIMESTAMPTZ NOT NULL,
	PRIMARY KEY (key, window_start)
);
CREATE INDEX rate_counters_expiry ON rate_counters (expires_at);
