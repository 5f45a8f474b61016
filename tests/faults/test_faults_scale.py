"""Scale-out on real processes: `fooddispatch serve --workers 2` over a local 3-primary Valkey Cluster
(sharded pub/sub, hash-tagged keys), a seeded city with checkouts, the kitchen, the tablet feed and a
courier streaming GPS; any request or socket may land on either worker.

One city proves, in order: a menu change reaches discovery on both workers within 2 s; the same
Idempotency-Key sent to both workers at once places one order with one hold; a rate limit holds across
the workers; a courier on worker A streams and watchers on A and on B see the same positions; kill -9
of the worker leading dispatch moves the region to the other worker within the lease plus a round (the
parent restarts the dead one), and no order is ever in two live offers at once; one cluster node
restarted mid-stream: ingest resumes by itself and no acked fix is missing from the live index or the
history. The usual verdict (every order reached every consumer, no 500, GPS durable) closes it."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import asyncpg
import psutil
import pytest
from faults_actors import now, until
from faults_checks import judge
from faults_city import ITEM, JWT_SECRET, FaultCity, app_env
from faults_couriers import Courier, Offer
from faults_servers import App, _die_with_parent
from redis.crc import key_slot

from fooddispatch.cli import INSTANCE_HEADER
from fooddispatch.config import Settings
from fooddispatch.identity import IdentityService, Tokens
from fooddispatch.livestore import close_redis, open_redis
from fooddispatch.valkey_cluster import SLOTS, EmbeddedCluster
from geo.live import LiveKeys, decode_state

pytestmark = [pytest.mark.faults, pytest.mark.timeout(300)]

WORKERS = 2
INTERVAL_S = 0.5  # FOODDISPATCH_DISPATCH_INTERVAL of the city: the lease lasts 3 intervals
LEASE_S = 3 * INTERVAL_S
MENU_VISIBLE_S = 2.0
RATE_BURST, RATE_PER_MINUTE = 300, 600


class WorkersApp(App):
    """The server as `fooddispatch serve --workers 2` (the parent and its workers)."""

    def spawn(self) -> None:
        assert self.process is None or self.process.poll() is not None, "already running"
        self.starts += 1
        env = {k: v for k, v in os.environ.items() if not k.startswith(("FOODDISPATCH_", "DATABASE_URL", "REDIS_URL"))}
        env.update(self.env)
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "fooddispatch", "serve", "--port", str(self.port), "--workers", str(WORKERS)],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env, preexec_fn=_die_with_parent())


class HoldingCourier(Courier):
    """Accepts every offer and keeps the bag while `holding` is set: its orders stay in its bundle, so
    its positions keep flowing to their watchers; then it rides like the others. Connects first to the
    worker named `on`, after a lost connection to any."""

    on: str | None = None
    at: str | None = None  # the worker its socket landed on
    holding: asyncio.Event | None = None

    async def _ride(self, offer: Offer) -> None:
        if self.holding is not None:
            await self.holding.wait()
        await super()._ride(offer)

    async def _run(self) -> None:
        url = self.http.base_url.replace("http", "ws", 1) + "/v1/courier/ws"
        while True:
            with contextlib.suppress(aiohttp.ClientError, OSError, TimeoutError, ConnectionError):
                async with self.http.session.ws_connect(url, headers={"Authorization": f"Bearer {self.token}"},
                                                        heartbeat=5, timeout=aiohttp.ClientWSTimeout(ws_close=2)) as ws:
                    landed = ws._response.headers.get(INSTANCE_HEADER)
                    if self.on is None or landed == self.on:
                        self.at, self.on = landed, None  # after a loss: whichever worker answers
                        self.connects += 1
                        await self._session(ws)
                        continue
            await asyncio.sleep(0.05)


@pytest.fixture
async def scale_city(fault_servers, live_cluster: EmbeddedCluster, request) -> AsyncIterator[FaultCity]:
    name = f"fd_scale_{os.getpid()}"
    conn = await asyncpg.connect(fault_servers.pg.url())
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "fd_faults_template"')
    finally:
        await conn.close()
    folder = fault_servers.folder / name
    folder.mkdir(exist_ok=True)
    env = app_env(fault_servers.pg, fault_servers.redis, name, folder)
    env.update({"REDIS_URL": live_cluster.url, "FOODDISPATCH_REDIS_CLUSTER": "true",
                "FOODDISPATCH_DISPATCH_INTERVAL": str(INTERVAL_S),
                "FOODDISPATCH_RATE_LIMIT_PER_MINUTE": str(RATE_PER_MINUTE),
                "FOODDISPATCH_RATE_LIMIT_BURST": str(RATE_BURST), "FOODDISPATCH_DB_POOL_MAX": "12"})
    city = FaultCity(request.node.name, fault_servers.pg, fault_servers.redis, WorkersApp(folder, env), name)
    try:
        yield city
    finally:
        await city.close()
        fault_servers.heal()


# ---- the workers, one connection each ----------------------------------------------------------------

async def one_session_per_worker(base_url: str, within: float = 20.0) -> dict[str, aiohttp.ClientSession]:
    """A keep-alive session per worker (one connection each), keyed by the worker's instance name."""
    found: dict[str, aiohttp.ClientSession] = {}
    deadline = now() + within
    try:
        while len(found) < WORKERS:
            assert now() < deadline, f"connections reached only {sorted(found)}"
            session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1))
            try:
                async with session.get(base_url + "/healthz") as response:
                    await response.read()
                    instance = response.headers[INSTANCE_HEADER]
            except BaseException:
                await session.close()
                raise
            if instance in found:
                await session.close()
            else:
                found[instance] = session
    except BaseException:
        await close_all(found)
        raise
    return found


