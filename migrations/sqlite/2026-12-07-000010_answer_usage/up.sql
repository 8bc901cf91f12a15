-- Stored Idempotency-Key answers per organization, in bytes (SQLite). Keep in step
-- with migrations/postgres.

-- The bytes of every kept answer body of an organization, kept exact by triggers
-- on idempotency_keys, so that bounding them (DOMAIN_API_IDEMPOTENCY_MAX_BYTES_PER_ORG)
-- reads one row instead of summing the organization's answers. A running record
-- (no body yet) counts nothing and touches nothing.
CREATE TABLE idempotency_usage (
    organization_id TEXT PRIMARY KEY REFERENCES organizations (id),
    bytes           BIGINT NOT NULL
);
INSERT INTO idempotency_usage (organization_id, bytes)
SELECT organization_id, sum(length(body))
FROM idempotency_keys
WHERE body IS NOT NULL
GROUP BY organization_id;

CREATE TRIGGER idempotency_usage_insert
AFTER INSERT ON idempotency_keys
WHEN NEW.body IS NOT NULL
BEGIN
    INSERT INTO idempotency_usage (organization_id, bytes)
    VALUES (NEW.organization_id, length(NEW.body))
    ON CONFLICT (organization_id) DO UPDATE SET bytes = bytes + excluded.bytes;
END;

CREATE TRIGGER idempotency_usage_update
AFTER UPDATE OF body ON idempotency_keys
WHEN coalesce(length(NEW.body), 0) <> coalesce(length(OLD.body), 0)
BEGIN
    INSERT INTO idempotency_usage (organization_id, bytes)
    VALUES (NEW.organization_id, coalesce(length(NEW.body), 0) - coalesce(length(OLD.body), 0))
    ON CONFLICT (organization_id) DO UPDATE SET bytes = bytes + excluded.bytes;
END;

CREATE TRIGGER idempotency_usage_delete
AFTER DELETE ON idempotency_keys
WHEN OLD.body IS NOT NULL
BEGIN
    UPDATE idempotency_usage SET bytes = bytes - length(OLD.body)
    WHERE organization_id = OLD.organization_id;
END;
