-- Refunds an order counts in `orders.refunded`, one row per payments refund id, whoever started the refund:
-- orders itself (written in the transaction that refunded) or an operator's POST /v1/refunds (written by the
-- orders consumer of `payment.refunded`). The primary key makes the second writer of one refund a no-op, so a
-- refund orders started is not counted again when its event comes back. Missing items reported before
-- delivery refund nothing at the processor (delivery captures less): they are in order_payments, not here.
CREATE TABLE order_refunds (
    refund_id   text        PRIMARY KEY,
    order_id    text        NOT NULL,
    intent_id   text        NOT NULL,
    amount      bigint      NOT NULL CHECK (amount > 0),
    reason      text,
    at          timestamptz NOT NULL
);
CREATE INDEX order_refunds_order ON order_refunds (order_id);

-- Delivered orders whose money delivery could not collect (the processor down, or refusing): the delivery
-- stands, and the collection sweep tries the capture and the split again, with the same idempotency keys,
-- until it succeeds (the row goes) or gives up (`failed_at`: the order stays delivered, uncollected, for an
-- operator; `last_error` says why).
CREATE TABLE order_collections (
    order_id        text        PRIMARY KEY,
    attempts        integer     NOT NULL DEFAULT 1,
    last_error      text        NOT NULL,
    next_attempt_at timestamptz NOT NULL,
    failed_at       timestamptz
);
CREATE INDEX order_collections_due ON order_collections (next_attempt_at) WHERE failed_at IS NULL;
