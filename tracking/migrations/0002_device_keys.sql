-- Keys of courier tracker devices (phones running an OsmAnd-protocol app such as Traccar Client): an
-- operator issues one per courier and device; the device sends it as its identifier on every fix
-- (`/osmand?id=...`). Only a SHA-256 of the key is kept (keys are 192-bit random secrets).
CREATE TABLE tracking_device_keys (
    id          text        PRIMARY KEY,
    courier_id  text        NOT NULL,
    key_hash    text        NOT NULL UNIQUE,
    name        text        NOT NULL,
    created_by  text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz,
    revoked_at  timestamptz
);
CREATE INDEX tracking_device_keys_courier ON tracking_device_keys (courier_id);
