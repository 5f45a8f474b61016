"""Events are types (docs/EVENTS.md): each producer's payload Structs write the same bytes the hand-built
dicts they replaced wrote (merchants' webhooks carry event data verbatim), decode back to themselves,
and a payload that does not fit its type fails in the consumer's handler, where the dead-letter path
takes it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import msgspec
import pytest

from catalog.event_types import ItemSoldOut, StorePaused
from dispatch.event_types import DispatchAssigned, DispatchOffered, DispatchUnassigned
from fooddispatch.eventdocs import PRODUCERS, all_events
from kernel.outbox import Event, EventData, MoneyData, PointData, make_event, on
from orders.event_types import (
    OrderAccepted,
    OrderCancelled,
    OrderCourierAssigned,
    OrderDelivered,
    OrderLineData,
    OrderPlaced,
    OrderRefunded,
)
from payments.event_types import PaymentCaptured, PaymentRefunded, PayoutCreated, PayoutFailed, RefundCreated
from tracking.event_types import CourierDelivered, CourierOfferResponse, CourierPickedUp, DeliveryProof

NOW = datetime(2026, 12, 7, 9, 41, 7, 123456, tzinfo=UTC)
LATER = NOW.replace(microsecond=0) + timedelta(minutes=40)
BERLIN = timezone(timedelta(hours=1))
FACTS = {"order_id": "ord_1", "store_id": "sto_1", "tenant_id": "ten_1", "customer_id": "cus_1"}


def wire(data: dict[str, Any]) -> bytes:
    return msgspec.json.encode(data)


# Each case: the payload Struct, and the dict main's producer built by hand for the same change.
CASES: list[tuple[EventData, dict[str, Any]]] = [
    (OrderPlaced(order_id="ord_1", customer_id="cus_1", store_id="sto_1", tenant_id="ten_1", region="berlin",
                 status="placed", pickup=PointData(52.5, 13.4), dropoff=PointData(52.51, 13.41),
                 total=MoneyData(2350, "EUR"), placed_at=NOW, accept_by=NOW + timedelta(minutes=5),
                 promised_at=LATER, scheduled_for=LATER.astimezone(BERLIN),
                 lines=[OrderLineData("Margherita", 2)]),
     {"order_id": "ord_1", "customer_id": "cus_1", "store_id": "sto_1", "tenant_id": "ten_1", "region": "berlin",
      "status": "placed", "pickup": {"lat": 52.5, "lng": 13.4}, "dropoff": {"lat": 52.51, "lng": 13.41},
      "total": {"amount": 2350, "currency": "EUR"}, "placed_at": NOW.isoformat(),
      "accept_by": (NOW + timedelta(minutes=5)).isoformat(), "promised_at": LATER.isoformat(),
      "scheduled_for": LATER.astimezone(BERLIN).isoformat(), "lines": [{"name": "Margherita", "quantity": 2}]}),
    (OrderAccepted(**FACTS, status="accepted", region="berlin", pickup=PointData(52.5, 13.4),
                   dropoff=PointData(52.51, 13.41), placed_at=NOW, ready_at=LATER, promised_at=LATER,
                   courier_id=None),
     {**FACTS, "status": "accepted", "region": "berlin", "pickup": {"lat": 52.5, "lng": 13.4},
      "dropoff": {"lat": 52.51, "lng": 13.41}, "placed_at": NOW.isoformat(), "ready_at": LATER.isoformat(),
      "promised_at": LATER.isoformat(), "courier_id": None}),
    (OrderCancelled(**FACTS, status="cancelled", reason="customer_changed_mind", courier_id="cou_1"),
     {**FACTS, "status": "cancelled", "reason": "customer_changed_mind", "courier_id": "cou_1"}),
    (OrderDelivered(**FACTS, status="delivered", courier_id="cou_1", at=NOW, proof={"photo_url": None, "code": "4711"}),
     {**FACTS, "status": "delivered", "courier_id": "cou_1", "at": NOW.isoformat(),
      "proof": {"photo_url": None, "code": "4711"}}),
    (OrderCourierAssigned(**FACTS, status="ready", courier_id="cou_2", previous_courier_id="cou_1",
                          operator_id="acc_op", region="berlin", pickup=PointData(52.5, 13.4),
                          dropoff=PointData(52.51, 13.41), placed_at=NOW, promised_at=LATER, at=NOW),
     {**FACTS, "status": "ready", "courier_id": "cou_2", "previous_courier_id": "cou_1", "operator_id": "acc_op",
      "region": "berlin", "pickup": {"lat": 52.5, "lng": 13.4}, "dropoff": {"lat": 52.51, "lng": 13.41},
      "placed_at": NOW.isoformat(), "promised_at": LATER.isoformat(), "at": NOW.isoformat()}),
    (OrderRefunded(**FACTS, status="delivered", amount=MoneyData(428, "EUR"), reason="missing_items",
                   refund_id="re_1", payment_intent="pi_1", refunded=MoneyData(428, "EUR")),
     {**FACTS, "status": "delivered", "amount": {"amount": 428, "currency": "EUR"}, "reason": "missing_items",
      "refund_id": "re_1", "payment_intent": "pi_1", "refunded": {"amount": 428, "currency": "EUR"}}),
    (DispatchOffered(offer_id="off_1", courier_id="cou_1", order_ids=("ord_1", "ord_2"), expires_at=NOW,
                     payout=MoneyData(650, "EUR")),
     {"offer_id": "off_1", "courier_id": "cou_1", "order_ids": ["ord_1", "ord_2"], "expires_at": NOW.isoformat(),
      "payout": {"amount": 650, "currency": "EUR"}}),
    (DispatchAssigned(offer_id="off_1", courier_id="cou_1", order_ids=("ord_1",), at=NOW),
     {"offer_id": "off_1", "courier_id": "cou_1", "order_ids": ["ord_1"], "at": NOW.isoformat()}),
    (DispatchUnassigned(courier_id="cou_1", order_ids=("ord_1",), reason="courier_stale"),
     {"courier_id": "cou_1", "order_ids": ["ord_1"], "reason": "courier_stale"}),
    (CourierOfferResponse(courier_id="cou_1", offer_id="off_1", accepted=False, at=NOW),
     {"courier_id": "cou_1", "offer_id": "off_1", "accepted": False, "at": NOW.isoformat()}),
    (CourierPickedUp(courier_id="cou_1", order_id="ord_1", at=NOW, proof=None),
     {"courier_id": "cou_1", "order_id": "ord_1", "at": NOW.isoformat(), "proof": None}),
    (CourierDelivered(courier_id="cou_1", order_id="ord_1", at=NOW, proof=DeliveryProof(photo_url="https://p/1")),
     {"courier_id": "cou_1", "order_id": "ord_1", "at": NOW.isoformat(), "proof": {"photo_url": "https://p/1"}}),
    (PaymentCaptured(intent_id="pi_1", reference="ord_1:tip:1", amount=MoneyData(300, "EUR")),
     {"intent_id": "pi_1", "reference": "ord_1:tip:1", "amount": {"amount": 300, "currency": "EUR"}}),
    (PaymentRefunded(intent_id="pi_1", reference="ord_1", amount=MoneyData(428, "EUR"), refund_id="re_1",
                     reason="requested_by_customer", destination="wallet", amount_captured=2350, amount_refunded=428),
     {"intent_id": "pi_1", "reference": "ord_1", "amount": {"amount": 428, "currency": "EUR"}, "refund_id": "re_1",
      "reason": "requested_by_customer", "destination": "wallet", "amount_captured": 2350, "amount_refunded": 428}),
    # Merchant money events: their wire form, as merchants' webhooks carry it.
    (RefundCreated(intent_id="pi_1", reference="ord_1:tip:1", amount=MoneyData(300, "EUR"), refund_id="re_1",
                   order_id="ord_1", tenant_id="ten_1", reason="quality", destination="card", borne_by="restaurant"),
     {"intent_id": "pi_1", "reference": "ord_1:tip:1", "amount": {"amount": 300, "currency": "EUR"},
      "refund_id": "re_1", "order_id": "ord_1", "tenant_id": "ten_1", "reason": "quality", "destination": "card",
      "borne_by": "restaurant"}),
    (PayoutFailed(payout_id="po_1", owner_id="ten_1", kind="restaurant", tenant_id="ten_1",
                  amount=MoneyData(4360, "EUR"), fee=MoneyData(0, "EUR"), status="failed", method="standard",
                  batch_id=None, settles_until=NOW, failure_reason="account_closed", next_attempt_at=LATER),
     {"payout_id": "po_1", "owner_id": "ten_1", "kind": "restaurant", "tenant_id": "ten_1",
      "amount": {"amount": 4360, "currency": "EUR"}, "fee": {"amount": 0, "currency": "EUR"}, "status": "failed",
      "method": "standard", "batch_id": None, "settles_until": NOW.isoformat(), "failure_reason": "account_closed",
      "next_attempt_at": LATER.isoformat()}),
    (PayoutCreated(payout_id="po_2", owner_id="cou_1", kind="courier", tenant_id=None, amount=MoneyData(900, "EUR"),
                   fee=MoneyData(50, "EUR"), status="in_transit", method="instant", batch_id=None, settles_until=None,
                   failure_reason=None, next_attempt_at=None, retry_of=["po_1"]),
     {"payout_id": "po_2", "owner_id": "cou_1", "kind": "courier", "tenant_id": None,
      "amount": {"amount": 900, "currency": "EUR"}, "fee": {"amount": 50, "currency": "EUR"}, "status": "in_transit",
      "method": "instant", "batch_id": None, "settles_until": None, "failure_reason": None, "next_attempt_at": None,
      "retry_of": ["po_1"]}),
    (StorePaused(store_id="sto_1", tenant_id="ten_1", until=LATER.astimezone(BERLIN), reason="rush"),
     {"store_id": "sto_1", "tenant_id": "ten_1", "until": LATER.astimezone(BERLIN).isoformat(), "reason": "rush"}),
    (ItemSoldOut(store_id="sto_1", tenant_id="ten_1", item_id="itm_1", reason="merchant", sold_out_until=LATER),
     {"store_id": "sto_1", "tenant_id": "ten_1", "item_id": "itm_1", "reason": "merchant",
      "sold_out_until": LATER.isoformat()}),
]


@pytest.mark.parametrize(("payload", "hand_built"), CASES, ids=[type(p).__name__ for p, _ in CASES])
def test_a_payload_writes_the_bytes_the_hand_built_dict_wrote(payload: EventData, hand_built: dict) -> None:
    assert wire(payload.to_data()) == wire(hand_built)
    assert payload.to_data() == hand_built  # also in process: lists, ISO strings with "+00:00"
    event = payload.event("agg_1")
    assert (event.type, event.aggregate_id, event.data) == (payload.event_type, "agg_1", hand_built)


@pytest.mark.parametrize(("payload", "hand_built"), CASES, ids=[type(p).__name__ for p, _ in CASES])
def test_a_payload_decodes_back_from_its_wire_form(payload: EventData, hand_built: dict) -> None:
    assert type(payload).from_data(msgspec.json.decode(wire(hand_built))) == payload


def test_every_event_type_has_one_payload_type_in_its_producers_module() -> None:
    events = all_events()
    assert len(events) == sum(len(kinds) for kinds in PRODUCERS.values()) >= 28
    for producer, kinds in PRODUCERS.items():
        for kind in kinds:
            assert kind.__module__ == f"{producer}.event_types", kind
            assert kind.__struct_config__.frozen and kind.__doc__, kind


async def test_a_handler_gets_the_typed_payload_and_a_misfit_fails_in_the_handler() -> None:
    seen: list[DispatchAssigned] = []

    async def handler(conn: Any, event: Event, assigned: DispatchAssigned) -> None:
        seen.append(assigned)

    event_type, handle = on(DispatchAssigned, handler)
    good = DispatchAssigned(offer_id="off_1", courier_id="cou_1", order_ids=("ord_1",), at=NOW)
    await handle(None, good.event("off_1"))
    assert event_type == "dispatch.assigned" and seen == [good]
    # What a consumer used to read with data.get(...) and a default is now a decode error: the consumer
    # records it as a failed attempt (tests/integration/dispatch/test_dispatch_typed_events_poison.py).
    with pytest.raises(msgspec.ValidationError, match=r"\$\.at"):
        await handle(None, make_event("dispatch.assigned", {"offer_id": "off_1", "courier_id": "cou_1",
                                                            "order_ids": ["ord_1"], "at": "yesterday"}))
    with pytest.raises(msgspec.ValidationError, match="courier_id"):
        await handle(None, make_event("dispatch.assigned",
                                      {"offer_id": "off_1", "order_ids": [], "at": NOW.isoformat()}))
    assert len(seen) == 1
