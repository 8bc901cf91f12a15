ALTER TABLE webhook_endpoints DROP COLUMN consecutive_failures;
