-- Promo codes are unique per tenant, not across the platform: one restaurant can no longer
-- squat another's code. A store's promo belongs to the store's tenant; platform-wide promos
-- (no tenant) share one namespace among themselves (NULLS NOT DISTINCT, PostgreSQL 15+).
-- Checkout looks a code up within the store's tenant first, then among platform-wide ones.
DROP INDEX promos_code;
CREATE UNIQUE INDEX promos_tenant_code ON promos (tenant_id, upper(code)) NULLS NOT DISTINCT;
