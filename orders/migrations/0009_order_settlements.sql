-- What each split of an order (by its ledger reference: the order id at delivery, `<order>:cancel` for a
-- cancellation fee, `<order>:tip:<n>` for a tip raised after delivery) took from the restaurant as commission
-- (at the tenant's rate then) and passed through to the courier as tip: the ledger has the split's amounts, not
-- why. Written in the split's transaction; read by the merchant's statements (orders/statements.py).
CREATE TABLE order_settlements (
    reference      text        PRIMARY KEY,
    order_id       text        NOT NULL,
    tenant_id      text        NOT NULL,
    currency       text        NOT NULL,
    commission     bigint      NOT NULL CHECK (commission >= 0),
    commission_bps integer     NOT NULL CHECK (commission_bps >= 0),
    tip            bigint      NOT NULL CHECK (tip >= 0),
    at             timestamptz NOT NULL
);
CREATE INDEX order_settlements_order ON order_settlements (order_id);
