"""CPU time of the dispatch decision alone, without servers: for A/B runs of the core on a busy machine.

`bench/dispatch_round.py` times a whole live round in wall-clock time; on a shared 2-core machine
most of its spread is other processes. This bench times only the decision, in CPU time of this
process (`time.process_time`), which other load disturbs far less:

- the live round's region (the same shape and seed as bench/dispatch_round.py: 1,000 open orders
  at 333 restaurants, 2,000 couriers, each store priced against its nearest candidates, the live
  core config, travel priced with learned per-cell speeds for every res-7 cell of the city):
  `dispatch.planner.plan_round`, optimizer and the greedy baseline;
- with `--mdrp NAME[:FRACTION]` (repeatable), an MDRP replay: the CPU time of every round's
  `decide` (a FRACTION keeps that share of the couriers, as `bench/mdrp.py --couriers` does).

    .venv/bin/python bench/dispatch_solve.py [--rounds 15] [--mdrp 5o100t100s2p100 --mdrp 4o100t100s2p100:0.6]

For an A/B run, extract the other version (`git archive <rev> | tar -x -C /tmp/other`), copy this
file into its `bench/` (it uses only long-standing APIs) and run both alternately with this venv:
each imports the code of the tree it sits in. MDRP data: $MDRP_DIR or ../shared/mdrp.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
import zlib
from dataclasses import replace
from pathlib import Path

import h3

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import dispatch.mdrp.simulator as simulator  # noqa: E402
from dispatch.cost import DispatchConfig  # noqa: E402
from dispatch.mdrp import load_instance, replay  # noqa: E402
from dispatch.model import Courier, OpenOrder, Policy  # noqa: E402
from dispatch.planner import plan_round  # noqa: E402
from dispatch.service import DispatcherConfig  # noqa: E402
from geo.eta import HaversineTravelTime, haversine_m  # noqa: E402
from geo.speeds import LearnedTravelTime  # noqa: E402

CENTER = (52.52, 13.405)


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def live_region() -> tuple[list[OpenOrder], dict[str, list[str]], dict[str, Courier], float]:
    rng = random.Random(7)

    def point(spread: float = 0.055) -> tuple[float, float]:
        return CENTER[0] + rng.uniform(-spread, spread), CENTER[1] + rng.uniform(-spread * 1.6, spread * 1.6)

    now = 1_800_000_000.0
    stores = [point() for _ in range(333)]
    orders = []
    for i in range(1000):
        s = rng.randrange(len(stores))
        placed = now - rng.uniform(60, 900)
        orders.append(OpenOrder(f"o{i}", f"s{s}", stores[s], point(), placed, now + rng.uniform(-120, 600),
                                placed + 2400))
    couriers = {f"c{j}": Courier(f"c{j}", point(0.06), now, vehicle="bicycle") for j in range(2000)}
    per_store: dict[str, int] = {}
    for o in orders:
        per_store[o.store_id] = per_store.get(o.store_id, 0) + 1
    candidates = {}
    for s, at in enumerate(stores):  # what the live index's search returns: the nearest first
        nearest = sorted(couriers.values(), key=lambda c, at=at: haversine_m(at, c.position))
        candidates[f"s{s}"] = [c.courier_id for c in nearest[: 8 + per_store.get(f"s{s}", 0)]]
    return orders, candidates, couriers, now


def learned_factors() -> dict[str, float]:
    """A learned speed factor for every res-7 cell of the city, as bench/dispatch_round.py seeds."""
    rng = random.Random(11)
    cells = {h3.latlng_to_cell(CENTER[0] + rng.uniform(-0.07, 0.07), CENTER[1] + rng.uniform(-0.112, 0.112), 7)
             for _ in range(5000)}
    return {cell: rng.uniform(0.9, 1.6) for cell in sorted(cells)}


def time_live(rounds: int) -> None:
    orders, candidates, couriers, now = live_region()
    factors = learned_factors()
    for policy in (Policy.OPTIMIZER, Policy.GREEDY):
        config = replace(DispatcherConfig(region="bench").core_config, policy=policy)
        cpu, wall = [], []
        for i in range(rounds + 1):
            travel = LearnedTravelTime(HaversineTravelTime(), factors, 7)  # one per round, as the live loop builds
            started, cpu_started = time.perf_counter(), time.process_time()
            plan = plan_round(orders, candidates, couriers, travel, now, config)
            if i:  # the first round warms caches and imports
                cpu.append((time.process_time() - cpu_started) * 1000)
                wall.append((time.perf_counter() - started) * 1000)
        print(f"live region {policy.value:<9} cpu ms p50 {pct(cpu, 50):6.1f} p95 {pct(cpu, 95):6.1f} "
              f"min {min(cpu):6.1f} | wall ms p50 {pct(wall, 50):6.1f} p95 {pct(wall, 95):6.1f} | "
              f"{len(plan.assignments)} assignments")


def time_mdrp(spec: str, root: Path) -> None:
    name, _, fraction = spec.partition(":")
    share = float(fraction or 1.0)
    instance = load_instance(root / name)
    if share < 1.0:
        instance = instance.restricted(
            lambda o: True, lambda c: (zlib.crc32(c.courier_id.encode()) % 10_000) / 10_000 < share)
    cpu: list[float] = []
    decide = simulator.decide

    def timed(*args: object, **kwargs: object) -> object:
        started = time.process_time()
        try:
            return decide(*args, **kwargs)
        finally:
            cpu.append((time.process_time() - started) * 1000)

    simulator.decide = timed
    try:
        replay(instance, DispatchConfig())
    finally:
        simulator.decide = decide
    print(f"mdrp {spec:<22} decide cpu s {sum(cpu) / 1000:6.2f} | round ms p50 {pct(cpu, 50):6.2f} "
          f"p95 {pct(cpu, 95):6.2f} max {max(cpu):7.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--mdrp", action="append", default=[], metavar="NAME[:FRACTION]")
    args = parser.parse_args()
    print(f"load average at start {os.getloadavg()[0]:.1f}")
    time_live(args.rounds)
    root = Path(os.environ.get("MDRP_DIR") or REPO / ".." / "shared" / "mdrp").resolve()
    for spec in args.mdrp:
        time_mdrp(spec, root)
    print(f"load average at end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