async def close_all(sessions: dict[str, aiohttp.ClientSession]) -> None:
    for session in sessions.values():
        await session.close()


async def call(session: aiohttp.ClientSession, base: str, method: str, path: str, token: str | None = None,
               body: Any = None, headers: dict[str, str] | None = None) -> tuple[int, Any, str]:
    all_headers = {**(headers or {}), **({"Authorization": f"Bearer {token}"} if token else {})}
    async with session.request(method, base + path, json=body, headers=all_headers) as response:
        text = await response.text()
        return response.status, (json.loads(text) if text else None), response.headers.get(INSTANCE_HEADER, "")


# ---- the proofs --------------------------------------------------------------------------------------

async def menu_change_reaches_every_worker(city: FaultCity, sessions: dict[str, aiohttp.ClientSession]) -> float:
    base = city.app.base_url
    writer, *readers = list(sessions)
    menu = {"categories": [{"name": "Mains", "id": "cat_mains", "items": [
        {"id": ITEM, "name": "Currywurst", "price": 690}, {"id": "itm_fries", "name": "Pommes", "price": 350},
        {"id": "itm_scale", "name": "Scalewurst", "price": 990}]}]}
    lat, lng = city.customers[0].lat, city.customers[0].lng
    for session in sessions.values():  # every worker has its discovery index loaded before the change
        status, _, _ = await call(session, base, "GET", f"/v1/search?q=Scalewurst&lat={lat}&lng={lng}",
                                  city.customers[0].token)
        assert status == 200
    status, body, _ = await call(sessions[writer], base, "PUT", f"/v1/merchant/stores/{city.store_id}/menu",
                                 city.staff_token, menu)
    assert status == 200, body
    changed = now()
    seen: dict[str, float] = {}
    while len(seen) < len(sessions) and now() - changed < 15:
        for instance, session in sessions.items():
            if instance not in seen:
                _, found, _ = await call(session, base, "GET", f"/v1/search?q=Scalewurst&lat={lat}&lng={lng}",
                                         city.customers[0].token)
                if "itm_scale" in json.dumps(found):
                    seen[instance] = now() - changed
        await asyncio.sleep(0.05)
    assert len(seen) == len(sessions), f"the new item never showed on {set(sessions) - set(seen)}"
    return max(seen[r] for r in readers)


async def same_key_on_both_workers(city: FaultCity, sessions: dict[str, aiohttp.ClientSession],
                                   customer: Any) -> tuple[list[int], int, int]:
    base = city.app.base_url
    first = next(iter(sessions.values()))
    status, quote, _ = await call(first, base, "POST", "/v1/quotes", customer.token, {
        "store_id": city.store_id, "dropoff": {"lat": customer.lat, "lng": customer.lng},
        "address": "Torstraße 1, Berlin", "lines": [{"item_id": ITEM, "quantity": 1}]})
    assert status == 201, quote
    body = {"quote_id": quote["id"], "payment_method_id": customer.card_id}
    headers = {"Idempotency-Key": f"scale-{customer.account_id}"}
    answers = await asyncio.gather(*(call(s, base, "POST", "/v1/orders", customer.token, body, headers)
                                     for s in sessions.values()))
    statuses = sorted(a[0] for a in answers)
    assert {a[2] for a in answers} == set(sessions), "both requests were to land on different workers"
    # A 409 in progress answer is retried as a phone would, until the first attempt completed.
    for _ in range(100):
        if 409 not in statuses:
            break
        await asyncio.sleep(0.1)
        again = await call(first, base, "POST", "/v1/orders", customer.token, body, headers)
        statuses = sorted([*[s for s in statuses if s != 409][:1], again[0]])
    orders = await city.query("SELECT count(*) AS n FROM orders WHERE customer_id = $1", customer.account_id)
    holds = await city.query("SELECT count(*) AS n FROM payment_intents WHERE customer_id = $1", customer.account_id)
    return statuses, orders[0]["n"], holds[0]["n"]


