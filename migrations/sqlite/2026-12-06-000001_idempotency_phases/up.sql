-- Idempotency-Key in phases (SQLite). Keep in step with migrations/postgres.

-- A key is taken first, in a statement of its own, and recorded as running: a
-- holder (random, per take) and a lease, no answer yet. The answer is written over
-- it, checked against the holder, in the transaction of the change. A running
-- record whose lease ran out (its holder crashed) is taken afresh. Answers kept from
-- now on are sealed under the master key; those kept before stay as they were until
-- they expire (or `master-key rotate` seals them). SQLite cannot drop NOT NULL in
-- place: the table is rebuilt with its rows.
CREATE TABLE idempotency_keys_phased (
    organization_id TEXT NOT NULL REFERENCES organizations (id),
    key             TEXT NOT NULL,
    fingerprint     BLOB NOT NULL,
    status          INTEGER,
    content_type    TEXT,
    body            BLOB,
    created_at      TEXT NOT NULL,
    expires_at      TEXT NOT NULL,
    holder          BLOB,
    lease_until     TEXT,
    PRIMARY KEY (organization_id, key),
    CHECK (
        (status IS NULL AND content_type IS NULL AND body IS NULL
            AND holder IS NOT NULL AND lease_until IS NOT NULL)
        OR (status IS NOT NULL AND content_type IS NOT NULL AND body IS NOT NULL
            AND holder IS NULL AND lease_until IS NULL)
    )
);
INSERT INTO idempotency_keys_phased
    (organization_id, key, fingerprint, status, content_type, body, created_at, expires_at)
SELECT organization_id, key, fingerprint, status, content_type, body, created_at, expires_at
FROM idempotency_keys;
DROP TABLE idempotency_keys;
ALTER TABLE idempotency_keys_phased RENAME TO idempotency_keys;
CREATE INDEX idempotency_keys_expires_at ON idempotency_keys (expires_at);
