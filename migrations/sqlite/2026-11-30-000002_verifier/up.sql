-- The background verifier (SQLite). Keep in step with migrations/postgres.

-- It leases domains by due time.
CREATE INDEX domains_next_check_at ON domains (next_check_at);

-- Domains created before the verifier existed were never scheduled: due now.
UPDATE domains SET next_check_at = created_at WHERE next_check_at IS NULL;
