-- The unused-hold sweeper looks for manual-capture holds that pay for no order, oldest first
-- (store.unused_holds); attached and settled intents, nearly all of them, stay out of this index.
CREATE INDEX payment_intents_unused_holds ON payment_intents (updated_at)
    WHERE status = 'requires_capture' AND reference IS NULL AND capture_method = 'manual';
