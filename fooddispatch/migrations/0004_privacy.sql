-- Privacy (docs/PRIVACY.md): the auditor role, erasure requests, and the log of who read whose data.

-- An auditor reads the access log and nothing else.
ALTER TABLE accounts DROP CONSTRAINT accounts_role_check;
ALTER TABLE accounts ADD CONSTRAINT accounts_role_check
    CHECK (role IN ('customer', 'courier', 'staff', 'operator', 'auditor'));
-- Set when the account's personal data was erased (name, email and password are gone; the id stays,
-- so financial records keep their pseudonymous owner).
ALTER TABLE accounts ADD COLUMN erased_at timestamptz;

-- One row per erased person: who asked, when, why, and what each package did (counts, no personal data).
-- A second request finds the row and changes nothing.
CREATE TABLE privacy_erasures (
    account_id        text        PRIMARY KEY,
    role              text        NOT NULL,
    requested_by      text        NOT NULL,
    requested_by_role text        NOT NULL,
    reason            text        NOT NULL,
    requested_at      timestamptz NOT NULL,
    completed_at      timestamptz,
    summary           jsonb       NOT NULL DEFAULT '{}'
);

-- Every read of a person's data by someone else (an operator's export or view) and every export: who, what,
-- when, why. Append-only; readable by auditors only (GET /v1/privacy/access_log).
CREATE TABLE privacy_access_log (
    id          bigserial   PRIMARY KEY,
    actor_id    text        NOT NULL,
    actor_role  text        NOT NULL,
    subject_id  text        NOT NULL,
    what        text        NOT NULL,
    reason      text        NOT NULL,
    at          timestamptz NOT NULL,
    request_id  text
);
CREATE INDEX privacy_access_log_subject ON privacy_access_log (subject_id, id);
CREATE INDEX privacy_access_log_at ON privacy_access_log (at, id);
