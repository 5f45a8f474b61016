"""One error code per kind: every GET of a resource by an id that names nothing is 404
`resource_missing` (Stripe's name) with `param` naming the id. Walked from the app's route table, so a
new route that answers its own code (`order_not_found`, `not_found`) fails here. The ids are
well-shaped (the right prefix) and random, so each reaches the route's own lookup, not the edge's
shape check."""

from __future__ import annotations

import re

from edge_world import World, build_world

from fooddispatch.input_guard import PATH_ID_PREFIXES
from kernel.http import endpoint_spec
from kernel.ids import new_id

_PARAM = re.compile(r"{([^}:]+)(?::[^}]*)?}")
# `{id}` depends on the collection in front of it; `owner` is a wallet's owner (an account id).
ID_PREFIX = {"/v1/payment_methods/": "pm", "/v1/payment_intents/": "pi", "/v1/refunds/": "re",
             "/v1/payouts/": "po", "/v1/wallets/": "cus", "/v1/plans/": "plan", "/v1/subscriptions/": "sub",
             "/v1/invoices/": "in", "/v1/conversion_quotes/": "cvq",
             "/v1/conversions/": "fxc"}
# Path parameters that are not ids of a resource: they name a value, not a row.
NOT_IDS = {"region", "day", "item_id"}
# Routes whose id is not looked up, by design: a wallet is every owner's (empty until credited); a
# courier's device keys are a list by courier id (tracking does not own accounts); `/t/{token}` is
# the static tracking page, whose data call (`/v1/orders/{order_id}/tracking`) checks the link.
NOT_LOOKED_UP = {"/v1/wallets/{owner}", "/v1/wallets/{owner}/transactions", "/v1/couriers/{courier_id}/device_keys",
                 "/t/{token}"}
# The tracking socket checks its link before the order: without one, the link is what names nothing.
PARAM_NAMED = {"/v1/orders/{order_id}/tracking/ws": "token"}


def random_id(path: str, name: str) -> str:
    if name in ("id", "owner"):
        prefix = next((prefix for start, prefix in ID_PREFIX.items() if path.startswith(start)), None)
        assert prefix is not None, f"{path}: add the prefix of its `{{{name}}}` ids to ID_PREFIX"
        return new_id(prefix)
    if name == "token":
        return "t" * 40  # a tracking link we never signed
    return new_id(PATH_ID_PREFIXES.get(name) or "xx")


def _get_routes(app) -> list[tuple[str, frozenset[str] | None]]:
    found = []
    for route in app.router.routes():
        info = route.resource.get_info() if route.resource is not None else {}
        path = info.get("formatter")
        spec = endpoint_spec(route.handler)
        if route.method == "GET" and path and not set(_PARAM.findall(path)) & NOT_IDS and path not in NOT_LOOKED_UP:
            found.append((path, spec.roles if spec is not None else None))
    return found


async def test_every_get_of_a_random_id_is_resource_missing_naming_the_id(client, app, make_principal) -> None:
    world: World = await build_world(client, make_principal)
    checked, failures = 0, []
    for path, roles in _get_routes(app):
        headers = world.headers[world.role_for(sorted(roles) if roles else None)]
        for name in _PARAM.findall(path):
            url = path
            for other in _PARAM.findall(path):  # the others real: only `name` names nothing
                value = random_id(path, other) if other == name else world.path_value(path, other)
                url = url.replace("{" + other + "}", value)
            resp = await client.get(url, headers=headers)
            error = (await resp.json()).get("error", {}) if resp.content_type == "application/json" else {}
            checked += 1
            expected = (404, "resource_missing", PARAM_NAMED.get(path, name))
            if (resp.status, error.get("code"), error.get("param")) != expected:
                failures.append(f"GET {path} {name}: {resp.status} {error}")
    assert checked >= 20
    assert not failures, "\n".join(failures)


async def test_an_unknown_route_is_resource_missing_too(client) -> None:
    resp = await client.get("/v1/no_such_collection/ord_01")
    assert resp.status == 404
    assert (await resp.json())["error"]["code"] == "resource_missing"
