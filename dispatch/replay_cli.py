"""`fooddispatch simulate --mdrp DIR --out OUT [--policy optimizer|greedy] [--step SECONDS]`.

`add_arguments` and `run` are wired into the `fooddispatch` CLI by the composition root;
`python -m dispatch.replay_cli ...` runs the same thing stand-alone.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

from dispatch.cost import DispatchConfig
from dispatch.mdrp import (
    MalformedInstanceError,
    check_solution,
    load_instance,
    replay,
    round_time_stats,
    solution_metrics,
    write_solution,
)
from dispatch.model import Policy

EXIT_OK, EXIT_INFEASIBLE, EXIT_USAGE = 0, 1, 2


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--mdrp", required=True, metavar="DIR", help="an MDRP instance folder")
    parser.add_argument("--out", required=True, metavar="OUT", help="folder for the solution files and summary.json")
    parser.add_argument("--policy", default=Policy.OPTIMIZER.value, help="optimizer (default) or greedy")
    parser.add_argument("--step", default="60", metavar="SECONDS",
                        help="simulated seconds between dispatch rounds (default 60)")
    parser.add_argument("--quiet", action="store_true", help="no progress lines on stderr")


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
    try:
        instance = load_instance(args.mdrp)
    except MalformedInstanceError as exc:
        return _usage_error(f"malformed MDRP folder: {exc}")
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        return _usage_error(f"--out {out} exists and is not a folder")

    config = replace(DispatchConfig(), policy=policy, step_s=step)
    say = None if getattr(args, "quiet", False) else (lambda line: print(line, file=sys.stderr, flush=True))
    result = replay(instance, config, progress=say)
    write_solution(result.solution, instance, out)
    violations = check_solution(instance, result.solution)
    summary = solution_metrics(instance, result.solution)
    summary.update(policy=policy.value, step_s=step, feasible=not violations, violations=violations[:20],
                   refused_proposals=result.refused, round_solve_s=round_time_stats(result.round_solve_s),
                   wall_s=result.wall_s)
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    c2d = summary["click_to_door_min"]
    print(f"{instance.name} [{policy.value}]: delivered {summary['delivered']}/{summary['orders']}, "
          f"click-to-door mean {c2d['mean'] or 0:.1f} min, p90 {c2d['p90'] or 0:.1f}, "
          f"{'feasible' if not violations else 'INFEASIBLE'}; wrote {out}", file=sys.stderr)
    return EXIT_OK if not violations else EXIT_INFEASIBLE


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
