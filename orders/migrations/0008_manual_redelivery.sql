-- A manual redelivery (POST /v1/merchant/webhook_endpoints/{id}/deliveries) is one more delivery of
-- an event to an endpoint that may have had it already: only the automatic one is unique per pair.
ALTER TABLE webhook_deliveries ADD COLUMN manual boolean NOT NULL DEFAULT false;
ALTER TABLE webhook_deliveries DROP CONSTRAINT webhook_deliveries_endpoint_id_event_id_key;
CREATE UNIQUE INDEX webhook_deliveries_once ON webhook_deliveries (endpoint_id, event_id) WHERE NOT manual;
