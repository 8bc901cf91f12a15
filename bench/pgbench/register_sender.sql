-- The reuse path's unit of work as store-diesel's `register_once` runs it for a
-- domain the organization already owns (crates/store-diesel/src/domains.rs), one
-- statement per diesel query, same order, inside one transaction:
--   lock the org row (no-op UPDATE), SELECT the domain by name, count senders with
--   the email, deactivate the org's active sender, INSERT the new sender (active),
--   read the domain row back. A distinct email per transaction, like the HTTP run.
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
SELECT id, organization_id, name, dkim_selector, dkim_public_key, dkim_private_key_sealed, inbound_enabled, created_at, updated_at FROM domains WHERE id = :domain_id LIMIT 1;
COMMIT;
