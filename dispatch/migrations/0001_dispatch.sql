-- The live dispatcher's own tables: its projection of dispatchable orders (fed by order.* events),
-- offers and their outcomes (an accepted offer is an assignment), the fencing token per region as
-- last written, and what each store's kitchen taught us about its prep times.

CREATE TABLE dispatch_orders (
    order_id        text PRIMARY KEY,
    region          text NOT NULL,
    store_id        text NOT NULL,
    pickup_lat      double precision NOT NULL,
    pickup_lng      double precision NOT NULL,
    dropoff_lat     double precision NOT NULL,
    dropoff_lng     double precision NOT NULL,
    currency        text NOT NULL DEFAULT 'EUR',
    placed_at       timestamptz NOT NULL,
    accepted_at     timestamptz,
    stated_ready_at timestamptz,          -- the restaurant's word when it accepted (or changed it)
    ready_at        timestamptz,          -- set when the food is actually ready
    promised_at     timestamptz NOT NULL,
    -- placed: not dispatchable yet; open: in the pool; offered: in a pending offer; assigned: a
    -- courier accepted; picked_up; delivered; ended (cancelled, rejected, expired).
    status          text NOT NULL,
    offer_id        text,
    courier_id      text,
    excluded        text[] NOT NULL DEFAULT '{}',  -- couriers who declined or let an offer lapse
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX dispatch_orders_live ON dispatch_orders (region, status)
    WHERE status IN ('open', 'offered', 'assigned');

CREATE TABLE dispatch_offers (
    offer_id      text PRIMARY KEY,
    region        text NOT NULL,
    courier_id    text NOT NULL,
    order_ids     text[] NOT NULL,
    -- pending -> accepted | declined | expired | cancelled; accepted -> completed | unassigned
    status        text NOT NULL,
    fence         bigint NOT NULL,
    created_at    timestamptz NOT NULL,
    expires_at    timestamptz NOT NULL,
    responded_at  timestamptz,
    payout_amount bigint NOT NULL,
    currency      text NOT NULL,
    finish_at     timestamptz NOT NULL,   -- when the planned route ends (the courier is free again)
    finish_lat    double precision NOT NULL,
    finish_lng    double precision NOT NULL,
    frame         jsonb NOT NULL          -- the offer frame as sent to the courier
);
-- A courier never holds two live offers.
CREATE UNIQUE INDEX dispatch_offers_one_pending ON dispatch_offers (courier_id) WHERE status = 'pending';
CREATE INDEX dispatch_offers_live ON dispatch_offers (region, status) WHERE status IN ('pending', 'accepted');

-- The highest fencing token that wrote offers per region: a stale lease holder's write is refused.
CREATE TABLE dispatch_fences (
    region text PRIMARY KEY,
    fence  bigint NOT NULL
);

-- Per store: exponentially weighted mean of (actual ready - stated ready), seconds.
CREATE TABLE dispatch_store_prep (
    store_id   text PRIMARY KEY,
    lateness_s double precision NOT NULL,
    samples    integer NOT NULL
);
