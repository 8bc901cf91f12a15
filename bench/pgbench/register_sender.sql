-- The reuse path's unit of work as store-diesel's `register_once` runs it for a
-- domain the organization already owns (crates/store-diesel/src/domains.rs), one
-- statement per diesel query, same order, inside one transaction:
--   lock the org row (no-op UPDATE), read the domain with its active key by name,
--   deactivate the org's active sender, INSERT the new sender (active; ON CONFLICT on
--   the email, which is how a taken email is found), record its two events and their
--   webhook deliveries (one data-modifying CTE). A distinct email per transaction,
--   like the HTTP run. (The service batches these; pgbench runs one per transaction.)
-- Seeded by scripts/bench.sh: organization 'bench-org', domains d0..d3.pgbench.example.
\set r random(1, 9000000000000000000)
\set d random(0, 3)
BEGIN;
UPDATE organizations SET id = id WHERE id = 'bench-org';
SELECT d.id AS domain_id, d.organization_id, d.name, k.selector, k.public_key, d.inbound_enabled, d.created_at, d.status, d.verified_at, d.last_checked_at, d.next_check_at, d.failed_checks FROM domains d INNER JOIN dkim_keys k ON k.domain_id = d.id AND k.state = 'active' WHERE d.name = 'd' || :d || '.pgbench.example' LIMIT 1 \gset
UPDATE senders SET active = false WHERE organization_id = 'bench-org' AND active = true;
INSERT INTO senders (organization_id, domain_id, email, reply_to, active, created_at)
  VALUES ('bench-org', :domain_id, 'p' || :client_id || '-' || :r || '@d' || :d || '.pgbench.example', 'support@d' || :d || '.pgbench.example', true, now())
  ON CONFLICT (email) DO NOTHING RETURNING id;
WITH e AS (INSERT INTO events (organization_id, type, domain, selector, email, created_at) VALUES
    ('bench-org', 'sender.registered', 'd' || :d || '.pgbench.example', NULL, 'p' || :client_id || '-' || :r || '@d' || :d || '.pgbench.example', now()),
    ('bench-org', 'sender.activated', 'd' || :d || '.pgbench.example', NULL, 'p' || :client_id || '-' || :r || '@d' || :d || '.pgbench.example', now())
    RETURNING id, organization_id, type, created_at)
  INSERT INTO webhook_deliveries (endpoint_id, organization_id, event_id, state, next_attempt_at, created_at)
  SELECT w.id, w.organization_id, e.id, 'pending', e.created_at, e.created_at
  FROM e JOIN webhook_endpoints w ON w.organization_id = e.organization_id
  WHERE w.events IS NULL OR w.events LIKE '%,' || e.type || ',%'
  ORDER BY e.id, w.id;
COMMIT;
