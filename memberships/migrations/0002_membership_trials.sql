-- One free trial per customer, ever (docs/MEMBERSHIPS.md): the customer's first subscription that started
-- trialing, whatever its plan. A subscribe that would start a trial inserts this row first, in its own
-- transaction; the primary key is where two concurrent subscribes of one customer meet (the second insert
-- waits for the first transaction, then finds the row and subscribes without a trial). The foreign key is
-- checked at commit: the row is written before the subscription it names.
CREATE TABLE membership_trials (
    customer_id      text        PRIMARY KEY,
    subscription_id  text        NOT NULL REFERENCES membership_subscriptions (id) DEFERRABLE INITIALLY DEFERRED,
    started_at       timestamptz NOT NULL
);

-- Customers who trialed before the rule: their first trial (trial_end stays set after a trial ends).
INSERT INTO membership_trials (customer_id, subscription_id, started_at)
SELECT DISTINCT ON (customer_id) customer_id, id, created_at
FROM membership_subscriptions
WHERE trial_end IS NOT NULL
ORDER BY customer_id, created_at, id;
