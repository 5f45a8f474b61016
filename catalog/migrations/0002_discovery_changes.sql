-- Discovery keeps stores in memory and polls for rows changed since its last look.
CREATE INDEX catalog_stores_updated ON catalog_stores (updated_at);
