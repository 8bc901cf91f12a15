-- Stored Idempotency-Key answers per organization, in bytes (PostgreSQL). Keep in
-- step with migrations/sqlite.

-- The bytes of every kept answer body of an organization, kept exact by a trigger
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

CREATE FUNCTION idempotency_usage_count() RETURNS trigger AS $$
DECLARE
    org TEXT;
    delta BIGINT;
BEGIN
    IF TG_OP = 'DELETE' THEN
        org := OLD.organization_id;
        delta := -coalesce(length(OLD.body), 0);
    ELSIF TG_OP = 'INSERT' THEN
        org := NEW.organization_id;
        delta := coalesce(length(NEW.body), 0);
    ELSE
        org := NEW.organization_id;
        delta := coalesce(length(NEW.body), 0) - coalesce(length(OLD.body), 0);
    END IF;
    IF delta <> 0 THEN
        INSERT INTO idempotency_usage AS u (organization_id, bytes) VALUES (org, delta)
        ON CONFLICT (organization_id) DO UPDATE SET bytes = u.bytes + EXCLUDED.bytes;
    END IF;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER idempotency_usage_count
AFTER INSERT OR DELETE OR UPDATE OF body ON idempotency_keys
FOR EACH ROW EXECUTE FUNCTION idempotency_usage_count();
