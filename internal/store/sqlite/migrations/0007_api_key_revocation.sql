-- 0007: API keys can be revoked (rotation, a leaked key). revoked_at is
-- microseconds since the epoch, 0 while the key is active.

ALTER TABLE api_keys ADD COLUMN revoked_at INTEGER NOT NULL DEFAULT 0;
