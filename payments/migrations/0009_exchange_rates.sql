-- Exchange rates operators load: one unit of `base` is worth rate_num / rate_den units of `quote`
-- (major units), exact integers, never a float; where the rate came from and the time it holds for.
-- A conversion and a report name the row they used.
CREATE TABLE exchange_rates (
    id         text        PRIMARY KEY,
    base       text        NOT NULL CHECK (base ~ '^[A-Z]{3}$'),
    quote      text        NOT NULL CHECK (quote ~ '^[A-Z]{3}$'),
    rate_num   numeric     NOT NULL CHECK (rate_num > 0 AND rate_num = trunc(rate_num)),
    rate_den   numeric     NOT NULL CHECK (rate_den > 0 AND rate_den = trunc(rate_den)),
    source     text        NOT NULL,
    as_of      timestamptz NOT NULL,
    created_by text        NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    CHECK (base <> quote)
);
-- The rate of a pair at a time: the latest as_of at or before it.
CREATE INDEX exchange_rates_pair ON exchange_rates (base, quote, as_of DESC, id DESC);
CREATE INDEX exchange_rates_id ON exchange_rates (id DESC);
