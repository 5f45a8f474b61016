"""Dispatch: who takes which order, decided every round by one pure core.

Public interface:
- `decide(orders, couriers, travel, now, config, candidates=None) -> Decision` (dispatch.core): one
  round; `candidates` (store id -> courier ids) limits whom each store is priced against.
- Model types (dispatch.model): `OpenOrder`, `Courier`, `Bundle`, `Route`, `Stop`, `Assignment`,
  `Reposition`, `Decision`, `Policy`; config (dispatch.cost): `DispatchConfig`, `CostWeights`.
- Surge (dispatch.surge): `SurgeConfig`, `SurgeBoard`, `update_surge`.
- The MDRP replay (dispatch.mdrp): `load_instance`, `replay`, `check_solution`, `solution_metrics`;
  its CLI is dispatch.replay_cli (`add_arguments`, `run`).
- Live surge for orders: `SurgeReader(redis, prefix, region)` (dispatch.live) satisfies orders'
  `SurgeSource`: `await reader.multiplier(lat, lng) -> Fraction`, the published level of the
  pickup's H3 res-7 cell, 1 when there is none or Redis does not answer in time.

Imports stay lazy here so importing `dispatch` does no work.
"""

from typing import Any

__all__ = ["SurgeReader"]


def __getattr__(name: str) -> Any:
    if name == "SurgeReader":
        from dispatch.live import SurgeReader

        return SurgeReader
    raise AttributeError(f"module 'dispatch' has no attribute {name!r}")
