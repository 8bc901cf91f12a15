-- The live-check budget's log (PostgreSQL). Keep in step with migrations/sqlite.

-- One row per live DNS check admitted (validate, verify, claim verify, inbound on,
-- webhook creation), so that DOMAIN_API_LIVE_CHECKS_PER_MINUTE holds per
-- organization across every instance. An admission prunes its organization's rows
-- older than the window, so an organization keeps at most its budget of rows. No
-- foreign key: a dashboard JWT may name an organization the database has no row for.
CREATE TABLE live_checks (
    id              BIGSERIAL PRIMARY KEY,
    organization_id TEXT NOT NULL,
    checked_at      TIMESTAMPTZ NOT NULL
);
CREATE INDEX live_checks_organization ON live_checks (organization_id, checked_at);
