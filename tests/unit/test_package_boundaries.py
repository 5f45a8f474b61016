"""The import rules of DESIGN.md and docs/EVENTS.md, checked on the code: `tracking`, `dispatch` and `orders`
never import each other's code; they meet through events, and a producer's `event_types.py` (its events'
payload types) is the one module of it the others may import. An `event_types.py` imports only the
standard library, msgspec and the kernel, and the three packages' `__init__.py` import nothing, so
importing another package's event types brings none of its code along."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
APART = ("orders", "tracking", "dispatch")  # DESIGN.md: they never import each other
PRODUCERS = ("orders", "tracking", "dispatch", "payments", "catalog", "memberships")


def imported_modules(path: Path, *, top_level_only: bool = False) -> list[str]:
    """The modules a file imports (`from orders import event_types` counts as `orders.event_types`)."""
    tree = ast.parse(path.read_text(), str(path))
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    found: list[str] = []
    for node in nodes:
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found += [f"{node.module}.{a.name}" if node.module in PRODUCERS else node.module for a in node.names]
        elif isinstance(node, ast.Import):
            found += [a.name for a in node.names]
    return found


def test_tracking_dispatch_and_orders_import_each_other_only_for_event_types() -> None:
    crossing = []
    for package in APART:
        for path in sorted((ROOT / package).rglob("*.py")):
            for module in imported_modules(path):
                root = module.split(".")[0]
                if root in APART and root != package and module != f"{root}.event_types":
                    crossing.append((str(path.relative_to(ROOT)), module))
    assert crossing == []


def test_event_types_modules_import_only_the_standard_library_msgspec_and_the_kernel() -> None:
    allowed = {"__future__", "msgspec", "kernel"} | set(sys.stdlib_module_names)
    beyond = {producer: [m for m in imported_modules(ROOT / producer / "event_types.py")
                         if m.split(".")[0] not in allowed] for producer in PRODUCERS}
    assert {p: mods for p, mods in beyond.items() if mods} == {}


def test_importing_a_packages_event_types_runs_none_of_its_code() -> None:
    # Python runs a package's __init__.py before any module of it: these import nothing at load time.
    loaded = {package: imported_modules(ROOT / package / "__init__.py", top_level_only=True) for package in APART}
    assert {p: [m for m in mods if m not in {"typing", "__future__"}] for p, mods in loaded.items()} == {
        p: [] for p in APART}


def test_memberships_uses_payments_through_its_public_interface_and_no_domain_package_imports_memberships() -> None:
    import payments

    public = {f"payments.{name}" for name in payments.__all__} | {"payments.event_types"}
    beyond = [(str(path.relative_to(ROOT)), module) for path in sorted((ROOT / "memberships").rglob("*.py"))
              for module in imported_modules(path)
              if module.split(".")[0] in {"orders", "tracking", "dispatch", "catalog", "fooddispatch"}
              or (module.split(".")[0] == "payments" and module not in public)]
    assert beyond == []
    # orders learns of a membership through its port (orders.ports.Memberships), filled by the composition root
    importing = [(str(path.relative_to(ROOT)), module) for package in ("orders", "tracking", "dispatch", "catalog",
                                                                       "payments", "geo", "kernel")
                 for path in sorted((ROOT / package).rglob("*.py")) for module in imported_modules(path)
                 if module.split(".")[0] == "memberships"]
    assert importing == []
