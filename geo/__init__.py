"""Geography: distances and travel times, H3 helpers, delivery zones, learned speeds, and the live
courier index.

Public interface (modules are imported directly; the live index's names are also here):
- `geo.eta`: `Point`, `TravelTime` and its models, `haversine_m`, `seconds_many`, `PrepTimeEstimator`.
- `geo.h3cells`, `geo.zones`, `geo.speeds`: H3 cells and rings, delivery zones (shapely), learned speeds.
- The live courier index (`geo.live`), a published API over keys only geo touches:
  `CourierIndex(redis, prefix, region)` per region. Tracking writes through it (`flush`, `sweep`,
  `set_bundle`); dispatch and the ops feed read through it (`nearest_online` for a round's
  candidates with their states in one script call, `courier_states`, `available_counts`,
  `scan_states`). Its types: `LiveState`, `CourierUpdate`, `CourierLive`, `NearbyCourier`,
  `Candidate`. No other package names the index's Redis keys or runs a script over them
  (docs/EVENTS.md); its scripts are `geo.live_scripts`.

Imports stay lazy here so importing `geo` (e.g. for `geo.eta` in the pure dispatch core) does not
import Redis.
"""

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from geo.live import Candidate, CourierIndex, CourierLive, CourierUpdate, LiveState, NearbyCourier

__all__ = ["Candidate", "CourierIndex", "CourierLive", "CourierUpdate", "LiveState", "NearbyCourier"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from geo import live

        return getattr(live, name)
    raise AttributeError(f"module 'geo' has no attribute {name!r}")
