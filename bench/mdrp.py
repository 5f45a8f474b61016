"""MDRP replay benchmark: optimizer vs greedy on the nine full optimised-shift days, or all 216.

    python bench/mdrp.py                  # the nine {0..8}o100t100s2p100, both policies
    python bench/mdrp.py --all --jobs 2   # every instance, both policies, averages per family
    python bench/mdrp.py --couriers 0.6   # the nine with 60% of their couriers: a shortage
    python bench/mdrp.py --instance 5o100t100s2p100 --policy optimizer   # one day, one policy
    python bench/mdrp.py --world --jobs 2 # the nine in issue 22's misbehaving world, and perfect beside it
    python bench/mdrp.py --world --declines 0.1 --world-seed 7   # ... with other world settings

`--world` is 20 % declines, kitchens late by 5 min on average, travel sigma 0.25, world seed 1
(dispatch/mdrp/world.py); each option can be changed on its own. The world's lower bound (a courier
waiting at every counter, actual ready times, realised rides) is printed beside the instance's.

Data comes from $MDRP_DIR or ../shared/mdrp next to the repo; it is never copied in.
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import statistics
import sys
import time
import zlib
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from dispatch.cost import DispatchConfig  # noqa: E402
from dispatch.mdrp import (  # noqa: E402
    World,
    check_solution,
    load_instance,
    replay,
    round_time_stats,
    solution_metrics,
)
from dispatch.model import Policy  # noqa: E402

NINE = [f"{seed}o100t100s2p100" for seed in range(9)]
ISSUE_WORLD = World(declines=0.2, kitchen_delay_s=300.0, travel_sigma=0.25, seed=1)
PERFECT = World()


def mdrp_dir() -> Path:
    return Path(os.environ.get("MDRP_DIR") or REPO / ".." / "shared" / "mdrp").resolve()


def lower_bounds(root: Path) -> dict[str, float]:
    with (root / "INDEX.tsv").open() as fh:
        return {row["instance"]: float(row["lb_click_to_door_mean_min"]) for row in csv.DictReader(fh, delimiter="\t")}


def keep_courier(courier_id: str, fraction: float) -> bool:
    """A fixed pseudo-random share of the couriers (by a hash of the id, the same every run)."""
    return (zlib.crc32(courier_id.encode()) % 10_000) / 10_000 < fraction


def run_one(job: tuple[str, str, str, float, float, World]) -> dict[str, Any]:
    """Replay one instance with one policy in one world; a plain dict so it crosses process boundaries."""
    root, name, policy, step, couriers, world = job
    instance = load_instance(Path(root) / name)
    if couriers < 1.0:
        instance = instance.restricted(lambda o: True, lambda c: keep_courier(c.courier_id, couriers))
    result = replay(instance, replace(DispatchConfig(), policy=Policy(policy), step_s=step), world=world)
    metrics = solution_metrics(instance, result.solution, world)
    return {
        "instance": name, "policy": policy, "world": "perfect" if world.perfect else "world",
        "feasible": not check_solution(instance, result.solution, world),
        "world_lb": statistics.mean(world.lower_bound_min(instance, o) for o in instance.orders.values()),
        "offers": result.offers, "declined": result.declined,
        "delivered_pct": metrics["delivered_pct"],
        "c2d_mean": metrics["click_to_door_min"]["mean"], "c2d_p90": metrics["click_to_door_min"]["p90"],
        "r2p_mean": metrics["ready_to_pickup_min"]["mean"],
        "orders_per_courier_hour": metrics["orders_per_courier_hour"],
        "pay_per_order": metrics["pay_per_order"], "bundle_mean": metrics["bundle_size"]["mean"],
        "rounds": round_time_stats(result.round_solve_s), "wall_s": result.wall_s,
    }


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value * 1000:.1f}"


def print_table(results: list[dict[str, Any]], bounds: dict[str, float]) -> None:
    header = ("instance", "policy", "deliv%", "c2d mean", "c2d p90", "r2p mean", "ord/c-h", "pay/ord",
              "LB", "gap%", "bundle", "p50 ms", "p95 ms", "max ms", "ok")
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for r in results:
        lb = bounds.get(r["instance"])
        gap = 100 * (r["c2d_mean"] / lb - 1) if lb and r["c2d_mean"] else None
        cells = (r["instance"], r["policy"], f"{r['delivered_pct']:.2f}", f"{r['c2d_mean']:.1f}",
                 f"{r['c2d_p90']:.1f}", f"{r['r2p_mean']:.1f}", f"{r['orders_per_courier_hour']:.2f}",
                 f"{r['pay_per_order']:.2f}", f"{lb:.1f}" if lb else "-", f"{gap:.1f}" if gap is not None else "-",
                 f"{r['bundle_mean']:.2f}", _ms(r["rounds"]["p50"]), _ms(r["rounds"]["p95"]),
                 _ms(r["rounds"]["max"]), "yes" if r["feasible"] else "NO")
        print("| " + " | ".join(cells) + " |")


def print_world_table(results: list[dict[str, Any]], bounds: dict[str, float]) -> None:
    """Each day in the misbehaving world and the perfect one, both policies, against both lower bounds,
    then issue 22's targets per day (in the misbehaving world)."""
    header = ("instance", "world", "policy", "deliv%", "c2d mean", "c2d p90", "LB", "x LB", "world LB", "x world LB",
              "vs greedy", "pay/order", "declined%", "p50 ms", "p95 ms", "max ms", "ok")
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    by = {(r["instance"], r["world"], r["policy"]): r for r in results}
    for r in results:
        lb = bounds.get(r["instance"])
        greedy = by.get((r["instance"], r["world"], Policy.GREEDY.value))
        versus = f"{100 * (r['c2d_mean'] / greedy['c2d_mean'] - 1):+.1f}%" if greedy and greedy is not r else "-"
        declined = f"{100 * r['declined'] / r['offers']:.1f}" if r["offers"] else "-"
        cells = (r["instance"], r["world"], r["policy"], f"{r['delivered_pct']:.2f}", f"{r['c2d_mean']:.1f}",
                 f"{r['c2d_p90']:.1f}", f"{lb:.1f}" if lb else "-", f"{r['c2d_mean'] / lb:.3f}" if lb else "-",
                 f"{r['world_lb']:.1f}", f"{r['c2d_mean'] / r['world_lb']:.3f}", versus, f"{r['pay_per_order']:.2f}",
                 declined, _ms(r["rounds"]["p50"]), _ms(r["rounds"]["p95"]), _ms(r["rounds"]["max"]),
                 "yes" if r["feasible"] else "NO")
        print("| " + " | ".join(cells) + " |")
    print("\n| instance (misbehaving world, optimizer) | deliv >= 99.5 % | c2d <= 1.15 x LB | c2d <= 1.15 x world LB "
          "| c2d <= 0.85 x greedy | round p95 < 1 s |")
    print("|---|---|---|---|---|---|")
    for name in dict.fromkeys(r["instance"] for r in results):
        r, greedy = by.get((name, "world", "optimizer")), by.get((name, "world", "greedy"))
        if r is None:
            continue
        lb = bounds.get(name)

        def mark(ok: bool | None) -> str:
            return "-" if ok is None else ("yes" if ok else "**no**")

        print(f"| {name} | {mark(r['delivered_pct'] >= 99.5)} | "
              f"{mark(r['c2d_mean'] <= 1.15 * lb if lb else None)} | {mark(r['c2d_mean'] <= 1.15 * r['world_lb'])} | "
              f"{mark(r['c2d_mean'] <= 0.85 * greedy['c2d_mean'] if greedy else None)} | "
              f"{mark((r['rounds']['p95'] or 0) < 1.0)} |")


