-- Idempotency-Key in phases (PostgreSQL). Keep in step with migrations/sqlite.

-- A key is taken first, in a statement of its own, and recorded as running: a
-- holder (random, per take) and a lease, no answer yet. The answer is written over
-- it, checked against the holder, in the transaction of the change. A running
-- record whose lease ran out (its holder crashed) is taken afresh. Answers kept from
-- now on are sealed under the master key; those kept before stay as they were until
-- they expire (or `master-key rotate` seals them).
ALTER TABLE idempotency_keys
    ALTER COLUMN status DROP NOT NULL,
    ALTER COLUMN content_type DROP NOT NULL,
    ALTER COLUMN body DROP NOT NULL,
    ADD COLUMN holder BYTEA,
    ADD COLUMN lease_until TIMESTAMPTZ,
    ADD CONSTRAINT idempotency_keys_running_or_answered CHECK (
        (status IS NULL AND content_type IS NULL AND body IS NULL
            AND holder IS NOT NULL AND lease_until IS NOT NULL)
        OR (status IS NOT NULL AND content_type IS NOT NULL AND body IS NOT NULL
            AND holder IS NULL AND lease_until IS NULL)
    );
