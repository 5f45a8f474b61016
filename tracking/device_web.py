"""Routes of tracker devices: `/osmand` (the OsmAnd protocol of Traccar Client and similar apps, on the main
port) and the operator routes that issue, list and revoke a courier's device keys."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec
from aiohttp import web

from kernel.errors import DomainError
from kernel.fielddoc import doc
from kernel.http import OPERATOR, decode_body, endpoint, json_response, principal
from tracking.devices import CourierSocketOpen, DeviceIngest, DeviceKeyRevoked, DeviceKeys, InvalidDeviceKey
from tracking.osmand import DeviceFix, InvalidFix, negative_speed_is_unknown, parse_json, parse_params

DEVICE_KEYS = web.AppKey("tracking_device_keys", DeviceKeys)
DEVICE_INGEST = web.AppKey("tracking_device_ingest", DeviceIngest)
routes = web.RouteTableDef()
TAGS = ["tracking"]


class DeviceKeyCreate(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A key for a courier's tracker app."""

    name: Annotated[str, msgspec.Meta(min_length=1, max_length=100), doc("What the key is for", "Traccar phone")] = (
        "tracker")


class DeviceKeyOut(msgspec.Struct, frozen=True):
    """A courier's device key (the key itself only when issued)."""

    id: Annotated[str, doc("The device key's id (to revoke it)", "dev_01JE3ZK4Q8N3W6V5T2R1P0M9XA")]
    courier_id: Annotated[str, doc("The courier it reports for", "cou_01JE3ZK4Q8N3W6V5T2R1P0M9XA")]
    name: Annotated[str, doc("What the key is for", "Traccar phone")]
    created_at: Annotated[datetime, doc("When it was issued (UTC)", "2026-12-01T09:30:00Z")]
    last_used_at: Annotated[datetime | None, doc("When a fix last came with it", "2026-12-07T18:20:14Z")]
    revoked_at: Annotated[datetime | None, doc("When it was revoked, if it was", None)]
    key: Annotated[str | None, doc("The key: the tracker app's device id. Shown once, when issued",  # shown once
                                  "fdd_5c1e9a7b3f2d4e6a")] = None


class DeviceKeyList(msgspec.Struct, frozen=True):
    """A courier's device keys."""

    items: Annotated[list[DeviceKeyOut], doc("The keys, without the keys themselves", [])]


class RejectedFix(msgspec.Struct, frozen=True):
    """A fix that failed validation."""

    index: Annotated[int, doc("The fix's place in the request (0: the first)", 0)]
    reason: Annotated[str, doc("teleport, clock_ahead, too_old or out_of_range", "teleport")]


class OsmAndResult(msgspec.Struct, frozen=True):
    """`accepted`: fixes stored in the live index; `duplicates`: no newer than the last stored fix (sent
    again); `rejected`: fixes that failed validation, with the reason (`teleport`, `clock_ahead`,
    `too_old`, `out_of_range`). A rejected fix is answered 200 too: the device must not resend it."""

    accepted: Annotated[int, doc("Fixes stored in the live index", 1)]
    duplicates: Annotated[int, doc("Fixes no newer than the last stored one (sent again)", 0)]
    rejected: Annotated[list[RejectedFix], doc("Fixes that failed validation", [])]


class DeviceUnavailable(DomainError):
    status = 503
    code = "tracking_unavailable"


def _key_out(row: dict[str, object], key: str | None = None) -> DeviceKeyOut:
    return msgspec.convert({**row, "key": key}, DeviceKeyOut)


async def _fixes(request: web.Request) -> list[DeviceFix]:
    if request.method == "POST" and not request.query:
        body = await request.read()
        if request.content_type == "application/json" or body.lstrip()[:1] == b"{":
            return parse_json(body)
        form = await request.post()
        return [parse_params({k: str(v) for k, v in form.items()})]
    return [parse_params(dict(request.query))]


@routes.post("/osmand")
@routes.get("/osmand")
@endpoint(roles=None, response=OsmAndResult, tags=TAGS,
          errors=[InvalidDeviceKey, DeviceKeyRevoked, CourierSocketOpen, InvalidFix, DeviceUnavailable],
          summary="OsmAnd protocol (Traccar Client): GET or POST a fix with id (the device key), lat, lon, "
                  "timestamp, speed (knots), bearing, accuracy, altitude, batt; or the JSON body newer Traccar "
                  "Client versions send. Same validation and live index as the courier socket")
async def osmand(request: web.Request) -> web.Response:
    fixes = [negative_speed_is_unknown(f) for f in await _fixes(request)]
    keys = {f.device_key for f in fixes}
    if len(keys) != 1:
        raise InvalidFix("every fix of a request must name the same device", param="id")
    courier_id = await request.app[DEVICE_KEYS].courier_for(keys.pop())
    try:
        result = await request.app[DEVICE_INGEST].ingest(courier_id, fixes)
    except TimeoutError:
        raise DeviceUnavailable("the live index did not store the fix in time; send it again") from None
    return json_response(OsmAndResult(result.accepted, result.duplicates,
                                      [RejectedFix(i, r) for i, r in result.rejected]))


@routes.post("/v1/couriers/{courier_id}/device_keys")
@endpoint(roles={OPERATOR}, body=DeviceKeyCreate, response=DeviceKeyOut, status=201, tags=TAGS,
          summary="Issue a key for a courier's tracker app (shown once): the app sends it as its device "
                  "identifier to /osmand")
async def issue_device_key(request: web.Request) -> web.Response:
    body = await decode_body(request, DeviceKeyCreate)
    row, key = await request.app[DEVICE_KEYS].issue(request.match_info["courier_id"], body.name,
                                                    principal(request).account_id)
    return json_response(_key_out(row, key), status=201)


@routes.get("/v1/couriers/{courier_id}/device_keys")
@endpoint(roles={OPERATOR}, response=DeviceKeyList, tags=TAGS, summary="A courier's device keys (never the keys)")
async def list_device_keys(request: web.Request) -> web.Response:
    rows = await request.app[DEVICE_KEYS].of_courier(request.match_info["courier_id"])
    return json_response(DeviceKeyList([_key_out(r) for r in rows]))


@routes.delete("/v1/device_keys/{id}")
@endpoint(roles={OPERATOR}, status=204, tags=TAGS, errors=[404], summary="Revoke a device key")
async def revoke_device_key(request: web.Request) -> web.Response:
    await request.app[DEVICE_KEYS].revoke(request.match_info["id"])
    return web.Response(status=204)


def setup(app: web.Application) -> None:
    app.add_routes(routes)
