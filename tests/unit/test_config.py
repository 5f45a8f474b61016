"""Settings from the environment, and the compose file naming the same variables."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from fooddispatch.config import ENV_VARS, ConfigError, Settings

ROOT = Path(__file__).resolve().parents[2]


def test_defaults_need_no_configuration(tmp_path) -> None:
    settings = Settings.from_env({"FOODDISPATCH_DATA_DIR": str(tmp_path)})
    assert settings.database_url is None and settings.redis_url is None
    assert (settings.host, settings.port) == ("127.0.0.1", 8080)
    # The local secret is created once per data folder and reused.
    assert Settings.from_env({"FOODDISPATCH_DATA_DIR": str(tmp_path)}).jwt_secret == settings.jwt_secret


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"FOODDISPATCH_PORT": "eighty"}, "FOODDISPATCH_PORT"),
        ({"FOODDISPATCH_PORT": "70000"}, "out of range"),
        ({"DATABASE_URL": "mysql://x"}, "DATABASE_URL"),
        ({"REDIS_URL": "http://x"}, "REDIS_URL"),
        ({"FOODDISPATCH_JWT_SECRET": "short"}, "at least 32"),
        ({"FOODDISPATCH_LOG_LEVEL": "loud"}, "LOG_LEVEL"),
        ({"FOODDISPATCH_DISPATCH_INTERVAL": "0"}, "DISPATCH_INTERVAL"),
    ],
)
def test_bad_values_name_the_variable(tmp_path, env, message) -> None:
    with pytest.raises(ConfigError, match=message):
        Settings.from_env({"FOODDISPATCH_DATA_DIR": str(tmp_path), **env})


def test_compose_file_parses_and_uses_the_config_variable_names() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert {"postgres", "redis", "app"} <= set(compose["services"])
    app_env = compose["services"]["app"]["environment"]
    assert {"DATABASE_URL", "REDIS_URL"} <= set(app_env)
    unknown = set(app_env) - set(ENV_VARS)
    assert unknown == set(), f"compose sets variables the config does not read: {unknown}"
    assert compose["services"]["app"]["build"] == "."
    assert (ROOT / "Dockerfile").exists()


def test_readme_documents_every_variable() -> None:
    readme = (ROOT / "README.md").read_text()
    missing = [name for name in ENV_VARS if f"`{name}`" not in readme]
    assert missing == []


def test_region_timezone_must_be_an_iana_zone(tmp_path: Path) -> None:
    env = {"FOODDISPATCH_DATA_DIR": str(tmp_path)}
    berlin = Settings.from_env({**env, "FOODDISPATCH_REGION_TIMEZONE": "Europe/Berlin"})
    assert berlin.region_timezone == "Europe/Berlin"
    assert Settings.from_env(env).region_timezone == "UTC"
    with pytest.raises(ConfigError, match="FOODDISPATCH_REGION_TIMEZONE"):
        Settings.from_env({**env, "FOODDISPATCH_REGION_TIMEZONE": "Mars/Olympus"})
