-- Which authorization of the intent the processor is (or was last) asked for. A declined intent (Stripe keeps
-- them: `requires_payment_method` with its `last_payment_error`) may be confirmed again, with another payment
-- method or the same one; that confirmation is a new attempt and needs a processor idempotency key of its own,
-- or the processor answers the old attempt's decline. The key is stable across retries of one attempt (the
-- `processing` resolver asks with it after an outage), so the number is stored with the intent's state.
-- Attempt 1 keeps the key every intent had before this column (rows written before it are all attempt 1).
ALTER TABLE payment_intents ADD COLUMN authorization_attempt integer NOT NULL DEFAULT 1
    CHECK (authorization_attempt >= 1);
