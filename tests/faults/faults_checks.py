"""What must hold after every fault, and the figures printed for it.

"Exactly once by event id", as this suite checks it (delivery is at-least-once; processing is
once per consumer group):
- Each acknowledged order (a 201 to its checkout) exists exactly once, is the one order of its
  Idempotency-Key, and has exactly one `order.placed` event in the outbox.
- Webhook receiver: the order's `order.placed` event id arrives at least once. A second delivery
  of any event id is a violation unless the first one arrived while a fault that can break the
  sender's record of it was going on (the app killed or stopped, PostgreSQL away: the merchant got
  it, the platform could not write that down). Our receiver answers 200 to everything, so a
  failed answer never explains a redelivery.
- Tablet feed: a frame with the order's `order.placed` event id; or, if the tablet had to reconnect
  meanwhile (the feed is live fan-out, documented as such: a tablet catches up on reconnecting),
  the order in the `hello` it got or in a later frame on the new connection. Two frames with one
  event id: the same rule as webhooks (the orders group ran its handler twice).
- Dispatch: the order reached a courier in an offer, and never more than one courier saw it assigned
  to them (an offer lost in a fault may be offered again; it may be assigned once).
- Courier-driven delivery: the courier who was assigned the order picked it up and delivered it
  through the courier socket, and the order says delivered (capture included).
Plus, everywhere: no HTTP 500 was ever answered, every 5xx was a 503 with a dependency code and
`Retry-After`, no `idempotency_in_progress` was answered, every checkout got its final answer,
every GPS point acked more than `GPS_DURABLE_S` before any crash is in the location history,
and afterwards /readyz and /metrics say the consumers are healthy and caught up.
"""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import asyncpg
from faults_actors import Http, TabletFeed, now
from faults_city import FaultCity

OUTAGE_CODES = {"database_unavailable", "redis_unavailable"}
GROUPS = ("orders", "tracking", "dispatch")
GPS_DURABLE_S = 5.0  # history is written every second; an acked point this old has had its chance
_METRIC = re.compile(r'^(\w+)\{([^}]*)\}\s+([-+0-9.eE]+|NaN)$')


@dataclass
class Reach:
    """When each acknowledged order was first seen by each consumer (None: not yet)."""

    placed_event: dict[str, str] = field(default_factory=dict)  # order id -> order.placed event id
    webhook: dict[str, float | None] = field(default_factory=dict)
    tablet: dict[str, float | None] = field(default_factory=dict)
    dispatch: dict[str, float | None] = field(default_factory=dict)
    delivered: dict[str, float | None] = field(default_factory=dict)  # the courier's actions took it there

    def consumers(self) -> tuple[tuple[str, dict[str, float | None]], ...]:
        return (("webhook receiver", self.webhook), ("tablet feed", self.tablet), ("dispatch", self.dispatch),
                ("courier-driven delivery", self.delivered))

    def missing(self) -> dict[str, list[str]]:
        return {name: [o for o, t in seen.items() if t is None] for name, seen in self.consumers()}

    def complete_at(self, order_id: str) -> float | None:
        times = [seen.get(order_id) for _, seen in self.consumers()]
        return None if any(t is None for t in times) else max(t for t in times if t is not None)


@dataclass
class Verdict:
    scenario: str
    problems: list[str] = field(default_factory=list)
    figures: dict[str, Any] = field(default_factory=dict)

    def render(self) -> str:
        lines = [f"[{self.scenario}] {'PASS' if not self.problems else 'FAIL'}"]
        lines += [f"    {k}: {v}" for k, v in self.figures.items()]
        lines += [f"    problem: {p}" for p in self.problems]
        return "\n".join(lines)


async def placed_events(city: FaultCity, order_ids: list[str]) -> dict[str, list[str]]:
    rows = await city.query("SELECT aggregate_id, event_id FROM outbox WHERE type = 'order.placed' "
                            "AND aggregate_id = ANY($1::text[]) ORDER BY seq", order_ids)
    out: dict[str, list[str]] = {}
    for row in rows:
        out.setdefault(row["aggregate_id"], []).append(row["event_id"])
    return out


def reach(city: FaultCity, events: dict[str, str]) -> Reach:
    assert city.load is not None and city.tablet is not None
    seen = Reach(placed_event=events)
    hooks = city.receiver.by_event()
    offers: dict[str, float] = {}
    delivered: dict[str, float] = {}
    for courier in city.couriers:
        for offer in courier.offers.values():
            for order_id in offer.order_ids:
                offers[order_id] = min(offers.get(order_id, offer.at), offer.at)
            delivered.update(offer.delivered)
    for checkout in city.load.placed():
        order_id = checkout.order_id
        assert order_id is not None and checkout.placed_at is not None
        event_id = events.get(order_id)
        seen.webhook[order_id] = hooks[event_id][0].at if event_id in hooks else None
        seen.tablet[order_id] = _tablet_saw(city.tablet, event_id, order_id, checkout.placed_at)
        seen.dispatch[order_id] = offers.get(order_id)
        seen.delivered[order_id] = delivered.get(order_id)
    return seen


