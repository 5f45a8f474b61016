-- The customer's delivery note (dropoff instructions), shown to the courier and on the tracking page.
ALTER TABLE orders ADD COLUMN delivery_note text;

-- Tracking links are signed tokens (orders/tracking_link.py), not rows: a link is valid while its
-- signature checks and it has not expired, unless it is listed here. `link_id` names one link;
-- '*' revokes every link of the order issued up to `revoked_at` (links issued later still work).
CREATE TABLE order_tracking_revocations (
    order_id   text        NOT NULL,
    link_id    text        NOT NULL,
    revoked_at timestamptz NOT NULL,
    revoked_by text,
    PRIMARY KEY (order_id, link_id)
);
