"""The console's courier names: by account id, couriers only, bad input refused with a code."""

from __future__ import annotations


async def test_courier_names_come_by_id_for_couriers_only(client, make_principal) -> None:
    _, operator = await make_principal("operator")
    anna, _ = await make_principal("courier", name="Anna K.")
    buyer, _ = await make_principal("customer", name="Carla C.")
    ids = f"{anna.account_id},{buyer.account_id},cou_unknown,{anna.account_id}"
    resp = await client.get("/v1/ops/courier_names", params={"ids": ids}, headers=operator)
    assert resp.status == 200
    assert await resp.json() == {"names": {anna.account_id: "Anna K."}}

    _, courier = await make_principal("courier")
    assert (await client.get("/v1/ops/courier_names", params={"ids": ids}, headers=courier)).status == 403
    for bad in ("", "a,,b", "x" * 41, "a;b"):
        resp = await client.get("/v1/ops/courier_names", params={"ids": bad}, headers=operator)
        assert resp.status == 422, bad
        assert (await resp.json())["error"]["param"] == "ids"
