"""Orders' code runs one way (docs/CONTRIBUTING.md, "How a request flows"): web → service → store and
back as domain values. These read the imports and string literals of orders/*.py, so a change that
points a dependency back up fails here rather than in a review."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ORDERS = Path(__file__).resolve().parents[3] / "orders"
# The read side and the values everyone passes: they never reach the write side.
READ_SIDE = {"queries", "views", "order", "quote", "store", "model", "pricing", "messages", "errors"}
WRITE_SIDE = {"service", "checkout", "checkout_rules", "lifecycle", "money", "events", "web"}
SQL = re.compile(r"\b(SELECT\s.+\sFROM|INSERT\s+INTO|UPDATE\s+\w+\s+SET|DELETE\s+FROM)\b", re.IGNORECASE | re.DOTALL)


def _imports(module: str) -> set[str]:
    """The orders modules `module` imports (`from orders import store` counts as `store`)."""
    tree = ast.parse((ORDERS / f"{module}.py").read_text())
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "orders":
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("orders."):
            found.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            found |= {a.name.split(".")[1] for a in node.names if a.name.startswith("orders.")}
    return found


def _modules() -> list[str]:
    return sorted(p.stem for p in ORDERS.glob("*.py") if p.stem != "__init__")


def test_the_read_side_never_imports_the_write_side() -> None:
    reaching_up = {m: sorted(_imports(m) & WRITE_SIDE) for m in sorted(READ_SIDE)}
    assert {m: up for m, up in reaching_up.items() if up} == {}


def test_only_the_handlers_reach_the_service_facade() -> None:
    # Collaborators get their dependencies as constructor arguments, never the facade that owns them.
    assert [m for m in _modules() if "service" in _imports(m)] == ["web"]


def test_sql_lives_in_the_store_modules() -> None:
    stores = {"store", "money_store", "webhook_store", "link_store", "privacy_store"}
    with_sql = []
    for module in _modules():
        if module in stores:
            continue
        tree = ast.parse((ORDERS / f"{module}.py").read_text())
        strings = [n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)]
        if any(SQL.search(s) for s in strings):
            with_sql.append(module)
    assert with_sql == []
