-- An operator gave the order to its courier by hand (POST /v1/orders/{id}/courier): dispatch no longer
-- decides who carries it, so a `dispatch.assigned` of the order that arrives afterwards is stale (an offer
-- made, or accepted, before dispatch heard of the hand-over) and changes nothing. The hold ends when its
-- courier lets go of the order (`dispatch.unassigned`).
ALTER TABLE orders ADD COLUMN courier_by_operator boolean NOT NULL DEFAULT false;
