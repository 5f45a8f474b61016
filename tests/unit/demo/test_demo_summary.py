"""The demo's closing summary: what the city looked like as it closed, not after the actors left."""

from __future__ import annotations

import io
from pathlib import Path

from fooddispatch.demo.console import Console, log_levels
from fooddispatch.demo.world import OrderTrack, SimClock, World

T0 = 1_800_000_000.0


def summary_line(summary: str, label: str) -> str:
    found = [line for line in summary.splitlines() if line.startswith(label + ":")]
    assert found, summary
    return found[0].split(": ", 1)[1]


def test_summary_counts_couriers_as_the_city_closed_and_the_orders_not_delivered() -> None:
    world = World(SimClock(10))
    console = Console(world, "http://x/ops", headless=True, out=io.StringIO())
    for i in range(4):
        world.placed(OrderTrack(f"o{i}", "c1", "s1", T0, T0 + 2400))
    world.delivered("o0", T0 + 200)
    world.orders["o1"].outcome = "cancelled"
    world.couriers_online |= {"k1", "k2", "k3"}
    world.couriers_busy |= {"k1"}
    world.count_couriers()
    console.close()
    world.couriers_online.clear()  # the actors stop: their sockets close
    world.couriers_busy.clear()
    console.wind_down_s = 15
    summary = console.summary()
    assert summary_line(summary, "couriers online / busy as the city closed") == "3 / 1 (peak 3 / 1)"
    assert summary_line(summary, "orders not delivered") == "3 (still on their way 2, cancelled 1)"
    assert "of which 15 s wind-down" in summary


def test_server_log_errors_and_warnings_are_counted(tmp_path: Path) -> None:
    log = tmp_path / "demo.log"
    log.write_text('{"event": "request", "level": "info"}\n{"event": "x", "level": "warning"}\n'
                   '{"event": "y", "level": "error"}\n{"event": "z", "level": "error"}\n')
    assert log_levels(log) == "2 errors, 1 warning"
