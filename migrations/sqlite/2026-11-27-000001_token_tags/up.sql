-- Self-authenticating access tokens (SQLite). Keep in step with migrations/postgres.
-- The service's own secrets, one row each, written once at first use by whichever
-- instance gets there first (INSERT ... ON CONFLICT DO NOTHING).
CREATE TABLE service_keys (
    name       TEXT PRIMARY KEY NOT NULL,
    secret     BLOB NOT NULL,
    created_at TEXT NOT NULL
);

-- 1: an untagged access token issued before this migration (looked up on every use);
-- 2: dak_ + base64url(32 random bytes || 16-byte HMAC tag), checked before any lookup.
ALTER TABLE api_tokens ADD COLUMN token_format SMALLINT NOT NULL DEFAULT 1;
