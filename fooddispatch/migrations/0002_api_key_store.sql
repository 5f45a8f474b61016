-- A restaurant tablet's API key acts for one store of its tenant; NULL: every store
-- of the tenant (as every key did before). The store row is the catalog's: by id only.
ALTER TABLE api_keys ADD COLUMN store_id text;