def summarize(results: list[dict[str, Any]], bounds: dict[str, float], key: str) -> None:
    """Averages per (group, policy): the group is the instance family or "all"."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for r in results:
        groups[(family(r["instance"]) if key == "family" else "all", r["policy"])].append(r)
    print(f"\n| {key} | policy | n | deliv% | c2d mean | gap% vs LB | r2p mean | ord/c-h "
          "| worst round p95 ms | infeasible |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for (group, policy), rows in sorted(groups.items()):
        gaps = [100 * (r["c2d_mean"] / bounds[r["instance"]] - 1) for r in rows if r["instance"] in bounds]
        p95 = max(r["rounds"]["p95"] or 0 for r in rows)
        print(f"| {group} | {policy} | {len(rows)} | {statistics.mean(r['delivered_pct'] for r in rows):.2f} | "
              f"{statistics.mean(r['c2d_mean'] for r in rows):.2f} | "
              f"{statistics.mean(gaps) if gaps else float('nan'):.1f} | "
              f"{statistics.mean(r['r2p_mean'] for r in rows):.2f} | "
              f"{statistics.mean(r['orders_per_courier_hour'] for r in rows):.2f} | {p95 * 1000:.1f} | "
              f"{sum(not r['feasible'] for r in rows)} |")


def family(name: str) -> str:
    """`3o100t75s2p125` -> `o100t75s2p125`: the instance without its seed."""
    return name.lstrip("0123456789")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--all", action="store_true", help="every instance in the folder")
    parser.add_argument("--instance", action="append", metavar="NAME",
                        help="replay only this instance (repeatable), e.g. 5o100t100s2p100")
    parser.add_argument("--step", type=float, default=60.0, help="seconds between rounds (default 60)")
    parser.add_argument("--jobs", type=int, default=1, help="worker processes (default 1; --all: 2)")
    parser.add_argument("--couriers", type=float, default=1.0, metavar="FRACTION",
                        help="replay with only this share of each day's couriers (a shortage test)")
    parser.add_argument("--policy", action="append", choices=[p.value for p in Policy],
                        help="policy to run (repeatable; default both)")
    parser.add_argument("--world", action="store_true",
                        help="issue 22's misbehaving world (and the perfect one beside it), see the doc above")
    parser.add_argument("--declines", type=float,
                        help=f"with --world: decline share (default {ISSUE_WORLD.declines:g})")
    parser.add_argument("--kitchen-delay", type=float, metavar="SECONDS",
                        help=f"with --world: mean kitchen delay (default {ISSUE_WORLD.kitchen_delay_s:g})")
    parser.add_argument("--travel-sigma", type=float,
                        help=f"with --world: travel noise (default {ISSUE_WORLD.travel_sigma:g})")
    parser.add_argument("--world-seed", type=int, help=f"with --world: the seed (default {ISSUE_WORLD.seed})")
    parser.add_argument("--no-perfect", action="store_true", help="with --world: skip the perfect-world replays")
    args = parser.parse_args(argv)
    root = mdrp_dir()
    if not (root / "INDEX.tsv").is_file():
        print(f"no MDRP data at {root} (set MDRP_DIR)", file=sys.stderr)
        return 2
    bounds = lower_bounds(root)
    names = sorted(p.name for p in root.iterdir() if (p / "orders.txt").is_file()) if args.all else NINE
    if args.instance:
        unknown = [n for n in args.instance if not (root / n / "orders.txt").is_file()]
        if unknown:
            print(f"no such instance under {root}: {', '.join(unknown)}", file=sys.stderr)
            return 2
        names = args.instance
    policies = args.policy or [Policy.OPTIMIZER.value, Policy.GREEDY.value]
    worlds = [PERFECT]
    if args.world:
        world = replace(ISSUE_WORLD, **{k: v for k, v in (
            ("declines", args.declines), ("kitchen_delay_s", args.kitchen_delay),
            ("travel_sigma", args.travel_sigma), ("seed", args.world_seed)) if v is not None})
        worlds = [world] if args.no_perfect else [world, PERFECT]
        print(f"world: {world}", file=sys.stderr)
    jobs = [(str(root), name, policy, args.step, args.couriers, world)
            for name in names for world in worlds for policy in policies]
    workers = args.jobs if not args.all or args.jobs != 1 else 2
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"python {platform.python_version()}; {len(jobs)} replays, step {args.step:g} s, {workers} worker(s), "
          f"couriers x{args.couriers:g}; load average {os.getloadavg()[0]:.2f}",
          file=sys.stderr)
    started = time.perf_counter()
    results: list[dict[str, Any]] = []
    with ProcessPoolExecutor(max_workers=workers) as pool:
        for r in pool.map(run_one, jobs):
            print(f"  {r['instance']} {r['world']} {r['policy']}: c2d {r['c2d_mean']:.1f} in {r['wall_s']:.1f} s",
                  file=sys.stderr)
            results.append(r)
    elapsed = time.perf_counter() - started
    if args.world:
        print_world_table(results, bounds)
        print(f"\nsweep wall time: {elapsed:.0f} s for {len(jobs)} replays; load average at the end "
              f"{' / '.join(f'{v:.2f}' for v in os.getloadavg())} (1 / 5 / 15 min)")
        return 0
    if not args.all:
        print_table(results, bounds)
    if args.all:
        summarize(results, bounds, "family")
    summarize(results, bounds, "all")
    print(f"\nsweep wall time: {elapsed:.0f} s for {len(jobs)} replays")
    return 0


if __name__ == "__main__":
    sys.exit(main())
