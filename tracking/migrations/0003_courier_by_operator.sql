-- An operator gave the order to its courier by hand (`order.courier_assigned`): a `dispatch.assigned` of the
-- order that arrives afterwards is stale (dispatch decided it before it heard of the hand-over) and leaves
-- the courier as it is. The hold ends when its courier lets go of the order (`dispatch.unassigned`).
ALTER TABLE tracking_orders ADD COLUMN courier_by_operator boolean NOT NULL DEFAULT false;
