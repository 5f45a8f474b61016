"""This process's name among the consumers of a group."""

from __future__ import annotations

import os
import re
import socket

_INSTANCE = re.compile(r"-i(\d+)$")


def consumer_name(instance_id: int | None = None) -> str:
    """Unique per process, stable for its life: consumer groups track pending entries by it. With the
    process's liveness id (`fooddispatch.liveness`) at the end, another process can tell from the name
    alone whether this one is gone, and take over what it left pending at once."""
    base = f"{socket.gethostname()}-{os.getpid()}"
    return base if instance_id is None else f"{base}-i{instance_id}"


def instance_of(consumer: str) -> int | None:
    """The liveness id a consumer name carries (None: a name without one)."""
    match = _INSTANCE.search(consumer)
    return int(match.group(1)) if match else None
