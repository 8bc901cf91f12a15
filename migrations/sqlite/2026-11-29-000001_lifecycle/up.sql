-- The domain lifecycle (SQLite). Keep in step with migrations/postgres.

-- DKIM keys as rows: a domain keeps its active key and, during a rotation, a pending
-- one, then the retiring and revoked keys until they are safe to forget.
CREATE TABLE dkim_keys (
    id                 INTEGER PRIMARY KEY NOT NULL,
    domain_id          INTEGER NOT NULL REFERENCES domains (id) ON DELETE CASCADE,
    selector           TEXT NOT NULL,
    state              TEXT NOT NULL
        CHECK (state IN ('active', 'pending', 'retiring', 'revoked')),
    public_key         TEXT NOT NULL,
    -- NULL once destroyed: only a revoked key may have lost it.
    private_key_sealed BLOB CHECK (private_key_sealed IS NOT NULL OR state = 'revoked'),
    created_at         TEXT NOT NULL,
    activated_at       TEXT,
    retired_at         TEXT,
    revoked_at         TEXT,
    UNIQUE (domain_id, selector)
);
-- One active key per domain, and at most one pending: concurrent rotations leave
-- exactly one pending key, the others trip this index.
CREATE UNIQUE INDEX dkim_keys_one_active_per_domain ON dkim_keys (domain_id) WHERE state = 'active';
CREATE UNIQUE INDEX dkim_keys_one_pending_per_domain ON dkim_keys (domain_id) WHERE state = 'pending';

-- Every existing domain's key becomes its active key, sealed bytes untouched.
INSERT INTO dkim_keys (domain_id, selector, state, public_key, private_key_sealed, created_at, activated_at)
SELECT id, dkim_selector, 'active', dkim_public_key, dkim_private_key_sealed, created_at, created_at
FROM domains;

ALTER TABLE domains DROP COLUMN dkim_selector;
ALTER TABLE domains DROP COLUMN dkim_public_key;
ALTER TABLE domains DROP COLUMN dkim_private_key_sealed;
ALTER TABLE domains ADD COLUMN status TEXT NOT NULL DEFAULT 'pending'
    CHECK (status IN ('pending', 'verified', 'failing'));
ALTER TABLE domains ADD COLUMN verified_at TEXT;
ALTER TABLE domains ADD COLUMN last_checked_at TEXT;
ALTER TABLE domains ADD COLUMN next_check_at TEXT;
-- Held by the instance checking the domain now (the background verifier).
ALTER TABLE domains ADD COLUMN check_lease_until TEXT;
ALTER TABLE domains ADD COLUMN failed_checks INTEGER NOT NULL DEFAULT 0;

-- What happened, per organization, in order: written in the same transaction as the
-- change (the outbox webhooks read). `domain` is the A-label; no foreign key, so the
-- events of a deleted domain stay. AUTOINCREMENT: an id is never reused.
CREATE TABLE events (
    id              INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    organization_id TEXT NOT NULL REFERENCES organizations (id),
    type            TEXT NOT NULL,
    domain          TEXT,
    selector        TEXT,
    email           TEXT,
    created_at      TEXT NOT NULL
);
CREATE INDEX events_organization_id ON events (organization_id, id);
