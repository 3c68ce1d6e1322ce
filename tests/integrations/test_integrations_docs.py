"""docs/integrations.md: its examples run as written (framework ones at least compile)."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

import gitxp

DOC = Path(__file__).resolve().parents[2] / "docs" / "integrations.md"


def _blocks() -> list[tuple[str, str]]:
    return re.findall(r"```python([^\n]*)\n(.*?)```", DOC.read_text(), flags=re.S)


def test_every_python_example_compiles() -> None:
    blocks = _blocks()
    assert len(blocks) >= 6
    for _, code in blocks:
        ast.parse(code)


@pytest.mark.parametrize(
    "index", [i for i, (tag, _) in enumerate(_blocks()) if not tag.strip()], ids=str
)
def test_plain_examples_run(repo: Path, index: int) -> None:
    pytest.importorskip("psutil")
    pytest.importorskip("sklearn")
    code = _blocks()[index][1]
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=repo, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert len(gitxp.open().runs()) >= 1


def test_flags_in_the_doc_exist(runner: object) -> None:
    from gitxp.cli.main import cli

    result = runner.invoke(cli, ["run", "--help"])  # type: ignore[attr-defined]
    assert "--system-metrics" in result.output and "--system-metrics-seconds" in result.output
