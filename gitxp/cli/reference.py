"""Render the CLI reference (docs/cli.md) from the commands' own --help.

Regenerate with: python -m gitxp.cli.reference > docs/cli.md
(tests/test_docs.py fails when the file is out of date).
"""

from __future__ import annotations

import click

from .main import cli

HEADER = """# CLI reference

Generated from `--help` by `python -m gitxp.cli.reference > docs/cli.md`;
do not edit by hand. Every command accepts `-h`/`--help`. Errors print one
line starting with `error:` and exit with status 1 (2 for usage errors).
`python -m gitxp` is the same command, for when its script is not on PATH.

**Which repository.** A command acts on the git repository at or above the
current directory, or at or above `-C PATH` (like `git -C`); `GIT_DIR` is not
read. A *bare* repository (`git init --bare`, `git clone --mirror`, a
server's copy) is found too, as git finds it, from itself or any directory
inside it. Everything that reads runs works there (`log`, `show`, `diff`,
`compare`, `plot`, `export`, `report`, `ui`, `artifacts`, `push`, `pull`,
`checkout --path`, `reproduce --dry-run`), and gitxp's cache goes to
`<git-dir>/gitxp/`. What needs a work tree (`run`, `sweep`, `checkout -b`,
`reproduce`, `hooks install`, `hook no-run-outputs`) refuses in one line:
`error: gitxp run: /srv/git/project.git is a bare repository (no work tree);
run it in a clone with a work tree`, exit status 1, nothing written.
"""


def _walk(command: click.Command, path: list[str]) -> list[tuple[list[str], click.Command]]:
    found = [(path, command)]
    if isinstance(command, click.Group):
        ctx = click.Context(command, info_name=path[-1])
        for name in command.list_commands(ctx):
            sub = command.get_command(ctx, name)
            if sub is not None and not sub.hidden:
                found += _walk(sub, [*path, name])
    return found


def help_text(path: list[str], command: click.Command) -> str:
    """The --help output of the command at *path*, exactly as a user sees it."""
    from click.testing import CliRunner

    result = CliRunner().invoke(cli, [*path[1:], "--help"], prog_name="gitxp", terminal_width=100)
    return result.output


def render_reference() -> str:
    sections = [HEADER]
    for path, command in _walk(cli, ["gitxp"]):
        title = " ".join(path)
        sections.append(f"## `{title}`\n\n```text\n{help_text(path, command).rstrip()}\n```\n")
    return "\n".join(sections)


def commands() -> list[tuple[list[str], click.Command]]:
    """Every command and subcommand, with its path (for tests)."""
    return _walk(cli, ["gitxp"])


if __name__ == "__main__":
    print(render_reference(), end="")
