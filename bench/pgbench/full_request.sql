-- Reference only: every query one reuse-path HTTP request sends, not just the
-- transaction — the token lookup (AuthenticatedOrg), find_domain (ownership check
-- in GenerateRecords), then register_sender.sql's transaction.
\set r random(1, 9000000000000000000)
\set d random(0, 3)
SELECT organization_id, secret_hash FROM api_tokens WHERE access_token_hash = sha256('bench-access'::bytea) AND revoked_at IS NULL LIMIT 1;
SELECT d.id, d.organization_id, d.name, k.selector, k.public_key, d.inbound_enabled, d.created_at, d.status, d.verified_at, d.last_checked_at, d.next_check_at, d.failed_checks FROM domains d INNER JOIN dkim_keys k ON k.domain_id = d.id AND k.state = 'active' WHERE d.name = 'd' || :d || '.pgbench.example' LIMIT 1;
BEGIN;
UPDATE organizations SET id = id WHERE id = 'bench-org';
SELECT id AS domain_id, organization_id FROM domains WHERE name = 'd' || :d || '.pgbench.example' LIMIT 1 \gset
SELECT COUNT(*) FROM senders WHERE email = 'f' || :client_id || '-' || :r || '@d' || :d || '.pgbench.example';
UPDATE senders SET active = false WHERE organization_id = 'bench-org' AND active = true;
INSERT INTO senders (organization_id, domain_id, email, reply_to, active, created_at)
  VALUES ('bench-org', :domain_id, 'f' || :client_id || '-' || :r || '@d' || :d || '.pgbench.example', 'support@d' || :d || '.pgbench.example', true, now());
INSERT INTO events (organization_id, type, domain, selector, email, created_at)
  VALUES ('bench-org', 'sender.registered', 'd' || :d || '.pgbench.example', NULL, 'f' || :client_id || '-' || :r || '@d' || :d || '.pgbench.example', now());
INSERT INTO events (organization_id, type, domain, selector, email, created_at)
  VALUES ('bench-org', 'sender.activated', 'd' || :d || '.pgbench.example', NULL, 'f' || :client_id || '-' || :r || '@d' || :d || '.pgbench.example', now());
SELECT d.id, d.organization_id, d.name, k.selector, k.public_key, d.inbound_enabled, d.created_at, d.status, d.verified_at, d.last_checked_at, d.next_check_at, d.failed_checks FROM domains d INNER JOIN dkim_keys k ON k.domain_id = d.id AND k.state = 'active' WHERE d.id = :domain_id LIMIT 1;
COMMIT;
