-- The key generations of an organization by time (sqlite). Keep in step with migrations/postgres.

-- A creation's admission asks for the organization's key generations (new domains,
-- rotations, claims) of the last minute, newest first. Through the index on
-- (organization_id, id) it read every event of the organization and kept those of
-- the three kinds: a cost that grew with the organization's history (3 events a
-- domain). This index holds only those kinds, by time, so the read is a range of
-- the window, newest first. Its predicate is the one the queries write out
-- (store-diesel/src/ownership.rs, KEY_GENERATIONS_SQL).
CREATE INDEX events_key_generations ON events (organization_id, created_at)
    WHERE type IN ('domain.created', 'dkim.rotation_started', 'domain.claimed');
