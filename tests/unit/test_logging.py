"""Structured logs: JSON lines with the request's context bound."""

from __future__ import annotations

import json
import logging

import structlog

from fooddispatch.logs import configure_logging


def test_json_lines_carry_bound_context(capsys) -> None:
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    configure_logging("info", json_lines=True)
    try:
        structlog.contextvars.bind_contextvars(request_id="req_1", principal="cus_1")
        structlog.get_logger("t").info("checkout", order_id="ord_1")
        structlog.get_logger("t").debug("hidden")
    finally:
        structlog.contextvars.clear_contextvars()
        structlog.reset_defaults()
        root.handlers[:], root.level = saved
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1
    assert lines[0]["event"] == "checkout"
    assert lines[0]["request_id"] == "req_1" and lines[0]["principal"] == "cus_1"
    assert lines[0]["level"] == "info" and lines[0]["order_id"] == "ord_1"
