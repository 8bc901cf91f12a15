-- Initial schema (SQLite). Keep in step with migrations/postgres.
CREATE TABLE organizations (
    id         TEXT PRIMARY KEY NOT NULL,
    name       TEXT NOT NULL,
    created_at TEXT NOT NULL
);

CREATE TABLE api_tokens (
    id                INTEGER PRIMARY KEY NOT NULL,
    organization_id   TEXT NOT NULL REFERENCES organizations (id),
    access_token_hash BLOB NOT NULL UNIQUE,
    secret_hash       BLOB NOT NULL,
    created_at        TEXT NOT NULL,
    revoked_at        TEXT
);

CREATE TABLE domains (
    id                      INTEGER PRIMARY KEY NOT NULL,
    organization_id         TEXT NOT NULL REFERENCES organizations (id),
    name                    TEXT NOT NULL UNIQUE,
    dkim_selector           TEXT NOT NULL,
    dkim_public_key         TEXT NOT NULL,
    dkim_private_key_sealed BLOB NOT NULL,
    inbound_enabled         BOOLEAN NOT NULL DEFAULT 0,
    created_at              TEXT NOT NULL,
    updated_at              TEXT NOT NULL
);
CREATE INDEX domains_organization_id ON domains (organization_id);

CREATE TABLE senders (
    id              INTEGER PRIMARY KEY NOT NULL,
    organization_id TEXT NOT NULL REFERENCES organizations (id),
    domain_id       INTEGER NOT NULL REFERENCES domains (id),
    email           TEXT NOT NULL UNIQUE,
    reply_to        TEXT,
    active          BOOLEAN NOT NULL,
    created_at      TEXT NOT NULL
);
CREATE INDEX senders_domain_id ON senders (domain_id);
-- At most one active sender per organization.
CREATE UNIQUE INDEX senders_one_active_per_org ON senders (organization_id) WHERE active;
