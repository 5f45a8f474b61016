"""A courier frame whose text PostgreSQL cannot store (a NUL) is refused as an invalid frame
naming the field, the same rule as every HTTP input: it never reaches the outbox, where it failed
as "unavailable, resend it" and the app resent it forever."""

from __future__ import annotations

import msgspec
from tracking_helpers import receive_until, wait_acked


async def test_a_nul_in_an_action_frame_is_an_invalid_frame_naming_the_field(client, make_courier, db) -> None:
    _cid, headers = await make_courier()
    async with client.ws_connect("/v1/courier/ws", headers=headers) as ws:
        await wait_acked(ws, 0)
        await ws.send_json({"type": "picked_up", "order_id": "ord_\u0000", "id": "a1"})
        error = await receive_until(ws, lambda f: f["type"] == "error")
        assert error["code"] == "invalid_frame"
        assert "order_id" in error["message"]
        frame = {"type": "delivered", "order_id": "ord_1", "proof": {"code": "12\u00003"}, "id": "a2"}
        await ws.send_bytes(msgspec.msgpack.encode(frame))  # the binary (msgpack) spelling too
        error = await receive_until(ws, lambda f: f["type"] == "error")
        assert error["code"] == "invalid_frame"
        assert "proof.code" in error["message"]
    async with db.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM outbox WHERE type LIKE 'courier.%'") == 0
