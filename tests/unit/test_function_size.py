"""No function in operator/rung is longer than 80 lines: a longer one mixes decisions
that want their own name and their own table test (Flagger's 350-line advanceCanary is
what this keeps out)."""

from __future__ import annotations

import ast
from pathlib import Path

import rung

LIMIT = 80
SOURCE = Path(rung.__file__).parent


def _functions() -> list[tuple[int, str]]:
    """(lines, where) of every function and method under operator/rung."""
    found = []
    for path in sorted(SOURCE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = (node.end_lineno or node.lineno) - node.lineno + 1
                where = f"{path.relative_to(SOURCE.parent)}:{node.lineno} {node.name}"
                found.append((lines, where))
    return found


def test_the_source_is_found() -> None:
    assert len(_functions()) > 500


def test_no_function_is_longer_than_the_limit() -> None:
    too_long = sorted((f for f in _functions() if f[0] > LIMIT), reverse=True)
    assert too_long == [], f"functions over {LIMIT} lines: {too_long}"
