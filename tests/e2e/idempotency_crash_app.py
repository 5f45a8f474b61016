"""A write route that can be held open, and a script that serves the app with it in a process
of its own, for the crash tests (`python tests/e2e/idempotency_crash_app.py`, settings as JSON
in IDEM_SETTINGS; it prints its port, then serves until killed)."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import msgspec
from aiohttp import web

from kernel.http import CUSTOMER, decode_body, endpoint, json_response
from kernel.ids import new_id

PATH = "/v1/test/tips"


class Tip(msgspec.Struct, forbid_unknown_fields=True):
    amount: int


def add_tip_route(app: web.Application, gate: asyncio.Event, calls: list[int]) -> None:
    """POST PATH records the tip, then answers once `gate` is set."""

    @endpoint(roles={CUSTOMER}, body=Tip, status=201)
    async def create_tip(request: web.Request) -> web.Response:
        tip = await decode_body(request, Tip)
        calls.append(tip.amount)
        await gate.wait()
        return json_response({"id": new_id("tip"), "amount": tip.amount}, status=201)

    app.router.add_post(PATH, create_tip)


async def serve() -> None:
    from fooddispatch.app import create_app
    from fooddispatch.config import Settings

    values = json.loads(os.environ["IDEM_SETTINGS"])
    settings = Settings(**{**values, "data_dir": Path(values["data_dir"])})
    app = create_app(settings, background=False, components=())
    add_tip_route(app, asyncio.Event(), [])  # never set: every tip hangs until the process dies
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    server = site._server
    assert server is not None and server.sockets
    print(server.sockets[0].getsockname()[1], flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(serve())