def _tablet_saw(tablet: TabletFeed, event_id: str | None, order_id: str, placed_at: float) -> float | None:
    """The order.placed frame; or, when the feed was down as it went out (the feed is live fan-out, not
    durable: a tablet catches up on reconnecting), the hello listing the order or the order's next frame
    on a connection opened after the order was placed."""
    frames = [f.at for f in tablet.frames if f.event_id == event_id]
    if frames:
        return frames[0]
    reconnects = [t for t in tablet.connected_at[1:] if t >= placed_at - 1.0]
    if not reconnects:
        return None
    listed = [t for t, ids in tablet.hellos if order_id in ids and t >= placed_at]
    later = [f.at for f in tablet.frames if f.order_id == order_id and f.at >= reconnects[0]]
    return min(listed + later) if listed or later else None


async def wait_reached(city: FaultCity, within: float) -> Reach:
    """Until every acknowledged order reached every consumer, or `within` passed."""
    assert city.load is not None
    deadline = now() + within
    while True:
        order_ids = [c.order_id for c in city.load.placed() if c.order_id]
        events = {o: ids[0] for o, ids in (await _retrying(placed_events, city, order_ids)).items()}
        seen = reach(city, events)
        if not any(seen.missing().values()) or now() > deadline:
            return seen
        await asyncio.sleep(0.5)


async def _retrying(fn: Any, *args: Any, within: float = 20.0) -> Any:
    deadline = now() + within
    while True:
        try:
            return await fn(*args)
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:  # still coming back
            if now() > deadline:
                raise AssertionError(f"the test's own database queries failed: {exc}") from exc
            await asyncio.sleep(0.5)


# ---- the checks ----------------------------------------------------------------------------------------

async def orders_held(city: FaultCity, verdict: Verdict) -> None:
    """Every 201 is one stored order, one per key; every checkout got its final answer."""
    assert city.load is not None
    checkouts = city.load.checkouts
    placed = city.load.placed()
    finals = Counter("refused" if (c.final or "").startswith("refused") else (c.final or "no answer yet")
                     for c in checkouts)
    verdict.figures["checkouts"] = dict(finals) | {"acknowledged orders": len(placed)}
    for c in checkouts:
        if c.final != "placed":
            verdict.problems.append(f"checkout key {c.key[:8]} ended {c.final or 'without an answer'} "
                                    f"after {len(c.attempts)} attempts {[s for _, s, _ in c.attempts][-6:]}")
        if len(c.order_ids) > 1:
            verdict.problems.append(f"key {c.key[:8]} was answered with two orders: {sorted(c.order_ids)}")
    order_ids = [c.order_id for c in placed if c.order_id]
    rows = await _retrying(city.query, "SELECT id, customer_id, idempotency_key FROM orders "
                                       "WHERE id = ANY($1::text[])", order_ids)
    stored = Counter(r["id"] for r in rows)
    lost = [o for o in order_ids if stored[o] == 0]
    if lost:
        verdict.problems.append(f"{len(lost)} acknowledged orders are not stored: {lost[:5]}")
    keys = [c.key for c in checkouts]
    per_key = await _retrying(city.query, "SELECT customer_id, idempotency_key, count(*) AS n FROM orders "
                                          "WHERE idempotency_key = ANY($1::text[]) "
                                          "GROUP BY customer_id, idempotency_key HAVING count(*) > 1", keys)
    for row in per_key:
        verdict.problems.append(f"key {row['idempotency_key'][:8]} has {row['n']} orders")
    events = await _retrying(placed_events, city, order_ids)
    for order_id, ids in events.items():
        if len(ids) > 1:
            verdict.problems.append(f"order {order_id} has {len(ids)} order.placed events")


