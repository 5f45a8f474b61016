-- Orders: quotes, orders with their lines and append-only status history, promos,
-- merchant webhooks with their delivery log. Stores, items, customers and payment
-- intents belong to other packages and are referenced by id only.

CREATE TABLE order_quotes (
    id            text        PRIMARY KEY,
    customer_id   text        NOT NULL,
    store_id      text        NOT NULL,
    request       jsonb       NOT NULL,  -- what the customer asked for (lines, dropoff, promo, tip, schedule)
    priced        jsonb       NOT NULL,  -- the priced quote as returned
    total         bigint      NOT NULL,
    currency      text        NOT NULL,
    created_at    timestamptz NOT NULL,
    expires_at    timestamptz NOT NULL
);
CREATE INDEX order_quotes_expires ON order_quotes (expires_at);

CREATE TABLE orders (
    id              text        PRIMARY KEY,
    customer_id     text        NOT NULL,
    idempotency_key text        NOT NULL,
    quote_id        text        NOT NULL,
    store_id        text        NOT NULL,
    tenant_id       text        NOT NULL,
    region          text        NOT NULL,
    status          text        NOT NULL,
    version         integer     NOT NULL DEFAULT 1,
    currency        text        NOT NULL,
    total           bigint      NOT NULL,   -- current bill (tip changes included)
    pricing         jsonb       NOT NULL,   -- the price breakdown and the delivery details
    payment_method_id text      NOT NULL,
    intent_id       text        NOT NULL,
    promo_id        text,
    pickup_lat      double precision NOT NULL,
    pickup_lng      double precision NOT NULL,
    dropoff_lat     double precision NOT NULL,
    dropoff_lng     double precision NOT NULL,
    address         text        NOT NULL,
    prep_time_s     integer     NOT NULL,
    placed_at       timestamptz NOT NULL,
    accept_by       timestamptz NOT NULL,
    scheduled_for   timestamptz,
    promised_from   timestamptz NOT NULL,
    promised_to     timestamptz NOT NULL,
    accepted_at     timestamptz,
    ready_at        timestamptz,       -- planned, then actual
    picked_up_at    timestamptz,
    delivered_at    timestamptz,
    ended_at        timestamptz,       -- rejected / cancelled / expired
    end_reason      text,
    courier_id      text,
    cancel_fee      bigint      NOT NULL DEFAULT 0,
    refunded        bigint      NOT NULL DEFAULT 0,
    captured        bigint      NOT NULL DEFAULT 0,
    proof           jsonb,
    rating          smallint,
    rating_comment  text,
    CHECK (status IN ('placed', 'accepted', 'preparing', 'ready', 'picked_up', 'delivered',
                      'rejected', 'cancelled', 'expired'))
);
-- A retried checkout (same customer, same Idempotency-Key) finds the order it already wrote.
CREATE UNIQUE INDEX orders_customer_idempotency ON orders (customer_id, idempotency_key);
CREATE INDEX orders_customer ON orders (customer_id, id DESC);
CREATE INDEX orders_store ON orders (store_id, id DESC);
CREATE INDEX orders_awaiting_accept ON orders (accept_by) WHERE status = 'placed';

CREATE TABLE order_lines (
    order_id    text    NOT NULL,
    line_no     integer NOT NULL,
    item_id     text    NOT NULL,
    name        text    NOT NULL,
    quantity    integer NOT NULL CHECK (quantity > 0),
    unit_price  bigint  NOT NULL,
    line_total  bigint  NOT NULL,
    options     jsonb   NOT NULL,
    missing_quantity integer NOT NULL DEFAULT 0 CHECK (missing_quantity BETWEEN 0 AND quantity),
    PRIMARY KEY (order_id, line_no)
);

-- Append-only: every transition, who did it, when and why.
CREATE TABLE order_status_history (
    id          bigserial   PRIMARY KEY,
    order_id    text        NOT NULL,
    from_status text,
    to_status   text        NOT NULL,
    actor       text        NOT NULL,
    actor_id    text,
    reason      text,
    at          timestamptz NOT NULL
);
CREATE INDEX order_status_history_order ON order_status_history (order_id, id);

