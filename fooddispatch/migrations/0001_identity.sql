-- Accounts of every role. Staff belong to exactly one tenant; the tenant row
-- itself is the catalog's, so it is referenced by id only.
CREATE TABLE accounts (
    id            text        PRIMARY KEY,
    role          text        NOT NULL CHECK (role IN ('customer', 'courier', 'staff', 'operator')),
    email         text,
    password_hash text,
    name          text,
    tenant_id     text,
    created_at    timestamptz NOT NULL DEFAULT now(),
    disabled_at   timestamptz,
    CHECK ((role = 'staff') = (tenant_id IS NOT NULL))
);
CREATE UNIQUE INDEX accounts_email ON accounts (lower(email)) WHERE email IS NOT NULL;

-- Restaurant integration keys: only a SHA-256 of the secret is stored; the
-- secret is shown once at creation. Looked up by its public prefix.
CREATE TABLE api_keys (
    id          text        PRIMARY KEY,
    tenant_id   text        NOT NULL,
    prefix      text        NOT NULL UNIQUE,
    secret_hash text        NOT NULL,
    name        text        NOT NULL,
    created_by  text        NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz,
    last_used_at timestamptz
);
CREATE INDEX api_keys_tenant ON api_keys (tenant_id);
