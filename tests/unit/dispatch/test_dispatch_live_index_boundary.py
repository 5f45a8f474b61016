"""The rule of docs/EVENTS.md, checked on the code: the live courier index is geo's published API.

Other packages use `geo.live` only through the names `geo/__init__.py` publishes (never its key
builder or codec), and no module but `geo.live` loads the index's Lua scripts.
"""

from __future__ import annotations

import ast
from pathlib import Path

import geo

ROOT = Path(__file__).resolve().parents[3]
OTHER_PACKAGES = ["catalog", "dispatch", "fooddispatch", "kernel", "memberships", "orders", "payments", "tracking"]


def imports(package: str) -> list[tuple[str, str, str]]:
    """(file, module, name) of every `from module import name` and `import module` in a package."""
    found = []
    for path in sorted((ROOT / package).rglob("*.py")):
        source = path.read_text()
        if "geo" not in source:
            continue  # imports nothing of geo's
        for node in ast.walk(ast.parse(source, str(path))):
            if isinstance(node, ast.ImportFrom) and node.module:
                found += [(str(path.relative_to(ROOT)), node.module, alias.name) for alias in node.names]
            elif isinstance(node, ast.Import):
                found += [(str(path.relative_to(ROOT)), alias.name, "") for alias in node.names]
    return found


def test_other_packages_read_and_write_the_live_index_only_through_what_geo_publishes() -> None:
    published = set(geo.__all__)
    assert "CourierIndex" in published
    crossing = [(file, module, name) for package in OTHER_PACKAGES for file, module, name in imports(package)
                if (module == "geo.live" and name not in published)
                or module.startswith("geo.live_scripts") or (module == "geo" and name in {"live", "live_scripts"})]
    assert crossing == []


def test_only_the_index_itself_loads_its_scripts() -> None:
    users = sorted({file for file, module, name in imports("geo")
                    if module.startswith("geo.live_scripts") or (module == "geo" and name == "live_scripts")})
    assert users == ["geo/live.py"]
