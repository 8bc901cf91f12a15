-- Events are pruned after DOMAIN_API_EVENT_RETENTION (sqlite). Keep in step with the
-- other backend's migrations.

-- Deleting an event deletes its webhook deliveries (ON DELETE CASCADE); this index
-- lets each delete find them instead of scanning every delivery.
CREATE INDEX webhook_deliveries_event_id ON webhook_deliveries (event_id);
