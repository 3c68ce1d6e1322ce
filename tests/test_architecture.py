"""The package's shape, as docs/architecture.md states it: no import cycles, small modules.

`lint-imports` (run by .ci/run) checks the layers and that only gitxp.git
imports dulwich; these tests check what its contracts do not: that no two
modules import each other, directly or round a circle, counting imports
inside functions, and that no module grows past 600 lines.
"""

from __future__ import annotations

import ast
import functools
from collections.abc import Iterable, Iterator
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "gitxp"
MAX_MODULE_LINES = 600


@functools.cache
def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def _type_only(tree: ast.AST) -> set[int]:
    """Ids of the nodes under `if TYPE_CHECKING:` (never executed, so never a cycle)."""
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If):
            test = node.test
            name = test.id if isinstance(test, ast.Name) else getattr(test, "attr", None)
            if name == "TYPE_CHECKING":
                for child in node.body:
                    skip.update(id(n) for n in ast.walk(child))
    return skip


def _imported(module: str, source: str, is_package: bool, known: Iterable[str]) -> Iterator[str]:
    """The gitxp modules *module* imports at run time, at any depth of its code."""
    tree = ast.parse(source)
    skip = _type_only(tree)
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1])
                base = f"{base}.{node.module}" if node.module else base
            else:
                base = node.module or ""
            names = [f"{base}.{alias.name}" for alias in node.names] + [base]
        else:
            continue
        for name in names:
            while name and name not in known:
                name = name.rpartition(".")[0]
            if name and name != module and name.startswith("gitxp"):
                yield name


@functools.cache
def _source_graph() -> dict[str, frozenset[str]]:
    known = _modules()
    return {
        m: frozenset(_imported(m, p.read_text(encoding="utf-8"), p.name == "__init__.py", known))
        for m, p in known.items()
    }


def _graph() -> dict[str, set[str]]:
    graph = _source_graph()
    # importing gitxp.a.b runs gitxp.a's __init__ first, but that is not an edge of
    # the code's design; only the root façade's lazy imports are left out here
    return {m: {t for t in targets if t != "gitxp"} for m, targets in graph.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_no_module_imports_itself_round_a_circle() -> None:
    assert _cycles(_graph()) == []


def test_the_cycle_check_finds_a_cycle_made_by_an_import_inside_a_function() -> None:
    graph = _graph()
    graph["gitxp.format.storage"] = graph["gitxp.format.storage"] | {"gitxp.store.record"}
    cycles = _cycles(graph)
    assert any("gitxp.format.storage" in c and "gitxp.store.record" in c for c in cycles)


def test_imports_inside_functions_and_relative_imports_are_counted() -> None:
    source = (
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n"
        "    from ..c import C\n"
        "def f():\n"
        "    from ..b import helper\n"
        "    from . import d\n"
    )
    known = ["gitxp.p.a", "gitxp.b", "gitxp.c", "gitxp.p.d"]
    assert set(_imported("gitxp.p.a", source, False, known)) == {"gitxp.b", "gitxp.p.d"}


def test_no_module_passes_600_lines() -> None:
    long = {
        module: lines
        for module, path in _modules().items()
        if (lines := path.read_text(encoding="utf-8").count("\n")) > MAX_MODULE_LINES
    }
    assert long == {}, f"modules over {MAX_MODULE_LINES} lines (split them by concept): {long}"


CORE = ("format", "git", "store", "tracking", "ops")
MAX_FUNCTION_LINES = 60


def _long_functions(source: str, limit: int) -> dict[str, int]:
    """The functions of *source* whose body (docstring left out) passes *limit* lines."""
    long = {}
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            first = body[1] if ast.get_docstring(node) is not None and len(body) > 1 else body[0]
            lines = (node.end_lineno or node.lineno) - first.lineno + 1
            if lines > limit:
                long[f"{node.name}:{node.lineno}"] = lines
    return long


def test_the_function_length_check_counts_the_body_without_the_docstring() -> None:
    body = "".join(f"    x{i} = {i}\n" for i in range(61))
    source = f'def f():\n    """Say what f is for."""\n{body}\ndef g():\n    """Short."""\n    return 1\n'
    assert _long_functions(source, 60) == {"f:1": 61}
    assert _long_functions(source, 61) == {}


def test_no_core_function_passes_60_lines() -> None:
    long = {
        f"{module}.{name}": lines
        for module, path in _modules().items()
        if module.split(".")[1:2] and module.split(".")[1] in CORE
        for name, lines in _long_functions(
            path.read_text(encoding="utf-8"), MAX_FUNCTION_LINES
        ).items()
    }
    assert long == {}, f"core functions over {MAX_FUNCTION_LINES} lines (split them): {long}"
