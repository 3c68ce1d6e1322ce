"""The options every command shares: `--format`, `-C/--repo`, and opening the repository."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])


def format_option(*choices: str, default: str) -> Callable[[F], F]:
    """The `--format` option every data-printing command shares."""
    return click.option(
        "--format",
        "fmt",
        type=click.Choice(list(choices)),
        default=default,
        show_default=True,
        help="Output format; json is machine-readable with stable keys.",
    )


def repo_option(func: F) -> F:
    """`-C PATH`: act on the repository at PATH instead of the current directory."""
    return click.option(
        "-C",
        "--repo",
        "repo_path",
        default=".",
        metavar="PATH",
        help="Run as if started in PATH (like git -C).",
    )(func)


def open_repo(path: str) -> Any:
    """The repository at or above *path*; a long first listing shows progress on a terminal."""
    from ..store.repo import open as open_repo_

    progress = None
    if sys.stderr.isatty():
        from .._text import progress_to

        progress = progress_to(sys.stderr)
    return open_repo_(path, progress)
