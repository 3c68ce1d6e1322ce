"""Library diagnostics go through `logging`; the CLI decides what reaches the terminal."""

from __future__ import annotations

import ast
import io
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

import gitxp
from tests.faults.hostile import make_project, record, replace_file
from tests.workflows_util import GITXP, child_env

PACKAGE = Path(__file__).resolve().parents[1] / "gitxp"
# Converted to logging on the branch that splits gitxp/tracking (arch-tracking); drop these
# two once it is merged.
CORRUPT_LINE = "is CORRUPT (params.json is a list, not an object); listed, not read"


def print_calls(source: str) -> list[int]:
    """The lines of *source* that call the builtin `print`."""
    return [
        node.lineno
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id == "print"
    ]


def test_the_scan_finds_print_calls_and_not_the_word_in_text() -> None:
    source = 'SCRIPT = "print(1)"\n\n\ndef f() -> None:\n    print("x", file=None)\n'
    assert print_calls(source) == [5]


def test_no_library_module_prints() -> None:
    """Only gitxp.cli writes to the terminal itself; the rest logs or returns what it has."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE.parent)
        if (PACKAGE / "cli") in path.parents:
            continue
        found += [f"{rel}:{line}" for line in print_calls(path.read_text(encoding="utf-8"))]
    assert not found, "print() outside gitxp/cli (log it, or let the CLI print it): " + str(found)


@pytest.fixture
def corrupt_project(tmp_path: Path) -> Path:
    """A repository with one run whose params.json is malformed (listed as CORRUPT)."""
    path = make_project(tmp_path / "project")
    run_id = record(path, "broken")
    replace_file(path, run_id, "params.json", b"[1, 2, 3]")
    return path


def test_a_library_warning_reaches_the_cli_stderr_once(corrupt_project: Path) -> None:
    result = subprocess.run(
        [*GITXP, "log"], cwd=corrupt_project, capture_output=True, text=True, env=child_env()
    )
    assert result.returncode == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if "CORRUPT" in line]
    assert len(warnings) == 1, result.stderr
    assert warnings[0].startswith("warning: refs/gitxp/runs/"), warnings
    assert warnings[0].endswith(CORRUPT_LINE), warnings


def test_a_root_handler_does_not_show_cli_warnings_twice(
    corrupt_project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An application that configured logging still sees one line per warning from the CLI."""
    from gitxp.cli.main import cli

    monkeypatch.chdir(corrupt_project)
    root = logging.getLogger()
    elsewhere = io.StringIO()
    handler = logging.StreamHandler(elsewhere)
    root.addHandler(handler)
    try:
        result = CliRunner().invoke(cli, ["log"])
    finally:
        root.removeHandler(handler)
    assert result.exit_code == 0, result.output
    assert result.stderr.count(CORRUPT_LINE) == 1, result.stderr
    assert elsewhere.getvalue() == ""
    gitxp_logger = logging.getLogger("gitxp")
    assert gitxp_logger.propagate and not gitxp_logger.handlers  # left as it was found


def test_library_warnings_reach_stderr_without_any_logging_setup(repo: Path) -> None:
    """A script using the library sees warnings (Python's last-resort handler), once each."""
    code = (
        "import gitxp.mlflow as mlflow\n"
        "mlflow.set_tracking_uri('http://127.0.0.1:5000')\n"
        "mlflow.get_tracking_uri()\n"
        "mlflow.get_tracking_uri()\n"
    )
    root = str(PACKAGE.parent)
    env = {**os.environ, "PYTHONPATH": root}
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=repo, capture_output=True, text=True, env=env
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines() == [
        "gitxp.mlflow: tracking URI 'http://127.0.0.1:5000' ignored; runs are recorded in the "
        f"git repository at {os.getcwd()} (set a local path to choose another)"
    ]


def test_verbose_shows_the_library_notes(repo: Path) -> None:
    """`gitxp -v` shows INFO records, which are hidden by default."""
    from gitxp.cli.main import cli

    proxy = child_env(HTTPS_PROXY="http://proxy.invalid:3128", GITXP_ENV_ALLOW="HTTPS_PROXY")
    recorded = subprocess.run(
        [*GITXP, "run", "--", sys.executable, "-c", "pass"],
        capture_output=True,
        text=True,
        env=proxy,
    )
    assert recorded.returncode == 0, recorded.stderr
    runner = CliRunner()
    (row,) = gitxp.open(repo).rows()
    note = "not replaying HTTPS_PROXY recorded in the run: loads or runs code"
    quiet = runner.invoke(cli, ["reproduce", "--dry-run", row["id"]])
    assert quiet.exit_code == 0, quiet.output
    assert "not replayed (loads or runs code): HTTPS_PROXY" in quiet.stderr  # the plan says so
    assert note not in quiet.stderr
    verbose = runner.invoke(cli, ["-v", "reproduce", "--dry-run", row["id"]])
    assert verbose.exit_code == 0, verbose.output
    assert note in verbose.stderr.splitlines(), verbose.stderr
