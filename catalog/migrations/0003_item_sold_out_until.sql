-- "Sold out today": a sold-out item carries the instant it is back in stock by itself (the next local
-- midnight of the store when it was sold out, or an end the merchant gave). The menu document's item
-- carries the same `sold_out_until`; reads decide with their own time, nothing rewrites the row then.
-- Items sold out before this migration have no end: they stay sold out until the menu is next written.
ALTER TABLE catalog_items ADD COLUMN sold_out_until timestamptz;
ALTER TABLE catalog_items ADD CONSTRAINT catalog_items_sold_out_until_only_when_sold_out
    CHECK (sold_out_until IS NULL OR availability = 'sold_out');
