-- Webhooks (SQLite). Keep in step with migrations/postgres.

-- An organization's endpoints. `events` is NULL for every type, else the chosen
-- types as `,a,b,` (matched with LIKE); the signing secret is sealed under the master
-- key, bound to the endpoint's id.
CREATE TABLE webhook_endpoints (
    id              TEXT PRIMARY KEY NOT NULL,
    organization_id TEXT NOT NULL REFERENCES organizations (id),
    url             TEXT NOT NULL,
    events          TEXT,
    secret_sealed   BLOB NOT NULL,
    created_at      TEXT NOT NULL
);
CREATE INDEX webhook_endpoints_organization_id ON webhook_endpoints (organization_id, created_at);

-- One delivery per event and endpoint, written in the transaction that records the
-- event (the outbox's fan-out): a committed event always has its deliveries. Pending
-- ones are due at `next_attempt_at`; `lease_until` is held by the instance sending it.
CREATE TABLE webhook_deliveries (
    id              INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    endpoint_id     TEXT NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    -- The endpoint's owner, so a sender can skip the organizations it has enough of
    -- in flight without a join.
    organization_id TEXT NOT NULL,
    event_id        INTEGER NOT NULL REFERENCES events (id) ON DELETE CASCADE,
    state           TEXT NOT NULL CHECK (state IN ('pending', 'delivered', 'failed')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT,
    lease_until     TEXT,
    created_at      TEXT NOT NULL,
    completed_at    TEXT,
    UNIQUE (endpoint_id, event_id)
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE state = 'pending';
-- Finished deliveries past their retention are pruned by the senders.
CREATE INDEX webhook_deliveries_finished ON webhook_deliveries (completed_at) WHERE state <> 'pending';
-- The outbox's oldest pending delivery (a metric).
CREATE INDEX webhook_deliveries_pending_age ON webhook_deliveries (created_at) WHERE state = 'pending';

-- Every attempt of a delivery: the status code, or a short reason when none came.
CREATE TABLE webhook_attempts (
    id           INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    delivery_id  INTEGER NOT NULL REFERENCES webhook_deliveries (id) ON DELETE CASCADE,
    attempted_at TEXT NOT NULL,
    status_code  INTEGER,
    error        TEXT,
    duration_ms  INTEGER NOT NULL
);
CREATE INDEX webhook_attempts_delivery_id ON webhook_attempts (delivery_id, id);
