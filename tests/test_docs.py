"""Documentation that cannot drift: CLI help, generated reference, README commands."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from gitxp.cli.reference import commands, help_text, render_reference

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("path", [p for p, _ in commands()], ids=lambda p: " ".join(p))
def test_every_command_has_help_with_an_example(path: list[str]) -> None:
    command = dict((tuple(p), c) for p, c in commands())[tuple(path)]
    text = help_text(path, command)
    assert command.help, f"{' '.join(path)} has no docstring"
    assert "Examples:" in text or "Example:" in text, f"{' '.join(path)} --help shows no example"
    assert re.search(r"gitxp( \S+)*", text)


def test_cli_reference_is_up_to_date() -> None:
    current = (ROOT / "docs" / "cli.md").read_text()
    assert current == render_reference(), (
        "docs/cli.md is stale: run `python -m gitxp.cli.reference > docs/cli.md`"
    )


def _quickstart_commands() -> list[str]:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Quickstart", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```bash\n(.+?)\n```", section, flags=re.S)


def test_readme_quickstart_is_exactly_two_commands() -> None:
    blocks = _quickstart_commands()
    assert len(blocks) == 2 and all("\n" not in b for b in blocks)
    assert "gitxp demo" in blocks[0] and "pytest" in blocks[1]


def test_ci_runs_the_readme_test_command() -> None:
    ci = (ROOT / ".ci" / "run").read_text()
    assert _quickstart_commands()[1] in ci


@pytest.mark.parametrize("doc", ["format.md", "python-api.md", "cli.md"])
def test_core_docs_exist(doc: str) -> None:
    assert len((ROOT / "docs" / doc).read_text()) > 500
