"""The webhook client against a real local receiver: it connects only to addresses it checked at
that moment (an injected resolver stands in for DNS, so the name exists nowhere else), refuses a
name that turned private since registration (DNS rebinding), follows no redirect and never hands
back what the target answered."""

from __future__ import annotations

import socket
from collections.abc import Sequence

import pytest
from aiohttp import web

from kernel.netguard import NameNotFound, Refusal, TargetPolicy, WebhookUrlForbidden
from kernel.webhook_client import WebhookClient

PUBLIC = "93.184.215.14"  # never connected to: only answered at registration


class Rebinding:
    """A resolver whose answers change from one lookup to the next (the last repeats)."""

    def __init__(self, *answers: list[str]) -> None:
        self.answers = list(answers)
        self.lookups = 0

    async def resolve(self, host: str, port: int) -> Sequence[str]:
        if host != "hooks.merchant.example":
            raise NameNotFound(host)
        self.lookups += 1
        return self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]


@pytest.fixture
async def receiver(aiohttp_server):
    hits: list[str] = []

    async def hook(request: web.Request) -> web.Response:
        hits.append(request.path)
        if request.path == "/moved":
            raise web.HTTPFound("/hook")
        return web.Response(status=500 if request.path == "/secret" else 204, text="internal: db=10.0.0.5 pw=hunter2")

    app = web.Application()
    app.router.add_post("/{name}", hook)
    server = await aiohttp_server(app, host="127.0.0.1")
    return server.port, hits


async def test_the_connection_goes_to_the_address_the_check_answered(receiver) -> None:
    port, hits = receiver
    names = Rebinding(["127.0.0.1"])
    client = WebhookClient(TargetPolicy.from_setting(True), names)
    try:
        sent = await client.post(f"http://hooks.merchant.example:{port}/hook", b"{}", {})
    finally:
        await client.close()
    # The name resolves nowhere but in the injected resolver: reaching the receiver proves the
    # connection used the checked answer, and one lookup means no second, unchecked one was made.
    assert sent.ok and hits == ["/hook"] and names.lookups == 1


async def test_a_name_that_turns_private_after_registration_is_refused_at_delivery(receiver) -> None:
    port, hits = receiver
    names = Rebinding([PUBLIC], ["127.0.0.1"])
    client = WebhookClient(TargetPolicy(allow_http=True, allow_private=False), names)
    url = f"http://hooks.merchant.example:{port}/hook"
    try:
        await client.check_new_url(url)  # public at registration
        sent = await client.post(url, b"{}", {})
    finally:
        await client.close()
    assert sent.status is None and sent.refused is Refusal.LOOPBACK and sent.error == "refused: loopback_address"
    assert not sent.refused_url  # DNS may change back: a retry is worth it
    assert hits == []


async def test_registration_refuses_a_name_that_resolves_inside() -> None:
    client = WebhookClient(TargetPolicy(), Rebinding(["10.0.0.8"]))
    with pytest.raises(WebhookUrlForbidden) as refused:
        await client.check_new_url("https://hooks.merchant.example/hook")
    assert refused.value.status == 422 and refused.value.extra == {"reason": "private_address"}


async def test_a_url_that_can_never_be_allowed_is_refused_before_any_lookup() -> None:
    names = Rebinding([PUBLIC])
    client = WebhookClient(TargetPolicy(), names)
    sent = await client.post("https://0xA9.0xFE.0xA9.0xFE/latest/meta-data/", b"{}", {})
    assert sent.refused is Refusal.METADATA and sent.refused_url and names.lookups == 0


async def test_redirects_are_not_followed_and_the_answer_is_never_read(receiver) -> None:
    port, hits = receiver
    client = WebhookClient(TargetPolicy.from_setting(True), Rebinding(["127.0.0.1"]))
    with socket.socket() as closed:  # bound, never listening: connections to it are refused
        closed.bind(("127.0.0.1", 0))
        try:
            moved = await client.post(f"http://hooks.merchant.example:{port}/moved", b"{}", {})
            failed = await client.post(f"http://hooks.merchant.example:{port}/secret", b"{}", {})
            refused = await client.post(f"http://hooks.merchant.example:{closed.getsockname()[1]}/x", b"{}", {})
        finally:
            await client.close()
    assert moved.status == 302 and not moved.ok and hits == ["/moved", "/secret"]
    assert failed.status == 500 and failed.error is None
    assert refused.status is None and refused.error == "connection_failed"  # no text from the socket layer
    assert "hunter2" not in repr((moved, failed, refused))
