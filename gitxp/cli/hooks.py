"""`gitxp hooks install|uninstall`: plain git hooks for projects that do not use pre-commit."""

from __future__ import annotations

import click

from ..present.output import dump_json
from ._options import format_option, repo_option

HOOK_TYPES = ("pre-commit", "pre-push")


@click.group("hooks")
def hooks_command() -> None:
    """Install or remove gitxp's plain git hooks (pre-commit, pre-push).

    With the pre-commit framework, list the hooks in .pre-commit-config.yaml
    instead (docs/hooks.md). Hooks already in place are kept and run first.

    \b
    Examples:
      gitxp hooks install                      # both hooks, honouring core.hooksPath
      gitxp hooks install --hook-type pre-push
      gitxp hooks uninstall                    # and restore the hooks they chained
    """


# `-t/--hook-type`: which of the git hooks a command acts on
_hook_type_option = click.option(
    "-t",
    "--hook-type",
    "hook_types",
    multiple=True,
    type=click.Choice(HOOK_TYPES),
    help="Only this git hook (repeatable). Default: all.",
)


def _print(changes: list, fmt: str) -> None:  # type: ignore[type-arg]
    if fmt == "json":
        click.echo(dump_json([c.to_dict() for c in changes]))
        return
    for c in changes:
        line = f"{c.hook_type}: {c.action} {c.path}"
        if c.chained:
            line += f" (runs the earlier hook {c.chained} first)"
        click.echo(line)


@hooks_command.command("install")
@_hook_type_option
@click.option("--force", is_flag=True, help="Replace an older chained hook if one is in the way.")
@format_option("text", "json", default="text")
@repo_option
def install_command(hook_types: tuple[str, ...], force: bool, fmt: str, repo_path: str) -> None:
    """Install gitxp's git hooks into this repository.

    The pre-commit hook runs no-run-outputs; the pre-push hook runs
    metric-gate then push-runs. The scripts call this gitxp's Python, or
    `gitxp` on PATH when that is gone.

    \b
    Examples:
      gitxp hooks install
      gitxp hooks install -t pre-commit --format json
    """
    from ..hooks.install import install

    _print(install(repo_path, list(hook_types) or None, force=force), fmt)


@hooks_command.command("uninstall")
@_hook_type_option
@format_option("text", "json", default="text")
@repo_option
def uninstall_command(hook_types: tuple[str, ...], fmt: str, repo_path: str) -> None:
    """Remove gitxp's git hooks, restoring the hooks they chained.

    \b
    Examples:
      gitxp hooks uninstall
      gitxp hooks uninstall -t pre-push
    """
    from ..hooks.install import uninstall

    _print(uninstall(repo_path, list(hook_types) or None), fmt)
