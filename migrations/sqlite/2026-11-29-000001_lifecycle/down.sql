-- Back to one key per domain: the active one. Pending, retiring and revoked keys and
-- the events are lost.
DROP TABLE events;

ALTER TABLE domains DROP COLUMN failed_checks;
ALTER TABLE domains DROP COLUMN check_lease_until;
ALTER TABLE domains DROP COLUMN next_check_at;
ALTER TABLE domains DROP COLUMN last_checked_at;
ALTER TABLE domains DROP COLUMN verified_at;
ALTER TABLE domains DROP COLUMN status;
-- SQLite cannot add NOT NULL later: the defaults are overwritten just below.
ALTER TABLE domains ADD COLUMN dkim_selector TEXT NOT NULL DEFAULT '';
ALTER TABLE domains ADD COLUMN dkim_public_key TEXT NOT NULL DEFAULT '';
ALTER TABLE domains ADD COLUMN dkim_private_key_sealed BLOB NOT NULL DEFAULT x'';

UPDATE domains
SET dkim_selector = k.selector,
    dkim_public_key = k.public_key,
    dkim_private_key_sealed = k.private_key_sealed
FROM dkim_keys k
WHERE k.domain_id = domains.id AND k.state = 'active';

DROP TABLE dkim_keys;
