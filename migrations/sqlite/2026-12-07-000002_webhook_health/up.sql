-- An endpoint's health: the attempts in a row that got no HTTP answer (a timeout, a
-- connection refused, reset or failed). From DEGRADED_AFTER (3, domain-core's
-- ports::webhooks) on, the endpoint is 'degraded': its deliveries are leased one at a
-- time until an attempt gets any answer, which sets it back to 0.
ALTER TABLE webhook_endpoints ADD COLUMN consecutive_failures INTEGER NOT NULL DEFAULT 0;
