-- A customer's conversion quote: `to_amount` of `to_currency` for `from_amount` of `from_currency` at
-- one loaded rate, until `expires_at`; paying with it accepts it, once (`conversion_id`).
CREATE TABLE conversion_quotes (
    id            text        PRIMARY KEY,
    customer_id   text        NOT NULL,
    rate_id       text        NOT NULL REFERENCES exchange_rates (id),
    from_currency text        NOT NULL,
    from_amount   bigint      NOT NULL CHECK (from_amount > 0),
    to_currency   text        NOT NULL,
    to_amount     bigint      NOT NULL CHECK (to_amount > 0),
    expires_at    timestamptz NOT NULL,
    conversion_id text        UNIQUE,
    used_at       timestamptz,
    created_at    timestamptz NOT NULL DEFAULT now(),
    CHECK (from_currency <> to_currency)
);
CREATE INDEX conversion_quotes_customer ON conversion_quotes (customer_id, id);

-- A conversion: the pair of journal entries (one per currency, each through its fx_clearing account)
-- that moved `from_amount` out of one account and `to_amount` into another, at the rate named.
CREATE TABLE fx_conversions (
    id            text        PRIMARY KEY,
    rate_id       text        NOT NULL REFERENCES exchange_rates (id),
    quote_id      text        UNIQUE REFERENCES conversion_quotes (id),
    from_account  text        NOT NULL REFERENCES ledger_accounts (id),
    from_currency text        NOT NULL,
    from_amount   bigint      NOT NULL CHECK (from_amount > 0),
    to_account    text        NOT NULL REFERENCES ledger_accounts (id),
    to_currency   text        NOT NULL,
    to_amount     bigint      NOT NULL CHECK (to_amount > 0),
    out_entry_id  text        NOT NULL UNIQUE REFERENCES journal_entries (id),
    in_entry_id   text        NOT NULL UNIQUE REFERENCES journal_entries (id),
    reference     text,
    actor         text        NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    CHECK (from_currency <> to_currency)
);
