"""The Grubhub MDRP replay: load an instance, replay it through the core, write and check the solution."""

from dispatch.mdrp.checker import InfeasibleSolutionError, assert_feasible, check_solution
from dispatch.mdrp.instance import Instance, MalformedInstanceError, load_instance
from dispatch.mdrp.metrics import round_time_stats, solution_metrics
from dispatch.mdrp.simulator import ReplayResult, replay
from dispatch.mdrp.solution import Solution, read_solution, write_solution

__all__ = [
    "InfeasibleSolutionError",
    "Instance",
    "MalformedInstanceError",
    "ReplayResult",
    "Solution",
    "assert_feasible",
    "check_solution",
    "load_instance",
    "read_solution",
    "replay",
    "round_time_stats",
    "solution_metrics",
    "write_solution",
]
