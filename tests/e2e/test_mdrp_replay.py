"""A small city replay through the CLI entry point: every order delivered, the checker agrees.

The slice is cut at run time from ../shared/mdrp (or $MDRP_DIR); the data is never copied into
the repository.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from dispatch import replay_cli
from dispatch.mdrp import check_solution, load_instance, read_solution

INSTANCE = "0o100t100s2p100"
SLICE_ORDERS = 40


def mdrp_dir() -> Path:
    return Path(os.environ.get("MDRP_DIR") or Path(__file__).resolve().parents[2] / ".." / "shared" / "mdrp")


@pytest.fixture
def small_city(tmp_path: Path) -> Path:
    """The first 40 orders of one real day (all its restaurants and couriers), as an instance folder."""
    source = mdrp_dir() / INSTANCE
    if not (source / "orders.txt").is_file():
        pytest.skip(f"MDRP data not found at {source} (set MDRP_DIR to the folder holding {INSTANCE})")
    target = tmp_path / "small_city"
    target.mkdir()
    for name in ("restaurants.txt", "couriers.txt", "instance_parameters.txt"):
        (target / name).write_text((source / name).read_text())
    header, *rows = (source / "orders.txt").read_text().splitlines()
    rows.sort(key=lambda line: float(line.split("\t")[3]))
    (target / "orders.txt").write_text("\n".join([header, *rows[:SLICE_ORDERS]]) + "\n")
    return target


@pytest.mark.parametrize("policy", ["optimizer", "greedy"])
def test_small_city_replay_delivers_every_order_and_passes_the_checker(small_city, tmp_path, policy, capsys):
    out = tmp_path / f"out_{policy}"
    code = replay_cli.main(["--mdrp", str(small_city), "--out", str(out), "--policy", policy])
    assert code == 0
    for name in ("solution_info_assignments.txt", "solution_info_orders.txt", "solution_info_couriers.txt"):
        assert (out / name).is_file()
    summary = json.loads((out / "summary.json").read_text())
    assert summary["orders"] == SLICE_ORDERS
    assert summary["delivered"] == SLICE_ORDERS
    assert summary["feasible"] is True
    for metric in ("click_to_door_min", "click_to_door_overage_min", "ready_to_door_min", "ready_to_pickup_min",
                   "utilization", "bundle_size", "orders_per_hour_by_courier", "bundles_per_hour_by_courier"):
        assert set(summary[metric]) >= {"mean", "std", "min", "p10", "median", "p90", "max"}
    for metric in ("orders_per_courier_hour", "bundles_per_courier_hour", "total_courier_pay",
                   "share_paid_guarantee", "pay_per_order"):
        assert summary[metric] is not None
    # Re-check what was written, independently of the run.
    instance = load_instance(small_city)
    assert check_solution(instance, read_solution(out)) == []
    assert summary["click_to_door_min"]["min"] >= 0
    assert "assigned" in capsys.readouterr().err  # progress went to the terminal


def test_malformed_folder_exits_2_with_one_line(tmp_path, capsys):
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "orders.txt").write_text("not an instance\n")
    assert replay_cli.main(["--mdrp", str(tmp_path / "bad"), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "malformed MDRP folder" in err
    assert not (tmp_path / "o").exists()


def test_unknown_policy_and_bad_step_exit_2(small_city, tmp_path, capsys):
    base = ["--mdrp", str(small_city), "--out", str(tmp_path / "o")]
    assert replay_cli.main([*base, "--policy", "psychic"]) == 2
    assert "unknown policy" in capsys.readouterr().err
    assert replay_cli.main([*base, "--step", "soon"]) == 2
    assert "--step" in capsys.readouterr().err
    assert replay_cli.main([*base, "--step", "0"]) == 2


def test_unknown_flag_exits_2(capsys):
    with pytest.raises(SystemExit) as exc:
        replay_cli.main(["--mdrp", "x", "--out", "y", "--warp-speed"])
    assert exc.value.code == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1