def exactly_once(city: FaultCity, seen: Reach, verdict: Verdict) -> None:
    missing = seen.missing()
    for consumer, orders in missing.items():
        if orders:
            verdict.problems.append(f"{len(orders)} of {len(seen.webhook)} acknowledged orders never reached the "
                                    f"{consumer}: {orders[:3]}")
    assert city.tablet is not None
    for name, by_event in (("webhook receiver", city.receiver.by_event()), ("tablet feed", city.tablet.by_event())):
        for event_id, copies in by_event.items():
            if len(copies) > 1 and not city.commit_breaking_at(copies[0].at):
                verdict.problems.append(f"the {name} got event {event_id} {len(copies)} times with no crash to "
                                        f"explain it")
    bad_signatures = [d.event_id for d in city.receiver.deliveries if not d.signature_ok]
    if bad_signatures:
        verdict.problems.append(f"{len(bad_signatures)} webhook deliveries failed signature checks")
    owners: dict[str, set[str]] = {}
    for courier in city.couriers:
        for offer in courier.offers.values():
            for order_id in offer.owned:
                owners.setdefault(order_id, set()).add(courier.courier_id)
    twice = [o for o, who in owners.items() if len(who) > 1]
    if twice:
        verdict.problems.append(f"{len(twice)} orders were assigned to two couriers: {twice[:4]}")
    verdict.figures["deliveries seen (webhooks / tablet frames / offers)"] = (
        f"{len(city.receiver.deliveries)} / {len(city.tablet.frames)} / "
        f"{sum(len(c.offers) for c in city.couriers)}")


def http_answers(city: FaultCity, verdict: Verdict) -> None:
    statuses = Counter(c.status for c in city.calls)
    verdict.figures["HTTP answers"] = dict(sorted(statuses.items()))
    # /readyz answering 503 while not ready is its contract, not an outage leaking out.
    five = [c for c in city.calls if c.status >= 500 and not (c.name == "readyz" and c.status == 503)]
    fives = Counter(f"{c.status} {c.name} {c.code}" for c in five if c.status == 500)
    if fives:
        verdict.problems.append(f"HTTP 500 answered {sum(fives.values())} times: {dict(fives.most_common(5))}")
    odd = Counter(f"{c.status} {c.name} {c.code}" for c in five
                  if c.status != 500 and (c.status != 503 or c.code not in OUTAGE_CODES))
    if odd:
        verdict.problems.append(f"5xx that is not a 503 outage code: {dict(odd.most_common(5))}")
    no_hint = sum(1 for c in five if c.status == 503 and not c.retry_after)
    if no_hint:
        verdict.problems.append(f"{no_hint} 503 answers without Retry-After")
    in_progress = [c for c in city.calls if c.code == "idempotency_in_progress"]
    if in_progress:
        verdict.problems.append(f"409 idempotency_in_progress answered {len(in_progress)} times: a same-key retry "
                                f"found its key still held (by a dead process, or by a request still running "
                                f"after the client's timeout)")


async def gps_durable(city: FaultCity, verdict: Verdict) -> None:
    """Acked points are in the location history, except those acked just before the app was killed."""
    kills = [f.start for f in city.faults if f.label.startswith("app kill")]
    expected: dict[str, set[int]] = {}
    settled = now() - GPS_DURABLE_S  # the newest points are still on their way to the history
    for courier in city.couriers:
        seqs = {s for s in courier.acked_points(before=settled)
                if not any(k - GPS_DURABLE_S <= courier.acked_at[s] <= k for k in kills)}
        expected[courier.courier_id] = seqs
    rows = await _retrying(city.query, "SELECT courier_id, seq FROM courier_locations "
                                       "WHERE courier_id = ANY($1::text[])", list(expected))
    stored: dict[str, set[int]] = {}
    for row in rows:
        stored.setdefault(row["courier_id"], set()).add(row["seq"])
    lost = {cid: len(seqs - stored.get(cid, set())) for cid, seqs in expected.items()}
    total = sum(len(s) for s in expected.values())
    verdict.figures["GPS points acked / lost from history"] = f"{total} / {sum(lost.values())}"
    if sum(lost.values()):
        verdict.problems.append(f"{sum(lost.values())} acknowledged GPS points are not in the history")
    last_end = max((f.end or 0.0) for f in city.faults) if city.faults else 0.0
    silent = [c.courier_id for c in city.couriers
              if not any(t > last_end and s > 0 for s, t in c.acked_at.items())]
    if silent:
        verdict.problems.append(f"{len(silent)} couriers got no GPS ack after the last fault")


async def health(city: FaultCity, verdict: Verdict, *, dead_letters_expected: bool = False,
                 within: float = 15.0) -> None:
    """/readyz ready with consumers ok, and per-group lag 0 on /metrics (eventually)."""
    http = Http(city.app.base_url, city.calls, timeout=5.0)
    try:
        deadline = now() + within
        while True:
            ready = await http.call("GET", "/readyz", "readyz")
            metrics = await http.call("GET", "/metrics", "metrics")
            text = metrics.body if metrics.status == 200 and isinstance(metrics.body, str) else ""
            found = _health_problems(ready.status, ready.body, text, dead_letters_expected)
            if not found or now() > deadline or "event_consumer_lag" not in text:
                break  # healthy, out of time, or this build has no consumer health at all: no use waiting
            await asyncio.sleep(0.5)
    finally:
        await http.close()
    verdict.problems += found


