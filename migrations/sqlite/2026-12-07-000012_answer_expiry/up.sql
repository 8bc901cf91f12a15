-- When an organization's first kept answer expires (sqlite). Keep in step with the
-- other backend's migrations.

-- Read for the Retry-After of a refusal once an organization's kept answers are
-- full: from this index alone, instead of every row of the organization, each of
-- which holds a body of up to some hundred kilobytes.
CREATE INDEX idempotency_keys_organization_expires_at ON idempotency_keys (organization_id, expires_at);
