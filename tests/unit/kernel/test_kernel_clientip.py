"""The client's IP address: the peer, unless a configured trusted proxy speaks for it."""

from __future__ import annotations

from pathlib import Path

import pytest

from fooddispatch.config import ConfigError, Settings
from kernel.clientip import client_ip, parse_networks

LB = parse_networks(["10.0.0.0/8", "2001:db8::1"])


@pytest.mark.parametrize(("remote", "forwarded", "trusted", "client"), [
    ("203.0.113.5", None, (), "203.0.113.5"),
    ("203.0.113.5", "198.51.100.1", (), "203.0.113.5"),  # no proxy configured: the header is ignored
    ("203.0.113.5", "198.51.100.1", LB, "203.0.113.5"),  # not from a trusted proxy: ignored
    ("10.1.2.3", "198.51.100.1", LB, "198.51.100.1"),
    ("10.1.2.3", "6.6.6.6, 198.51.100.1", LB, "198.51.100.1"),  # the left part is what the client wrote
    ("10.1.2.3", "198.51.100.1, 10.9.9.9", LB, "198.51.100.1"),  # through two of our proxies
    ("2001:db8::1", "2001:db8:77::5", LB, "2001:db8:77::5"),
    ("10.1.2.3", "not-an-ip, 10.9.9.9", LB, "10.9.9.9"),  # a garbled hop ends the walk
    ("10.1.2.3", None, LB, "10.1.2.3"),
    ("10.1.2.3", "10.4.4.4", LB, "10.4.4.4"),  # every hop ours: the farthest one
    (None, "198.51.100.1", LB, None),
])
def test_client_ip_trusts_forwarded_for_only_from_a_configured_proxy(remote, forwarded, trusted, client) -> None:
    assert client_ip(remote, forwarded, trusted) == client


def test_trusted_proxies_setting_is_validated(tmp_path: Path) -> None:
    env = {"FOODDISPATCH_DATA_DIR": str(tmp_path)}
    assert Settings.from_env(env).trusted_proxies == ()
    set_ = Settings.from_env({**env, "FOODDISPATCH_TRUSTED_PROXIES": "10.0.0.0/8, 192.0.2.7"})
    assert set_.trusted_proxies == ("10.0.0.0/8", "192.0.2.7")
    with pytest.raises(ConfigError, match="FOODDISPATCH_TRUSTED_PROXIES"):
        Settings.from_env({**env, "FOODDISPATCH_TRUSTED_PROXIES": "10.0.0.0/8,load-balancer"})
