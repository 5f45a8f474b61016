"""The payments setting read from the environment: how old an unused hold may get before it is voided."""

from __future__ import annotations

from pathlib import Path

import pytest

from fooddispatch.config import ENV_VARS, ConfigError, Settings

NAME = "FOODDISPATCH_PAYMENTS_UNUSED_HOLD_SECONDS"


def test_unused_holds_are_voided_after_an_hour_unless_configured(tmp_path: Path) -> None:
    env = {"FOODDISPATCH_DATA_DIR": str(tmp_path)}
    assert Settings.from_env(env).payments_unused_hold_seconds == 3600
    assert Settings().payments_unused_hold_seconds == 3600
    assert Settings.from_env({**env, NAME: "900"}).payments_unused_hold_seconds == 900
    assert NAME in ENV_VARS


@pytest.mark.parametrize("raw", ["59", "604801", "an hour"])
def test_an_unused_hold_age_out_of_range_names_the_variable(tmp_path: Path, raw: str) -> None:
    # Under a minute would void holds customers are about to check out with; past 7 days the processor
    # has let the authorization lapse anyway.
    with pytest.raises(ConfigError, match=NAME):
        Settings.from_env({"FOODDISPATCH_DATA_DIR": str(tmp_path), NAME: raw})
