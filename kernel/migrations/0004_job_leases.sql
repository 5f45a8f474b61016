-- Leases of the recurring jobs that must run in one process at a time (kernel/leases.py).
CREATE TABLE job_leases (
    job        text PRIMARY KEY,
    holder     text NOT NULL,
    expires_at timestamptz NOT NULL
);
