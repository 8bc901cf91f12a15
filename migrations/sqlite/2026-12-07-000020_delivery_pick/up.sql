-- What the webhook senders' fair pick reads (sqlite). Keep in step with the other
-- backend's migrations.

-- Each endpoint's oldest due pending deliveries, read from their end of this index
-- (a few rows an endpoint), instead of ranking the whole due backlog at every lease.
CREATE INDEX webhook_deliveries_endpoint_due ON webhook_deliveries (endpoint_id, next_attempt_at, id) WHERE state = 'pending';
-- Whether a degraded endpoint has a delivery in flight: only leased rows are here.
CREATE INDEX webhook_deliveries_endpoint_held ON webhook_deliveries (endpoint_id, lease_until) WHERE state = 'pending' AND lease_until IS NOT NULL;
