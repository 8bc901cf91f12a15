-- The domain lifecycle (PostgreSQL). Keep in step with migrations/sqlite.

-- DKIM keys as rows: a domain keeps its active key and, during a rotation, a pending
-- one, then the retiring and revoked keys until they are safe to forget.
CREATE TABLE dkim_keys (
    id                 BIGSERIAL PRIMARY KEY,
    domain_id          BIGINT NOT NULL REFERENCES domains (id) ON DELETE CASCADE,
    selector           TEXT NOT NULL,
    state              TEXT NOT NULL
        CHECK (state IN ('active', 'pending', 'retiring', 'revoked')),
    public_key         TEXT NOT NULL,
    -- NULL once destroyed: only a revoked key may have lost it.
    private_key_sealed BYTEA CHECK (private_key_sealed IS NOT NULL OR state = 'revoked'),
    created_at         TIMESTAMPTZ NOT NULL,
    activated_at       TIMESTAMPTZ,
    retired_at         TIMESTAMPTZ,
    revoked_at         TIMESTAMPTZ,
    UNIQUE (domain_id, selector)
);
-- One active key per domain, and at most one pending: concurrent rotations (on any
-- instance) leave exactly one pending key, the others trip this index.
CREATE UNIQUE INDEX dkim_keys_one_active_per_domain ON dkim_keys (domain_id) WHERE state = 'active';
CREATE UNIQUE INDEX dkim_keys_one_pending_per_domain ON dkim_keys (domain_id) WHERE state = 'pending';

-- Every existing domain's key becomes its active key, sealed bytes untouched.
INSERT INTO dkim_keys (domain_id, selector, state, public_key, private_key_sealed, created_at, activated_at)
SELECT id, dkim_selector, 'active', dkim_public_key, dkim_private_key_sealed, created_at, created_at
FROM domains;

ALTER TABLE domains
    DROP COLUMN dkim_selector,
    DROP COLUMN dkim_public_key,
    DROP COLUMN dkim_private_key_sealed,
    ADD COLUMN status TEXT NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'verified', 'failing')),
    ADD COLUMN verified_at TIMESTAMPTZ,
    ADD COLUMN last_checked_at TIMESTAMPTZ,
    ADD COLUMN next_check_at TIMESTAMPTZ,
    -- Held by the instance checking the domain now (the background verifier).
    ADD COLUMN check_lease_until TIMESTAMPTZ,
    ADD COLUMN failed_checks INTEGER NOT NULL DEFAULT 0;

-- What happened, per organization, in order: written in the same transaction as the
-- change (the outbox webhooks read). `domain` is the A-label; no foreign key, so the
-- events of a deleted domain stay.
CREATE TABLE events (
    id              BIGSERIAL PRIMARY KEY,
    organization_id TEXT NOT NULL REFERENCES organizations (id),
    type            TEXT NOT NULL,
    domain          TEXT,
    selector        TEXT,
    email           TEXT,
    created_at      TIMESTAMPTZ NOT NULL
);
CREATE INDEX events_organization_id ON events (organization_id, id);
