"""The OsmAnd protocol, as tracker apps speak it (Traccar Client, OsmAnd's own live tracking): one HTTP
request per fix to `/osmand`. Pure parsing; the ingest is `tracking/devices.py`.

Two shapes:
- Parameters (the query string of a `GET` or `POST`, or a form body): `id` (our device key), `lat`, `lon`
  (or `location=lat,lon`), `timestamp` (unix seconds, unix milliseconds, or an ISO 8601 / `yyyy-MM-dd
  HH:mm:ss` UTC time), `speed` in knots, `bearing` (or `heading`) in degrees, `accuracy` and `altitude`
  in meters, `batt` in percent.
- The JSON body newer Traccar Client versions send: `{"device_id", "location": {"timestamp" (ISO 8601),
  "coords": {"latitude", "longitude", "speed" (m/s), "heading", "accuracy", "altitude"}, "battery":
  {"level" (0-1)}}}`; `location` may also be a list of such fixes (a buffer sent at once).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, NamedTuple

import msgspec

from kernel.errors import ValidationFailed

KNOT_MPS = 1852.0 / 3600.0  # one knot in meters per second
_SECONDS_UP_TO = 2**31  # a larger integer timestamp is in milliseconds (Traccar reads them the same way)


class InvalidFix(ValidationFailed):
    code = "invalid_fix"


class DeviceFix(NamedTuple):
    device_key: str
    lat: float
    lng: float
    ts: float | None  # device time, unix seconds; None: the device sent none (the time it arrived is used)
    speed: float | None = None  # m/s
    heading: float | None = None
    accuracy: float | None = None
    altitude: float | None = None
    battery: float | None = None  # percent


def _number(value: Any, name: str) -> float:
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise InvalidFix(f"{name} must be a number", param=name) from None
    if not math.isfinite(out):
        raise InvalidFix(f"{name} must be a finite number", param=name)
    return out


def _optional(value: Any, name: str, scale: float = 1.0) -> float | None:
    if value is None or value == "":
        return None
    return _number(value, name) * scale


def parse_timestamp(value: Any) -> float:
    """Unix seconds from what tracker apps send: unix seconds or milliseconds (numbers or digits), or an
    ISO 8601 time (a time without an offset is UTC)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        number = float(value)
    else:
        text = str(value).strip()
        try:
            number = float(text)
        except ValueError:
            try:
                at = datetime.fromisoformat(text.replace("Z", "+00:00"))
            except ValueError:
                raise InvalidFix("timestamp must be unix seconds, milliseconds or an ISO 8601 time",
                                 param="timestamp") from None
            return (at if at.tzinfo else at.replace(tzinfo=UTC)).timestamp()
    if not math.isfinite(number):
        raise InvalidFix("timestamp must be a finite number", param="timestamp")
    return number / 1000.0 if number >= _SECONDS_UP_TO else number


def parse_params(params: Mapping[str, str]) -> DeviceFix:
    """One fix from query or form parameters."""
    key = params.get("id") or params.get("deviceid") or ""
    if "location" in params and "lat" not in params:
        lat_text, _, lng_text = params["location"].partition(",")
        lat, lng = _number(lat_text, "location"), _number(lng_text, "location")
    else:
        if "lat" not in params or "lon" not in params:
            raise InvalidFix("a fix needs lat and lon", param="lat" if "lat" not in params else "lon")
        lat, lng = _number(params["lat"], "lat"), _number(params["lon"], "lon")
    heading = params.get("bearing", params.get("heading"))
    return DeviceFix(
        device_key=key.strip(), lat=lat, lng=lng,
        ts=parse_timestamp(params["timestamp"]) if params.get("timestamp") else None,
        speed=_optional(params.get("speed"), "speed", KNOT_MPS), heading=_optional(heading, "bearing"),
        accuracy=_optional(params.get("accuracy"), "accuracy"), altitude=_optional(params.get("altitude"), "altitude"),
        battery=_optional(params.get("batt"), "batt"),
    )


def _json_fix(key: str, location: Any) -> DeviceFix:
    if not isinstance(location, dict) or not isinstance(location.get("coords"), dict):
        raise InvalidFix("location needs coords with latitude and longitude", param="location.coords")
    coords = location["coords"]
    if "latitude" not in coords or "longitude" not in coords:
        raise InvalidFix("coords need latitude and longitude", param="location.coords")
    battery = location.get("battery")
    level = battery.get("level") if isinstance(battery, dict) else None
    return DeviceFix(
        device_key=key, lat=_number(coords["latitude"], "latitude"), lng=_number(coords["longitude"], "longitude"),
        ts=parse_timestamp(location["timestamp"]) if location.get("timestamp") else None,
        speed=_optional(coords.get("speed"), "speed"), heading=_optional(coords.get("heading"), "heading"),
        accuracy=_optional(coords.get("accuracy"), "accuracy"), altitude=_optional(coords.get("altitude"), "altitude"),
        battery=_optional(level, "battery.level", 100.0),
    )


def parse_json(body: bytes) -> list[DeviceFix]:
    """The fixes of a JSON body (one `location`, or a list of them), in the order sent."""
    try:
        doc = msgspec.json.decode(body)
    except msgspec.DecodeError:
        raise InvalidFix("the body is not valid JSON", param="body") from None
    if not isinstance(doc, dict):
        raise InvalidFix("the body must be a JSON object", param="body")
    key = str(doc.get("device_id") or doc.get("id") or "").strip()
    location = doc.get("location")
    locations = location if isinstance(location, list) else [location]
    if not locations or len(locations) > 1000:
        raise InvalidFix("send between 1 and 1000 locations", param="location")
    return [_json_fix(key, loc) for loc in locations]


def negative_speed_is_unknown(fix: DeviceFix) -> DeviceFix:
    """Android reports -1 (or 0 with no bearing) when it has no speed; keep only real readings."""
    if fix.speed is not None and fix.speed < 0:
        fix = fix._replace(speed=None)
    if fix.heading is not None and fix.heading < 0:
        fix = fix._replace(heading=None)
    if fix.accuracy is not None and fix.accuracy < 0:
        fix = fix._replace(accuracy=None)
    return fix
