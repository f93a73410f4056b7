"""No function in pipeline/ or plugins/ is longer than 60 lines (issue 13's acceptance line):
small functions with one job each, as the house standards ask."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LIMIT = 60


def long_functions(source: str) -> list[tuple[str, int]]:
    """(name, lines) of every function of ``source`` longer than ``LIMIT`` lines, decorators
    left out."""
    return [(node.name, node.end_lineno - node.lineno + 1) for node in ast.walk(ast.parse(source))
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
            and node.end_lineno - node.lineno + 1 > LIMIT]


def test_no_function_is_longer_than_60_lines():
    found = [f"{path.relative_to(ROOT)}:{name} ({lines} lines)"
             for package in ("pipeline", "plugins") for path in sorted((ROOT / package).rglob("*.py"))
             for name, lines in long_functions(path.read_text())]
    assert not found, "longer than 60 lines: " + ", ".join(found)


def test_the_measure_counts_a_long_function():
    body = "\n".join(f"    x{i} = {i}" for i in range(60))
    assert long_functions(f"def short():\n    pass\n\ndef long():\n{body}\n") == [("long", 61)]
