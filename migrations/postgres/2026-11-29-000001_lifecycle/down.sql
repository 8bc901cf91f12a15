-- Back to one key per domain: the active one. Pending, retiring and revoked keys and
-- the events are lost.
DROP TABLE events;

ALTER TABLE domains
    DROP COLUMN failed_checks,
    DROP COLUMN check_lease_until,
    DROP COLUMN next_check_at,
    DROP COLUMN last_checked_at,
    DROP COLUMN verified_at,
    DROP COLUMN status,
    ADD COLUMN dkim_selector TEXT,
    ADD COLUMN dkim_public_key TEXT,
    ADD COLUMN dkim_private_key_sealed BYTEA;

UPDATE domains d
SET dkim_selector = k.selector,
    dkim_public_key = k.public_key,
    dkim_private_key_sealed = k.private_key_sealed
FROM dkim_keys k
WHERE k.domain_id = d.id AND k.state = 'active';

DROP TABLE dkim_keys;

ALTER TABLE domains
    ALTER COLUMN dkim_selector SET NOT NULL,
    ALTER COLUMN dkim_public_key SET NOT NULL,
    ALTER COLUMN dkim_private_key_sealed SET NOT NULL;
