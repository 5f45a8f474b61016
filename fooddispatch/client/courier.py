"""The courier app's websocket, typed: frames out are tracking's `CourierFrame` Structs, frames in are
decoded into the Structs their producers declared (tracking's acks, errors and operator notices,
dispatch's offers and nudges)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import msgspec

from dispatch import messages as dispatch
from tracking import messages as tracking

# By `type`. An offer is dispatch's frame, forwarded verbatim (a superset of tracking's `Offer`);
# `error` is tracking's shape, which dispatch's offer errors share (code, message).
SERVER_FRAMES: dict[str, type[Any]] = {
    "ack": tracking.Ack,
    "error": tracking.Error,
    "offer": dispatch.OfferFrame,
    "offer_cancelled": dispatch.OfferCancelled,
    "reposition": dispatch.RepositionFrame,
    "status": tracking.StatusSet,
    "assigned": tracking.Assigned,
    "unassigned": tracking.Unassigned,
}


class UnknownFrame(msgspec.Struct, frozen=True):
    """A frame of a type this client does not know yet (skipped by a courier app, kept for the curious)."""

    type: str
    data: dict[str, Any]


class _Kind(msgspec.Struct):
    type: str


class CourierSocket:
    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self._encoder = msgspec.json.Encoder()
        self._kind = msgspec.json.Decoder(_Kind)
        self._decoders = {name: msgspec.json.Decoder(t) for name, t in SERVER_FRAMES.items()}

    async def send(self, frame: tracking.CourierFrame) -> None:
        """As a text frame: the server reads binary frames as msgpack."""
        await self.ws.send_str(self._encoder.encode(frame).decode())

    def decode(self, data: str | bytes) -> Any:
        """One server frame as its Struct (an `UnknownFrame` for a type not in SERVER_FRAMES)."""
        kind = self._kind.decode(data).type
        decoder = self._decoders.get(kind)
        if decoder is None:
            return UnknownFrame(kind, msgspec.json.decode(data))
        return decoder.decode(data)

    async def frames(self) -> AsyncIterator[Any]:
        """The server's frames until the socket closes."""
        async for message in self.ws:
            if message.type in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY):
                yield self.decode(message.data)