def _health_problems(status: int, body: Any, metrics: str, dead_letters_expected: bool) -> list[str]:
    problems = []
    checks = body.get("checks", {}) if isinstance(body, dict) else {}
    if status != 200 or checks.get("consumers") != "ok":
        problems.append(f"/readyz after recovery: {status} {checks or body} (wanted 200 with consumers ok)")
    values = parse_metrics(metrics)
    for group in GROUPS:
        lag = values.get(("event_consumer_lag", f'group="{group}"'))
        if lag is None:
            problems.append(f"/metrics has no event_consumer_lag for group {group}")
        elif lag > 0:
            problems.append(f"event_consumer_lag{{group={group}}} is {lag:.0f} after recovery")
    dead = sum(v for (name, _), v in values.items() if name == "event_dead_letters")
    if dead and not dead_letters_expected:
        problems.append(f"{dead:.0f} events were dead-lettered by a dependency outage")
    return problems


def parse_metrics(text: str) -> dict[tuple[str, str], float]:
    out: dict[tuple[str, str], float] = {}
    for line in (text or "").splitlines():
        match = _METRIC.match(line.strip())
        if match:
            out[(match.group(1), match.group(2))] = float(match.group(3))
    return out


def recovery(city: FaultCity, seen: Reach, verdict: Verdict) -> None:
    """Seconds from each fault's end to the first checkout after it, and to the consumers caught up."""
    assert city.load is not None
    last_end = max((f.end or 0.0) for f in city.faults) if city.faults else 0.0
    after = [c for c in city.load.placed() if c.placed_at is not None and c.placed_at > last_end]
    latencies = sorted((seen.complete_at(c.order_id or "") or float("inf")) - (c.placed_at or 0.0) for c in after)
    if latencies:
        def seconds(x: float) -> str:
            return "never" if x == float("inf") else f"{x:.1f} s"

        verdict.figures["orders placed after the last fault: every consumer reached them, median / slowest"] = (
            f"{len(after)} orders, {seconds(latencies[len(latencies) // 2])} / {seconds(latencies[-1])}")
    for fault in city.faults:
        if fault.end is None or fault.kind == "event":
            continue
        firsts = [c.at for c in city.calls if c.name == "checkout" and c.status == 201 and c.at >= fault.end]
        first = f"{min(firsts) - fault.end:.1f} s" if firsts else "never"
        before = [c.order_id for c in city.load.placed()
                  if c.order_id and c.placed_at is not None and c.placed_at <= fault.end]
        done = [seen.complete_at(o) for o in before]
        if not before:
            caught = "no orders before it"
        elif any(t is None for t in done):
            caught = f"never ({sum(t is None for t in done)} of {len(before)} orders incomplete)"
        else:
            caught = f"{max(0.0, max(t for t in done if t is not None) - fault.end):.1f} s"
        verdict.figures[f"recovery after {fault.label} ({fault.end - fault.start:.1f} s)"] = (
            f"first checkout {first}, consumers caught up {caught}")


async def judge(city: FaultCity, scenario: str, *, settle_s: float = 20.0,
                dead_letters_expected: bool = False, diagnose: bool = True) -> Verdict:
    """Stop the load, wait for the consumers (up to `settle_s`), and check everything. `diagnose=False`
    leaves the app running for the scenario's own checks (then call `explain`)."""
    assert city.load is not None
    verdict = Verdict(scenario, figures=dict(city.figures))
    started = now()
    await city.load.drain()
    drained = now()
    seen = await wait_reached(city, settle_s)
    settled = now()
    await orders_held(city, verdict)
    exactly_once(city, seen, verdict)
    http_answers(city, verdict)
    await gps_durable(city, verdict)
    await health(city, verdict, dead_letters_expected=dead_letters_expected)
    recovery(city, seen, verdict)
    verdict.figures["time: until judged / last checkouts answered / consumers settled / checks"] = (
        f"{started - city.opened:.0f} s / {drained - started:.1f} s / {settled - drained:.1f} s / "
        f"{now() - settled:.1f} s")
    verdict.problems += city.notes
    if diagnose:
        await explain(city, verdict)
    return verdict


async def explain(city: FaultCity, verdict: Verdict) -> None:
    """A failed verdict gets the app's own account: its distinct warnings and errors (this stops it)."""
    if verdict.problems:
        for i, line in enumerate(await city.diagnose()):
            verdict.figures[f"app log {i + 1}"] = line
