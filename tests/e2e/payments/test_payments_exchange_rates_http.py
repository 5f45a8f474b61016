"""Operators load exchange rates as exact numbers (a decimal string or two integers, never a float),
with their source and as-of time, and list them; nobody else may."""

from __future__ import annotations

from tests.e2e.payments.conftest import key_headers

RATE = {"base": "EUR", "quote": "GBP", "rate": "0.8567", "source": "ECB", "as_of": "2026-01-05T16:00:00Z"}


async def test_an_operator_loads_exact_rates_and_lists_them(client, make_principal) -> None:
    _, operator = await make_principal("operator")
    first = await client.post("/v1/exchange_rates", headers=key_headers(operator), json=RATE)
    assert first.status == 201, await first.text()
    got = await first.json()
    assert (got["rate"], got["rate_numerator"], got["rate_denominator"]) == ("0.8567", 8567, 10000)
    assert (got["base"], got["quote"], got["source"], got["as_of"]) == ("EUR", "GBP", "ECB", "2026-01-05T16:00:00Z")
    third = await client.post("/v1/exchange_rates", headers=key_headers(operator), json={
        "base": "KWD", "quote": "JPY", "rate_numerator": 1517, "rate_denominator": 3, "source": "desk",
        "as_of": "2026-01-05T17:00:00+01:00"})
    assert third.status == 201, await third.text()
    assert (await third.json())["rate"] == "1517/3"  # no finite decimal: the exact fraction

    listed = await client.get("/v1/exchange_rates", headers=operator)
    assert listed.status == 200
    ids = [r["id"] for r in (await listed.json())["data"]]
    assert ids[:2] == [(await third.json())["id"], got["id"]]
    only = await (await client.get("/v1/exchange_rates?base=EUR&quote=GBP&limit=1", headers=operator)).json()
    assert [r["id"] for r in only["data"]] == [got["id"]] and only["has_more"] is False


async def test_a_rate_is_never_a_float_and_bad_input_is_422(client, make_principal) -> None:
    _, operator = await make_principal("operator")
    for bad, param in (({"rate": 0.8567}, "rate"), ({"rate": "8.567e-1"}, "rate"), ({"rate": "0"}, "rate"),
                       ({"rate": "-1"}, "rate"), ({"rate": None}, "rate"),
                       ({"rate": None, "rate_numerator": 1, "rate_denominator": 0}, "rate_denominator"),
                       ({"rate_numerator": 3, "rate_denominator": 4}, "rate"),
                       ({"quote": "EUR"}, "quote"), ({"quote": "XYZ"}, "quote"), ({"as_of": "yesterday"}, "as_of")):
        resp = await client.post("/v1/exchange_rates", headers=key_headers(operator), json={**RATE, **bad})
        body = await resp.json()
        assert resp.status == 422, (bad, body)
        assert body["error"]["param"] == param, (bad, body)


async def test_only_operators_load_or_read_rates(client, make_principal) -> None:
    for role in ("customer", "courier"):
        _, headers = await make_principal(role)
        assert (await client.post("/v1/exchange_rates", headers=key_headers(headers), json=RATE)).status == 403
        assert (await client.get("/v1/exchange_rates", headers=headers)).status == 403
    assert (await client.get("/v1/exchange_rates")).status == 401
