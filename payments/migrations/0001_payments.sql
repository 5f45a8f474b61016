-- Payment methods: what may be shown in the clear. The number lives only in card_vault.
CREATE TABLE payment_methods (
    id           text        PRIMARY KEY,
    customer_id  text        NOT NULL,
    brand        text        NOT NULL,
    last4        text        NOT NULL,
    exp_month    integer     NOT NULL,
    exp_year     integer     NOT NULL,
    fingerprint  text        NOT NULL,
    holder_name  text,
    is_default   boolean     NOT NULL DEFAULT false,
    created_at   timestamptz NOT NULL DEFAULT now(),
    detached_at  timestamptz
);
CREATE INDEX payment_methods_customer ON payment_methods (customer_id, id) WHERE detached_at IS NULL;
CREATE UNIQUE INDEX payment_methods_one_default ON payment_methods (customer_id)
    WHERE is_default AND detached_at IS NULL;
CREATE INDEX payment_methods_fingerprint ON payment_methods (fingerprint);

-- AES-GCM ciphertexts of card numbers, with the id of the key that sealed them.
-- Detaching a method deletes its row (the number is then gone for good).
CREATE TABLE card_vault (
    payment_method_id text        PRIMARY KEY,
    key_id            text        NOT NULL,
    nonce             bytea       NOT NULL,
    ciphertext        bytea       NOT NULL,
    created_at        timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE payment_intents (
    id                  text        PRIMARY KEY,
    customer_id         text        NOT NULL,
    payment_method_id   text,
    amount              bigint      NOT NULL CHECK (amount > 0),
    currency            text        NOT NULL,
    capture_method      text        NOT NULL DEFAULT 'manual' CHECK (capture_method IN ('manual', 'automatic')),
    status              text        NOT NULL CHECK (status IN ('requires_payment_method', 'requires_confirmation',
                                        'requires_action', 'processing', 'requires_capture', 'succeeded', 'canceled')),
    amount_capturable   bigint      NOT NULL DEFAULT 0,
    amount_captured     bigint      NOT NULL DEFAULT 0,
    amount_refunded     bigint      NOT NULL DEFAULT 0,
    hold                text        NOT NULL DEFAULT 'none'
                                    CHECK (hold IN ('none', 'held', 'captured', 'released')),
    reference           text,
    idempotency_key     text,
    processor_ref       text,
    next_action         jsonb,
    last_error          jsonb,
    cancellation_reason text,
    metadata            jsonb       NOT NULL DEFAULT '{}',
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    CHECK (amount_capturable BETWEEN 0 AND amount),
    CHECK (amount_captured BETWEEN 0 AND amount),
    CHECK (amount_refunded BETWEEN 0 AND amount_captured),
    UNIQUE (customer_id, idempotency_key)
);
CREATE INDEX payment_intents_customer ON payment_intents (customer_id, id);
CREATE INDEX payment_intents_processing ON payment_intents (updated_at) WHERE status = 'processing';

CREATE TABLE payment_refunds (
    id                text        PRIMARY KEY,
    payment_intent_id text        NOT NULL REFERENCES payment_intents (id),
    amount            bigint      NOT NULL CHECK (amount > 0),
    currency          text        NOT NULL,
    status            text        NOT NULL CHECK (status IN ('pending', 'succeeded', 'failed', 'canceled')),
    destination       text        NOT NULL DEFAULT 'card' CHECK (destination IN ('card', 'wallet')),
    reason            text,
    processor_ref     text,
    idempotency_key   text,
    created_by        text        NOT NULL,
    created_at        timestamptz NOT NULL DEFAULT now(),
    UNIQUE (payment_intent_id, idempotency_key)
);

-- The double-entry ledger. Natural balances are kept per account and checked in
-- the same transaction as the postings that change them.
CREATE TABLE ledger_accounts (
    id           text        PRIMARY KEY,
    kind         text        NOT NULL,
    owner_id     text,
    currency     text        NOT NULL,
    normal_side  text        NOT NULL CHECK (normal_side IN ('debit', 'credit')),
    non_negative boolean     NOT NULL,
    balance      bigint      NOT NULL DEFAULT 0,
    created_at   timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT ledger_accounts_non_negative CHECK (NOT non_negative OR balance >= 0)
);

CREATE TABLE journal_entries (
    id              text        PRIMARY KEY,
    kind            text        NOT NULL,
    currency        text        NOT NULL,
    actor           text        NOT NULL,
    reason          text        NOT NULL DEFAULT '',
    reference       text,
    intent_id       text,
    refund_id       text,
    payout_id       text,
    processor_ref   text,
    idempotency_key text        UNIQUE,
    reverses        text        REFERENCES journal_entries (id),
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX journal_entries_intent ON journal_entries (intent_id) WHERE intent_id IS NOT NULL;
CREATE INDEX journal_entries_reference ON journal_entries (reference) WHERE reference IS NOT NULL;
CREATE INDEX journal_entries_processor ON journal_entries (created_at) WHERE processor_ref IS NOT NULL;

CREATE TABLE postings (
    entry_id   text    NOT NULL REFERENCES journal_entries (id),
    seq        integer NOT NULL,
    account_id text    NOT NULL REFERENCES ledger_accounts (id),
    amount     bigint  NOT NULL CHECK (amount <> 0),
    currency   text    NOT NULL,
    PRIMARY KEY (entry_id, seq)
);
CREATE INDEX postings_account ON postings (account_id, entry_id);

-- The journal is append-only: a correction is a reversing entry.
CREATE FUNCTION payments_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the journal is append-only; post a reversing entry instead' USING ERRCODE = 'P0001';
END $$;
CREATE TRIGGER journal_entries_append_only BEFORE UPDATE OR DELETE ON journal_entries
    FOR EACH ROW EXECUTE FUNCTION payments_append_only();
CREATE TRIGGER postings_append_only BEFORE UPDATE OR DELETE ON postings
    FOR EACH ROW EXECUTE FUNCTION payments_append_only();

-- Every entry's postings are inserted in one statement; this checks they balance
-- per currency, so no code path can write a lopsided entry.
CREATE FUNCTION payments_check_balanced() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE bad text;
BEGIN
    SELECT entry_id INTO bad FROM new_postings GROUP BY entry_id, currency HAVING sum(amount) <> 0 LIMIT 1;
    IF bad IS NOT NULL THEN
        RAISE EXCEPTION 'journal entry % does not balance', bad USING ERRCODE = '23514';
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER postings_balanced AFTER INSERT ON postings REFERENCING NEW TABLE AS new_postings
    FOR EACH STATEMENT EXECUTE FUNCTION payments_check_balanced();

-- Promotional wallet credit that expires.
CREATE TABLE payment_wallet_credits (
    id          text        PRIMARY KEY,
    customer_id text        NOT NULL,
    amount      bigint      NOT NULL CHECK (amount > 0),
    currency    text        NOT NULL,
    expires_at  timestamptz NOT NULL,
    expired_amount bigint,
    granted_by  text        NOT NULL,
    reason      text        NOT NULL DEFAULT '',
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX payment_wallet_credits_expiring ON payment_wallet_credits (expires_at) WHERE expired_amount IS NULL;

CREATE TABLE payout_batches (
    id         text        PRIMARY KEY,
    kind       text        NOT NULL CHECK (kind IN ('courier', 'restaurant')),
    currency   text        NOT NULL,
    created_by text        NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE payouts (
    id             text        PRIMARY KEY,
    batch_id       text        REFERENCES payout_batches (id),
    account_id     text        NOT NULL,
    owner_id       text        NOT NULL,
    kind           text        NOT NULL CHECK (kind IN ('courier', 'restaurant')),
    amount         bigint      NOT NULL CHECK (amount > 0),
    fee            bigint      NOT NULL DEFAULT 0 CHECK (fee >= 0 AND fee < amount),
    currency       text        NOT NULL,
    instant        boolean     NOT NULL DEFAULT false,
    status         text        NOT NULL CHECK (status IN ('pending', 'in_transit', 'paid', 'failed')),
    failure_reason text,
    created_by     text        NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX payouts_owner ON payouts (owner_id, id);
CREATE INDEX payouts_batch ON payouts (batch_id);

CREATE TABLE fraud_decisions (
    id             text        PRIMARY KEY,
    intent_id      text,
    customer_id    text        NOT NULL,
    score          integer     NOT NULL CHECK (score BETWEEN 0 AND 100),
    level          text        NOT NULL,
    action         text        NOT NULL,
    reasons        jsonb       NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX fraud_decisions_intent ON fraud_decisions (intent_id);
CREATE INDEX fraud_decisions_level ON fraud_decisions (level, id);

CREATE TABLE payment_reconciliation_reports (
    day        date        PRIMARY KEY,
    matched    integer     NOT NULL,
    mismatches jsonb       NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE payment_webhook_endpoints (
    id          text        PRIMARY KEY,
    url         text        NOT NULL,
    secret      text        NOT NULL,
    event_types text[]      NOT NULL,
    created_by  text        NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    disabled_at timestamptz
);

CREATE TABLE payment_webhook_deliveries (
    id              text        PRIMARY KEY,
    endpoint_id     text        NOT NULL REFERENCES payment_webhook_endpoints (id),
    event_id        text        NOT NULL,
    event_type      text        NOT NULL,
    payload         jsonb       NOT NULL,
    status          text        NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts        integer     NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    last_error      text,
    delivered_at    timestamptz,
    UNIQUE (endpoint_id, event_id)
);
CREATE INDEX payment_webhook_deliveries_due ON payment_webhook_deliveries (next_attempt_at) WHERE status = 'pending';
