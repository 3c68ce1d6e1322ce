"""Every workflow command documents itself with runnable examples; the Python twins stay callable."""

from __future__ import annotations

import subprocess
import sys

import pytest
from click.testing import CliRunner

from gitxp.cli.main import COMMANDS, cli

WORKFLOW_COMMANDS = [
    "run",
    "diff",
    "compare",
    "checkout",
    "reproduce",
    "tag",
    "note",
    "rename",
    "rm",
    "gc",
    "branch",
    "demo",
]


@pytest.mark.parametrize("name", WORKFLOW_COMMANDS)
def test_help_has_an_example_for_every_command(runner: CliRunner, name: str) -> None:
    assert name in COMMANDS
    result = runner.invoke(cli, [name, "--help"])
    assert result.exit_code == 0, result.output
    text = result.output
    assert "Examples:" in text
    examples = text.split("Examples:", 1)[1].strip().splitlines()
    runnable = [line.strip() for line in examples if line.strip().startswith(f"gitxp {name}")]
    assert runnable, f"no `gitxp {name} ...` example in:\n{text}"


def test_python_twins_survive_importing_the_cli() -> None:
    code = (
        "import sys, gitxp, gitxp.cli.diff, gitxp.cli.checkout, gitxp.cli.reproduce, "
        "gitxp.cli.run, gitxp.cli.manage, gitxp.ops.compare, gitxp.ops.reproduce\n"
        "for name in ('diff', 'compare', 'checkout', 'reproduce', 'launch', 'rm', 'gc',"
        " 'rename', 'branch'):\n"
        "    assert callable(getattr(gitxp, name)), name\n"
        "    assert name in gitxp.__all__, name\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('pandas', 'pyarrow')]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_help_of_the_group_lists_the_workflow_commands() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "gitxp.cli.main", "--help"], capture_output=True, text=True
    )
    assert result.returncode == 0
    for name in WORKFLOW_COMMANDS:
        assert f"  {name} " in result.stdout or f"  {name}\n" in result.stdout, name


@pytest.mark.parametrize("name", WORKFLOW_COMMANDS)
def test_help_loads_neither_pandas_nor_pyarrow(name: str) -> None:
    code = (
        "import sys\n"
        "from gitxp.cli.main import main\n"
        f"sys.argv = ['gitxp', {name!r}, '--help']\n"
        "try:\n"
        "    main()\n"
        "except SystemExit:\n"
        "    pass\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('pandas', 'pyarrow', 'sklearn')]\n"
        "assert not bad, bad\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "Examples:" in result.stdout
