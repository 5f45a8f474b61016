"""Each domain package is wired into the app by one module here with
`install(app: web.Application) -> None`: it adds the package's routes and a
`cleanup_ctx` generator that builds its service from the shared pools (which
are open by then, because the root's own context runs first) and starts and
stops its background tasks. The list below is the order they start in; a
package that needs another's service comes after it."""

from __future__ import annotations

import importlib
from collections.abc import Callable

from aiohttp import web

COMPONENTS: tuple[str, ...] = ("catalog", "payments", "memberships", "tracking", "orders", "dispatch", "ops", "apps",
                               "privacy")


def install_all(app: web.Application, names: tuple[str, ...] = COMPONENTS) -> None:
    for name in names:
        module = importlib.import_module(f"fooddispatch.components.{name}")
        install: Callable[[web.Application], None] = module.install
        install(app)
