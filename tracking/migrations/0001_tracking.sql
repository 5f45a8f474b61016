-- Orders as tracking sees them: a projection fed by order.* and dispatch.* events (the
-- "tracking" consumer group), never read from the orders package's tables. It answers
-- "who may watch this order" and "which orders does this courier carry now".
CREATE TABLE tracking_orders (
    order_id    text        PRIMARY KEY,
    customer_id text,
    tenant_id   text,
    store_id    text,
    region      text,
    pickup_lat  double precision,
    pickup_lng  double precision,
    dropoff_lat double precision,
    dropoff_lng double precision,
    status      text        NOT NULL,
    picked_up   boolean     NOT NULL DEFAULT false,
    courier_id  text,
    version     integer     NOT NULL DEFAULT 1,
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX tracking_orders_courier ON tracking_orders (courier_id) WHERE courier_id IS NOT NULL;

-- Courier actions by client action id: a resent frame finds its row and writes no second event.
CREATE TABLE tracking_courier_actions (
    courier_id text        NOT NULL,
    action_id  text        NOT NULL,
    type       text        NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (courier_id, action_id)
);

-- Location history, partitioned by day of the device time; partitions are created ahead
-- and dropped after the retention period by the history writer.
CREATE TABLE courier_locations (
    courier_id   text             NOT NULL,
    recorded_at  timestamptz      NOT NULL,
    received_at  timestamptz      NOT NULL,
    seq          bigint           NOT NULL,
    lat          double precision NOT NULL,
    lng          double precision NOT NULL,
    accuracy     real,
    speed        real,
    heading      real,
    dispatchable boolean          NOT NULL
) PARTITION BY RANGE (recorded_at);
CREATE INDEX courier_locations_courier ON courier_locations (courier_id, recorded_at);
