"""The terminal: a live table redrawn in place (or plain progress lines with --headless), the
ops console URL, and the summary at the end. The dispatch round time and the surge cells come
from the server's public Prometheus `/metrics`, whichever names the dispatcher exports them under.
"""

from __future__ import annotations

import contextlib
import re
import sys
import time
from collections import Counter
from pathlib import Path
from typing import TextIO

import aiohttp

from fooddispatch.client import ApiError, Client
from fooddispatch.demo.city import REGION
from fooddispatch.demo.world import World, percentile

_LEVEL = re.compile(r'"level": "(warning|error|critical)"')
_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+([-+0-9.eEinfNa]+)$")


def parse_metrics(text: str) -> dict[str, float]:
    """Sum of every sample per metric name (labels folded together)."""
    out: dict[str, float] = {}
    for line in text.splitlines():
        match = _SAMPLE.match(line.strip())
        if match:
            try:
                out[match.group(1)] = out.get(match.group(1), 0.0) + float(match.group(3))
            except ValueError:
                continue
    return out


def dispatch_figures(metrics: dict[str, float]) -> tuple[float | None, int | None]:
    """(mean dispatch round in ms, surge cells above 1.0) if the server exports them."""
    round_ms = None
    for name, total in metrics.items():
        if "dispatch" in name and "round" in name and name.endswith("_sum"):
            count = metrics.get(name[:-4] + "_count", 0.0)
            if count:
                round_ms = 1000 * total / count
    surge = next((int(v) for n, v in metrics.items() if "surge" in n and "cell" in n and not n.endswith("_created")),
                 None)
    return round_ms, surge


