"""`fooddispatch simulate --mdrp DIR --out OUT [--policy optimizer|greedy] [--step SECONDS]
[--declines P] [--kitchen-delay SECONDS] [--travel-sigma S] [--world-seed N] [--offer-timeout SECONDS]`.

The world options (dispatch.mdrp.world) are all off by default: the instance's perfect world.

`add_arguments` and `run` are wired into the `fooddispatch` CLI by the composition root;
`python -m dispatch.replay_cli ...` runs the same thing stand-alone.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import replace
from pathlib import Path

from dispatch.cost import DispatchConfig
from dispatch.mdrp import (
    MalformedInstanceError,
    World,
    check_solution,
    load_instance,
    replay,
    round_time_stats,
    solution_metrics,
    write_solution,
)
from dispatch.mdrp.instance import Instance
from dispatch.mdrp.metrics import describe
from dispatch.mdrp.simulator import ReplayResult
from dispatch.model import Policy

EXIT_OK, EXIT_INFEASIBLE, EXIT_USAGE = 0, 1, 2


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--mdrp", required=True, metavar="DIR", help="an MDRP instance folder")
    parser.add_argument("--out", required=True, metavar="OUT", help="folder for the solution files and summary.json")
    parser.add_argument("--policy", default=Policy.OPTIMIZER.value, help="optimizer (default) or greedy")
    parser.add_argument("--step", default="60", metavar="SECONDS",
                        help="simulated seconds between dispatch rounds (default 60)")
    parser.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    world = parser.add_argument_group("a misbehaving world (seeded, reproducible; all off by default)")
    world.add_argument("--declines", default="0", metavar="P",
                       help="mean share of offers couriers decline, 0 to 0.5 (each courier's rate is in [0, 2P])")
    world.add_argument("--kitchen-delay", default="0", metavar="SECONDS",
                       help="mean of the exponential delay of each order's food past its announced ready time")
    world.add_argument("--travel-sigma", default="0", metavar="S",
                       help="each leg takes its computed time x exp(|N(0, S)|)")
    world.add_argument("--world-seed", default="0", metavar="N", help="the world's seed (an integer)")
    world.add_argument("--offer-timeout", default="30", metavar="SECONDS",
                       help="simulated seconds a declined offer holds its orders (default 30)")


def _usage_error(message: str) -> int:
    print(f"fooddispatch simulate: error: {message}", file=sys.stderr)
    return EXIT_USAGE


def run(args: argparse.Namespace) -> int:
    """Replay, write OUT/{solution files, summary.json}, check; 0 ok, 1 infeasible, 2 bad input."""
    try:
        policy = Policy(args.policy)
    except ValueError:
        return _usage_error(f"unknown policy {args.policy!r} (choose optimizer or greedy)")
    try:
        step = float(args.step)
    except (TypeError, ValueError):
        return _usage_error(f"--step must be a number of seconds, got {args.step!r}")
    if not 1 <= step <= 3600:
        return _usage_error(f"--step must be between 1 and 3600 seconds, got {args.step!r}")
    world = _world(args)
    if isinstance(world, str):
        return _usage_error(world)
    try:
        instance = load_instance(args.mdrp)
    except MalformedInstanceError as exc:
        return _usage_error(f"malformed MDRP folder: {exc}")
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        return _usage_error(f"--out {out} exists and is not a folder")

    config = replace(DispatchConfig(), policy=policy, step_s=step)
    say = None if getattr(args, "quiet", False) else (lambda line: print(line, file=sys.stderr, flush=True))
    result = replay(instance, config, progress=say, world=world)
    write_solution(result.solution, instance, out)
    violations = check_solution(instance, result.solution, world)
    summary = solution_metrics(instance, result.solution, world)
    summary.update(policy=policy.value, step_s=step, feasible=not violations, violations=violations[:20],
                   refused_proposals=result.refused, round_solve_s=round_time_stats(result.round_solve_s),
                   wall_s=result.wall_s)
    if not world.perfect:
        summary.update(world_summary(instance, result))
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    c2d = summary["click_to_door_min"]
    print(f"{instance.name} [{policy.value}]: delivered {summary['delivered']}/{summary['orders']}, "
          f"click-to-door mean {c2d['mean'] or 0:.1f} min, p90 {c2d['p90'] or 0:.1f}, "
          f"{'feasible' if not violations else 'INFEASIBLE'}; wrote {out}", file=sys.stderr)
    return EXIT_OK if not violations else EXIT_INFEASIBLE


# flag, attribute, lowest, highest: a world option out of range is a usage error, never a traceback
WORLD_FLAGS = (("--declines", "declines", 0.0, 0.5), ("--kitchen-delay", "kitchen_delay", 0.0, 86_400.0),
               ("--travel-sigma", "travel_sigma", 0.0, 3.0), ("--offer-timeout", "offer_timeout", 0.0, 3600.0))


def _world(args: argparse.Namespace) -> World | str:
    """The world the flags ask for, or the one-line reason they are wrong."""
    values: dict[str, float] = {}
    for flag, name, low, high in WORLD_FLAGS:
        raw = getattr(args, name)
        try:
            value = float(raw)
        except (TypeError, ValueError):
            value = math.nan
        if not low <= value <= high:
            return f"{flag} must be a number from {low:g} to {high:g}, got {raw!r}"
        values[name] = value
    try:
        seed = int(args.world_seed)
    except (TypeError, ValueError):
        return f"--world-seed must be an integer, got {args.world_seed!r}"
    return World(declines=values["declines"], kitchen_delay_s=values["kitchen_delay"],
                 travel_sigma=values["travel_sigma"], seed=seed, offer_timeout_s=values["offer_timeout"])


def world_summary(instance: Instance, result: ReplayResult) -> dict[str, object]:
    """What summary.json adds for a seeded world: the world, the offers and declines, every order's
    actual ready time, and the click-to-door a courier waiting at every counter would have given."""
    world = result.world
    return {
        "world": {"declines": world.declines, "kitchen_delay_s": world.kitchen_delay_s,
                  "travel_sigma": world.travel_sigma, "seed": world.seed, "offer_timeout_s": world.offer_timeout_s},
        "offers": {"made": result.offers, "declined": result.declined},
        "world_lower_bound_click_to_door_min": describe([world.lower_bound_min(instance, o)
                                                          for o in instance.orders.values()]),
        "actual_ready_min": {oid: world.actual_ready_min(o) for oid, o in instance.orders.items()},
    }


class _Parser(argparse.ArgumentParser):
    """argparse exits 2 on bad flags already; keep its message to one line."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_USAGE, f"fooddispatch simulate: error: {message}\n")


def main(argv: list[str] | None = None) -> int:
    parser = _Parser(prog="python -m dispatch.replay_cli", description="Replay an MDRP instance.")
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
