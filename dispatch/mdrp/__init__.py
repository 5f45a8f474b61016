"""The Grubhub MDRP replay: load an instance, replay it through the core (in the instance's perfect world
or a seeded misbehaving one), write and check the solution."""

from dispatch.mdrp.checker import InfeasibleSolutionError, assert_feasible, check_solution
from dispatch.mdrp.instance import Instance, MalformedInstanceError, load_instance
from dispatch.mdrp.metrics import round_time_stats, solution_metrics
from dispatch.mdrp.simulator import ReplayResult, replay
from dispatch.mdrp.solution import Solution, read_solution, write_solution
from dispatch.mdrp.world import World

__all__ = [
    "InfeasibleSolutionError",
    "Instance",
    "MalformedInstanceError",
    "ReplayResult",
    "Solution",
    "World",
    "assert_feasible",
    "check_solution",
    "load_instance",
    "read_solution",
    "replay",
    "round_time_stats",
    "solution_metrics",
    "write_solution",
]
