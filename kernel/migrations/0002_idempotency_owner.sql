-- An in-progress Idempotency-Key claim belongs to the process that made it: `owner` is that
-- process's instance id, whose PostgreSQL advisory lock the process holds for its life
-- (fooddispatch/liveness.py). A claim whose owner's lock is free belongs to a dead process
-- and is taken over at once. NULL on rows written before this column existed.
ALTER TABLE idempotency_keys ADD COLUMN owner bigint;
