-- When the order's current courier was given it and when the order ended: the stretch of the courier's
-- track its customer was shown while watching the order (a customer's privacy export, docs/PRIVACY.md).
ALTER TABLE tracking_orders ADD COLUMN courier_since timestamptz;
ALTER TABLE tracking_orders ADD COLUMN ended_at timestamptz;
