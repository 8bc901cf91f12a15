-- The reuse path's unit of work as store-diesel's `register_once` runs it for a
-- domain the organization already owns (crates/store-diesel/src/domains.rs), one
-- statement per diesel query, same order, inside one transaction:
--   lock the org row (no-op UPDATE), SELECT the domain by name, count senders with
--   the email, deactivate the org's active sender, INSERT the new sender (active),
--   record its two events, read the domain row back with its active key. A
--   distinct email per transaction, like the HTTP run.
-- Seeded by scripts/bench.sh: organization 'bench-org', domains d0..d3.pgbench.example.
\set r random(1, 9000000000000000000)
\set d random(0, 3)
BEGIN;
UPDATE organizations SET id = id WHERE id = 'bench-org';
SELECT id AS domain_id, organization_id FROM domains WHERE name = 'd' || :d || '.pgbench.example' LIMIT 1 \gset
SELECT COUNT(*) FROM senders WHERE email = 'p' || :client_id || '-' || :r || '@d' || :d || '.pgbench.example';
UPDATE senders SET active = false WHERE organization_id = 'bench-org' AND active = true;
INSERT INTO senders (organization_id, domain_id, email, reply_to, active, created_at)
  VALUES ('bench-org', :domain_id, 'p' || :client_id || '-' || :r || '@d' || :d || '.pgbench.example', 'support@d' || :d || '.pgbench.example', true, now());
INSERT INTO events (organization_id, type, domain, selector, email, created_at)
  VALUES ('bench-org', 'sender.registered', 'd' || :d || '.pgbench.example', NULL, 'p' || :client_id || '-' || :r || '@d' || :d || '.pgbench.example', now());
INSERT INTO events (organization_id, type, domain, selector, email, created_at)
  VALUES ('bench-org', 'sender.activated', 'd' || :d || '.pgbench.example', NULL, 'p' || :client_id || '-' || :r || '@d' || :d || '.pgbench.example', now());
SELECT d.id, d.organization_id, d.name, k.selector, k.public_key, d.inbound_enabled, d.created_at, d.status, d.verified_at, d.last_checked_at, d.next_check_at, d.failed_checks FROM domains d INNER JOIN dkim_keys k ON k.domain_id = d.id AND k.state = 'active' WHERE d.id = :domain_id LIMIT 1;
COMMIT;
