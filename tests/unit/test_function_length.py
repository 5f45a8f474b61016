"""No function in product code over 70 lines (STYLE.md): a longer one is two steps that want names."""

from __future__ import annotations

import ast
import functools
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PRODUCT = ("kernel", "fooddispatch", "geo", "catalog", "orders", "payments", "tracking", "dispatch", "memberships")
LIMIT = 70


@functools.cache
def function_lengths() -> tuple[tuple[str, int], ...]:
    """`(path:line name, n lines)` of every function or method in product code, decorators included."""
    found = []
    for package in PRODUCT:
        for path in sorted((ROOT / package).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                    first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
                    found.append((f"{path.relative_to(ROOT)}:{node.lineno} {node.name}",
                                  (node.end_lineno or node.lineno) - first + 1))
    return tuple(found)


def long_functions(limit: int = LIMIT) -> list[str]:
    """`path:line name (n lines)` of every function or method longer than `limit`."""
    return [f"{where} ({lines} lines)" for where, lines in function_lengths() if lines > limit]


def test_no_function_in_product_code_is_longer_than_70_lines() -> None:
    assert long_functions() == []


def test_the_check_sees_functions_and_methods_of_every_product_package() -> None:
    # It can fail: with a lower limit it finds the longest functions there are, in several packages.
    longest = long_functions(limit=55)
    assert longest and {line.split("/")[0] for line in long_functions(limit=40)} >= {"fooddispatch", "dispatch"}
