-- The events a merchant may see (the events API, GET /v1/events): one row per event of a tenant,
-- written in the same transaction that enqueues its webhook deliveries, with the exact body those
-- deliveries send. Kept 30 days (a retention job deletes older rows).
CREATE TABLE merchant_events (
    id          text        PRIMARY KEY,  -- the event id (evt_...), the `id` in the webhook body
    tenant_id   text        NOT NULL,
    type        text        NOT NULL,
    created_at  timestamptz NOT NULL,     -- when the event occurred: the body's `created`
    payload     bytea       NOT NULL
);
CREATE INDEX merchant_events_tenant ON merchant_events (tenant_id, id DESC);
CREATE INDEX merchant_events_created ON merchant_events (created_at);
