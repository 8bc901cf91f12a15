DROP TRIGGER idempotency_usage_delete;
DROP TRIGGER idempotency_usage_update;
DROP TRIGGER idempotency_usage_insert;
DROP TABLE idempotency_usage;
