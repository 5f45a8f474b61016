"""The API docs' test-mode guide (the OpenAPI `payments` tag) names every test card of the processor's table,
with the outcome the processor really gives on it: the guide is written from that table, and a charge on each
card is made here to check the table is what the processor runs on."""

from __future__ import annotations

import re

from aiohttp import web

from fooddispatch import openapi
from fooddispatch.components import payments as payments_component
from kernel.money import Money
from payments.processor import AUTHENTICATION_FAILED, TEST_CARDS, CardForProcessor, TestModeProcessor

ROW = re.compile(r"^\| `(\d+)` \| ([^|]+) \| `?([a-z_]*)`? \| `?([a-z_]*)`? \| ([^|]*) \|$", re.MULTILINE)
SCENARIO = {"authorized": "authorizes", "requires_action": "asks for 3-D Secure", "declined": "declined"}


def _payments_guide() -> tuple[dict[str, object], str]:
    app = web.Application()
    openapi.setup(app)
    payments_component.install(app)  # as the app wires it
    doc = openapi.build_openapi(app)
    tags = {t["name"]: t for t in doc["tags"]}
    return doc, tags["payments"]["description"]


def test_every_test_card_of_the_processor_is_in_the_api_docs() -> None:
    doc, guide = _payments_guide()
    rows = {m[0]: m[1:] for m in ROW.findall(guide)}
    assert set(rows) == set(TEST_CARDS)
    for number, (outcome, code, decline_code, message) in TEST_CARDS.items():
        assert rows[number] == (SCENARIO[outcome], code or "", decline_code or "", message), number
    assert "`payments` tag" in doc["info"]["description"]  # type: ignore[index]
    assert AUTHENTICATION_FAILED[0] in guide and AUTHENTICATION_FAILED[1] in guide


async def test_the_processor_does_on_each_card_what_the_docs_say() -> None:
    rows = {m[0]: m[1:] for m in ROW.findall(_payments_guide()[1])}
    processor = TestModeProcessor()
    for number, (scenario, code, decline_code, message) in rows.items():
        got = await processor.authorize(CardForProcessor(number, 12, 2040), Money(1200, "EUR"), f"k-{number}")
        assert (SCENARIO[got.outcome], got.code or "", got.decline_code or "", got.message or "") == (
            scenario, code, decline_code, message), number
        if got.outcome == "requires_action":
            failed = await processor.complete_authentication(got.charge_id, succeeded=False)
            assert (failed.code, failed.decline_code, failed.message) == AUTHENTICATION_FAILED
