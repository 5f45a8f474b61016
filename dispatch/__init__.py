"""Dispatch: who takes which order, decided every round by one pure core.

Public interface:
- `decide(orders, couriers, travel, now, config) -> Decision` (dispatch.core): one round.
- Model types (dispatch.model): `OpenOrder`, `Courier`, `Bundle`, `Route`, `Stop`, `Assignment`,
  `Reposition`, `Decision`, `Policy`; config (dispatch.cost): `DispatchConfig`, `CostWeights`.
- Surge (dispatch.surge): `SurgeConfig`, `SurgeBoard`, `update_surge`.
- The MDRP replay (dispatch.mdrp): `load_instance`, `replay`, `check_solution`, `solution_metrics`;
  its CLI is dispatch.replay_cli (`add_arguments`, `run`).

Imports stay lazy here so importing `dispatch` does no work.
"""
