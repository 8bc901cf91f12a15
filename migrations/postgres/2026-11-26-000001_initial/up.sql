-- Initial schema (PostgreSQL). Keep in step with migrations/sqlite.
CREATE TABLE organizations (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE api_tokens (
    id                BIGSERIAL PRIMARY KEY,
    organization_id   TEXT NOT NULL REFERENCES organizations (id),
    access_token_hash BYTEA NOT NULL UNIQUE,
    secret_hash       BYTEA NOT NULL,
    created_at        TIMESTAMPTZ NOT NULL,
    revoked_at        TIMESTAMPTZ
);

CREATE TABLE domains (
    id                      BIGSERIAL PRIMARY KEY,
    organization_id         TEXT NOT NULL REFERENCES organizations (id),
    name                    TEXT NOT NULL UNIQUE,
    dkim_selector           TEXT NOT NULL,
    dkim_public_key         TEXT NOT NULL,
    dkim_private_key_sealed BYTEA NOT NULL,
    inbound_enabled         BOOLEAN NOT NULL DEFAULT FALSE,
    created_at              TIMESTAMPTZ NOT NULL,
    updated_at              TIMESTAMPTZ NOT NULL
);
CREATE INDEX domains_organization_id ON domains (organization_id);

CREATE TABLE senders (
    id              BIGSERIAL PRIMARY KEY,
    organization_id TEXT NOT NULL REFERENCES organizations (id),
    domain_id       BIGINT NOT NULL REFERENCES domains (id),
    email           TEXT NOT NULL UNIQUE,
    reply_to        TEXT,
    active          BOOLEAN NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL
);
CREATE INDEX senders_domain_id ON senders (domain_id);
-- At most one active sender per organization.
CREATE UNIQUE INDEX senders_one_active_per_org ON senders (organization_id) WHERE active;
