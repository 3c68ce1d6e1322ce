"""What every hook shares: finding the repository quietly, reporting, turning errors into exit 1."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from functools import wraps
from typing import TYPE_CHECKING

from ..errors import GitxpError, NotARepositoryError

if TYPE_CHECKING:
    from ..git.repository import GitRepo

HookMain = Callable[[Sequence[str] | None], int]


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """argparse help at a fixed width, so `--help` (and docs/cli.md) reads the same everywhere."""

    def __init__(self, prog: str) -> None:
        super().__init__(prog, width=78)  # what argparse picks for an 80-column terminal


def hook_parser(name: str, description: str | None, epilog: str) -> argparse.ArgumentParser:
    """The argument parser of hook *name* (`gitxp hook NAME`), *epilog* under its help."""
    return argparse.ArgumentParser(
        prog=f"gitxp hook {name}",
        description=description,
        epilog=epilog,
        formatter_class=HelpFormatter,
    )


def parse_in_repo(
    parser: argparse.ArgumentParser, argv: Sequence[str] | None, config: bool = True
) -> tuple[argparse.Namespace, GitRepo | None]:
    """Parse a hook's *argv* and find its repository (None: outside one, the hook does nothing).

    With *config*, the hook takes the `--config PATH` every configurable hook
    has, listed last in its help.
    """
    if config:
        parser.add_argument(
            "--config", metavar="PATH", help="pyproject.toml to read settings from."
        )
    args = parser.parse_args(argv)
    return args, discover()


def say(hook: str, text: str) -> None:
    """Write a hook's message to stderr (git and pre-commit show it to the user).

    This is the hook's own output, as a command's is, not a library diagnostic:
    each hook is an entry point of its own, so it writes to its stream itself.
    """
    for line in text.rstrip("\n").splitlines() or [""]:
        sys.stderr.write(f"gitxp {hook}: {line}\n" if line else "\n")
    sys.stderr.flush()


def discover(path: str = ".") -> GitRepo | None:
    """The git repository at or above *path*, or None: hooks do nothing outside one."""
    from ..git.repository import GitRepo

    try:
        return GitRepo.discover(path)
    except NotARepositoryError:
        return None


def guarded(hook: str) -> Callable[[HookMain], HookMain]:
    """Make a hook's main print a GitxpError as one `error:` line and return 1."""

    def decorate(func: HookMain) -> HookMain:
        @wraps(func)
        def main(argv: Sequence[str] | None = None) -> int:
            try:
                return func(argv)
            except GitxpError as exc:
                say(hook, f"error: {exc}")
                return 1

        return main

    return decorate
