-- The event outbox: written in the same transaction as the state change it announces.
CREATE TABLE outbox (
    seq          bigserial PRIMARY KEY,
    event_id     text        NOT NULL UNIQUE,
    type         text        NOT NULL,
    aggregate_id text,
    occurred_at  timestamptz NOT NULL,
    payload      jsonb       NOT NULL,
    published_at timestamptz
);
-- The relay only ever scans what is still unpublished.
CREATE INDEX outbox_unpublished ON outbox (seq) WHERE published_at IS NULL;

-- Consumers record each event they handled in the handler's own transaction:
-- a redelivered event finds its row and is skipped.
CREATE TABLE processed_events (
    consumer     text        NOT NULL,
    event_id     text        NOT NULL,
    processed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, event_id)
);

-- Stored first responses for Idempotency-Key replays (kept 24 h).
CREATE TABLE idempotency_keys (
    principal    text        NOT NULL,
    key          text        NOT NULL,
    fingerprint  text        NOT NULL,
    status       integer,
    content_type text,
    body         bytea,
    created_at   timestamptz NOT NULL DEFAULT now(),
    completed_at timestamptz,
    PRIMARY KEY (principal, key)
);
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);
