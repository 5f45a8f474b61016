"""AsyncAPI 3.0 document of the websockets, generated (like fooddispatch/openapi.py) from the msgspec frame
types each package declares in its messages.py; served at `GET /asyncapi.json`. Only the list of which
socket sends and accepts which frames, and its close codes, is written here.
tests/e2e/test_asyncapi_frames.py checks the frames real sockets exchange against this document."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, get_args

import msgspec
from aiohttp import web

from dispatch import messages as dispatch_frames
from dispatch.offers import Verdict
from fooddispatch.apps.web import LINK_GONE
from fooddispatch.errors import INTERNAL_ERROR, TRY_AGAIN_LATER
from fooddispatch.ops.messages import ConsoleLive, ConsoleSnapshot
from kernel.http import json_response
from orders.messages import FeedFrame, FeedHello
from tracking import courier as courier_socket
from tracking import messages as tracking_frames
from tracking.public_view import LinkPosition, LinkStatus
from tracking.watchers import ERASED

GOING_AWAY, POLICY_VIOLATION, MESSAGE_TOO_BIG = 1001, 1008, 1009  # IANA websocket close codes
_SHARED_CLOSES = {
    TRY_AGAIN_LATER: "a dependency (PostgreSQL, Redis) is down: reconnect later (fooddispatch/errors.py)",
    INTERNAL_ERROR: "internal error",
}


@dataclass(frozen=True)
class Socket:
    """One websocket: what the server sends on it, what it accepts, and why it closes."""

    name: str
    address: str
    summary: str
    roles: tuple[str, ...]
    sends: tuple[type, ...]
    receives: tuple[type, ...]
    closes: dict[int, str]
    errors: dict[str, str] = field(default_factory=dict)  # the `code`s of its `error` frames


SOCKETS = (
    Socket("courier", "/v1/courier/ws",
           "The courier app's socket. Authenticate with the Authorization header, `?access_token=`, or a first "
           "`hello` frame with a token. Client frames are JSON text frames or msgpack binary frames with the same "
           "fields; server frames are JSON text. Dispatch's frames (offer, offer_cancelled, reposition, "
           "offer errors) reach the socket through the courier's channel, forwarded verbatim.",
           ("courier",),
           (tracking_frames.Ack, tracking_frames.Error, tracking_frames.StatusSet, tracking_frames.Assigned,
            tracking_frames.Unassigned, dispatch_frames.OfferFrame, dispatch_frames.OfferCancelled,
            dispatch_frames.RepositionFrame, dispatch_frames.ErrorFrame),
           get_args(tracking_frames.CourierFrame),  # what its decoders accept
           {courier_socket.AUTH_FAILED: "no credentials: the first frame was not a hello with a valid token, or "
                                        "none came in time",
            courier_socket.FORBIDDEN: "only couriers may open this socket",
            courier_socket.REPLACED: "replaced by a newer connection of the same courier",
            courier_socket.POLICY_VIOLATION: "too many malformed frames",
            MESSAGE_TOO_BIG: "a frame over the size limit",
            TRY_AGAIN_LATER: "too slow: the outgoing queue is full (the app is not reading what is sent)",
            GOING_AWAY: "server shutting down, or no answer to pings"},
           {**tracking_frames.FRAME_ERRORS,
            **{v.value: f"dispatch refused the offer response ({v.name.lower().replace('_', ' ')}); `offer_id` "
                        "names the offer" for v in Verdict if v.value.startswith("offer_")}}),
    Socket("order_tracking", "/v1/orders/{order_id}/track",
           "Live view of one order for its customer, the restaurant's staff and operators: the order's status "
           "first, then status changes and, between assignment and delivery, the assigned courier's position. "
           "The server reads nothing from the client.",
           ("customer", "staff", "operator"),
           get_args(tracking_frames.OrderMessage), (),
           {ERASED: "the customer's account was erased (reason `account_erased`; docs/PRIVACY.md): a customer's "
                    "own socket closes at once, on whichever process holds it",
            TRY_AGAIN_LATER: "too slow: the outgoing queue is full", MESSAGE_TOO_BIG: "a frame over 4096 bytes",
            GOING_AWAY: "server shutting down, or no answer to pings"}),
    Socket("tracking_link", "/v1/orders/{order_id}/tracking/ws",
           "The order's live view for a tracking link's holder (`?token=`): the customer's frames without "
           "account ids (the courier is a first name and a vehicle). The server reads nothing from the client.",
           (), (LinkStatus, LinkPosition), (),
           {LINK_GONE: "the tracking link was revoked or expired (the reason is its error code); when the order's "
                       "customer is erased, at once (reason `tracking_link_revoked`)",
            TRY_AGAIN_LATER: "too slow: the outgoing queue is full", MESSAGE_TOO_BIG: "a frame over 4096 bytes",
            GOING_AWAY: "server shutting down, or no answer to pings"}),
    Socket("store_orders_feed", "/v1/stores/{store_id}/orders/feed",
           "The restaurant tablet's feed: a hello with the store's active orders, then one frame per order event "
           "of the store. The server reads nothing from the client; on reconnect the hello lists every active "
           "order again, so a tablet catches up by keying orders by id.",
           ("staff",), (FeedHello, FeedFrame), (),
           {POLICY_VIOLATION: "too slow: reconnect to catch up",
            TRY_AGAIN_LATER: "redis_unavailable; reconnect to catch up"}),
    Socket("ops_console", "/v1/ops/ws",
           "The operations console's feed: a snapshot first and every second, and any message published on the "
           "ops Redis channel. "
           "The server reads nothing from the client.",
           ("operator",), (ConsoleSnapshot, ConsoleLive), (),
           {GOING_AWAY: "server shutting down", TRY_AGAIN_LATER: "console too slow",
            MESSAGE_TOO_BIG: "a frame over 64 KiB"}),
)


def build_asyncapi(title: str = "fooddispatch websockets", version: str = "0.1.0") -> dict[str, Any]:
    types = list(dict.fromkeys(t for s in SOCKETS for t in (*s.sends, *s.receives)))
    refs, schemas = msgspec.json.schema_components(types, ref_template="#/components/schemas/{name}")
    name_of = {t: ref["$ref"].rsplit("/", 1)[-1] for t, ref in zip(types, refs, strict=True)}
    messages = {name_of[t]: _message(t, name_of[t]) for t in types}
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    for socket in SOCKETS:
        channels[socket.name] = _channel(socket, name_of)
        for action, sent in (("send", socket.sends), ("receive", socket.receives)):
            if sent:
                operations[f"{socket.name}_{action}"] = {
                    "action": action, "channel": {"$ref": f"#/channels/{socket.name}"},
                    "summary": "Frames the server sends" if action == "send" else "Frames the server accepts",
                    "messages": [{"$ref": f"#/channels/{socket.name}/messages/{name_of[t]}"} for t in sent],
                }
    return {
        "asyncapi": "3.0.0",
        "info": {"title": title, "version": version,
                 "description": "The websockets of fooddispatch: every frame is a JSON object tagged by `type`. "
                                "Operations are from the server's side: `send` is server to client."},
        "defaultContentType": "application/json",
        "channels": channels,
        "operations": operations,
        "components": {"schemas": schemas, "messages": messages},
    }


def _message(frame: type, name: str) -> dict[str, Any]:
    doc = (frame.__doc__ or "").strip()
    tag = msgspec.inspect.type_info(frame).tag  # type: ignore[attr-defined]
    found: dict[str, Any] = {"name": tag, "title": name, "payload": {"$ref": f"#/components/schemas/{name}"}}
    if doc:
        found["summary"] = " ".join(doc.split())
    return found


def _channel(socket: Socket, name_of: dict[type, str]) -> dict[str, Any]:
    closes = {**_SHARED_CLOSES, **socket.closes}
    params = [part[1:-1] for part in socket.address.split("/") if part.startswith("{")]
    channel: dict[str, Any] = {
        "address": socket.address,
        "description": socket.summary + " Close codes: "
        + "; ".join(f"{code} {reason}" for code, reason in sorted(closes.items())) + ".",
        "messages": {name_of[t]: {"$ref": f"#/components/messages/{name_of[t]}"}
                     for t in (*socket.sends, *socket.receives)},
        "x-roles": list(socket.roles),
        "x-close-codes": [{"code": code, "reason": reason} for code, reason in sorted(closes.items())],
    }
    if socket.errors:
        channel["description"] += (" Error frame codes for a refused frame: "
                                   + "; ".join(f"{code}: {why}" for code, why in socket.errors.items()) + ".")
        channel["x-error-codes"] = [{"code": code, "meaning": why} for code, why in socket.errors.items()]
    if params:
        channel["parameters"] = {p: {"description": f"the {p.replace('_', ' ')}"} for p in params}
    return channel


async def asyncapi_handler(request: web.Request) -> web.Response:
    """The AsyncAPI 3.0 document of this API's websockets."""
    return json_response(build_asyncapi())


def setup(app: web.Application) -> None:
    app.router.add_get("/asyncapi.json", asyncapi_handler)
