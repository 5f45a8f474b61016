-- Membership plans, customers' subscriptions to them and their invoices (memberships/model.py).

CREATE TABLE membership_plans (
    id                          text        PRIMARY KEY,
    name                        text        NOT NULL,
    region                      text        NOT NULL,
    currency                    text        NOT NULL,
    amount                      bigint      NOT NULL CHECK (amount > 0),
    interval                    text        NOT NULL CHECK (interval IN ('month', 'year')),
    trial_days                  integer     NOT NULL DEFAULT 0 CHECK (trial_days >= 0),
    free_delivery_min_subtotal  bigint      CHECK (free_delivery_min_subtotal >= 0),
    service_fee_discount_bps    integer     NOT NULL DEFAULT 0 CHECK (service_fee_discount_bps BETWEEN 0 AND 10000),
    active                      boolean     NOT NULL DEFAULT true,
    created_by                  text        NOT NULL,
    created_at                  timestamptz NOT NULL
);
CREATE INDEX membership_plans_region ON membership_plans (region, currency, id);

CREATE TABLE membership_subscriptions (
    id                    text        PRIMARY KEY,
    customer_id           text        NOT NULL,
    plan_id               text        NOT NULL REFERENCES membership_plans (id),
    status                text        NOT NULL CHECK (status IN ('trialing', 'active', 'past_due', 'canceled')),
    payment_method_id     text        NOT NULL,
    anchor                timestamptz NOT NULL,  -- periods are counted from here (model.period_end)
    period_index          integer     NOT NULL,  -- 0: the trial; k >= 1: the k-th paid period
    current_period_start  timestamptz NOT NULL,
    current_period_end    timestamptz NOT NULL,
    trial_end             timestamptz,
    cancel_at_period_end  boolean     NOT NULL DEFAULT false,
    canceled_at           timestamptz,
    cancel_reason         text,
    -- When the renewal job must act next (renew, retry, end, expire); NULL once canceled.
    next_action_at        timestamptz,
    open_invoice_id       text,
    dunning_attempts      integer     NOT NULL DEFAULT 0,
    created_at            timestamptz NOT NULL,
    updated_at            timestamptz NOT NULL
);
-- One subscription that has not ended per customer.
CREATE UNIQUE INDEX membership_subscriptions_one_live ON membership_subscriptions (customer_id)
    WHERE status <> 'canceled';
CREATE INDEX membership_subscriptions_customer ON membership_subscriptions (customer_id, id);
CREATE INDEX membership_subscriptions_due ON membership_subscriptions (next_action_at)
    WHERE status <> 'canceled';

CREATE TABLE membership_invoices (
    id                 text        PRIMARY KEY,
    subscription_id    text        NOT NULL REFERENCES membership_subscriptions (id),
    customer_id        text        NOT NULL,
    period_index       integer     NOT NULL,
    period_start       timestamptz NOT NULL,
    period_end         timestamptz NOT NULL,
    currency           text        NOT NULL,
    amount             bigint      NOT NULL CHECK (amount > 0),
    status             text        NOT NULL CHECK (status IN ('open', 'paid', 'void', 'uncollectible')),
    attempts           integer     NOT NULL DEFAULT 0,
    payment_intent_id  text,       -- the intent that paid it (or the last one tried)
    last_error         jsonb,
    amount_refunded    bigint      NOT NULL DEFAULT 0 CHECK (amount_refunded >= 0 AND amount_refunded <= amount),
    refund_id          text,
    created_at         timestamptz NOT NULL,
    paid_at            timestamptz,
    -- A period is billed once: two renewal workers can never both make (and charge) its invoice.
    UNIQUE (subscription_id, period_start)
);
CREATE INDEX membership_invoices_customer ON membership_invoices (customer_id, id);
CREATE INDEX membership_invoices_subscription ON membership_invoices (subscription_id, id);