class Console:
    def __init__(self, world: World, ops_url: str, headless: bool, out: TextIO = sys.stdout) -> None:
        self.world, self.ops_url, self.headless, self.out = world, ops_url, headless, out
        self.started = time.monotonic()
        self._last_points = (0, time.monotonic())
        self.points_per_s = 0.0
        self.live = not headless and out.isatty()
        self.closed: list[tuple[str, str]] | None = None  # the table as the city closed (for the summary)
        self.wind_down_s = 0.0
        self.log_file: Path | None = None

    async def scrape(self, client: Client, token: str | None = None) -> None:
        """The surge map (as the operator `token` sees it) and the dispatch round from /metrics."""
        if token:
            with contextlib.suppress(ApiError):
                surge = await client.with_token(token).surge(REGION)
                self.world.surge_cells = sum(1 for c in surge.cells if c.multiplier > 1.0)
        try:
            text = await client.metrics_text()
        except aiohttp.ClientError:
            return
        round_ms, surge_cells = dispatch_figures(parse_metrics(text))
        if round_ms is not None:
            self.world.dispatch_round_ms = round_ms
        if surge_cells is not None:
            self.world.surge_cells = surge_cells

    def rows(self) -> list[tuple[str, str]]:
        """The live table. Orders/min, on time and click-to-door are `fooddispatch.ops.kpis`'s, as
        the ops console shows them."""
        w, t = self.world, self.world.tally
        now = time.monotonic()
        points, then = self._last_points
        if now - then >= 1.0:
            self.points_per_s = (t.gps_points - points) / (now - then)
            self._last_points = (t.gps_points, now)
        ctd = [v / 60 for v in t.click_to_door]
        on_time = t.on_time_pct()
        return [
            ("simulated clock", f"{w.clock.label()}  (x{w.clock.speed:g})"),
            ("orders placed / delivered / cancelled", f"{t.placed} / {t.delivered} / {t.cancelled}"),
            ("orders per minute (last 10 simulated min)", f"{w.orders_per_minute(time.time()):.1f}"),
            ("on time", f"{on_time:.1f} %" if on_time is not None else "-"),
            ("click-to-door mean / p90", f"{sum(ctd) / len(ctd):.1f} / {percentile(ctd, 90):.1f} min" if ctd else "-"),
            ("couriers online / busy", f"{len(w.couriers_online)} / {len(w.couriers_busy)}"),
            ("offers accepted / declined", f"{t.offers_accepted} / {t.offers_declined}"),
            ("surge cells", str(w.surge_cells)),
            ("GPS points/s (sent, acked total)", f"{self.points_per_s:.0f}  ({t.gps_points}, {t.gps_acked})"),
            ("dispatch round", f"{w.dispatch_round_ms:.0f} ms" if w.dispatch_round_ms is not None else "n/a"),
            ("declined payments / closed-store errors", f"{t.declined_payments} / {t.closed_store_errors}"),
        ]

    def draw(self) -> None:
        rows = self.rows()
        if self.live:
            width = max(len(k) for k, _ in rows)
            lines = ["\x1b[H\x1b[2J\x1b[1mfooddispatch demo: Berlin\x1b[0m", ""]
            lines += [f"  {k:<{width}}  {v}" for k, v in rows]
            lines += ["", f"  ops console: {self.ops_url}", "  Ctrl-C stops."]
            self.out.write("\n".join(lines) + "\n")
        else:
            d = dict(rows)
            self.out.write(
                f"[{d['simulated clock']}] placed {self.world.tally.placed} delivered {self.world.tally.delivered} "
                f"cancelled {self.world.tally.cancelled} on time {d['on time']} couriers {d['couriers online / busy']} "
                f"gps/s {self.points_per_s:.0f} round {d['dispatch round']}\n")
        self.out.flush()

    def close(self) -> None:
        """The city closes (the actors stop next): keep the table as it stands, couriers included."""
        self.closed = self.rows()

    def summary(self) -> str:
        w, t = self.world, self.world.tally
        rows = dict(self.closed or self.rows())
        real = time.monotonic() - self.started
        timing = f", of which {self.wind_down_s:.0f} s wind-down" if self.wind_down_s >= 1 else ""
        lines = ["", "== demo summary ==", f"real time {real:.0f} s{timing}, simulated {w.clock.now() / 60:.0f} min"]
        for key, value in rows.items():
            if key == "simulated clock":
                continue
            if key == "couriers online / busy":
                key = "couriers online / busy as the city closed"
                value = f"{value} (peak {w.peak_online} / {w.peak_busy})"
            lines.append(f"{key}: {value}")
            if key.startswith("orders placed"):
                lines.append(f"orders not delivered: {_undelivered(w)}")
        lines.append(f"quotes {t.quotes}, rejected by restaurants {t.rejected}")
        if t.outcomes:
            lines.append("outcomes: " + ", ".join(f"{k} {v}" for k, v in sorted(t.outcomes.items())))
        if t.gps_errors:
            lines.append("error frames from the server: " + ", ".join(f"{k} {v}" for k, v in t.gps_errors.items()))
        lines.append("unexpected errors: " + (", ".join(f"{k} {v}" for k, v in t.unexpected.items()) or "none"))
        if w.not_simulated:
            lines.append("not simulated (the API is not there yet):")
            lines += [f"  - {part}: {why}" for part, why in w.not_simulated.items()]
        else:
            lines.append("not simulated: nothing, every part of the city ran")
        if self.log_file is not None:
            lines.append(f"server log: {self.log_file} ({log_levels(self.log_file)})")
        return "\n".join(lines)


def _undelivered(world: World) -> str:
    counts = world.undelivered()
    total = sum(counts.values())
    if not total:
        return "0"
    order = ["open", "cancelled", "rejected", "expired"]
    parts = sorted(counts.items(), key=lambda kv: (order.index(kv[0]) if kv[0] in order else 9, kv[0]))
    names = {"open": "still on their way"}
    return f"{total} (" + ", ".join(f"{names.get(k, k)} {v}" for k, v in parts) + ")"


def log_levels(path: Path) -> str:
    """How many error and warning lines the server wrote to its JSON log."""
    counts: Counter[str] = Counter()
    with contextlib.suppress(OSError), path.open(encoding="utf-8", errors="replace") as lines:
        for line in lines:
            match = _LEVEL.search(line)
            if match:
                counts[match.group(1)] += 1
    errors, warnings = counts["error"] + counts["critical"], counts["warning"]
    return f"{errors} error{'' if errors == 1 else 's'}, {warnings} warning{'' if warnings == 1 else 's'}"
