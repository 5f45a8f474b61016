"""Schemathesis over the served OpenAPI document, as the operator and as a customer: generated
requests (valid and invalid ones) for every operation the role may call, against the real app
on a real port, with rate limits raised so the fuzzer is never throttled. No answer may be a 5xx.

Bounded and deterministic: a fixed number of examples per operation, derandomized, no example
database, no shrinking. Path parameters are the world's real ids, so generated queries and bodies
reach the code behind the 404 checks (the probes in test_openapi_probes.py fuzz path ids)."""

from __future__ import annotations

import asyncio
import dataclasses
from collections import Counter
from typing import Any

import pytest
import requests
import schemathesis
from edge_world import World, build_world
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hypothesis_settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode

from fooddispatch.config import Settings

EXAMPLES = {GenerationMode.POSITIVE: 8, GenerationMode.NEGATIVE: 8}  # per operation and role
ROLES = ("operator", "customer")


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return dataclasses.replace(settings, rate_limit_per_minute=10_000_000, rate_limit_burst=1_000_000,
                               tenant_rate_limit_per_minute=10_000_000, tenant_rate_limit_burst=1_000_000)


def _callable_by(op: Any, role: str) -> bool:
    roles = op.definition.raw.get("x-roles")
    websocket = "101" in op.definition.raw.get("responses", {})
    return op.path.startswith("/v1/") and not websocket and (not roles or role in roles)


class Fuzzer:
    """Runs in a thread: schemathesis calls with `requests` while the test's loop serves them."""

    def __init__(self, base_url: str, world: World) -> None:
        self.base_url, self.world = base_url, world
        self.session = requests.Session()
        self.failures: list[str] = []
        self.calls = 0
        self.statuses: Counter[int] = Counter()

    def call(self, case: Any, role: str, label: str) -> None:
        headers = {k: v for k, v in (case.headers or {}).items() if k.lower() not in ("authorization", "x-api-key")}
        case.headers = {**headers, **self.world.headers[role]}
        self.calls += 1
        response = case.call(base_url=self.base_url, session=self.session, timeout=30)
        self.statuses[response.status_code] += 1
        if response.status_code >= 500:
            self.failures.append(f"{label}: {response.status_code} {response.text[:300]}\n"
                                 f"  {case.as_curl_command()[:600]}")

    def runner(self, strategy: Any, examples: int, role: str, label: str) -> Any:
        @hypothesis_settings(max_examples=examples, derandomize=True, database=None, deadline=None,
                             phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
        @given(case=strategy)
        def run(case: Any) -> None:
            self.call(case, role, label)

        return run

    def operation(self, op: Any, role: str) -> None:
        path_parameters = {p.name: self.world.path_value(op.path, p.name) for p in op.path_parameters}
        for mode, examples in EXAMPLES.items():
            label = f"{role} {mode.value} {op.method.upper()} {op.path}"
            strategy = op.as_strategy(generation_mode=mode, path_parameters=path_parameters or None)
            try:
                self.runner(strategy, examples, role, label)()
            except Unsatisfiable:  # nothing to make invalid (no parameters, no body): the positive run covers it
                assert mode is GenerationMode.NEGATIVE, label

    def all(self, doc: dict[str, Any]) -> None:
        schema = schemathesis.openapi.from_dict(doc)
        try:
            for role in ROLES:
                for result in schema.get_all_operations():
                    op = result.ok()
                    if _callable_by(op, role):
                        self.operation(op, role)
        finally:
            self.session.close()


@pytest.mark.slow
# The server runs on this process's loop while the fuzzer draws in a thread: when a server task (a
# back-off's jitter) uses the `random` module mid-draw, Hypothesis takes it for a strategy using
# `random` and warns, which the suite's "error" filter turns into a flaky failure of the fuzzer itself.
@pytest.mark.filterwarnings("ignore::hypothesis.errors.HypothesisDeprecationWarning")
async def test_schemathesis_finds_no_server_error_as_operator_or_customer(client, make_principal) -> None:
    world = await build_world(client, make_principal)
    doc = await (await client.get("/openapi.json")).json()
    base_url = str(client.make_url("/")).rstrip("/")
    fuzzer = Fuzzer(base_url, world)
    await asyncio.to_thread(fuzzer.all, doc)
    assert fuzzer.calls > 1000
    assert sum(n for status, n in fuzzer.statuses.items() if status < 300) > 200  # it gets past validation
    assert not fuzzer.failures, "\n".join(fuzzer.failures)
