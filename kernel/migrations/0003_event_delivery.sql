-- Delivery state of events (kernel/eventbus.py has the design): an outbox row is settled once every
-- consumer group that must see it has processed it (or parked it as a dead letter). Until then the
-- relay can publish it again when the stream lost it.
ALTER TABLE outbox ADD COLUMN settled_at timestamptz;
-- What was published before this migration counts as delivered: the guarantee starts here.
UPDATE outbox SET settled_at = published_at WHERE published_at IS NOT NULL;
CREATE INDEX outbox_unsettled ON outbox (seq) WHERE settled_at IS NULL;

-- The consumer groups of a stream and the event types each must see (the types it has handlers for).
-- Written by each consumer at start and refreshed while it runs; a group silent longer than the event
-- retention no longer holds events back.
CREATE TABLE event_groups (
    stream      text        NOT NULL,
    group_name  text        NOT NULL,
    event_types text[]      NOT NULL,
    seen_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (stream, group_name)
);

-- Handler failures per (group, event): retried with back-off while parked_at is null, then parked for an
-- operator to see and replay. The outbox keeps an event while a dead letter names it (a replay puts it
-- back there); `payload` is the event as published all the same.
CREATE TABLE dead_letters (
    id              text        PRIMARY KEY,
    group_name      text        NOT NULL,
    event_id        text        NOT NULL,
    event_type      text        NOT NULL,
    payload         jsonb       NOT NULL,
    error           text        NOT NULL,
    attempts        integer     NOT NULL,
    first_failed_at timestamptz NOT NULL DEFAULT now(),
    last_failed_at  timestamptz NOT NULL DEFAULT now(),
    parked_at       timestamptz,
    UNIQUE (group_name, event_id)
);
CREATE INDEX dead_letters_parked ON dead_letters (id) WHERE parked_at IS NOT NULL;
CREATE INDEX dead_letters_event ON dead_letters (event_id);