async def anonymous_burst(city: FaultCity, sessions: dict[str, aiohttp.ClientSession], requests: int) -> int:
    """`requests` anonymous requests (one client address), alternating between the workers, 8 at a time;
    returns how many were let through (any answer but 429)."""
    base, allowed, sent = city.app.base_url, 0, 0
    workers = list(sessions.values())

    async def one(i: int) -> None:
        nonlocal allowed
        status, _, _ = await call(workers[i % len(workers)], base, "GET", "/v1/no-such-route")
        allowed += status != 429

    while sent < requests:
        batch = range(sent, min(requests, sent + 8))
        await asyncio.gather(*(one(i) for i in batch))
        sent += len(batch)
    return allowed


async def positions_on_both_workers(city: FaultCity, courier: HoldingCourier, order_id: str, token: str,
                                    sessions: dict[str, aiohttp.ClientSession], seconds: float) -> dict[str, list]:
    """Watch the order from a socket on each worker for `seconds`; the courier positions each one got."""
    url = city.app.base_url.replace("http", "ws", 1) + f"/v1/orders/{order_id}/track"
    seen: dict[str, list] = {}
    connected: set[str] = set()
    all_connected = asyncio.Event()

    async def watch(instance: str) -> None:
        positions: list = seen.setdefault(instance, [])
        async with aiohttp.ClientSession() as session:
            while True:  # until the socket lands on that worker
                ws = await session.ws_connect(url, headers={"Authorization": f"Bearer {token}"})
                if ws._response.headers.get(INSTANCE_HEADER) == instance:
                    break
                await ws.close()
            # Landing on a worker may take a few tries: both watch the same stretch of time from here.
            connected.add(instance)
            if connected >= set(sessions):
                all_connected.set()
            await all_connected.wait()
            try:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(seconds):
                        async for msg in ws:
                            frame = json.loads(msg.data) if msg.type == aiohttp.WSMsgType.TEXT else {}
                            if frame.get("type") == "courier_position":
                                positions.append((frame["lat"], frame["lng"], frame["at"]))
            finally:
                await ws.close()

    await asyncio.gather(*(watch(instance) for instance in sessions))
    return seen


async def answering_leader(city: FaultCity) -> tuple[str, bool]:
    """Over a fresh connection (it lands on a live worker): which worker answered, and whether it leads."""
    async with aiohttp.ClientSession() as session:
        status, body, instance = await call(session, city.app.base_url, "GET", "/v1/dispatch/regions/demo/rounds",
                                            city.operator_token)
    return instance, status == 200 and bool(body.get("this_process_leads"))


async def leader(city: FaultCity, sessions: dict[str, aiohttp.ClientSession]) -> str | None:
    for instance, session in sessions.items():
        with contextlib.suppress(aiohttp.ClientError, OSError):
            status, body, _ = await call(session, city.app.base_url, "GET", "/v1/dispatch/regions/demo/rounds",
                                         city.operator_token)
            if status == 200 and body.get("this_process_leads"):
                return instance
    return None


OFFERED_TWICE = """
SELECT a.offer_id AS first, b.offer_id AS second FROM dispatch_offers a
  JOIN dispatch_offers b ON a.offer_id < b.offer_id AND a.order_ids && b.order_ids
 WHERE a.status <> 'unassigned' AND b.status <> 'unassigned'
   AND b.created_at < CASE WHEN a.status IN ('accepted', 'completed') THEN 'infinity'
                           ELSE coalesce(a.responded_at, a.expires_at) END
   AND a.created_at < CASE WHEN b.status IN ('accepted', 'completed') THEN 'infinity'
                           ELSE coalesce(b.responded_at, b.expires_at) END
"""


async def live_seq(live_cluster: EmbeddedCluster, prefix: str, courier_id: str) -> int:
    client = open_redis(Settings(redis_url=live_cluster.url, redis_cluster=True))
    try:
        state = decode_state(await client.hget(LiveKeys(prefix, "demo").state, courier_id))
        return state.seq if state is not None else 0
    finally:
        await close_redis(client)


