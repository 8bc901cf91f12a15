ALTER TABLE api_tokens DROP COLUMN token_format;
DROP TABLE service_keys;
