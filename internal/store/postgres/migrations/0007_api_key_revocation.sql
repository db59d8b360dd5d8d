-- 0007: API keys can be revoked (rotation, a leaked key); NULL while the key
-- is active.

ALTER TABLE api_keys ADD COLUMN revoked_at TIMESTAMPTZ;
