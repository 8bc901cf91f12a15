-- Webhooks (PostgreSQL). Keep in step with migrations/sqlite.

-- An organization's endpoints. `events` is NULL for every type, else the chosen
-- types as `,a,b,` (matched with LIKE); the signing secret is sealed under the master
-- key, bound to the endpoint's id.
CREATE TABLE webhook_endpoints (
    id              TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL REFERENCES organizations (id),
    url             TEXT NOT NULL,
    events          TEXT,
    secret_sealed   BYTEA NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL
);
CREATE INDEX webhook_endpoints_organization_id ON webhook_endpoints (organization_id, created_at);

-- One delivery per event and endpoint, written in the transaction that records the
-- event (the outbox's fan-out): a committed event always has its deliveries. Pending
-- ones are due at `next_attempt_at`; `lease_until` is held by the instance sending it.
CREATE TABLE webhook_deliveries (
    id              BIGSERIAL PRIMARY KEY,
    endpoint_id     TEXT NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    -- The endpoint's owner, so a sender can skip the organizations it has enough of
    -- in flight without a join.
    organization_id TEXT NOT NULL,
    event_id        BIGINT NOT NULL REFERENCES events (id) ON DELETE CASCADE,
    state           TEXT NOT NULL CHECK (state IN ('pending', 'delivered', 'failed')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMPTZ,
    lease_until     TIMESTAMPTZ,
    created_at      TIMESTAMPTZ NOT NULL,
    completed_at    TIMESTAMPTZ,
    UNIQUE (endpoint_id, event_id)
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE state = 'pending';
-- Finished deliveries past their retention are pruned by the senders.
CREATE INDEX webhook_deliveries_finished ON webhook_deliveries (completed_at) WHERE state <> 'pending';
-- The outbox's oldest pending delivery (a metric).
CREATE INDEX webhook_deliveries_pending_age ON webhook_deliveries (created_at) WHERE state = 'pending';

-- Every attempt of a delivery: the status code, or a short reason when none came.
CREATE TABLE webhook_attempts (
    id           BIGSERIAL PRIMARY KEY,
    delivery_id  BIGINT NOT NULL REFERENCES webhook_deliveries (id) ON DELETE CASCADE,
    attempted_at TIMESTAMPTZ NOT NULL,
    status_code  INTEGER,
    error        TEXT,
    duration_ms  INTEGER NOT NULL
);
CREATE INDEX webhook_attempts_delivery_id ON webhook_attempts (delivery_id, id);
