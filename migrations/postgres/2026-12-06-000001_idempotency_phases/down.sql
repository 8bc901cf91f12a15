DELETE FROM idempotency_keys WHERE status IS NULL;
ALTER TABLE idempotency_keys
    DROP CONSTRAINT idempotency_keys_running_or_answered,
    DROP COLUMN lease_until,
    DROP COLUMN holder,
    ALTER COLUMN body SET NOT NULL,
    ALTER COLUMN content_type SET NOT NULL,
    ALTER COLUMN status SET NOT NULL;
