-- 0009: rate limit counters shared by every API instance: hits of one
-- kind by one key (an account, a source address, a domain) in a fixed
-- window. Rows past expires_at are deleted in the background.

CREATE TABLE rate_counters (
	key          TEXT NOT NULL,
	window_start INTEGER NOT NULL,
	count        INTEGER NOT NULL,
	expires_at   INTEGER NOT NULL,
	PRIMARY KEY (key, window_start)
) STRICT;
CREATE INDEX rate_counters_expiry ON rate_counters (expires_at);
