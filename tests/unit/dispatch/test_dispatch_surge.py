from dataclasses import replace

import pytest

from dispatch.surge import CellSample, SurgeBoard, SurgeConfig, cell_of, sample_cells, target_multiplier, update_surge

CONFIG = SurgeConfig(window_s=300, slope=0.5, cap=2.0, step=0.25, band=0.2, min_hold_s=120)
CELL = cell_of((40.7128, -74.0060))


def feed(board: SurgeBoard, at: float, orders: int, couriers: int) -> SurgeBoard:
    return update_surge(board, [CellSample(CELL, at, orders, couriers)], at, CONFIG)


def test_cells_are_h3_resolution_seven():
    import h3

    assert h3.get_resolution(CELL) == 7
    samples = sample_cells([(40.7128, -74.0060)] * 3, [(40.7128, -74.0060)], 0.0, CONFIG)
    assert [(s.cell, s.open_orders, s.available_couriers) for s in samples] == [(CELL, 3, 1)]


def test_multiplier_follows_demand_over_supply_and_is_capped():
    assert target_multiplier(2, 4, CONFIG) == 1.0  # more couriers than orders: no surge
    assert target_multiplier(6, 2, CONFIG) == pytest.approx(2.0)
    assert target_multiplier(100, 1, CONFIG) == CONFIG.cap
    assert target_multiplier(3, 0, CONFIG) == pytest.approx(2.0)  # no courier counts as one


def test_surge_rises_under_pressure_and_falls_back_when_it_ends():
    board = SurgeBoard()
    for minute in range(0, 10):
        board = feed(board, minute * 60.0, orders=5, couriers=2)  # ratio 2.5 -> 1.75
    assert board.multiplier(CELL) == 1.75
    for minute in range(10, 30):
        board = feed(board, minute * 60.0, orders=0, couriers=5)
    assert board.multiplier(CELL) == 1.0


def published_levels(config: SurgeConfig) -> set[float]:
    """Levels published while the ratio alternates between 2.25 and 1.75 every minute."""
    board = SurgeBoard()
    for minute in range(0, 6):
        board = update_surge(board, [CellSample(CELL, minute * 60.0, 8, 4)], minute * 60.0, config)
    assert board.multiplier(CELL) == 1.5
    published = set()
    for minute in range(6, 60):
        orders = 9 if minute % 2 else 7  # targets 1.625 and 1.375: either side of 1.5
        board = update_surge(board, [CellSample(CELL, minute * 60.0, orders, 4)], minute * 60.0, config)
        published.add(board.multiplier(CELL))
    return published


def test_a_ratio_hovering_around_a_level_does_not_flap():
    instant = replace(CONFIG, window_s=30)  # no smoothing: only the hysteresis holds the level
    assert published_levels(instant) == {1.5}
    # The same input without a band and hold time does flap, which is what the band is for.
    assert len(published_levels(replace(instant, band=0.0, min_hold_s=0.0, step=0.125))) > 1


def test_a_new_level_is_held_for_the_minimum_time_even_if_demand_vanishes():
    board = SurgeBoard()
    board = feed(board, 0.0, orders=6, couriers=2)
    assert board.multiplier(CELL) == 2.0
    # Demand disappears a minute later: the window still remembers the surge, and the
    # level may not move before min_hold_s anyway.
    board = update_surge(board, [CellSample(CELL, 60.0, 0, 8)], 60.0, CONFIG)
    assert board.multiplier(CELL) == 2.0
    board = update_surge(board, [CellSample(CELL, 400.0, 0, 8)], 400.0, CONFIG)
    assert board.multiplier(CELL) == 1.0


def test_samples_older_than_the_window_are_forgotten():
    board = feed(SurgeBoard(), 0.0, orders=6, couriers=2)
    board = feed(board, 1000.0, orders=1, couriers=1)
    assert all(s.at > 1000.0 - CONFIG.window_s for s in board.samples)
