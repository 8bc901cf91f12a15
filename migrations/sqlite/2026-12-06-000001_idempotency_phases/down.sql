CREATE TABLE idempotency_keys_answered (
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
INSERT INTO idempotency_keys_answered
SELECT organization_id, key, fingerprint, status, content_type, body, created_at, expires_at
FROM idempotency_keys WHERE status IS NOT NULL;
DROP TABLE idempotency_keys;
ALTER TABLE idempotency_keys_answered RENAME TO idempotency_keys;
CREATE INDEX idempotency_keys_expires_at ON idempotency_keys (expires_at);
