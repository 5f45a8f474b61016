"""This process's name among the consumers of a group."""

from __future__ import annotations

import os
import socket


def consumer_name() -> str:
    """Unique per process, stable for its life: consumer groups track pending entries by it."""
    return f"{socket.gethostname()}-{os.getpid()}"
