-- Scratch data for the pgbench ceiling: one organization with one token and four
-- domains (a realistic 392-character public key and a 1.2 KB sealed private key).
INSERT INTO organizations (id, name, created_at) VALUES ('bench-org', 'bench', now());
INSERT INTO api_tokens (organization_id, access_token_hash, secret_hash, created_at)
  VALUES ('bench-org', sha256('bench-access'::bytea), sha256('bench-secret'::bytea), now());
INSERT INTO domains (organization_id, name, inbound_enabled, created_at, updated_at)
  SELECT 'bench-org', 'd' || i || '.pgbench.example', false, now(), now()
  FROM generate_series(0, 3) AS i;
INSERT INTO dkim_keys (domain_id, selector, state, public_key, private_key_sealed, created_at, activated_at)
  SELECT id, 'sel' || id, 'active', repeat('A', 392), convert_to(repeat('x', 1250), 'UTF8'), now(), now()
  FROM domains WHERE organization_id = 'bench-org';
