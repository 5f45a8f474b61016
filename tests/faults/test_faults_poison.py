"""A poison event while normal orders flow: events whose data makes a consumer's handler raise.

Two realistic shapes of a producer bug, written to the outbox the way every producer writes
(`kernel.outbox.write_event`), so the relay publishes them like any other event:
- `dispatch.assigned` without its `courier_id` (orders' and tracking's handlers index it: KeyError);
- `order.ready` whose `ready_at` is not a timestamp (dispatch's handler parses it: ValueError).
Each is retried, then parked where an operator sees it (GET /v1/ops/dead_letters, and
`event_dead_letters{group}` on /metrics), and every group goes on: orders placed after the poison
still reach the webhook receiver, the tablet feed, dispatch and their couriers."""

from __future__ import annotations

import asyncio
import json

import asyncpg
import pytest
from faults_actors import now
from faults_checks import explain, judge, parse_metrics

from kernel.outbox import write_event

pytestmark = [pytest.mark.faults, pytest.mark.timeout(150)]

DEAD_LETTER_WITHIN_S = 30.0
# The groups whose handler raises on each poison event.
POISON = (
    ("dispatch.assigned", {"offer_id": "ofr_poison", "order_ids": ["ord_poison_assigned"]}, ("orders", "tracking")),
    ("order.ready", {"order_id": "ord_poison_ready", "ready_at": "when it is done"}, ("dispatch",)),
)


async def _write_poison(city) -> list[str]:
    conn = await asyncpg.connect(city.pg.url(city.database))
    try:
        ids = []
        for event_type, data, _groups in POISON:
            async with conn.transaction():
                event = await write_event(conn, event_type, data, aggregate_id=data.get("order_id", "ofr_poison"))
            ids.append(event.id)
        return ids
    finally:
        await conn.close()


async def _dead_lettered(city, event_ids: list[str], within: float) -> tuple[int, str]:
    """Until the operator's dead-letter list names every poison event; (status, what it said)."""
    deadline = now() + within
    while True:
        answer = await city.http.call("GET", "/v1/ops/dead_letters", "dead letters", token=city.operator_token)
        text = json.dumps(answer.body)
        if (answer.status == 200 and all(e in text for e in event_ids)) or now() > deadline or answer.status == 404:
            return answer.status, text
        await asyncio.sleep(0.5)


async def test_poison_events_are_dead_lettered_and_every_consumer_goes_on(fault_city, record_verdict) -> None:
    city = await fault_city()
    city.load.start()
    await city.orders_acknowledged(5, within=20)
    async with city.fault("poison events written", "event") as fault:
        poison_ids = await _write_poison(city)
    await city.orders_acknowledged(8, within=25)
    verdict = await judge(city, "e: poison events", settle_s=30.0, dead_letters_expected=True, diagnose=False)
    status, listed = await _dead_lettered(city, poison_ids, DEAD_LETTER_WITHIN_S - (now() - fault.start))
    missing = [e for e in poison_ids if e not in listed]
    verdict.figures["dead letters listed"] = f"GET /v1/ops/dead_letters {status}, poison events missing: {missing}"
    if status != 200 or missing:
        verdict.problems.append(f"the poison events are not in GET /v1/ops/dead_letters ({status}): {missing}")
    metrics = await city.http.call("GET", "/metrics", "metrics")
    values = parse_metrics(metrics.body if isinstance(metrics.body, str) else "")
    for group in sorted({g for _, _, groups in POISON for g in groups}):
        counted = values.get(("event_dead_letters", f'group="{group}"'))
        if not counted:
            verdict.problems.append(f"event_dead_letters{{group={group}}} is {counted} (the poison raised there)")
    await explain(city, verdict)
    record_verdict(verdict)
    assert not verdict.problems, verdict.render()