-- Money moves that are not the initial hold: tip top-ups, refunds, captures.
CREATE TABLE order_payments (
    id          bigserial   PRIMARY KEY,
    order_id    text        NOT NULL,
    kind        text        NOT NULL,  -- tip_hold | missing_refund | tip_capture
    intent_id   text,
    amount      bigint      NOT NULL,
    tax         bigint      NOT NULL DEFAULT 0,  -- missing_refund: tax given back on top
    reference   text,
    at          timestamptz NOT NULL,
    settled     boolean     NOT NULL DEFAULT false
);
CREATE INDEX order_payments_order ON order_payments (order_id);

CREATE TABLE promos (
    id                 text        PRIMARY KEY,
    code               text        NOT NULL,
    kind               text        NOT NULL CHECK (kind IN ('percent', 'fixed')),
    percent_bps        integer     NOT NULL DEFAULT 0,
    amount             bigint      NOT NULL DEFAULT 0,
    currency           text,
    max_discount       bigint,
    min_subtotal       bigint      NOT NULL DEFAULT 0,
    first_order_only   boolean     NOT NULL DEFAULT false,
    per_customer_limit integer,
    budget             bigint,
    budget_used        bigint      NOT NULL DEFAULT 0,
    valid_from         timestamptz,
    valid_until        timestamptz,
    store_id           text,
    tenant_id          text,
    active             boolean     NOT NULL DEFAULT true,
    created_at         timestamptz NOT NULL DEFAULT now(),
    CHECK (budget IS NULL OR budget_used <= budget)
);
CREATE UNIQUE INDEX promos_code ON promos (upper(code));

-- Counted once per order, given back (released_at) when the order is cancelled.
CREATE TABLE promo_redemptions (
    order_id    text        PRIMARY KEY,
    promo_id    text        NOT NULL,
    customer_id text        NOT NULL,
    discount    bigint      NOT NULL,
    redeemed_at timestamptz NOT NULL,
    released_at timestamptz
);
CREATE INDEX promo_redemptions_customer ON promo_redemptions (promo_id, customer_id) WHERE released_at IS NULL;

-- Consecutive expirations per store, for the automatic pause.
CREATE TABLE store_expiry_streaks (
    store_id   text    PRIMARY KEY,
    streak     integer NOT NULL DEFAULT 0
);

CREATE TABLE webhook_endpoints (
    id                   text        PRIMARY KEY,
    tenant_id            text        NOT NULL,
    url                  text        NOT NULL,
    event_types          text[]      NOT NULL,
    secret               text        NOT NULL,
    previous_secret      text,
    previous_expires_at  timestamptz,
    enabled              boolean     NOT NULL DEFAULT true,
    disabled_reason      text,
    consecutive_failures integer     NOT NULL DEFAULT 0,
    created_at           timestamptz NOT NULL,
    deleted_at           timestamptz
);
CREATE INDEX webhook_endpoints_tenant ON webhook_endpoints (tenant_id) WHERE deleted_at IS NULL;

-- One row per (endpoint, event); `attempts` is the log of every try.
CREATE TABLE webhook_deliveries (
    id              text        PRIMARY KEY,
    endpoint_id     text        NOT NULL,
    event_id        text        NOT NULL,
    event_type      text        NOT NULL,
    payload         bytea       NOT NULL,
    status          text        NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'succeeded', 'failed')),
    attempts        integer     NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL,
    created_at      timestamptz NOT NULL,
    last_status     integer,
    last_error      text,
    completed_at    timestamptz,
    UNIQUE (endpoint_id, event_id)
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_endpoint ON webhook_deliveries (endpoint_id, id DESC);

CREATE TABLE webhook_attempts (
    id           bigserial   PRIMARY KEY,
    delivery_id  text        NOT NULL,
    attempt      integer     NOT NULL,
    at           timestamptz NOT NULL,
    status_code  integer,
    error        text,
    duration_ms  integer     NOT NULL
);
CREATE INDEX webhook_attempts_delivery ON webhook_attempts (delivery_id, id);