def node_of_region(cluster: EmbeddedCluster, region: str) -> int:
    """The index of the node whose slots hold the region's keys (slots were split evenly at start)."""
    share = SLOTS // len(cluster.nodes)
    return min(key_slot(f"{{{region}}}".encode()) // share, len(cluster.nodes) - 1)


# ---- the scenario ------------------------------------------------------------------------------------

async def test_two_workers_on_a_valkey_cluster_serve_one_city_through_a_worker_kill_and_a_node_restart(
        scale_city: FaultCity, live_cluster: EmbeddedCluster, record_verdict) -> None:
    city = scale_city
    # Couriers that deliver (the verdict follows every order to its delivery), and one that holds its
    # first order (its positions keep flowing to that order's watchers). Enough customers that no one
    # trips the fraud screen's velocity rules at this rate.
    await city.start(couriers=3, customers=13, rate=0.7, workers=2)
    special = city.customers.pop()  # kept out of the load: the same-key proof counts its orders
    sessions = await one_session_per_worker(city.app.base_url)
    try:
        worker_a, worker_b = sorted(sessions)
        figures = city.figures

        menu_s = await menu_change_reaches_every_worker(city, sessions)
        figures["menu change seen by the other worker"] = f"{menu_s:.2f} s"
        statuses, orders, holds = await same_key_on_both_workers(city, sessions, special)
        figures["same key on both workers: answers / orders / holds"] = f"{statuses} / {orders} / {holds}"
        started = time.monotonic()
        allowed = await anonymous_burst(city, sessions, 2 * RATE_BURST)
        elapsed = time.monotonic() - started
        figures["anonymous burst: allowed of sent"] = f"{allowed} of {2 * RATE_BURST} in {elapsed:.1f} s"

        courier_id, token = await _courier_account(city)
        assert city.http is not None
        courier = HoldingCourier(city.http, courier_id, token, 52.5200, 13.4050, random.Random(1))
        courier.on, courier.holding = worker_a, asyncio.Event()
        city.couriers.append(courier)
        courier.start()
        assert await until(lambda: courier.acked_seq > 0, 20.0), "the courier got no GPS ack"
        city.load.start()
        assert await until(lambda: any(courier.offers.values()), 30.0), "no offer reached the courier"
        order_id = next(iter(courier.offers.values())).order_ids[0]
        owner = await city.query("SELECT customer_id FROM orders WHERE id = $1", order_id)
        watcher = next(c for c in [*city.customers, special] if c.account_id == owner[0]["customer_id"])
        seen = await positions_on_both_workers(city, courier, order_id, watcher.token, sessions, 6.0)
        figures["positions seen on A / on B (courier on A)"] = f"{len(seen[worker_a])} / {len(seen[worker_b])}"

        # kill -9 the worker that leads dispatch for the region
        before = await leader(city, sessions)
        assert before is not None, "no worker leads the region"
        pid = int(before.split(".", 1)[1])
        # "app kill": the history of the last second of points a killed process received is lost (by
        # design: tracking/README.md), and the verdict allows for it.
        async with city.fault(f"app kill -9 of worker {before} (dispatch leader)", "app"):
            await close_all(sessions)
            sessions = {}
            os.kill(pid, signal.SIGKILL)
            killed = now()
            took_over: float | None = None
            while now() - killed < 30 and took_over is None:
                with contextlib.suppress(aiohttp.ClientError, OSError):
                    instance, leads = await answering_leader(city)
                    if leads and instance != before:
                        took_over = now() - killed
                await asyncio.sleep(0.05)
            back: float | None = None
            while now() - killed < 60 and back is None:  # the parent starts a new worker in its place
                with contextlib.suppress(AssertionError, aiohttp.ClientError, OSError):
                    sessions = await one_session_per_worker(city.app.base_url, within=3.0)
                    if before not in sessions:
                        back = now() - killed
                        break
                    await close_all(sessions)
                    sessions = {}
        figures["region led by another worker after the kill"] = (
            f"{took_over:.2f} s (lease {LEASE_S:.1f} s + a {INTERVAL_S:.1f} s round)" if took_over else "never")
        figures["dead worker replaced by the parent"] = f"{back:.1f} s" if back is not None else "never"
        log = city.app.log.read_text(errors="replace")
        logged = "died (signal SIGKILL)" in log and "restarting it" in log

        # one cluster node restarted mid-stream: the one holding the region's live index
        node = node_of_region(live_cluster, "demo")
        acked_before = courier.acked_seq
        async with city.fault(f"valkey node {node} restarted (the region's shard)", "redis"):
            await asyncio.to_thread(live_cluster.restart_node, node, down_for=2.0)
        restarted = now()
        resumed = await until(lambda: courier.acked_seq > acked_before + 2, 30.0)
        figures["GPS acks resumed after the node restart"] = f"{now() - restarted:.1f} s" if resumed else "never"
        acked = courier.acked_seq
        stored = await live_seq(live_cluster, city.app.env["FOODDISPATCH_REDIS_PREFIX"], courier.courier_id)
        figures["live index seq / last acked seq"] = f"{stored} / {acked}"

        courier.holding.set()  # now deliver what it held: the verdict follows every order to its delivery
        verdict = await judge(city, "two workers on a 3-node Valkey Cluster", settle_s=60.0, diagnose=False)
        twice = await city.query(OFFERED_TWICE)
        if twice:
            verdict.problems.append(f"{len(twice)} pairs of live offers held one order at once: {twice[:3]}")
        problems = verdict.problems
        if not 0 < figures_seconds(figures["menu change seen by the other worker"]) <= MENU_VISIBLE_S:
            problems.append(f"the menu change took {figures['menu change seen by the other worker']} on another "
                            f"worker (at most {MENU_VISIBLE_S} s)")
        if orders != 1 or holds != 1 or statuses[0] != 201:
            problems.append(f"the same key on two workers made {orders} orders and {holds} holds ({statuses})")
        if allowed > RATE_BURST + RATE_PER_MINUTE / 60 * (elapsed + 1):
            problems.append(f"{allowed} of {2 * RATE_BURST} requests went through a burst of {RATE_BURST}: the "
                            f"workers counted apart")
        a_positions, b_positions = common_stretch(seen[worker_a], seen[worker_b])
        if not a_positions or a_positions != b_positions:
            problems.append(f"watchers on the courier's worker and on the other saw different positions: "
                            f"{len(a_positions)} vs {len(b_positions)}")
        if took_over is None or took_over > LEASE_S + INTERVAL_S + 8.0:
            problems.append(f"the region was not taken over within the lease plus a round: {took_over}")
        if back is None or not logged:
            problems.append(f"the parent did not replace the dead worker ({back}) or did not log it ({logged})")
        if not resumed:
            problems.append("GPS ingest did not resume after the cluster node restart")
        if stored < acked:
            problems.append(f"the live index holds seq {stored}, older than the acked {acked}")
        if problems:
            for i, line in enumerate(await city.diagnose()):
                verdict.figures[f"app log {i + 1}"] = line
        else:  # SIGTERM to the parent stops every worker gracefully, then the parent exits 0
            workers = [int(instance.split(".", 1)[1]) for instance in sessions]
            await close_all(sessions)
            sessions = {}
            city.app.terminate()
            stopped = await until(lambda: city.app.exit_code() is not None, 40.0)
            left = [pid for pid in workers if psutil.pid_exists(pid) and psutil.Process(pid).status() != "zombie"]
            figures["SIGTERM: parent's exit code / workers left"] = f"{city.app.exit_code()} / {len(left)}"
            verdict.figures.update(figures)
            if not stopped or city.app.exit_code() != 0 or left:
                problems.append(f"SIGTERM did not stop the workers and the parent cleanly: exit "
                                f"{city.app.exit_code()}, workers left {left}")
        record_verdict(verdict)
        assert not problems, verdict.render()
    finally:
        await close_all(sessions)


def common_stretch(a: list, b: list) -> tuple[list, list]:
    """The positions each watcher got within the stretch of fix times both watched: the two sockets
    open and close a frame apart, so one may get a first or last fix the other did not."""
    if not a or not b:
        return a, b
    first, last = max(a[0][2], b[0][2]), min(a[-1][2], b[-1][2])
    return [p for p in a if first <= p[2] <= last], [p for p in b if first <= p[2] <= last]


def figures_seconds(text: object) -> float:
    return float(str(text).split(" ", 1)[0])


async def _courier_account(city: FaultCity) -> tuple[str, str]:
    pool = await asyncpg.create_pool(city.pg.url(city.database), min_size=1, max_size=1)
    try:
        identity = IdentityService(pool, Tokens({"k1": JWT_SECRET}, "k1", 3600))
        who = await identity.create_account("courier", name="scale courier")
        return who.account_id, identity.tokens.issue(who)
    finally:
        await pool.close()

