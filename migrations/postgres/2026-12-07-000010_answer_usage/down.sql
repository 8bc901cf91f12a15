DROP TRIGGER idempotency_usage_count ON idempotency_keys;
DROP FUNCTION idempotency_usage_count();
DROP TABLE idempotency_usage;
