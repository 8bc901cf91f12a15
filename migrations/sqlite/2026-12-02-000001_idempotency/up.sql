-- Idempotency keys (SQLite). Keep in step with migrations/postgres.

-- The first answer to a request made with an Idempotency-Key, written in the same
-- transaction as the change it made: a commit that lands is always replayable, one
-- that does not never is. Scoped to the organization; pruned after `expires_at`.
CREATE TABLE idempotency_keys (
    organization_id TEXT NOT NULL REFERENCES organizations (id),
    key             TEXT NOT NULL,
    fingerprint     BLOB NOT NULL,
    status          INTEGER NOT NULL,
    content_type    TEXT NOT NULL,
    body            BLOB NOT NULL,
    created_at      TEXT NOT NULL,
    expires_at      TEXT NOT NULL,
    PRIMARY KEY (organization_id, key)
);
CREATE INDEX idempotency_keys_expires_at ON idempotency_keys (expires_at);
