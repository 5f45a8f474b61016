"""The webhook development setting: off unless the environment says true, and only true or false."""

from __future__ import annotations

from pathlib import Path

import pytest

from fooddispatch.config import ConfigError, Settings


def test_webhooks_to_private_addresses_are_off_unless_switched_on(tmp_path: Path) -> None:
    env = {"FOODDISPATCH_DATA_DIR": str(tmp_path)}
    assert Settings.from_env(env).webhooks_allow_private is False
    assert Settings().webhooks_allow_private is False
    assert Settings.from_env({**env, "FOODDISPATCH_WEBHOOKS_ALLOW_PRIVATE": "true"}).webhooks_allow_private is True
    assert Settings.from_env({**env, "FOODDISPATCH_WEBHOOKS_ALLOW_PRIVATE": "0"}).webhooks_allow_private is False
    with pytest.raises(ConfigError, match="FOODDISPATCH_WEBHOOKS_ALLOW_PRIVATE"):
        Settings.from_env({**env, "FOODDISPATCH_WEBHOOKS_ALLOW_PRIVATE": "yes please"})
