"""The operations console's socket sends its JSON in text frames, as every socket of ours does
(the tablet feed, the courier and the customer tracking sockets have theirs checked in their own
tests): a browser hands a binary frame to the page as a Blob, not as text."""

from __future__ import annotations

import json

import aiohttp


async def test_the_console_feed_sends_its_snapshot_as_a_text_frame(client, make_principal) -> None:
    _, operator = await make_principal("operator")
    async with client.ws_connect("/v1/ops/ws", headers=operator) as ws:
        msg = await ws.receive(timeout=10)
        assert msg.type == aiohttp.WSMsgType.TEXT, msg.type
        assert isinstance(json.loads(msg.data), dict)
