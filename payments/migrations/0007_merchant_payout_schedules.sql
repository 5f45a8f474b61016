-- A restaurant tenant's payout schedule (payments/merchant_payouts.py): daily, or weekly on a weekday, of what its
-- balance has available in one currency, when that is at least `minimum_amount`. `next_run_at` is when the job
-- pays next (midnight UTC).
CREATE TABLE merchant_payout_schedules (
    tenant_id      text        PRIMARY KEY,
    currency       text        NOT NULL,
    every          text        NOT NULL CHECK (every IN ('daily', 'weekly')),
    weekday        integer     CHECK (weekday BETWEEN 0 AND 6),
    minimum_amount bigint      NOT NULL CHECK (minimum_amount >= 0),
    next_run_at    timestamptz NOT NULL,
    updated_at     timestamptz NOT NULL DEFAULT now(),
    CHECK ((every = 'weekly') = (weekday IS NOT NULL))
);
CREATE INDEX merchant_payout_schedules_due ON merchant_payout_schedules (next_run_at);

-- A scheduled restaurant payout pays what orders credited before this time (the pending period's start when it
-- was made): the statement lines it settles are those between the previous such payout's time and this one.
ALTER TABLE payouts ADD COLUMN settles_until timestamptz;
