-- Which intents the unused-hold sweeper may void: only those `authorize` wrote apart from a checkout's
-- transaction (3-D Secure, or declined and confirmed again with another card), which wait for that checkout's
-- retry to claim them (`attach_authorized` clears the mark when it sets the reference). A manual-capture intent
-- created through `POST /v1/payment_intents` never has a reference either, but its integrator captures or
-- cancels it: it is never marked, so the sweeper never touches it.
-- Rows written before this migration are not marked (nothing tells an unclaimed checkout hold from an API hold
-- for sure): the sweeper leaves them, as it did before 0002.
ALTER TABLE payment_intents ADD COLUMN awaiting_order boolean NOT NULL DEFAULT false;

-- 0002's index covered API holds too; the sweeper's predicate is now this one (store._UNUSED_HOLD).
DROP INDEX payment_intents_unused_holds;
CREATE INDEX payment_intents_unused_holds ON payment_intents (updated_at)
    WHERE awaiting_order AND status = 'requires_capture' AND reference IS NULL;
