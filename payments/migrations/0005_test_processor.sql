-- The test-mode card processor's own records (payments/processor_store.py). They model an external
-- system, Stripe's side of a charge, whose state outlives our process: a charge authorized before a
-- restart can still be captured, voided or refunded after it, and a call retried with the same
-- idempotency key still gets its first answer. Only processor_store.py reads or writes these tables;
-- no payments query joins them. Charges made before this migration (kept in the old processor's
-- memory) are unknown here: the processor refuses operations on them (`resource_missing`), which
-- payments answers with 502 `processor_error`.
CREATE TABLE test_processor_charges (
    id              text        PRIMARY KEY,
    idempotency_key text        NOT NULL UNIQUE,  -- the authorization's key: a retry finds this charge
    amount          bigint      NOT NULL,
    currency        text        NOT NULL,
    status          text        NOT NULL
                                CHECK (status IN ('requires_action', 'authorized', 'declined', 'captured', 'voided')),
    result          jsonb       NOT NULL,  -- the processor's last answer about the charge (outcome, decline codes)
    captured        bigint      NOT NULL DEFAULT 0,
    refunded        bigint      NOT NULL DEFAULT 0 CHECK (refunded <= captured),
    created_at      timestamptz NOT NULL DEFAULT now()
);

-- Captures, refunds and voids by their idempotency key, with the id each answered.
CREATE TABLE test_processor_operations (
    idempotency_key text        PRIMARY KEY,
    charge_id       text        NOT NULL,
    answer          text        NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now()
);

-- The daily settlement report's lines (what reconciliation matches against the ledger).
CREATE TABLE test_processor_settlements (
    seq       bigserial PRIMARY KEY,
    ref       text      NOT NULL UNIQUE,
    type      text      NOT NULL CHECK (type IN ('capture', 'refund')),
    amount    bigint    NOT NULL,
    currency  text      NOT NULL,
    day       date      NOT NULL
);
CREATE INDEX test_processor_settlements_day ON test_processor_settlements (day, seq);
