-- Merchants (tenants), their stores, hours, zones, menus, stock and the audit trail.
CREATE EXTENSION IF NOT EXISTS pg_trgm;

CREATE TABLE catalog_tenants (
    id         text        PRIMARY KEY,
    name       text        NOT NULL,
    created_by text        NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE catalog_stores (
    id                  text        PRIMARY KEY,
    tenant_id           text        NOT NULL REFERENCES catalog_tenants (id),
    name                text        NOT NULL,
    lat                 double precision NOT NULL,
    lng                 double precision NOT NULL,
    timezone            text        NOT NULL,
    currency            text        NOT NULL,
    tax_rate_bps        integer     NOT NULL DEFAULT 0 CHECK (tax_rate_bps BETWEEN 0 AND 10000),
    tax_inclusive       boolean     NOT NULL DEFAULT false,
    prep_time_default_s integer     NOT NULL DEFAULT 900,
    accept_window_s     integer     NOT NULL DEFAULT 300,
    status              text        NOT NULL DEFAULT 'online' CHECK (status IN ('online', 'paused', 'closed')),
    paused_until        timestamptz,
    region              text        NOT NULL,
    hours               jsonb       NOT NULL DEFAULT '[]',   -- [{weekday, opens, closes}]
    zones               jsonb       NOT NULL DEFAULT '[]',   -- [GeoJSON Polygon | MultiPolygon]
    zone_version        integer     NOT NULL DEFAULT 0,
    max_delivery_m      integer     NOT NULL DEFAULT 5000,
    fee_bands           jsonb       NOT NULL DEFAULT '[]',   -- [{up_to_m, fee}]
    menu_version        integer     NOT NULL DEFAULT 0,
    version             integer     NOT NULL DEFAULT 1,      -- bumped by every change to the store
    search              tsvector    GENERATED ALWAYS AS (to_tsvector('simple', name)) STORED,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX catalog_stores_tenant ON catalog_stores (tenant_id, id);
CREATE INDEX catalog_stores_paused ON catalog_stores (paused_until) WHERE status = 'paused';
CREATE INDEX catalog_stores_name_trgm ON catalog_stores USING gin (name gin_trgm_ops);

-- Added and removed one by one: a new special day never touches the others.
CREATE TABLE catalog_special_days (
    store_id text    NOT NULL REFERENCES catalog_stores (id) ON DELETE CASCADE,
    day      date    NOT NULL,
    closed   boolean NOT NULL,
    periods  jsonb   NOT NULL DEFAULT '[]',                  -- [{opens, closes}]
    note     text,
    PRIMARY KEY (store_id, day)
);

-- The spatial prefilter: H3 cells (compacted) covering each store's zones, rebuilt when they change.
-- Discovery looks up the point's cell and its parents here instead of scanning every zone.
CREATE TABLE catalog_zone_cells (
    cell     bigint  NOT NULL,
    store_id text    NOT NULL REFERENCES catalog_stores (id) ON DELETE CASCADE,
    interior boolean NOT NULL,                                -- wholly inside the zone: no exact test needed
    PRIMARY KEY (cell, store_id)
);
CREATE INDEX catalog_zone_cells_store ON catalog_zone_cells (store_id);

-- Every published menu is kept: the version number is the menu's identity.
CREATE TABLE catalog_menus (
    store_id   text        NOT NULL REFERENCES catalog_stores (id) ON DELETE CASCADE,
    version    integer     NOT NULL,
    document   jsonb       NOT NULL,
    created_by text        NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (store_id, version)
);

-- The current menu's items, flattened for search; item ids are global so orders can name them alone.
CREATE TABLE catalog_items (
    id           text    PRIMARY KEY,
    store_id     text    NOT NULL REFERENCES catalog_stores (id) ON DELETE CASCADE,
    name         text    NOT NULL,
    description  text    NOT NULL DEFAULT '',
    price        integer NOT NULL,
    availability text    NOT NULL,
    search       tsvector GENERATED ALWAYS AS (
        setweight(to_tsvector('simple', name), 'A') || setweight(to_tsvector('simple', description), 'B')
    ) STORED
);
CREATE INDEX catalog_items_store ON catalog_items (store_id);
CREATE INDEX catalog_items_search ON catalog_items USING gin (search);
CREATE INDEX catalog_items_name_trgm ON catalog_items USING gin (name gin_trgm_ops);

-- Counted stock: only items with a row are limited. Never below zero (CHECK + conditional UPDATE).
CREATE TABLE catalog_stock (
    item_id  text    PRIMARY KEY,
    store_id text    NOT NULL REFERENCES catalog_stores (id) ON DELETE CASCADE,
    count    integer NOT NULL CHECK (count >= 0)
);
CREATE INDEX catalog_stock_store ON catalog_stock (store_id);

-- What each order took, so a release gives it back exactly once.
CREATE TABLE catalog_reservations (
    order_id    text        NOT NULL,
    item_id     text        NOT NULL,
    quantity    integer     NOT NULL CHECK (quantity > 0),
    reserved_at timestamptz NOT NULL DEFAULT now(),
    released_at timestamptz,
    PRIMARY KEY (order_id, item_id)
);

-- Who changed what, when.
CREATE TABLE catalog_audit (
    id        bigserial   PRIMARY KEY,
    tenant_id text        NOT NULL,
    store_id  text,
    actor     text        NOT NULL,
    action    text        NOT NULL,
    detail    jsonb       NOT NULL DEFAULT '{}',
    at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX catalog_audit_store ON catalog_audit (store_id, id);
