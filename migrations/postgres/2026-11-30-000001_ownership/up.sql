-- Ownership (PostgreSQL). Keep in step with migrations/sqlite.

-- Open claims: an organization proving DNS control of a domain another one owns. One
-- open claim per domain and claimant; gone with the domain, and all of a domain's
-- claims are removed when one of them transfers it.
CREATE TABLE domain_claims (
    id              BIGSERIAL PRIMARY KEY,
    domain_id       BIGINT NOT NULL REFERENCES domains (id) ON DELETE CASCADE,
    organization_id TEXT NOT NULL REFERENCES organizations (id),
    token           TEXT NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL,
    expires_at      TIMESTAMPTZ NOT NULL,
    UNIQUE (domain_id, organization_id)
);

-- The creation rate limit reads an organization's latest domain.created events.
CREATE INDEX events_domain_created ON events (organization_id, id) WHERE type = 'domain.created';
